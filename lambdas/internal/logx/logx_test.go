package logx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ec2patch/ec2patch/internal/emf"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
)

func TestEveryLineCarriesTheScope(t *testing.T) {
	var buf bytes.Buffer
	l := For(context.Background(), New(&buf), Scope{RunID: "r", WaveID: "w", Account: "222222222222", Region: "us-east-1",
		CommandID: Commands([]string{"cmd-1", "cmd-2"})})
	Failed(l, &fault.Throttled{Message: "slow down"})
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not a JSON line: %s", buf.Bytes())
	}
	want := map[string]string{"runId": "r", "waveId": "w", "account": "222222222222", "region": "us-east-1",
		"commandId": "cmd-1,cmd-2", "errorType": "Throttled", "errorMessage": "slow down"}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %s", k, line[k], v)
		}
	}
}

// A run-level line has no account nor command, but still has their keys,
// so a Logs Insights query over the five fields never misses a line.
func TestEveryLineHasAllFiveKeysEvenWhenEmpty(t *testing.T) {
	var buf bytes.Buffer
	l := For(context.Background(), New(&buf), Scope{RunID: "r"})
	l.Info("one")
	l.With("extra", 1).Warn("two")
	Failed(l, &fault.Transient{Message: "503"})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	for _, raw := range lines {
		var line map[string]any
		if err := json.Unmarshal([]byte(raw), &line); err != nil {
			t.Fatalf("not a JSON line: %s", raw)
		}
		for _, k := range Keys() {
			if _, ok := line[k]; !ok {
				t.Errorf("line %s has no %q", raw, k)
			}
		}
		if line["runId"] != "r" || line["commandId"] != "" {
			t.Errorf("line %s: runId %v commandId %v, want r and empty", raw, line["runId"], line["commandId"])
		}
	}
}

type failingMetrics struct{}

func (failingMetrics) Put(emf.Dimensions, []string, ...emf.Metric) error {
	return errors.New("disk full")
}

func TestEmitLogsAFailureAndGoesOn(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf)
	Emit(l, failingMetrics{}, emf.Dimensions{"RunId": "r"}, nil, emf.Metric{Name: "X", Value: 1})
	if !strings.Contains(buf.String(), "disk full") {
		t.Errorf("log %q does not carry the metric error", buf.String())
	}
	var out bytes.Buffer
	Emit(l, emf.New(&out, "ec2patch-test", nil), emf.Dimensions{"RunId": "r"}, nil, emf.Metric{Name: "X", Value: 2, Unit: emf.Count})
	if err := emf.Validate(bytes.TrimSpace(out.Bytes())); err != nil {
		t.Errorf("emitted line %s: %v", out.String(), err)
	}
	Emit(l, nil, nil, nil, emf.Metric{Name: "X"}) // no writer, no panic
}
