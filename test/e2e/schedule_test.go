package e2e

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ec2patch/ec2patch/constructs/hub"
	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/test/emulator"
	"github.com/ec2patch/ec2patch/test/fleet"
)

// scheduledInput is the Input of a campaign's synthesized schedule, as
// EventBridge Scheduler delivers it: the placeholder replaced with the
// firing's scheduled time. moto's CloudFormation skips the schedule itself,
// so the test plays Scheduler with the deployed input.
func scheduledInput(t *testing.T, h *emulator.Harness, campaign string, at time.Time) string {
	t.Helper()
	var tmpl struct {
		Resources map[string]struct {
			Type       string
			Properties struct {
				Name   string
				Target struct{ Input string }
			}
		}
	}
	if err := json.Unmarshal(h.Templates.Hub, &tmpl); err != nil {
		t.Fatal(err)
	}
	name := hub.ScheduleName(h.Params.Hub.NamePrefix, campaign)
	for _, r := range tmpl.Resources {
		if r.Type == "AWS::Scheduler::Schedule" && r.Properties.Name == name {
			in := r.Properties.Target.Input
			if !strings.Contains(in, contract.SchedulerTimePlaceholder) {
				t.Fatalf("schedule %s input has no %s: %s", name, contract.SchedulerTimePlaceholder, in)
			}
			return strings.ReplaceAll(in, contract.SchedulerTimePlaceholder, at.UTC().Format(time.RFC3339))
		}
	}
	t.Fatalf("the hub template has no schedule %s", name)
	return ""
}

// TestScheduledCampaign fires the dev "monthly" campaign (Patch Tuesday + 2
// at 03:00 America/New_York, deployed as a weekly Thursday cron) twice: on
// a Thursday that is not its run day, which must end in NotPatchDay without
// one spoke call, and on its run day, 10 December 2026, which must run the
// campaign's waves under the run ID derived from the campaign and the
// scheduled local time.
func TestScheduledCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("emulator runs take minutes")
	}
	f, err := fleet.Load(fleetFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	h := emulator.NewForTest(t, ctx, emulator.Options{Fleet: f})
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a firing off the run day ends in NotPatchDay and touches no spoke", func(t *testing.T) {
		input := scheduledInput(t, h, "monthly", time.Date(2026, 12, 3, 3, 0, 0, 0, newYork))
		res, err := h.Run(ctx, input, emulator.UniqueName("sched-off"))
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != "SUCCEEDED" {
			t.Fatalf("status %s %s: %s", res.Status, res.Error, res.Cause)
		}
		var out contract.PrepareResult
		if err := json.Unmarshal([]byte(res.Output), &out); err != nil {
			t.Fatalf("output %s: %v", res.Output, err)
		}
		want := "2026-12-03 is not Patch Tuesday + 2 (next: 2026-12-10 03:00 America/New_York)"
		if out.NotPatchDay != want || out.Run.RunID != "monthly-20261203T0300" {
			t.Errorf("output %s, want notPatchDay %q", res.Output, want)
		}
		var entered []string
		for _, e := range res.History {
			if d := e.StateEnteredEventDetails; d != nil && d.Name != nil {
				entered = append(entered, *d.Name)
			}
		}
		if !slices.Equal(entered, []string{contract.StatePrepareRun, contract.StateIsPatchDay, contract.StateNotPatchDay}) {
			t.Errorf("states entered %v", entered)
		}
		invokes := 0
		for _, c := range res.Calls {
			if c.Action == "Invoke" {
				invokes++
			}
			// No spoke, and no manifest written to S3: PrepareRun returned
			// before any write.
			if c.Action == "AssumeRole" || c.TargetAccount() != h.Params.Account || slices.Contains([]string{"s3", "ssm", "ec2"}, c.Service) {
				t.Errorf("a skipped firing made a call: %s:%s in %s", c.Service, c.Action, c.TargetAccount())
			}
		}
		if invokes != 1 {
			t.Errorf("%d Invoke calls, want 1 (PrepareRun): without it the check above proves nothing", invokes)
		}
		if res.Report != nil {
			t.Errorf("a skipped firing wrote a report: %+v", res.Report)
		}
	})

	t.Run("the run-day firing runs the campaign's waves under the derived run ID", func(t *testing.T) {
		input := scheduledInput(t, h, "monthly", time.Date(2026, 12, 10, 3, 0, 0, 0, newYork))
		res := mustRun(t, ctx, h, input, emulator.UniqueName("sched-on"))
		if res.Report.RunID != "monthly-20261210T0300" {
			t.Errorf("run ID %s, want monthly-20261210T0300", res.Report.RunID)
		}
		var waves, planned []string
		for _, w := range res.Report.Waves {
			waves = append(waves, w.WaveID)
		}
		for _, w := range h.Params.Waves {
			planned = append(planned, w.WaveID)
		}
		if !slices.Equal(waves, planned) {
			t.Errorf("report waves %v, want the campaign's (the whole plan) %v", waves, planned)
		}
		if commandsTo(res.Calls, "222222222222") == 0 {
			t.Error("no command reached wave1-critical's account")
		}
		for _, c := range sendCommands(res.Calls) {
			if op := c.Param("Parameters", "Operation"); !slices.Equal(op, []string{contract.OperationInstall}) {
				t.Errorf("SendCommand in %s/%s had Operation %v, want the campaign's Install", c.Account, c.Region, op)
			}
		}
	})
}
