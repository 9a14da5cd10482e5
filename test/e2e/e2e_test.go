// Package e2e runs ec2patch end to end on the emulator: the synthesized
// orchestrator executed by moto's Step Functions interpreter, every Task
// served by the real handler binaries through the test proxy, against the
// demo fleet.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/test/emulator"
	"github.com/ec2patch/ec2patch/test/fleet"
	"github.com/ec2patch/ec2patch/test/proxy"
)

const (
	fleetFile = "../fleets/demo.json"
	planFile  = "../fleets/demo-plan.json"
)

// TestEmulator runs every scenario as a subtest against one harness: the
// setup (synth, deploy, seed) is the slow part. Each run has its own runId.
func TestEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("emulator runs take minutes")
	}
	f, err := fleet.Load(fleetFile)
	if err != nil {
		t.Fatal(err)
	}
	// Two hub alarms for the alarm gates: one quiet, one firing.
	f.Alarms = map[string]string{alarmQuiet: fleet.AlarmOK, alarmFiring: fleet.AlarmFiring}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	h := emulator.NewForTest(t, ctx, emulator.Options{Fleet: f})

	t.Run("bad run input fails at once and touches no spoke", func(t *testing.T) {
		cases := []struct{ name, input, field string }{
			{"eleven-digit account", `{"pollIntervalSeconds": 1, "waves": [{"waveId": "w1", "accounts": ["22222222222"], "regions": ["us-east-1"]}]}`, "accounts[0]"},
			{"unknown field", `{"pollIntervalSeconds": 1, "waveIdd": "wave2"}`, "waveIdd"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				res, err := h.Run(ctx, tc.input, emulator.UniqueName("bad"))
				if err != nil {
					t.Fatal(err)
				}
				if res.Status != "FAILED" || res.Error != contract.ErrInvalidRunInput {
					t.Errorf("status %s error %q, want FAILED with %s", res.Status, res.Error, contract.ErrInvalidRunInput)
				}
				if !strings.Contains(res.Cause, tc.field) {
					t.Errorf("cause %q does not name the field %s", res.Cause, tc.field)
				}
				invoked := false
				for _, c := range res.Calls {
					invoked = invoked || c.Action == "Invoke"
					if c.Action == "AssumeRole" || c.TargetAccount() != h.Params.Account {
						t.Errorf("bad input reached a spoke: %s:%s in %s", c.Service, c.Action, c.TargetAccount())
					}
				}
				if !invoked {
					t.Error("no Invoke was recorded: the recorder saw nothing, so the check above proves nothing")
				}
			})
		}
	})

	var installRun *emulator.Result
	t.Run("default fleet reports the expected counts", func(t *testing.T) {
		runID := "e2e-install-" + time.Now().UTC().Format("150405")
		input := planInput(t, map[string]any{"runId": runID})
		res := mustRun(t, ctx, h, input, runID)
		installRun = res
		checkAgainstFleet(t, h, res, input)
		checkRoleMissingNeverAssumed(t, h, res)
		// abortOnIssues is false: wave2 fails and wave3 still runs.
		if res.Report.Status != contract.StatusFailed || commandsTo(res.Calls, "444444444444") == 0 {
			t.Errorf("run %s with %d commands to wave3's account, want FAILED and wave3 patched", res.Report.Status, commandsTo(res.Calls, "444444444444"))
		}
		for _, c := range sendCommands(res.Calls) {
			if op := c.Param("Parameters", "Operation"); !slices.Equal(op, []string{contract.OperationInstall}) {
				t.Errorf("SendCommand in %s/%s had Operation %v, want Install", c.Account, c.Region, op)
			}
		}
	})

	t.Run("instances outside the tag filters are never sent a command nor reported", func(t *testing.T) {
		if installRun == nil {
			t.Skip("the default run did not finish")
		}
		reported := map[string]bool{}
		forEachInstance(installRun.Report, func(_ contract.TargetResult, in contract.InstanceResult) { reported[in.InstanceID] = true })
		sent := map[string]bool{}
		for _, c := range sendCommands(installRun.Calls) {
			for _, id := range c.InstanceIDs {
				sent[id] = true
			}
		}
		outside := 0
		for _, in := range h.Instances {
			if fleet.Matches(in.Group.Tags, map[string]string{"PatchGroup": "default"}) {
				continue
			}
			outside++
			if reported[in.ID] || sent[in.ID] {
				t.Errorf("instance %s (tags %v) was reported (%v) or sent a command (%v)", in.ID, in.Group.Tags, reported[in.ID], sent[in.ID])
			}
		}
		if outside == 0 || len(sent) == 0 {
			t.Fatalf("%d instances outside the filters, %d sent a command: the check proves nothing", outside, len(sent))
		}
	})

	t.Run("the configured plan aborts after its first failed wave", func(t *testing.T) {
		runID := "e2e-plan-" + time.Now().UTC().Format("150405")
		input := fmt.Sprintf(`{"runId": %q, "pollIntervalSeconds": 1}`, runID)
		res := mustRun(t, ctx, h, input, runID)
		checkAgainstFleet(t, h, res, input)
		if res.Report.Status != contract.StatusAborted {
			t.Errorf("run status %s, want ABORTED (dev aborts on issues and wave2 fails)", res.Report.Status)
		}
		for _, c := range res.Calls {
			if c.TargetAccount() == "444444444444" {
				t.Errorf("the aborted run reached wave3's account: %s:%s", c.Service, c.Action)
			}
		}
	})

	t.Run("the orchestrator's history does not grow with the targets", func(t *testing.T) {
		wave := func(runID, accounts, regions string) string {
			return fmt.Sprintf(`{"runId": %q, "pollIntervalSeconds": 1, "abortOnIssues": false, "waves": [{"waveId": "w",
			  "accounts": %s, "regions": %s, "tagFilters": {"PatchGroup": "default"}}]}`, runID, accounts, regions)
		}
		stamp := time.Now().UTC().Format("150405")
		one := mustRun(t, ctx, h, wave("e2e-one-"+stamp, `["222222222222"]`, `["us-east-1"]`), "e2e-one-"+stamp)
		four := mustRun(t, ctx, h, wave("e2e-four-"+stamp, `["333333333333", "444444444444"]`, `["us-east-1", "us-west-2"]`), "e2e-four-"+stamp)
		if len(one.History) != len(four.History) {
			t.Errorf("history has %d events for 1 target and %d for 4, want the same", len(one.History), len(four.History))
		}
	})

	// One wave over one account in two regions, for the completion paths.
	completionInput := func(runID string) string {
		return fmt.Sprintf(`{"runId": %q, "pollIntervalSeconds": 1, "abortOnIssues": false, "waves": [{"waveId": "w",
		  "accounts": ["222222222222"], "regions": ["us-east-1", "us-west-2"], "tagFilters": {"PatchGroup": "default"}}]}`, runID)
	}

	t.Run("no status event arrives: the reconciler completes the targets", func(t *testing.T) {
		scenario := h.Proxy.Scenario()
		lossy := scenario
		lossy.DropEvents = true
		h.Proxy.SetScenario(lossy)
		t.Cleanup(func() { h.Proxy.SetScenario(scenario) })

		before := h.Proxy.EventStats()
		runID := "e2e-noevents-" + time.Now().UTC().Format("150405")
		input := completionInput(runID)
		res := mustRun(t, ctx, h, input, runID)
		checkAgainstFleet(t, h, res, input)
		after := h.Proxy.EventStats()
		if after.Dropped == before.Dropped || after.Delivered != before.Delivered {
			t.Errorf("events dropped %d -> %d, delivered %d -> %d: want only drops", before.Dropped, after.Dropped, before.Delivered, after.Delivered)
		}
		if n := h.Invocations(ctx, res.Calls, contract.CommandStatusEvents.Dir); n != 0 {
			t.Errorf("CommandStatusEvents ran %d times, want 0 with every event dropped", n)
		}
		if n := h.Invocations(ctx, res.Calls, contract.PollSsmCommand.Dir); n == 0 {
			t.Error("the reconciler never ran, yet the targets completed: the check proves nothing")
		}
	})

	t.Run("events arrive: the targets complete without waiting for a reconcile", func(t *testing.T) {
		scenario := h.Proxy.Scenario()
		slow := scenario
		slow.ReconcileEvery = 60 * time.Second
		h.Proxy.SetScenario(slow)
		t.Cleanup(func() { h.Proxy.SetScenario(scenario) })

		runID := "e2e-events-" + time.Now().UTC().Format("150405")
		input := completionInput(runID)
		res := mustRun(t, ctx, h, input, runID)
		checkAgainstFleet(t, h, res, input)
		if n := h.Invocations(ctx, res.Calls, contract.PollSsmCommand.Dir); n != 0 {
			t.Errorf("the reconciler ran %d times during the run, want 0: the events alone complete the targets", n)
		}
		if n, sent := h.Invocations(ctx, res.Calls, contract.CommandStatusEvents.Dir), len(sendCommands(res.Calls)); n < sent || sent == 0 {
			t.Errorf("CommandStatusEvents ran %d times for %d commands, want one event per command", n, sent)
		}
		for _, c := range res.Calls {
			if c.Service == "ssm" && c.Action == "ListCommands" {
				t.Errorf("ListCommands in %s/%s: nothing should poll when events arrive", c.Account, c.Region)
			}
		}
	})

	t.Run("a throttled SendCommand is retried and the target still patches", func(t *testing.T) {
		account := "222222222222"
		throttle := proxy.Throttle("ssm", "SendCommand", 1)
		throttle.Account = account
		scenario := h.Proxy.Scenario()
		h.Proxy.SetScenario(withFaults(scenario, throttle))
		t.Cleanup(func() { h.Proxy.SetScenario(scenario) })

		runID := "e2e-throttle-" + time.Now().UTC().Format("150405")
		input := fmt.Sprintf(`{"runId": %q, "pollIntervalSeconds": 1, "waves": [{"waveId": "canary", "accounts": [%q],
		  "regions": ["us-east-1"], "tagFilters": {"PatchGroup": "default"}, "failureThresholdPercent": 0}]}`, runID, account)
		res := mustRun(t, ctx, h, input, runID)
		checkAgainstFleet(t, h, res, input)
		if throttle.Hits() != 1 {
			t.Errorf("the fault throttled %d calls, want 1", throttle.Hits())
		}
		throttled, sent := 0, len(sendCommands(res.Calls))
		for _, c := range res.Calls {
			if c.Action == "SendCommand" && strings.HasPrefix(c.Refused, "throttled") {
				throttled++
			}
		}
		if throttled != 1 || sent != 1 {
			t.Errorf("%d throttled and %d accepted SendCommand calls, want 1 and 1 (a retry never sends twice)", throttled, sent)
		}
	})

	gateTests(t, ctx, h)

	t.Run("dry run only scans", func(t *testing.T) {
		runID := "e2e-dryrun-" + time.Now().UTC().Format("150405")
		input := planInput(t, map[string]any{"runId": runID, "dryRun": true})
		res := mustRun(t, ctx, h, input, runID)
		checkAgainstFleet(t, h, res, input)
		sends := sendCommands(res.Calls)
		if len(sends) == 0 {
			t.Fatal("no SendCommand was recorded")
		}
		for _, c := range sends {
			if op := c.Param("Parameters", "Operation"); !slices.Equal(op, []string{contract.OperationScan}) {
				t.Errorf("SendCommand in %s/%s had Operation %v, want Scan", c.Account, c.Region, op)
			}
		}
		if res.Report != nil {
			if res.Report.Totals.Patched != 0 || res.Report.Totals.Scanned == 0 {
				t.Errorf("dry run totals %+v, want nothing patched and some scanned", res.Report.Totals)
			}
			forEachInstance(res.Report, func(_ contract.TargetResult, in contract.InstanceResult) {
				if in.Status == contract.InstancePatched {
					t.Errorf("dry run patched %s", in.InstanceID)
				}
			})
		}
	})
}

// planInput is the demo plan with fields overridden.
func planInput(t *testing.T, override map[string]any) string {
	t.Helper()
	data, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	var in map[string]any
	if err := json.Unmarshal(data, &in); err != nil {
		t.Fatal(err)
	}
	for k, v := range override {
		in[k] = v
	}
	out, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func mustRun(t *testing.T, ctx context.Context, h *emulator.Harness, input, name string) *emulator.Result {
	t.Helper()
	res, err := h.Run(ctx, input, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s in %d history events, %d calls recorded", name, res.Status, len(res.History), len(res.Calls))
	if res.Status != "SUCCEEDED" {
		t.Fatalf("execution %s: %s %s: %s", name, res.Status, res.Error, res.Cause)
	}
	if res.Report == nil {
		t.Fatalf("execution %s wrote no report (output %s)", name, res.Output)
	}
	return res
}

// checkAgainstFleet compares the report with fleet.Expected for the same
// normalized run, target by target, and every instance with its group.
func checkAgainstFleet(t *testing.T, h *emulator.Harness, res *emulator.Result, input string) {
	t.Helper()
	run, err := contract.Normalize([]byte(input), h.Params.RunDefaults(), h.Params.Waves, res.Name, "")
	if err != nil {
		t.Fatal(err)
	}
	exp := fleet.Expected(h.Fleet, run)
	rep := res.Report
	if rep.Status != exp.Status {
		t.Errorf("run status %s, want %s", rep.Status, exp.Status)
	}
	if rep.Totals != exp.Totals {
		t.Errorf("totals %+v, want %+v", rep.Totals, exp.Totals)
	}
	waves := map[string]contract.WaveReport{}
	for _, w := range rep.Waves {
		waves[w.WaveID] = w
	}
	for _, we := range exp.Waves {
		w, ok := waves[we.WaveID]
		if !ok {
			t.Errorf("wave %s missing from the report", we.WaveID)
			continue
		}
		if w.Status != we.Status {
			t.Errorf("wave %s: status %s (%s), want %s", we.WaveID, w.Status, w.Reason, we.Status)
		}
		targets := map[string]contract.TargetResult{}
		for _, tr := range w.Targets {
			targets[tr.Account+"/"+tr.Region] = tr
		}
		for _, te := range we.Targets {
			key := te.Account + "/" + te.Region
			tr, ok := targets[key]
			if !ok {
				t.Errorf("wave %s: target %s missing from the report", we.WaveID, key)
				continue
			}
			if tr.Status != te.Status || tr.Counts != te.Counts {
				t.Errorf("wave %s target %s: %s %+v (%s), want %s %+v", we.WaveID, key, tr.Status, tr.Counts, tr.Reason, te.Status, te.Counts)
			}
			if !strings.Contains(tr.Reason, te.ReasonContains) {
				t.Errorf("wave %s target %s: reason %q does not contain %q", we.WaveID, key, tr.Reason, te.ReasonContains)
			}
		}
		if len(w.Targets) != len(we.Targets) {
			t.Errorf("wave %s: %d targets reported, want %d", we.WaveID, len(w.Targets), len(we.Targets))
		}
	}

	// Every reported instance has its group's status; an instance outside
	// the tag filters is never reported and never sent a command.
	groups := map[string]emulator.Instance{}
	for _, in := range h.Instances {
		groups[in.ID] = in
	}
	filters := map[string]map[string]string{}
	for _, w := range run.Waves {
		for _, ref := range w.Targets() {
			filters[ref.Account+"/"+ref.Region] = w.TagFilters
		}
	}
	forEachInstance(rep, func(tr contract.TargetResult, in contract.InstanceResult) {
		g, ok := groups[in.InstanceID]
		if !ok {
			t.Errorf("report lists unknown instance %s", in.InstanceID)
			return
		}
		if !fleet.Matches(g.Group.Tags, filters[tr.Account+"/"+tr.Region]) {
			t.Errorf("report lists %s, which is outside the tag filters", in.InstanceID)
		}
		if want := fleet.InstanceStatus(g.Group, run.DryRun); in.Status != want {
			t.Errorf("instance %s (%s/%s %v): %s, want %s", in.InstanceID, g.Group.State, g.Group.Outcome, g.Group.Tags, in.Status, want)
		}
	})
	for _, c := range sendCommands(res.Calls) {
		for _, id := range c.InstanceIDs {
			g := groups[id]
			if !fleet.Matches(g.Group.Tags, filters[c.Account+"/"+c.Region]) {
				t.Errorf("SendCommand in %s/%s named %s, which is outside the tag filters", c.Account, c.Region, id)
			}
			if g.Group.State != fleet.StateRunning || g.Group.Outcome == fleet.OutcomeUnmanaged {
				t.Errorf("SendCommand named %s, which is %s/%s", id, g.Group.State, g.Group.Outcome)
			}
		}
	}
}

// checkRoleMissingNeverAssumed: the role-missing account got AssumeRole
// attempts (refused, with the configured ExternalId) and nothing else.
func checkRoleMissingNeverAssumed(t *testing.T, h *emulator.Harness, res *emulator.Result) {
	t.Helper()
	for _, a := range h.Fleet.Accounts {
		if !a.RoleMissing {
			continue
		}
		attempts := 0
		for _, c := range res.Calls {
			if c.TargetAccount() != a.ID {
				continue
			}
			if c.Action != "AssumeRole" || c.Refused == "" {
				t.Errorf("call %s:%s reached role-missing account %s", c.Service, c.Action, a.ID)
			}
			attempts++
		}
		if attempts == 0 {
			t.Errorf("role-missing account %s was never tried", a.ID)
		}
	}
	for _, c := range res.Calls {
		if c.Action == "AssumeRole" && c.ExternalID != h.Params.Hub.CrossAccountExternalID {
			t.Errorf("AssumeRole into %s with ExternalId %q, want the configured one", c.RoleARN, c.ExternalID)
		}
	}
}

func withFaults(s proxy.Scenario, faults ...*proxy.Fault) proxy.Scenario {
	s.Faults = append(slices.Clone(s.Faults), faults...)
	return s
}

func sendCommands(calls []proxy.Call) []proxy.Call {
	var out []proxy.Call
	for _, c := range calls {
		if c.Service == "ssm" && c.Action == "SendCommand" && c.Refused == "" && c.Status == 200 {
			out = append(out, c)
		}
	}
	return out
}

func forEachInstance(r *contract.Report, fn func(contract.TargetResult, contract.InstanceResult)) {
	for _, w := range r.Waves {
		for _, tr := range w.Targets {
			for _, in := range tr.Instances {
				fn(tr, in)
			}
		}
	}
}
