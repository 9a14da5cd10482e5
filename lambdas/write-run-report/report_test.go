package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/internal/emf"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
	"github.com/ec2patch/ec2patch/lambdas/internal/wiretest"
)

type fakeRecords struct{ rr store.RunRecords }

func (f fakeRecords) Run(context.Context, string) (store.RunRecords, error) { return f.rr, nil }

type fakeRuns struct {
	sum      contract.ReportSummary
	finished string
}

func (f *fakeRuns) FinishRun(_ context.Context, sum contract.ReportSummary, finishedAt string) error {
	f.sum, f.finished = sum, finishedAt
	return nil
}

type bucket map[string][]byte

func (b bucket) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	body, err := io.ReadAll(in.Body)
	b[*in.Bucket+"/"+*in.Key] = body
	return &s3.PutObjectOutput{}, err
}

// records: wave1 succeeded, wave2 failed (one target with instances, one
// failed without), wave3 never started.
func records() store.RunRecords {
	t1 := contract.TargetResult{Account: "222222222222", Region: "us-east-1", Status: contract.StatusSucceeded,
		CommandID: "cmd-1", CommandIDs: []string{"cmd-1"}, Counts: contract.Counts{Patched: 1, Skipped: 1},
		Instances: []contract.InstanceResult{{InstanceID: "i-1", Status: contract.InstancePatched},
			{InstanceID: "i-2", Status: contract.InstanceSkipped, Reason: contract.ReasonStopped + " (stopped)"}}}
	t2 := contract.TargetResult{Account: "333333333333", Region: "us-east-1", Status: contract.StatusSucceeded,
		CommandID: "cmd-2", CommandIDs: []string{"cmd-2", "cmd-3"}, Counts: contract.Counts{Patched: 1, Failed: 1},
		Instances: []contract.InstanceResult{{InstanceID: "i-3", Status: contract.InstancePatched},
			{InstanceID: "i-4", Status: contract.InstanceFailed, Reason: "command Failed"}}}
	t3 := contract.TargetResult{Account: "333333333333", Region: "us-west-2", Status: contract.StatusFailed,
		Reason:    "AccessDenied: cannot assume arn:aws:iam::333333333333:role/PatchExecRole with the configured ExternalId: AccessDenied: no",
		Instances: []contract.InstanceResult{}}
	return store.RunRecords{
		Decisions: map[string]contract.ApprovalDecision{},
		Waves: map[string]store.WaveRecord{
			"wave1": {Index: 0, Verdict: contract.WaveVerdict{WaveID: "wave1", Status: contract.StatusSucceeded, Counts: t1.Counts},
				Targets: []contract.TargetResult{t1}},
			"wave2": {Index: 1, Verdict: contract.WaveVerdict{WaveID: "wave2", Status: contract.StatusFailed,
				Reason: "1 target(s) failed: 333333333333/us-west-2", Counts: t2.Counts},
				Targets: []contract.TargetResult{t2, t3}},
		},
	}
}

type topic struct{ published []*sns.PublishInput }

func (tp *topic) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	tp.published = append(tp.published, in)
	return &sns.PublishOutput{}, nil
}

func newHandler(rr store.RunRecords) (*Handler, *fakeRuns, bucket) {
	h, runs, b, _ := newHandlerTopic(rr)
	return h, runs, b
}

func newHandlerTopic(rr store.RunRecords) (*Handler, *fakeRuns, bucket, *topic) {
	runs, b, tp := &fakeRuns{}, bucket{}, &topic{}
	return &Handler{Records: fakeRecords{rr}, Runs: runs, S3: b, Bucket: "hub-reports",
		SNS: tp, TopicARN: "arn:aws:sns:eu-central-1:123456789012:ec2patch-dev-notifications", Environment: "ec2patch-dev",
		Log: logx.New(io.Discard),
		Now: func() time.Time { return time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) }}, runs, b, tp
}

func TestReportAbortedWithNotStartedWave(t *testing.T) {
	h, runs, b := newHandler(records())
	wiretest.Golden(t, h.Handle, "report-aborted")
	if runs.sum.Status != contract.StatusAborted || runs.finished != "2026-12-01T12:00:00Z" {
		t.Errorf("run record finished with %+v at %s", runs.sum, runs.finished)
	}
	report := b["hub-reports/"+contract.ReportJSONKey("2026-12-patch")]
	csvBody := b["hub-reports/"+contract.ReportCSVKey("2026-12-patch")]
	wiretest.MatchFile(t, "report-aborted.report.json", report)
	wiretest.MatchFile(t, "report-aborted.report.csv", csvBody)
}

func TestRunStatus(t *testing.T) {
	s, f, n, r, a := contract.StatusSucceeded, contract.StatusFailed, contract.StatusNotStarted, contract.StatusRejected, contract.StatusAborted
	cases := []struct {
		statuses []string
		halted   bool
		abort    bool
		want     string
	}{
		{[]string{s, s}, false, true, contract.StatusSucceeded},
		{[]string{s, f, n}, false, true, contract.StatusAborted},
		{[]string{s, f, n}, false, false, contract.StatusFailed},
		{[]string{s, f, s}, false, true, contract.StatusFailed},
		{[]string{s, f}, false, true, contract.StatusFailed},
		{[]string{s, r, n}, true, true, contract.StatusRejected},
		{[]string{s, r, n}, true, false, contract.StatusRejected},
		{[]string{s, a, n}, true, false, contract.StatusAborted},
		{[]string{s, f, n}, true, false, contract.StatusAborted},
		{[]string{s, s, f}, true, false, contract.StatusAborted},
	}
	for _, c := range cases {
		if got := runStatus(c.statuses, c.halted, c.abort); got != c.want {
			t.Errorf("runStatus(%v, halted %v, abort %v) = %s, want %s", c.statuses, c.halted, c.abort, got, c.want)
		}
	}
}

func TestRejectedVerdictOfTheCurrentWave(t *testing.T) {
	rr := records()
	delete(rr.Waves, "wave2")
	req := contract.ReportRequest{
		Run: contract.Run{RunID: "r", AbortOnIssues: true, Waves: []contract.Wave{
			{Index: 0, WaveID: "wave1"}, {Index: 1, WaveID: "wave2"}, {Index: 2, WaveID: "wave3"}}},
		Cursor:  contract.Cursor{Index: 1},
		Verdict: &contract.WaveVerdict{WaveID: "wave2", Status: contract.StatusRejected, Reason: "approval rejected"},
	}
	rep := Assemble(req, rr, "")
	got := []string{rep.Status, rep.Waves[0].Status, rep.Waves[1].Status, rep.Waves[2].Status}
	want := []string{contract.StatusRejected, contract.StatusSucceeded, contract.StatusRejected, contract.StatusNotStarted}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("statuses %v, want %v", got, want)
		}
	}
}

func threeWaves(abort bool) contract.Run {
	return contract.Run{RunID: "r", AbortOnIssues: abort, Operation: contract.OperationInstall, StartedAt: "2026-12-01T10:00:00.250Z", Waves: []contract.Wave{
		{Index: 0, WaveID: "wave1"}, {Index: 1, WaveID: "wave2", Approval: true}, {Index: 2, WaveID: "wave3"}}}
}

func statuses(rep contract.Report) []string {
	out := []string{rep.Status}
	for _, w := range rep.Waves {
		out = append(out, w.Status)
	}
	return out
}

func TestAbortedByAHaltAlarmBeforeTheWave(t *testing.T) {
	rr := records()
	delete(rr.Waves, "wave2")
	req := contract.ReportRequest{Run: threeWaves(false), Cursor: contract.Cursor{Index: 1},
		Verdict: &contract.WaveVerdict{WaveID: "wave2", Status: contract.StatusAborted, Halt: true,
			Reason: "halt alarm payments-5xx is in ALARM before the wave"}}
	rep := Assemble(req, rr, "")
	want := []string{contract.StatusAborted, contract.StatusSucceeded, contract.StatusAborted, contract.StatusNotStarted}
	if got := statuses(rep); !reflect.DeepEqual(got, want) {
		t.Errorf("statuses %v, want %v (abortOnIssues is false: the alarm halts anyway)", got, want)
	}
	if rep.Waves[1].Reason != "halt alarm payments-5xx is in ALARM before the wave" {
		t.Errorf("reason %q does not name the alarm", rep.Waves[1].Reason)
	}
}

func TestAbortedByAHaltAlarmAfterTheWave(t *testing.T) {
	rr := records()
	w2 := rr.Waves["wave2"]
	w2.Verdict.Halt, w2.Verdict.Reason = true, "halt alarm payments-5xx is in ALARM after the wave; "+w2.Verdict.Reason
	rr.Waves["wave2"] = w2
	req := contract.ReportRequest{Run: threeWaves(false), Cursor: contract.Cursor{Index: 1}, Verdict: &w2.Verdict}
	want := []string{contract.StatusAborted, contract.StatusSucceeded, contract.StatusFailed, contract.StatusNotStarted}
	if got := statuses(Assemble(req, rr, "")); !reflect.DeepEqual(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
}

// A re-run of the run stops at wave 2 where the first execution went on:
// the first execution's records of wave 2 and 3 must not show.
func TestRecordsOfAnEarlierExecutionDoNotShow(t *testing.T) {
	rr := records()
	rr.Waves["wave3"] = store.WaveRecord{Index: 2, Verdict: contract.WaveVerdict{WaveID: "wave3", Status: contract.StatusSucceeded}}
	rr.Decisions["wave2"] = contract.ApprovalDecision{WaveID: "wave2", Decision: contract.DecisionApprove,
		Approver: "old@example.com", DecidedAt: "2026-11-30T09:00:00Z"}
	req := contract.ReportRequest{Run: threeWaves(true), Cursor: contract.Cursor{Index: 1},
		Verdict: &contract.WaveVerdict{WaveID: "wave2", Status: contract.StatusRejected, Halt: true,
			Reason: "States.Timeout: approval timed out"}}
	rep := Assemble(req, rr, "")
	want := []string{contract.StatusRejected, contract.StatusSucceeded, contract.StatusRejected, contract.StatusNotStarted}
	if got := statuses(rep); !reflect.DeepEqual(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	if rep.Waves[1].Approval != nil {
		t.Errorf("wave2 shows the earlier execution's decision %+v", rep.Waves[1].Approval)
	}
	if len(rep.Waves[1].Targets) != 0 || rep.Waves[1].Counts != (contract.Counts{}) {
		t.Errorf("rejected wave2 shows targets %+v", rep.Waves[1].Targets)
	}
}

func TestRejectedRunReportsTheDecision(t *testing.T) {
	rr := records()
	delete(rr.Waves, "wave2")
	d := contract.ApprovalDecision{ApprovalID: "a1", WaveID: "wave2", Decision: contract.DecisionReject,
		Approver: "ops-lead@example.com", SourceIP: "198.51.100.7", DecidedAt: "2026-12-01T10:00:00Z"}
	rr.Decisions["wave2"] = d
	h, runs, b, tp := newHandlerTopic(rr)
	req := contract.ReportRequest{Run: threeWaves(true), Cursor: contract.Cursor{Index: 1},
		Verdict: &contract.WaveVerdict{WaveID: "wave2", Status: contract.StatusRejected, Halt: true,
			Reason: "ApprovalRejected: rejected by ops-lead@example.com at 2026-12-01T10:00:00Z from 198.51.100.7"}}
	req.Run.RunID = "2026-12-patch"
	sum, err := h.Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Status != contract.StatusRejected || runs.sum.Status != contract.StatusRejected {
		t.Errorf("summary %+v, run record %+v", sum, runs.sum)
	}
	var rep contract.Report
	if err := json.Unmarshal(b["hub-reports/"+contract.ReportJSONKey("2026-12-patch")], &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Waves[1].Approval == nil || *rep.Waves[1].Approval != d {
		t.Errorf("wave2 approval %+v, want %+v", rep.Waves[1].Approval, d)
	}
	if rep.Waves[0].Approval != nil || rep.Waves[2].Approval != nil {
		t.Error("a wave without a gate carries an approval")
	}
	if len(tp.published) != 1 {
		t.Fatalf("%d notifications, want 1", len(tp.published))
	}
	n := tp.published[0]
	if *n.TopicArn != "arn:aws:sns:eu-central-1:123456789012:ec2patch-dev-notifications" {
		t.Errorf("published to %s", *n.TopicArn)
	}
	wiretest.MatchFile(t, "report-rejected.notification.txt", []byte("Subject: "+*n.Subject+"\n\n"+*n.Message))
}

func TestNotificationOfAnAbortedRun(t *testing.T) {
	h, _, _, tp := newHandlerTopic(records())
	wiretest.Golden(t, h.Handle, "report-aborted")
	if len(tp.published) != 1 {
		t.Fatalf("%d notifications, want 1", len(tp.published))
	}
	if got := *tp.published[0].Subject; got != "ec2patch ec2patch-dev run 2026-12-patch: ABORTED (2 patched, 1 failed)" {
		t.Errorf("subject %q", got)
	}
	wiretest.MatchFile(t, "report-aborted.notification.txt", []byte(*tp.published[0].Message))
}

func TestNotificationSubjectIsCut(t *testing.T) {
	rep := contract.Report{RunID: strings.Repeat("r", 120), Status: contract.StatusSucceeded}
	if subject, body := Notification("ec2patch-dev", rep, contract.ReportSummary{}); len(subject) != maxSubject || !strings.Contains(body, "every wave succeeded") {
		t.Errorf("subject of %d chars, body %q", len(subject), body)
	}
}

func TestRejectionReason(t *testing.T) {
	d := &contract.ApprovalDecision{Decision: contract.DecisionReject, Approver: "bob@example.com",
		DecidedAt: "2026-12-08T10:00:00Z", SourceIP: "203.0.113.9"}
	cases := []struct {
		name, reason string
		d            *contract.ApprovalDecision
		want         string
	}{
		{"rejected by an approver", "ApprovalRejected: null", d, "rejected by bob@example.com at 2026-12-08T10:00:00Z from 203.0.113.9"},
		{"timed out", "States.Timeout: ", nil, "no decision within the approval timeout (3600 s): a timeout is a rejection"},
		{"request failed", "Lambda.ServiceException: boom", nil, "Lambda.ServiceException: boom"},
	}
	for _, tc := range cases {
		if got := rejectionReason(tc.reason, tc.d, 3600); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestRunsCompletedMetric(t *testing.T) {
	h, _, _, _ := newHandlerTopic(records())
	var buf bytes.Buffer
	h.Metrics = emf.New(&buf, "ec2patch-dev", nil)
	wiretest.Golden(t, h.Handle, "report-aborted")
	line := bytes.TrimSpace(buf.Bytes())
	if err := emf.Validate(line); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	var doc map[string]any
	if err := json.Unmarshal(line, &doc); err != nil {
		t.Fatal(err)
	}
	if doc[contract.MetricRunsCompleted] != 1.0 || doc[contract.DimStatus] != contract.StatusAborted {
		t.Errorf("metric line %s: want RunsCompleted 1 with Status ABORTED", line)
	}
	if bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Errorf("%d metric lines, want 1", bytes.Count(buf.Bytes(), []byte("\n")))
	}
}

// downBucket is S3 during an outage: every PutObject fails with a 503.
type downBucket struct{ calls int }

func (d *downBucket) PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	d.calls++
	return nil, &smithy.GenericAPIError{Code: "ServiceUnavailable", Message: "Service is unable to handle request."}
}

// An S3 outage when the report is written must not lose the run's result:
// the RUN record is finished first, and the error is one the state
// machine retries, naming the write.
func TestS3OutageKeepsTheResultAndIsRetried(t *testing.T) {
	h, runs, _ := newHandler(records())
	down := &downBucket{}
	h.S3 = down
	req := contract.ReportRequest{Run: threeWaves(false), Cursor: contract.Cursor{Index: 1}}
	_, err := h.Handle(context.Background(), req)
	var transient *fault.Transient
	if !errors.As(err, &transient) || !strings.Contains(err.Error(), "reports/") {
		t.Fatalf("error %T %v, want Transient naming the report write", err, err)
	}
	if down.calls == 0 || runs.sum.Status == "" || runs.sum.RunID != req.Run.RunID {
		t.Errorf("%d PutObject calls, run record %+v: want the run finished in DynamoDB before the S3 write", down.calls, runs.sum)
	}
}
