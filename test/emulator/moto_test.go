package emulator_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/ec2patch/ec2patch/test/emulator"
)

func motoOrSkip(t *testing.T) string {
	t.Helper()
	bin, err := emulator.MotoServerPath()
	if errors.Is(err, emulator.ErrNoMoto) {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestMotoStartsAnswersAndStops(t *testing.T) {
	bin := motoOrSkip(t)
	ctx := context.Background()
	port, err := emulator.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	m, err := emulator.StartMoto(ctx, bin, port)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			m.Stop()
		}
	})
	if !strings.HasPrefix(m.URL, "http://127.0.0.1:") {
		t.Errorf("moto URL %s is not on loopback", m.URL)
	}
	if err := m.SetConfig(ctx, `{"stepfunctions":{"execute_state_machine":true}}`); err != nil {
		t.Errorf("SetConfig: %v", err)
	}
	if err := m.Reset(ctx); err != nil {
		t.Errorf("Reset: %v", err)
	}
	m.Stop()
	stopped = true
	if _, err := http.Get(m.URL + "/moto-api/"); err == nil {
		t.Errorf("moto still answers after Stop")
	}
}
