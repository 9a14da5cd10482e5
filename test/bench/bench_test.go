package bench_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/test/bench"
	"github.com/ec2patch/ec2patch/test/emulator"
)

func TestFleetHasTheAccountRegionsAsked(t *testing.T) {
	for _, tc := range []struct{ n, accounts, regions int }{{1, 1, 1}, {10, 5, 2}, {200, 100, 2}} {
		f := bench.Fleet(tc.n, 2)
		if err := f.Validate(); err != nil {
			t.Fatal(err)
		}
		if len(f.Accounts) != tc.accounts || len(f.Accounts[0].Regions) != tc.regions {
			t.Errorf("fleet of %d: %d accounts x %d regions, want %d x %d", tc.n, len(f.Accounts), len(f.Accounts[0].Regions), tc.accounts, tc.regions)
		}
	}
}

func TestItemProcessorIsThePatchTarget(t *testing.T) {
	def, err := os.ReadFile("../../constructs/patchwave/testdata/orchestrator.asl.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := bench.ItemProcessor(string(def))
	if err != nil {
		t.Fatal(err)
	}
	var sm struct {
		StartAt string
		States  map[string]any
	}
	if err := json.Unmarshal([]byte(got), &sm); err != nil {
		t.Fatal(err)
	}
	if sm.States[sm.StartAt] == nil || sm.States[contract.SendSsmCommand.Name] == nil {
		t.Errorf("item processor starts at %q and has states %v: want the Map that sends commands", sm.StartAt, sm.States)
	}
	if _, err := bench.ItemProcessor(`{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}`); err == nil {
		t.Error("a definition without a patching Map gave no error")
	}
}

func TestSeedWaitIsWholeSeconds(t *testing.T) {
	for factor, want := range map[float64]int{1: 15, 15: 1, 60: 1, 5: 3} {
		if got := bench.SeedWaitSeconds(factor); got != want {
			t.Errorf("SeedWaitSeconds(%v) = %d, want %d", factor, got, want)
		}
	}
	if a, b := bench.SeedEstimate(40, 10, 15), bench.SeedEstimate(41, 10, 15); b != 2*a {
		t.Errorf("estimate for 41 targets %v, want twice that for 40 (%v): the inline Map runs 40 at once", b, a)
	}
}

// TestBenchSmoke runs both designs once on a tiny fleet.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the emulator")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg := bench.Config{Sizes: []int{2}, Minutes: []int{1}, Factor: 30, Instances: 1, Logf: t.Logf}
	h := emulator.NewForTest(t, ctx, emulator.Options{Fleet: bench.Fleet(2, 1), SimulatedSecondsPerSecond: cfg.Factor})
	results, err := (&bench.Runner{H: h, Cfg: cfg}).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 || results[0].Design != bench.DesignEC2Patch || results[1].Design != bench.DesignSeed {
		t.Fatalf("results %+v, want ec2patch then seed", results)
	}
	for _, r := range results {
		if r.Status != contract.StatusSucceeded {
			t.Errorf("%s ended %s", r.Design, r.Status)
		}
		if r.StateTransitions == 0 || r.MaxHistoryEvents == 0 || r.LambdaInvocations == 0 || r.APICalls["ssm"] == 0 {
			t.Errorf("%s counted nothing: %+v", r.Design, r)
		}
	}
	if results[0].Executions != 3 || results[1].Executions != 1 || results[0].Ratios == nil {
		t.Errorf("executions %d and %d, ratios %v: want 1 + 2 children, 1, and ratios", results[0].Executions, results[1].Executions, results[0].Ratios)
	}
	var table strings.Builder
	if err := bench.PrintTable(&table, results); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "ec2patch") || !strings.Contains(table.String(), "seed") {
		t.Errorf("table:\n%s", table.String())
	}
}
