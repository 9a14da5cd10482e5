package emulator

import (
	"context"
	"errors"
	"os"
	"testing"
)

// NewForTest is New for a test: it skips the test when moto is not
// installed or the handlers are not built (failing instead when CI is
// "true"), fails it on any other
// error, prints the handlers' and moto's output if the test fails, and
// closes the harness when the test ends.
func NewForTest(t testing.TB, ctx context.Context, opts Options) *Harness {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	h, err := New(ctx, opts)
	if errors.Is(err, ErrNoMoto) || errors.Is(err, ErrNoHandlers) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("emulator: %v", err)
		}
		t.Skipf("emulator: %v", err)
	}
	if err != nil {
		t.Fatalf("emulator: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("handler output:\n%s", h.Proxy.Logs())
			t.Logf("moto output (last 8 KiB):\n%s", tail(h.Moto.Logs(), 8<<10))
		}
		h.Close()
	})
	return h
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
