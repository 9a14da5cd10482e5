package proxy

import "syscall"

// childAttr puts a child in its own process group (so stopping it stops
// everything it started) and kills it if this process dies first, so an
// interrupted test leaves nothing behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
