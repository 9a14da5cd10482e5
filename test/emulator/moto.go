// Package emulator runs ec2patch without AWS: moto (with its Step Functions
// interpreter) behind the project's test proxy, the hub and spoke templates
// deployed into it, and a scenario fleet seeded as EC2 instances. See
// EMULATOR.md in the project's shared notes for what moto does and does not
// do.
package emulator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Environment variables that locate the tools (the Makefile exports them).
const (
	EnvMotoServer   = "EC2PATCH_MOTO_SERVER"
	EnvHostLambdas  = "EC2PATCH_HOST_LAMBDAS"
	defaultMotoPath = ".venv/bin/moto_server"
	defaultHostDir  = "build/host"
)

// ErrNoMoto means moto_server is not installed where the project expects it.
var ErrNoMoto = errors.New("moto_server not found")

// ErrNoHandlers means the handlers are not built for this machine.
var ErrNoHandlers = errors.New("handler binaries not built")

// ModuleRoot finds the directory holding go.mod, from the working directory
// up.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// toolPath is env's value, or rel under the module root.
func toolPath(env, rel string) (string, error) {
	if p := os.Getenv(env); p != "" {
		return p, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, rel), nil
}

// MotoServerPath is where moto_server is: $EC2PATCH_MOTO_SERVER, else the
// project's virtual environment. It returns ErrNoMoto if it is absent.
func MotoServerPath() (string, error) {
	p, err := toolPath(EnvMotoServer, defaultMotoPath)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w at %s (run `make tools`, or set %s)", ErrNoMoto, p, EnvMotoServer)
	}
	return p, nil
}

// HandlersDir is where the handlers built for this machine are:
// $EC2PATCH_HOST_LAMBDAS, else build/host under the module root.
func HandlersDir() (string, error) { return toolPath(EnvHostLambdas, defaultHostDir) }

// FreePort returns a loopback port that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return port, ln.Close()
}

// Moto is a running moto_server.
type Moto struct {
	URL  string
	cmd  *exec.Cmd
	logs *lockedBuffer
	done chan struct{}
}

// StartMoto starts moto_server on a free loopback port. integrationPort is
// where its Step Functions interpreter sends its own AWS calls (MOTO_PORT):
// the test proxy's port.
func StartMoto(ctx context.Context, bin string, integrationPort int) (*Moto, error) {
	port, err := FreePort()
	if err != nil {
		return nil, fmt.Errorf("moto: %w", err)
	}
	m := &Moto{URL: fmt.Sprintf("http://127.0.0.1:%d", port), logs: &lockedBuffer{}, done: make(chan struct{})}
	m.cmd = exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	m.cmd.Env = append(motoEnv(), "MOTO_PORT="+strconv.Itoa(integrationPort))
	m.cmd.Stdout, m.cmd.Stderr = m.logs, m.logs
	m.cmd.SysProcAttr = childAttr()
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("moto: start %s: %w", bin, err)
	}
	go func() {
		_ = m.cmd.Wait()
		close(m.done)
	}()
	if err := m.waitReady(ctx); err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

// motoEnv is the environment without AWS settings that would change moto's
// behaviour (MOTO_ACCOUNT_ID breaks cross-account roles).
func motoEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "MOTO_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (m *Moto) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.URL+"/moto-api/", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		select {
		case <-m.done:
			return fmt.Errorf("moto exited before it was ready:\n%s", m.Logs())
		case <-ctx.Done():
			return fmt.Errorf("moto not ready at %s: %w\n%s", m.URL, ctx.Err(), m.Logs())
		case <-tick.C:
		}
	}
}

// Reset wipes moto's data (not its configuration).
func (m *Moto) Reset(ctx context.Context) error { return m.post(ctx, "/moto-api/reset", "") }

// SetConfig posts moto's configuration, e.g.
// {"stepfunctions":{"execute_state_machine":true}}.
func (m *Moto) SetConfig(ctx context.Context, cfg string) error {
	return m.post(ctx, "/moto-api/config", cfg)
}

func (m *Moto) post(ctx context.Context, path, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.URL+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("moto %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("moto %s: status %d", path, resp.StatusCode)
	}
	return nil
}

// Logs is what moto wrote.
func (m *Moto) Logs() string { return m.logs.String() }

// Stop ends moto's process group.
func (m *Moto) Stop() {
	if m.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.done
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
