package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/test/emulator"
	"github.com/ec2patch/ec2patch/test/fleet"
	"github.com/ec2patch/ec2patch/test/proxy"
)

// Hub alarms the emulator creates for the alarm gates.
const (
	alarmQuiet  = "fleet-health"
	alarmFiring = "payments-5xx"
)

// Accounts of the three-wave gate plan.
const (
	wave1Account = "222222222222"
	wave2Account = "333333333333"
	wave3Account = "444444444444"
)

// gatePlan is three waves, wave2 behind an approval gate; thresholds let
// every wave succeed, so only the gates decide.
func gatePlan(runID string, approvalTimeout int, wave1Alarms string) string {
	return fmt.Sprintf(`{"runId": %q, "pollIntervalSeconds": 1, "abortOnIssues": false, "approvalTimeoutSeconds": %d, "waves": [
	  {"waveId": "wave1", "accounts": [%q], "regions": ["us-east-1"], "tagFilters": {"PatchGroup": "default"}, "haltAlarms": %s},
	  {"waveId": "wave2", "accounts": [%q], "regions": ["us-east-1"], "tagFilters": {"PatchGroup": "default"},
	   "approval": true, "failureThresholdPercent": 50},
	  {"waveId": "wave3", "accounts": [%q], "regions": ["us-east-1", "us-west-2"], "tagFilters": {"PatchGroup": "default"},
	   "failureThresholdPercent": 50}]}`, runID, approvalTimeout, wave1Account, wave1Alarms, wave2Account, wave3Account)
}

func stamp() string { return time.Now().UTC().Format("150405.000") }

func runID(prefix string) string { return prefix + "-" + strings.ReplaceAll(stamp(), ".", "") }

// gateTests are the scenarios of approval gates, alarm gates, aborts and
// re-runs. They share the harness of TestEmulator; the re-run fixes the
// role-missing account, so it comes last.
func gateTests(t *testing.T, ctx context.Context, h *emulator.Harness) {
	t.Run("approval: tampered links are refused, the approval decides once, and every wave runs", func(t *testing.T) {
		id := runID("e2e-approve")
		input := gatePlan(id, 60, "[]")
		run := normalized(t, h, input, id)
		mark, inbox := h.Proxy.Mark(), h.InboxMark()
		arn, err := h.Start(ctx, input, id)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := h.WaitForApprovalSince(ctx, run, "wave2", inbox)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{wave2Account, "us-east-1"} {
			if !strings.Contains(msg.Body, want) {
				t.Errorf("approval message does not say what will be patched (%s):\n%s", want, msg.Body)
			}
		}
		if commandsTo(h.Proxy.Calls(mark), wave2Account) != 0 {
			t.Error("a command reached wave2 before its approval")
		}
		approve := msg.Links.Approve
		tampered := map[string]string{
			"changed decision":  setQuery(approve, "decision", contract.DecisionReject),
			"changed expiry":    setQuery(approve, "expires", fmt.Sprint(time.Now().Add(24*time.Hour).Unix())),
			"changed signature": setQuery(approve, "signature", flipLast(query(approve, "signature"))),
		}
		for name, link := range tampered {
			page, err := h.Click(ctx, http.MethodPost, link, emulator.LinkForm(link, "mallory"))
			if err != nil {
				t.Fatal(err)
			}
			if page.Status != http.StatusForbidden {
				t.Errorf("%s: POST answered %d, want 403:\n%s", name, page.Status, page.Body)
			}
		}
		if st, err := h.ApprovalStatus(ctx, msg.Links.ApprovalID); err != nil || st != "PENDING" {
			t.Errorf("after the tampered links the approval is %q (%v), want PENDING", st, err)
		}
		a := h.Approve(ctx, approve, "alice@example.com")
		if a.Err != nil || a.GetStatus != http.StatusOK || a.PostStatus != http.StatusOK {
			t.Fatalf("approve: GET %d POST %d: %v", a.GetStatus, a.PostStatus, a.Err)
		}
		if a.StatusAfterGet != "PENDING" {
			t.Errorf("after the GET the approval is %q, want PENDING: a GET must not decide", a.StatusAfterGet)
		}
		for _, link := range []string{approve, msg.Links.Reject} {
			page, err := h.Click(ctx, http.MethodPost, link, emulator.LinkForm(link, "replayer"))
			if err != nil {
				t.Fatal(err)
			}
			if page.Status != http.StatusForbidden {
				t.Errorf("replay of %s: POST answered %d, want 403", query(link, "decision"), page.Status)
			}
		}
		res := mustWait(t, ctx, h, arn, mark)
		checkAgainstFleetWith(t, h, res, input, map[string]string{"wave2": fleet.ApprovalApprove})
		if w := waveReport(res.Report, "wave2"); w.Approval == nil || w.Approval.Decision != contract.DecisionApprove ||
			w.Approval.Approver != "alice@example.com" {
			t.Errorf("wave2 approval in the report = %+v, want approve by alice@example.com", w.Approval)
		}
		if st, _ := h.ApprovalStatus(ctx, msg.Links.ApprovalID); st != "APPROVED" {
			t.Errorf("approval record %q, want APPROVED", st)
		}
	})

	for _, tc := range []struct{ decision, why string }{
		{fleet.ApprovalReject, "reject"},
		{fleet.ApprovalTimeout, "timeout"},
	} {
		t.Run("approval "+tc.why+": wave2 REJECTED, wave3 NOT_STARTED and never reached", func(t *testing.T) {
			id := runID("e2e-" + tc.why)
			input := gatePlan(id, 3, "[]")
			res, err := h.RunWith(ctx, input, id, emulator.RunOptions{Approvals: map[string]string{"wave2": tc.decision}})
			if err != nil {
				t.Fatal(err)
			}
			checkFinished(t, res)
			checkAgainstFleetWith(t, h, res, input, map[string]string{"wave2": tc.decision})
			// The gate previewed wave 2 (read-only inventory for the approval
			// message); nothing else reached its account, nothing reached wave 3.
			checkOnlyPreviewed(t, res.Calls, wave2Account)
			checkNotReached(t, res.Calls, wave3Account)
			if len(res.Answers) != 1 || res.Answers[0].Decision != tc.decision {
				t.Fatalf("answers %+v, want one %s", res.Answers, tc.decision)
			}
			if tc.decision == fleet.ApprovalReject && res.Answers[0].StatusAfterGet != "PENDING" {
				t.Errorf("after the GET the approval is %q, want PENDING", res.Answers[0].StatusAfterGet)
			}
			if tc.decision == fleet.ApprovalTimeout {
				// The link expired with the wait: clicking it now changes nothing.
				msg, err := h.WaitForApproval(ctx, normalized(t, h, input, id), "wave2")
				if err != nil {
					t.Fatal(err)
				}
				page, err := h.Click(ctx, http.MethodPost, msg.Links.Approve, emulator.LinkForm(msg.Links.Approve, "late"))
				if err != nil {
					t.Fatal(err)
				}
				if page.Status != http.StatusForbidden {
					t.Errorf("a click after the timeout answered %d, want 403", page.Status)
				}
				again, err := h.ReadReport(ctx, id)
				if err != nil || again == nil || again.Status != contract.StatusRejected || waveReport(again, "wave2").Approval != nil &&
					waveReport(again, "wave2").Approval.Decision == contract.DecisionApprove {
					t.Errorf("after the late click the report is %+v (%v), want it still REJECTED", again, err)
				}
			}
		})
	}

	t.Run("alarm in ALARM before a wave: ABORTED and nothing is sent", func(t *testing.T) {
		id := runID("e2e-alarm-before")
		input := gatePlan(id, 3, fmt.Sprintf("[%q, %q]", alarmQuiet, alarmFiring))
		res := mustRun(t, ctx, h, input, id)
		checkAgainstFleet(t, h, res, input)
		w := waveReport(res.Report, "wave1")
		if !strings.Contains(w.Reason, alarmFiring) || strings.Contains(w.Reason, alarmQuiet) {
			t.Errorf("wave1 reason %q, want it to name %s only", w.Reason, alarmFiring)
		}
		checkNotReached(t, res.Calls, wave1Account, wave2Account, wave3Account)
	})

	t.Run("alarm in ALARM after a wave: the wave FAILED naming it, later waves NOT_STARTED", func(t *testing.T) {
		trigger, remove := h.AlarmTrigger(wave1Account, alarmQuiet)
		t.Cleanup(func() {
			remove()
			if err := h.SetAlarm(ctx, alarmQuiet, fleet.AlarmOK); err != nil {
				t.Error(err)
			}
		})
		id := runID("e2e-alarm-after")
		input := gatePlan(id, 3, fmt.Sprintf("[%q]", alarmQuiet))
		res := mustRun(t, ctx, h, input, id)
		if fired, err := trigger.Fired(); !fired || err != nil {
			t.Fatalf("the alarm trigger fired %v (%v): the wave never reached %s", fired, err, wave1Account)
		}
		w := waveReport(res.Report, "wave1")
		if w.Status != contract.StatusFailed || !strings.Contains(w.Reason, alarmQuiet) {
			t.Errorf("wave1 %s (%s), want FAILED naming %s", w.Status, w.Reason, alarmQuiet)
		}
		for _, id := range []string{"wave2", "wave3"} {
			if s := waveReport(res.Report, id).Status; s != contract.StatusNotStarted {
				t.Errorf("%s %s, want NOT_STARTED", id, s)
			}
		}
		if res.Report.Status != contract.StatusAborted {
			t.Errorf("run %s, want ABORTED", res.Report.Status)
		}
		if commandsTo(res.Calls, wave1Account) == 0 {
			t.Error("wave1 sent no command")
		}
		checkNotReached(t, res.Calls, wave2Account, wave3Account)
	})

	t.Run("a failed wave with abortOnIssues stops the run before the next wave", func(t *testing.T) {
		id := runID("e2e-abort")
		input := fmt.Sprintf(`{"runId": %q, "pollIntervalSeconds": 1, "abortOnIssues": true, "waves": [
		  {"waveId": "wave1", "accounts": [%q], "regions": ["us-east-1", "us-west-2"], "failureThresholdPercent": 10},
		  {"waveId": "wave2", "accounts": [%q], "regions": ["us-east-1"]}]}`, id, wave2Account, wave3Account)
		res := mustRun(t, ctx, h, input, id)
		checkAgainstFleet(t, h, res, input)
		if res.Report.Status != contract.StatusAborted {
			t.Errorf("run %s, want ABORTED", res.Report.Status)
		}
		checkNotReached(t, res.Calls, wave3Account)
	})

	t.Run("two concurrent starts of one runId send one command per target", func(t *testing.T) {
		id := runID("e2e-concurrent")
		input := fmt.Sprintf(`{"runId": %q, "pollIntervalSeconds": 1, "abortOnIssues": false, "waves": [
		  {"waveId": "w", "accounts": [%q, %q], "regions": ["us-east-1", "us-west-2"], "maxConcurrency": 4,
		   "failureThresholdPercent": 50}]}`, id, wave2Account, wave3Account)
		mark := h.Proxy.Mark()
		var arns [2]string
		var errs [2]error
		var wg sync.WaitGroup
		for i := range arns {
			wg.Go(func() { arns[i], errs[i] = h.Start(ctx, input, fmt.Sprintf("%s-%d", id, i)) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		var last *emulator.Result
		for _, arn := range arns {
			res, err := h.Wait(ctx, arn, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkFinished(t, res)
			last = res
		}
		calls := h.Proxy.Calls(mark)
		perTarget := map[string]int{}
		perInstance := map[string]int{}
		for _, c := range sendCommands(calls) {
			perTarget[c.Account+"/"+c.Region]++
			for _, iid := range c.InstanceIDs {
				perInstance[iid]++
			}
		}
		run := normalized(t, h, input, id)
		for _, ref := range run.Waves[0].Targets() {
			want := 1
			if te := fleet.ExpectedTarget(h.Fleet, ref.Account, ref.Region, run.Waves[0].TagFilters, false); te.Counts.Targeted() == 0 {
				want = 0
			}
			if n := perTarget[ref.Account+"/"+ref.Region]; n != want {
				t.Errorf("%s/%s got %d SendCommand calls from the two executions, want %d", ref.Account, ref.Region, n, want)
			}
		}
		for iid, n := range perInstance {
			if n != 1 {
				t.Errorf("instance %s was sent %d commands", iid, n)
			}
		}
		last.Calls = calls
		checkAgainstFleet(t, h, last, input)
	})

	t.Run("a re-run of the runId after the role is fixed patches only the fixed account", func(t *testing.T) {
		var missing string
		for _, a := range h.Fleet.Accounts {
			if a.RoleMissing {
				missing = a.ID
			}
		}
		if missing == "" {
			t.Fatal("the fleet has no role-missing account")
		}
		id := runID("e2e-rerun")
		input := fmt.Sprintf(`{"runId": %q, "pollIntervalSeconds": 1, "abortOnIssues": false, "waves": [
		  {"waveId": "w", "accounts": [%q, %q], "regions": ["us-east-1"], "failureThresholdPercent": 50}]}`, id, wave3Account, missing)
		first := mustRun(t, ctx, h, input, id+"-1")
		checkAgainstFleet(t, h, first, input)
		if commandsTo(first.Calls, missing) != 0 || commandsTo(first.Calls, wave3Account) == 0 {
			t.Fatalf("first run: %d commands to %s and %d to %s, want none and some", commandsTo(first.Calls, missing), missing,
				commandsTo(first.Calls, wave3Account), wave3Account)
		}

		if err := h.FixAccount(ctx, missing); err != nil {
			t.Fatal(err)
		}
		second := mustRun(t, ctx, h, input, id+"-2")
		checkAgainstFleet(t, h, second, input)
		if n := commandsTo(second.Calls, wave3Account); n != 0 {
			t.Errorf("the re-run sent %d commands to %s, which already succeeded", n, wave3Account)
		}
		if n := commandsTo(second.Calls, missing); n == 0 {
			t.Errorf("the re-run sent no command to the fixed account %s", missing)
		}
		tr := targetReport(second.Report, "w", missing, "us-east-1")
		if tr.Status != contract.StatusSucceeded || tr.Counts.Patched == 0 {
			t.Errorf("fixed target %s: %s %+v, want SUCCEEDED with instances patched", missing, tr.Status, tr.Counts)
		}
	})
}

// checkAgainstFleetWith is checkAgainstFleet with the approvals the run
// was answered with.
func checkAgainstFleetWith(t *testing.T, h *emulator.Harness, res *emulator.Result, input string, approvals map[string]string) {
	t.Helper()
	saved := h.Fleet
	f := *saved
	f.Approvals = approvals
	h.Fleet = &f
	defer func() { h.Fleet = saved }()
	checkAgainstFleet(t, h, res, input)
}

func normalized(t *testing.T, h *emulator.Harness, input, name string) contract.Run {
	t.Helper()
	run, err := contract.Normalize([]byte(input), h.Params.RunDefaults(), h.Params.Waves, name, "")
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func mustWait(t *testing.T, ctx context.Context, h *emulator.Harness, arn string, mark int) *emulator.Result {
	t.Helper()
	res, err := h.Wait(ctx, arn, nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Calls = h.Proxy.Calls(mark)
	checkFinished(t, res)
	return res
}

func checkFinished(t *testing.T, res *emulator.Result) {
	t.Helper()
	t.Logf("%s: %s in %d history events, %d calls recorded", res.Name, res.Status, len(res.History), len(res.Calls))
	if res.Status != "SUCCEEDED" {
		t.Fatalf("execution %s: %s %s: %s", res.Name, res.Status, res.Error, res.Cause)
	}
	if res.Report == nil {
		t.Fatalf("execution %s wrote no report (output %s)", res.Name, res.Output)
	}
}

// checkNotReached: no call (not even AssumeRole) reached the accounts.
func checkNotReached(t *testing.T, calls []proxy.Call, accounts ...string) {
	t.Helper()
	for _, c := range calls {
		for _, a := range accounts {
			if c.TargetAccount() == a {
				t.Errorf("%s:%s reached %s, whose wave never started", c.Service, c.Action, a)
			}
		}
	}
}

// previewActions are the only calls an approval gate's preview makes to a
// spoke: read-only inventory.
var previewActions = map[string]bool{
	"sts:AssumeRole": true, "ec2:DescribeInstances": true, "ssm:DescribeInstanceInformation": true,
}

// checkOnlyPreviewed: the account of a wave that did not run was only read
// by the approval gate's preview, and at least that.
func checkOnlyPreviewed(t *testing.T, calls []proxy.Call, account string) {
	t.Helper()
	previewed := false
	for _, c := range calls {
		if c.TargetAccount() != account {
			continue
		}
		if action := c.Service + ":" + c.Action; !previewActions[action] {
			t.Errorf("%s reached %s, whose wave was never approved", action, account)
		}
		previewed = true
	}
	if !previewed {
		t.Errorf("the approval gate did not preview %s", account)
	}
}

func commandsTo(calls []proxy.Call, account string) int {
	n := 0
	for _, c := range sendCommands(calls) {
		if c.Account == account {
			n++
		}
	}
	return n
}

func waveReport(r *contract.Report, waveID string) contract.WaveReport {
	for _, w := range r.Waves {
		if w.WaveID == waveID {
			return w
		}
	}
	return contract.WaveReport{}
}

func targetReport(r *contract.Report, waveID, account, region string) contract.TargetResult {
	for _, tr := range waveReport(r, waveID).Targets {
		if tr.Account == account && tr.Region == region {
			return tr
		}
	}
	return contract.TargetResult{}
}

func query(link, key string) string {
	u, err := url.Parse(link)
	if err != nil {
		return ""
	}
	return u.Query().Get(key)
}

// setQuery changes one field of a link and keeps the rest, signature
// included.
func setQuery(link, key, value string) string {
	u, err := url.Parse(link)
	if err != nil {
		return link
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func flipLast(s string) string {
	if s == "" {
		return "0"
	}
	last := s[len(s)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	return s[:len(s)-1] + string(repl)
}
