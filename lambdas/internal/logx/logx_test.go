package logx

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
)

func TestEveryLineCarriesTheScope(t *testing.T) {
	var buf bytes.Buffer
	l := For(context.Background(), New(&buf), Scope{RunID: "r", WaveID: "w", Account: "222222222222", Region: "us-east-1"})
	Failed(l, &fault.Throttled{Message: "slow down"})
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not a JSON line: %s", buf.Bytes())
	}
	want := map[string]string{"runId": "r", "waveId": "w", "account": "222222222222", "region": "us-east-1",
		"errorType": "Throttled", "errorMessage": "slow down"}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %s", k, line[k], v)
		}
	}
}
