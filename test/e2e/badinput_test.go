package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/test/emulator"
	"github.com/ec2patch/ec2patch/test/fleet"
)

// badInputs are run inputs the deployed orchestrator must refuse before any
// spoke is touched, each with the field (and value) its cause must name.
// They target the demo fleet's real accounts, so a wrongly accepted input
// would reach a spoke and show in the recorded calls.
func badInputs() []struct{ name, input, field, value string } {
	wave := func(extra string) string {
		return `{"pollIntervalSeconds": 1, "waves": [{"waveId": "w", "accounts": ["222222222222"], "regions": ["us-east-1"]` + extra + `}]}`
	}
	many := make([]string, 10000)
	for i := range many {
		many[i] = fmt.Sprintf(`"%012d"`, 200000000000+i)
	}
	return []struct{ name, input, field, value string }{
		{"wrong type", `{"pollIntervalSeconds": "1", "waveId": "wave2"}`, "pollIntervalSeconds", "JSON string"},
		{"unknown nested field", wave(`, "maxConcurency": 3`), "waves[0].maxConcurency", "unknown field"},
		{"field name in the wrong case", `{"pollIntervalSeconds": 1, "DryRun": false, "waveId": "wave2"}`, "DryRun", "dryRun"},
		{"11-digit account", `{"pollIntervalSeconds": 1, "waves": [{"waveId": "w", "accounts": ["22222222222"], "regions": ["us-east-1"]}]}`, "waves[0].accounts[0]", "22222222222"},
		{"13-digit account", `{"pollIntervalSeconds": 1, "waveId": "w", "accounts": ["2222222222222"], "regions": ["us-east-1"]}`, "accounts[0]", "2222222222222"},
		{"unknown region", `{"pollIntervalSeconds": 1, "waveId": "w", "accounts": ["222222222222"], "regions": ["us-east-7"]}`, "regions[0]", "us-east-7"},
		{"150% concurrency", wave(`, "ssmMaxConcurrency": "150%"`), "waves[0].ssmMaxConcurrency", "150%"},
		{"negative wave pause", `{"pollIntervalSeconds": 1, "wavePauseSeconds": -1}`, "wavePauseSeconds", "-1"},
		{"empty waves", `{"pollIntervalSeconds": 1, "waves": []}`, "waves", "at least one wave"},
		{"wave without accounts", `{"pollIntervalSeconds": 1, "waves": [{"waveId": "w", "regions": ["us-east-1"]}]}`, "waves[0].accounts", "at least one account"},
		{"duplicate wave IDs", `{"pollIntervalSeconds": 1, "waves": [{"waveId": "w", "accounts": ["222222222222"], "regions": ["us-east-1"]},
		  {"waveId": "w", "accounts": ["333333333333"], "regions": ["us-east-1"]}]}`, "waves[1].waveId", `\"w\"`},
		{"tag filter with an empty key", wave(`, "tagFilters": {"": "default"}`), "waves[0].tagFilters", "empty tag key"},
		{"too-long tag value", wave(`, "tagFilters": {"PatchGroup": "` + strings.Repeat("d", 300) + `"}`), "waves[0].tagFilters.PatchGroup", "300 bytes"},
		{"wave of 10,000 accounts", `{"pollIntervalSeconds": 1, "waveId": "w", "regions": ["us-east-1"], "accounts": [` + strings.Join(many, ",") + `]}`, "accounts", "10000 accounts"},
		{"Install with dryRun", `{"pollIntervalSeconds": 1, "operation": "Install", "dryRun": true, "waveId": "wave2"}`, "operation", "Install"},
		{"bad runId", `{"pollIntervalSeconds": 1, "runId": "../etc"}`, "runId", "../etc"},
		{"bad rebootOption", `{"pollIntervalSeconds": 1, "rebootOption": "Always"}`, "rebootOption", "Always"},
		{"JSON array", `[{"waveId": "wave2"}]`, "input", "JSON object"},
	}
}

// TestBadInputTouchesNoSpoke starts the deployed orchestrator with every
// bad input at once and checks that each execution fails with
// InvalidRunInput naming the field, and that no call reached a spoke: no
// AssumeRole, nothing in any account but the hub's.
func TestBadInputTouchesNoSpoke(t *testing.T) {
	if testing.Short() {
		t.Skip("emulator runs take minutes")
	}
	f, err := fleet.Load(fleetFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	h := emulator.NewForTest(t, ctx, emulator.Options{Fleet: f})

	cases := badInputs()
	mark := h.Proxy.Mark()
	results := make([]*emulator.Result, len(cases))
	errs := make([]error, len(cases))
	var wg sync.WaitGroup
	for i, tc := range cases {
		wg.Go(func() {
			arn, err := h.Start(ctx, tc.input, emulator.UniqueName(fmt.Sprintf("bad%02d", i)))
			if err != nil {
				errs[i] = err
				return
			}
			results[i], errs[i] = h.Wait(ctx, arn, nil)
		})
	}
	wg.Wait()
	calls := h.Proxy.Calls(mark)

	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := results[i], errs[i]
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != "FAILED" || res.Error != contract.ErrInvalidRunInput {
				t.Fatalf("status %s error %q, want FAILED with %s (cause %.300s)", res.Status, res.Error, contract.ErrInvalidRunInput, res.Cause)
			}
			if !strings.Contains(res.Cause, tc.field) || !strings.Contains(res.Cause, tc.value) {
				t.Errorf("cause does not name %s with %s: %.500s", tc.field, tc.value, res.Cause)
			}
		})
	}

	t.Run("no call reached a spoke", func(t *testing.T) {
		invokes, spoke := 0, 0
		for _, c := range calls {
			if c.Action == "Invoke" {
				invokes++
			}
			if c.Action == "AssumeRole" || c.TargetAccount() != h.Params.Account {
				spoke++
				t.Errorf("bad input reached a spoke: %s:%s in %s", c.Service, c.Action, c.TargetAccount())
			}
		}
		// Each execution invokes PrepareRun (and the failure path may
		// invoke more); without those the recorder saw nothing and the
		// check above proves nothing.
		if invokes < len(cases) {
			t.Errorf("%d Invoke calls recorded for %d executions", invokes, len(cases))
		}
		t.Logf("%d bad inputs: %d calls recorded, %d invokes, %d AssumeRole or spoke calls", len(cases), len(calls), invokes, spoke)
	})
}
