//go:build !linux

package emulator

import "syscall"

// childAttr puts a child in its own process group, so stopping it stops
// everything it started.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
