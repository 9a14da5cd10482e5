package fleet_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ec2patch/ec2patch/internal/config"
	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/params"
	"github.com/ec2patch/ec2patch/test/fleet"
)

func TestParseRejectsUnknownFieldNamingIt(t *testing.T) {
	_, err := fleet.Parse([]byte(`{"accounts": [{"id": "222222222222", "regoins": []}]}`))
	if err == nil || !strings.Contains(err.Error(), "regoins") {
		t.Fatalf("Parse() error = %v, want one naming the unknown field regoins", err)
	}
}

func TestParseReportsEveryProblemWithItsField(t *testing.T) {
	doc := `{"accounts": [
	  {"id": "22222222222", "regions": [{"name": "us-nowhere-1", "instances": [
	    {"count": 0, "tags": {"PatchGroup": "default"}, "state": "running", "outcome": "exploded"},
	    {"count": 1, "tags": {"PatchGroup": "default"}, "state": "stopped", "outcome": "success"},
	    {"count": 1, "tags": {}, "state": "paused", "outcome": "success"}]}]}],
	  "approvals": {"wave2": "maybe"}}`
	_, err := fleet.Parse([]byte(doc))
	if err == nil {
		t.Fatal("Parse() error = nil, want validation problems")
	}
	for _, field := range []string{
		"accounts[0].id",
		"accounts[0].regions[0].name",
		"accounts[0].regions[0].instances[0].count",
		"accounts[0].regions[0].instances[0].outcome",
		"accounts[0].regions[0].instances[1].outcome",
		"accounts[0].regions[0].instances[2].tags",
		"accounts[0].regions[0].instances[2].state",
		"approvals.wave2",
	} {
		if !strings.Contains(err.Error(), field+":") {
			t.Errorf("Parse() error does not name %s:\n%v", field, err)
		}
	}
}

func TestDemoFleetLoadsAndCoversEveryCase(t *testing.T) {
	f, err := fleet.Load("../fleets/demo.json")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	regions := map[string]bool{}
	for _, a := range f.Accounts {
		seen["roleMissing"] = seen["roleMissing"] || a.RoleMissing
		for _, r := range a.Regions {
			regions[r.Name] = true
			for _, g := range r.Instances {
				seen[g.State+"/"+g.Outcome] = true
				if !fleet.Matches(g.Tags, map[string]string{"PatchGroup": "default"}) {
					seen["outside filters"] = true
				}
			}
		}
	}
	for _, want := range []string{"roleMissing", "running/success", "running/failed", "running/timeout",
		"running/unmanaged", "stopped/", "outside filters"} {
		if !seen[want] {
			t.Errorf("demo fleet has no %s case", want)
		}
	}
	if len(f.Accounts) < 4 || len(regions) < 2 {
		t.Errorf("demo fleet has %d accounts in %d regions, want at least 4 accounts (3 spokes and a role-missing one) and 2 regions", len(f.Accounts), len(regions))
	}
	if f.Approvals["wave2"] != fleet.ApprovalApprove {
		t.Errorf("approvals not kept: %v", f.Approvals)
	}
}

func TestDemoFleetCoversTheDevPlanAccounts(t *testing.T) {
	f, err := fleet.Load("../fleets/demo.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := config.Load(params.Files, "dev")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range p.SpokeAccounts() {
		if _, ok := f.Account(a); !ok {
			t.Errorf("dev plan account %s is not in the demo fleet", a)
		}
	}
}

func normalize(t *testing.T, input string) contract.Run {
	t.Helper()
	p, err := config.Load(params.Files, "dev")
	if err != nil {
		t.Fatal(err)
	}
	run, err := contract.Normalize([]byte(input), p.RunDefaults(), p.Waves, "test-run", "2026-01-01T00:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func TestExpectedOnTheDemoPlan(t *testing.T) {
	f, err := fleet.Load("../fleets/demo.json")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := os.ReadFile("../fleets/demo-plan.json")
	if err != nil {
		t.Fatal(err)
	}
	exp := fleet.Expected(f, normalize(t, string(plan)))

	type row struct {
		status string
		counts contract.Counts
	}
	want := map[string]row{
		"222222222222/us-east-1": {contract.StatusSucceeded, contract.Counts{Patched: 3, Skipped: 2}},
		"333333333333/us-east-1": {contract.StatusSucceeded, contract.Counts{Patched: 4, Failed: 1}},
		"333333333333/us-west-2": {contract.StatusSucceeded, contract.Counts{Patched: 3, TimedOut: 1, Skipped: 1}},
		"444444444444/us-east-1": {contract.StatusSucceeded, contract.Counts{Patched: 2, Skipped: 1}},
		"444444444444/us-west-2": {contract.StatusSucceeded, contract.Counts{Patched: 3}},
		"555555555555/us-east-1": {contract.StatusFailed, contract.Counts{}},
		"555555555555/us-west-2": {contract.StatusFailed, contract.Counts{}},
	}
	got := map[string]row{}
	for _, w := range exp.Waves {
		for _, tg := range w.Targets {
			got[tg.Account+"/"+tg.Region] = row{tg.Status, tg.Counts}
			if tg.Status == contract.StatusFailed && tg.ReasonContains != fleet.ReasonAccessDenied {
				t.Errorf("%s/%s: failed target without the AccessDenied reason", tg.Account, tg.Region)
			}
		}
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %+v, want %+v", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d targets, want %d", len(got), len(want))
	}
	waveStatus := []string{contract.StatusSucceeded, contract.StatusFailed, contract.StatusFailed}
	for i, w := range exp.Waves {
		if w.Status != waveStatus[i] {
			t.Errorf("wave %s: status %s, want %s", w.WaveID, w.Status, waveStatus[i])
		}
	}
	if exp.Status != contract.StatusFailed {
		t.Errorf("run status %s, want FAILED (abortOnIssues is off in the demo plan)", exp.Status)
	}
	if want := (contract.Counts{Patched: 15, Failed: 1, TimedOut: 1, Skipped: 4}); exp.Totals != want {
		t.Errorf("totals %+v, want %+v", exp.Totals, want)
	}
}

func TestExpectedDryRunScansAndAbortStopsLaterWaves(t *testing.T) {
	f, err := fleet.Load("../fleets/demo.json")
	if err != nil {
		t.Fatal(err)
	}
	// The configured dev plan aborts on issues: wave2 fails, wave3 never starts.
	exp := fleet.Expected(f, normalize(t, `{"dryRun": true}`))
	if exp.Totals.Patched != 0 || exp.Totals.Scanned != 3+7 {
		t.Errorf("dry run totals %+v, want nothing patched and 10 scanned", exp.Totals)
	}
	if got := exp.Waves[2].Status; got != contract.StatusNotStarted {
		t.Errorf("wave3 status %s, want NOT_STARTED after wave2 failed with abortOnIssues", got)
	}
	if exp.Status != contract.StatusAborted {
		t.Errorf("run status %s, want ABORTED", exp.Status)
	}

	// A failing last wave has nothing left to abort: the run is FAILED.
	last := fleet.Expected(f, normalize(t, `{"abortOnIssues": true, "waveId": "wave2", "accounts": ["333333333333"], "regions": ["us-east-1"]}`))
	if last.Status != contract.StatusFailed || last.Waves[0].Status != contract.StatusFailed {
		t.Errorf("one failing wave: run %s wave %s, want FAILED and FAILED", last.Status, last.Waves[0].Status)
	}
}

func TestExpectedGates(t *testing.T) {
	base, err := fleet.Load("../fleets/demo.json")
	if err != nil {
		t.Fatal(err)
	}
	with := func(approvals, alarms map[string]string) *fleet.Fleet {
		f := *base
		f.Approvals, f.Alarms = approvals, alarms
		return &f
	}
	// Three waves, wave2 gated; wave3 has no role-missing account, so only
	// the gates and wave2's failure decide.
	plan := `{"abortOnIssues": %s, "waves": [
	  {"waveId": "wave1", "accounts": ["222222222222"], "regions": ["us-east-1"], "haltAlarms": %s},
	  {"waveId": "wave2", "accounts": ["333333333333"], "regions": ["us-east-1"], "approval": true, "failureThresholdPercent": %s},
	  {"waveId": "wave3", "accounts": ["444444444444"], "regions": ["us-east-1"]}]}`
	ok, rej, ab, fail, ns, succ := contract.StatusSucceeded, contract.StatusRejected, contract.StatusAborted,
		contract.StatusFailed, contract.StatusNotStarted, contract.StatusSucceeded
	cases := []struct {
		name              string
		fleet             *fleet.Fleet
		abort, alarms, th string
		run               string
		waves             []string
		notStarted        []string
	}{
		{"approved", with(map[string]string{"wave2": "approve"}, nil), "true", "[]", "50", succ, []string{ok, ok, ok}, nil},
		{"rejected", with(map[string]string{"wave2": "reject"}, nil), "false", "[]", "50", rej, []string{ok, rej, ns}, []string{"wave2", "wave3"}},
		{"timed out", with(map[string]string{"wave2": "timeout"}, nil), "false", "[]", "50", rej, []string{ok, rej, ns}, []string{"wave2", "wave3"}},
		{"not answered", with(nil, nil), "false", "[]", "50", rej, []string{ok, rej, ns}, []string{"wave2", "wave3"}},
		{"failed, abort", with(map[string]string{"wave2": "approve"}, nil), "true", "[]", "0", ab, []string{ok, fail, ns}, []string{"wave3"}},
		{"failed, go on", with(map[string]string{"wave2": "approve"}, nil), "false", "[]", "0", fail, []string{ok, fail, ok}, nil},
		{"alarm OK", with(map[string]string{"wave2": "approve"}, map[string]string{"fleet-health": "OK"}), "true", `["fleet-health"]`, "50", succ, []string{ok, ok, ok}, nil},
		{"alarm firing", with(map[string]string{"wave2": "approve"}, map[string]string{"fleet-health": "ALARM"}), "false", `["fleet-health"]`, "50", ab, []string{ab, ns, ns}, []string{"wave1", "wave2", "wave3"}},
		{"alarm missing fails closed", with(map[string]string{"wave2": "approve"}, nil), "false", `["nope"]`, "50", ab, []string{ab, ns, ns}, []string{"wave1", "wave2", "wave3"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			exp := fleet.Expected(tc.fleet, normalize(t, fmt.Sprintf(plan, tc.abort, tc.alarms, tc.th)))
			if exp.Status != tc.run {
				t.Errorf("run status %s, want %s", exp.Status, tc.run)
			}
			for i, w := range exp.Waves {
				if w.Status != tc.waves[i] {
					t.Errorf("wave %s: %s, want %s", w.WaveID, w.Status, tc.waves[i])
				}
				if w.Status != ok && w.Status != fail && (len(w.Targets) != 0 || w.Counts != (contract.Counts{})) {
					t.Errorf("wave %s (%s) has targets or counts: %+v", w.WaveID, w.Status, w)
				}
			}
			if got := exp.NotStarted(); !slices.Equal(got, tc.notStarted) {
				t.Errorf("NotStarted() = %v, want %v", got, tc.notStarted)
			}
		})
	}
}

func TestParseRejectsBadAlarmStates(t *testing.T) {
	_, err := fleet.Parse([]byte(`{"accounts": [{"id": "222222222222", "regions": []}], "alarms": {"fleet-health": "RED", " ": "OK"}}`))
	if err == nil || !strings.Contains(err.Error(), "alarms.fleet-health:") || !strings.Contains(err.Error(), `alarms: " "`) {
		t.Fatalf("Parse() error = %v, want the bad state and the blank name named", err)
	}
	f, err := fleet.Parse([]byte(`{"accounts": [{"id": "222222222222", "regions": []}], "alarms": {"fleet-health": "OK", "p5xx": "ALARM"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.FiringAlarms([]string{"fleet-health", "p5xx", "absent"}); !slices.Equal(got, []string{"p5xx", "absent"}) {
		t.Errorf("FiringAlarms() = %v, want p5xx and the absent alarm", got)
	}
}

func TestRejectWave2FleetStopsTheDemoPlanAtWave2(t *testing.T) {
	f, err := fleet.Load("../fleets/reject-wave2.json")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := os.ReadFile("../fleets/demo-plan.json")
	if err != nil {
		t.Fatal(err)
	}
	exp := fleet.Expected(f, normalize(t, string(plan)))
	got := []string{exp.Status}
	for _, w := range exp.Waves {
		got = append(got, w.WaveID+"="+w.Status)
	}
	want := []string{contract.StatusRejected, "wave1-critical=SUCCEEDED", "wave2=REJECTED", "wave3=NOT_STARTED"}
	if !slices.Equal(got, want) {
		t.Errorf("reject-wave2 on the demo plan: %v, want %v", got, want)
	}
}
