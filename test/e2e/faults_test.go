package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/test/emulator"
	"github.com/ec2patch/ec2patch/test/fleet"
	"github.com/ec2patch/ec2patch/test/proxy"
)

// The one target every fault scenario patches: 3 instances to patch and 2
// to skip, so one SendCommand batch.
const (
	faultAccount = "222222222222"
	faultRegion  = "us-east-1"
)

// TestFaults injects the faults a patch run must survive, or fail loudly
// on, and checks what the run leaves behind: SSM throttling beyond the
// SDK's own retries, a handler crash between its command and its return,
// the state table refusing writes, and an S3 outage when the report is
// written.
func TestFaults(t *testing.T) {
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
	db := stateTable(h)

	// run runs the fault target with faults in place (and the scenario
	// changed by edit, if set), then restores the scenario.
	run := func(t *testing.T, prefix string, edit func(*proxy.Scenario), faults ...*proxy.Fault) (*emulator.Result, string) {
		t.Helper()
		scenario := h.Proxy.Scenario()
		faulty := withFaults(scenario, faults...)
		if edit != nil {
			edit(&faulty)
		}
		h.Proxy.SetScenario(faulty)
		defer h.Proxy.SetScenario(scenario)
		runID := prefix + "-" + time.Now().UTC().Format("150405")
		res, err := h.Run(ctx, faultInput(runID), runID)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s %s in %d history events, %d calls recorded", runID, res.Status, res.Error, len(res.History), len(res.Calls))
		return res, runID
	}

	t.Run("SSM throttled past the SDK's retries: the state machine retries and one command is sent", func(t *testing.T) {
		// The SDK makes 3 attempts per call: 4 throttles fail a whole
		// invocation, so only the state machine's Retry gets past them.
		send := proxy.Throttle("ssm", "SendCommand", 4)
		verify := proxy.Throttle("ssm", "ListCommandInvocations", 4)
		// With the status events dropped, the reconciler polls with
		// ListCommands; a throttled reconcile is retried by the next one.
		poll := proxy.Throttle("ssm", "ListCommands", 4)
		for _, fl := range []*proxy.Fault{send, verify, poll} {
			fl.Account = faultAccount
		}
		res, _ := run(t, "fault-throttle", func(s *proxy.Scenario) { s.DropEvents = true }, send, verify, poll)
		if res.Status != "SUCCEEDED" || res.Report == nil {
			t.Fatalf("execution %s %s: %s (report %v)", res.Status, res.Error, res.Cause, res.Report != nil)
		}
		checkAgainstFleet(t, h, res, faultInput(res.Name))
		for _, fl := range []*proxy.Fault{send, verify, poll} {
			if fl.Hits() != fl.First {
				t.Errorf("%s throttled %d calls, want %d", fl.Action, fl.Hits(), fl.First)
			}
		}
		sends, ids := sendCommands(res.Calls), commandIDs(t, res)
		sendInvokes := h.Invocations(ctx, res.Calls, contract.SendSsmCommand.Dir)
		verifyInvokes := h.Invocations(ctx, res.Calls, contract.PostEC2Verify.Dir)
		t.Logf("SendCommand: %d throttled, %d accepted, SendSsmCommand invoked %d times; ListCommandInvocations: %d throttled, "+
			"PostEC2Verify invoked %d times; ListCommands: %d throttled of %d", send.Hits(), len(sends), sendInvokes,
			verify.Hits(), verifyInvokes, poll.Hits(), poll.Seen())
		if len(sends) != 1 || len(ids) != 1 {
			t.Errorf("%d accepted SendCommand calls and command IDs %v in the report, want 1 batch sent once", len(sends), ids)
		}
		if sendInvokes < 2 || verifyInvokes < 2 {
			t.Errorf("SendSsmCommand invoked %d times, PostEC2Verify %d times: want at least 2 each (the state machine's Retry)",
				sendInvokes, verifyInvokes)
		}
		if poll.Seen() <= poll.First {
			t.Errorf("ListCommands was called %d times: the reconciler never got past the throttling", poll.Seen())
		}
	})

	t.Run("SendSsmCommand crashes after recording its command: the retry reuses it", func(t *testing.T) {
		// The handler's calls: claim (UpdateItem 1), SendCommand, record
		// the command (UpdateItem 2). It dies right after the second.
		crash := proxy.CrashAfter(contract.SendSsmCommand.Dir, "dynamodb", "UpdateItem", 2)
		res, _ := run(t, "fault-crash", nil, crash)
		if res.Status != "SUCCEEDED" || res.Report == nil {
			t.Fatalf("execution %s %s: %s (report %v)", res.Status, res.Error, res.Cause, res.Report != nil)
		}
		checkAgainstFleet(t, h, res, faultInput(res.Name))
		name, err := h.Proxy.FunctionName(ctx, contract.SendSsmCommand.Dir)
		if err != nil {
			t.Fatal(err)
		}
		invokes, crashed := 0, 0
		for _, c := range res.Calls {
			if c.Action == "Invoke" && c.Function == name {
				invokes++
				if c.Refused == "function error Runtime.ExitError" {
					crashed++
				}
			}
		}
		sends, ids := sendCommands(res.Calls), commandIDs(t, res)
		t.Logf("SendSsmCommand invoked %d times, %d crashed; %d SendCommand accepted; report commands %v",
			invokes, crashed, len(sends), ids)
		if crash.Hits() != 1 || crashed != 1 || invokes != 2 {
			t.Errorf("%d crashes of %d invocations (fault hit %d), want 1 of 2", crashed, invokes, crash.Hits())
		}
		if len(sends) != 1 {
			t.Fatalf("%d SendCommand calls accepted, want 1: the retry sent the command again", len(sends))
		}
		if len(ids) != 1 || !strings.Contains(string(sendResponseID(t, h, res)), ids[0]) {
			t.Errorf("report commands %v, want the one command sent before the crash", ids)
		}
	})

	t.Run("the state table refuses writes when the target finishes: the execution fails loudly", func(t *testing.T) {
		var faults []*proxy.Fault
		for _, fn := range []contract.Function{contract.PostEC2Verify, contract.RecordTargetFailure,
			contract.EvaluateWave, contract.WriteRunReport} {
			for _, action := range []string{"PutItem", "UpdateItem", "BatchWriteItem"} {
				fl := proxy.Deny("dynamodb", action, 1000)
				fl.Handler = fn.Dir
				faults = append(faults, fl)
			}
		}
		res, runID := run(t, "fault-ddb", nil, faults...)
		refused := map[string]int{}
		for _, c := range res.Calls {
			if c.Service == "dynamodb" && strings.HasPrefix(c.Refused, "denied") {
				refused[c.Action]++
			}
		}
		t.Logf("refused DynamoDB writes %v; execution %s %s: %s", refused, res.Status, res.Error, res.Cause)
		if res.Status != "FAILED" || res.Error != contract.ErrStateStore {
			t.Errorf("execution %s with error %q, want FAILED with %s", res.Status, res.Error, contract.ErrStateStore)
		}
		if !strings.Contains(res.Cause, "write") || !strings.Contains(res.Cause, "AccessDeniedException") {
			t.Errorf("cause %q does not name the refused write", res.Cause)
		}
		if refused["PutItem"] == 0 {
			t.Fatal("no PutItem was refused: the target's result was never written, so the check proves nothing")
		}
		// The target's own writes failed first: verification, then the
		// failure record, each with StateStoreError (never retried).
		for _, fn := range []contract.Function{contract.PostEC2Verify, contract.RecordTargetFailure} {
			name, err := h.Proxy.FunctionName(ctx, fn.Dir)
			if err != nil {
				t.Fatal(err)
			}
			failed := 0
			for _, c := range res.Calls {
				if c.Action == "Invoke" && c.Function == name && c.Refused == "function error "+contract.ErrStateStore {
					failed++
				}
			}
			if failed != 1 {
				t.Errorf("%s failed %d times with %s, want once", fn.Name, failed, contract.ErrStateStore)
			}
		}
		// Nothing says done that was not: the target keeps its command
		// but no result, the run is still RUNNING, and no report or
		// ledger row claims a patch.
		target := getItem(t, ctx, db, h, contract.RunPK(runID), contract.TargetSK("canary", faultAccount, faultRegion))
		if s := attrS(target, "status"); s == contract.StatusSucceeded || attrS(target, "result") != "" {
			t.Errorf("target record status %q with result %q: recorded as done", s, attrS(target, "result"))
		}
		runRec := getItem(t, ctx, db, h, contract.RunPK(runID), contract.SKRun)
		if s := attrS(runRec, "status"); s != contract.StatusRunning || runRec["totals"] != nil {
			t.Errorf("RUN record status %q with totals %v, want RUNNING and no summary", s, runRec["totals"])
		}
		if rep, err := h.ReadReport(ctx, runID); err != nil || rep != nil {
			t.Errorf("report %v (%v), want none", rep, err)
		}
		for _, in := range h.Instances {
			if in.Account != faultAccount || in.Region != faultRegion {
				continue
			}
			hist, err := h.InstanceHistory(ctx, in.Account, in.Region, in.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range hist {
				if e.RunID == runID {
					t.Errorf("ledger row %+v was written for a result that was not", e)
				}
			}
		}
	})

	t.Run("S3 is down when the report is written: retried, and it lands once S3 is back", func(t *testing.T) {
		outage := proxy.Unavailable("s3", "PutObject", 4)
		outage.Handler = contract.WriteRunReport.Dir
		res, runID := run(t, "fault-s3", nil, outage)
		invokes := h.Invocations(ctx, res.Calls, contract.WriteRunReport.Dir)
		t.Logf("S3 PutObject: %d refused of %d; WriteRunReport invoked %d times", outage.Hits(), outage.Seen(), invokes)
		if res.Status != "SUCCEEDED" || res.Report == nil {
			t.Fatalf("execution %s %s: %s (report %v)", res.Status, res.Error, res.Cause, res.Report != nil)
		}
		checkAgainstFleet(t, h, res, faultInput(res.Name))
		if outage.Hits() != 4 || invokes < 2 {
			t.Errorf("%d PutObject refused, WriteRunReport invoked %d times: want 4 and a retry", outage.Hits(), invokes)
		}
		checkRunRecord(t, getItem(t, ctx, db, h, contract.RunPK(runID), contract.SKRun), res.Report)
	})

	t.Run("S3 stays down past every retry: the execution fails and DynamoDB keeps the result", func(t *testing.T) {
		outage := proxy.Unavailable("s3", "PutObject", 1000)
		outage.Handler = contract.WriteRunReport.Dir
		res, runID := run(t, "fault-s3down", nil, outage)
		invokes := h.Invocations(ctx, res.Calls, contract.WriteRunReport.Dir)
		t.Logf("S3 PutObject: %d refused; WriteRunReport invoked %d times; execution %s %s: %s",
			outage.Hits(), invokes, res.Status, res.Error, res.Cause)
		if res.Status != "FAILED" || res.Error != contract.ErrTransient || !strings.Contains(res.Cause, contract.ReportJSONKey(runID)) {
			t.Errorf("execution %s %s: %s; want FAILED with %s naming %s", res.Status, res.Error, res.Cause,
				contract.ErrTransient, contract.ReportJSONKey(runID))
		}
		if invokes != 5 {
			t.Errorf("WriteRunReport invoked %d times, want 5 (1 + 4 retries)", invokes)
		}
		if rep, err := h.ReadReport(ctx, runID); err != nil || rep != nil {
			t.Errorf("report %v (%v), want none", rep, err)
		}
		runRec := getItem(t, ctx, db, h, contract.RunPK(runID), contract.SKRun)
		var totals contract.Counts
		if err := json.Unmarshal([]byte(attrS(runRec, "totals")), &totals); err != nil {
			t.Fatalf("RUN record totals %q: %v", attrS(runRec, "totals"), err)
		}
		if s := attrS(runRec, "status"); s != contract.StatusSucceeded || totals.Patched != 3 || totals.Skipped != 2 {
			t.Errorf("RUN record %s with totals %+v, want SUCCEEDED with 3 patched and 2 skipped", s, totals)
		}
	})
}

// faultInput is one wave over the fault target.
func faultInput(runID string) string {
	return fmt.Sprintf(`{"runId": %q, "pollIntervalSeconds": 1, "abortOnIssues": false, "waves": [{"waveId": "canary",
	  "accounts": [%q], "regions": [%q], "tagFilters": {"PatchGroup": "default"}, "failureThresholdPercent": 0}]}`,
		runID, faultAccount, faultRegion)
}

// commandIDs are the fault target's command IDs in the report.
func commandIDs(t *testing.T, res *emulator.Result) []string {
	t.Helper()
	if res.Report == nil {
		return nil
	}
	for _, w := range res.Report.Waves {
		for _, tr := range w.Targets {
			if tr.Account == faultAccount && tr.Region == faultRegion {
				return tr.CommandIDs
			}
		}
	}
	t.Fatalf("the report has no target %s/%s", faultAccount, faultRegion)
	return nil
}

// sendResponseID is the command ID SSM returned to the one accepted
// SendCommand, as the target's record kept it.
func sendResponseID(t *testing.T, h *emulator.Harness, res *emulator.Result) []byte {
	t.Helper()
	item := getItem(t, context.Background(), stateTable(h), h, contract.RunPK(res.Name),
		contract.TargetSK("canary", faultAccount, faultRegion))
	l, _ := item["commandIds"].(*ddbtypes.AttributeValueMemberL)
	if l == nil || len(l.Value) != 1 {
		t.Fatalf("target record commandIds %v, want exactly one", item["commandIds"])
	}
	s, _ := l.Value[0].(*ddbtypes.AttributeValueMemberS)
	return []byte(s.Value)
}

// checkRunRecord compares the RUN record with the report in S3.
func checkRunRecord(t *testing.T, runRec map[string]ddbtypes.AttributeValue, rep *contract.Report) {
	t.Helper()
	var totals contract.Counts
	if err := json.Unmarshal([]byte(attrS(runRec, "totals")), &totals); err != nil {
		t.Fatalf("RUN record totals %q: %v", attrS(runRec, "totals"), err)
	}
	if attrS(runRec, "status") != rep.Status || totals != rep.Totals || attrS(runRec, "finishedAt") != rep.FinishedAt ||
		!strings.HasSuffix(attrS(runRec, "reportUri"), contract.ReportJSONKey(rep.RunID)) {
		t.Errorf("RUN record %s %+v finished %s (%s), report %s %+v finished %s", attrS(runRec, "status"), totals,
			attrS(runRec, "finishedAt"), attrS(runRec, "reportUri"), rep.Status, rep.Totals, rep.FinishedAt)
	}
}

// stateTable is a DynamoDB client on moto itself, so that reading the
// records is neither recorded nor subject to the faults.
func stateTable(h *emulator.Harness) *dynamodb.Client {
	return dynamodb.NewFromConfig(aws.Config{Region: h.Params.Region, BaseEndpoint: aws.String(h.Moto.URL),
		Credentials: credentials.NewStaticCredentialsProvider("HARNESS", "harness", "")})
}

func getItem(t *testing.T, ctx context.Context, db *dynamodb.Client, h *emulator.Harness, pk, sk string) map[string]ddbtypes.AttributeValue {
	t.Helper()
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(h.Outputs[contract.OutputTableName]),
		Key: map[string]ddbtypes.AttributeValue{contract.AttrPK: &ddbtypes.AttributeValueMemberS{Value: pk},
			contract.AttrSK: &ddbtypes.AttributeValueMemberS{Value: sk}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatalf("read %s %s: %v", pk, sk, err)
	}
	if len(out.Item) == 0 {
		t.Fatalf("no record %s %s", pk, sk)
	}
	return out.Item
}

func attrS(item map[string]ddbtypes.AttributeValue, name string) string {
	if v, ok := item[name].(*ddbtypes.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}
