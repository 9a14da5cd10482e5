package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ec2patch/ec2patch/internal/contract"
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
		Waves: map[string]store.WaveRecord{
			"wave1": {Index: 0, Verdict: contract.WaveVerdict{WaveID: "wave1", Status: contract.StatusSucceeded, Counts: t1.Counts},
				Targets: []contract.TargetResult{t1}},
			"wave2": {Index: 1, Verdict: contract.WaveVerdict{WaveID: "wave2", Status: contract.StatusFailed,
				Reason: "1 target(s) failed: 333333333333/us-west-2", Counts: t2.Counts},
				Targets: []contract.TargetResult{t2, t3}},
		},
	}
}

func newHandler(rr store.RunRecords) (*Handler, *fakeRuns, bucket) {
	runs, b := &fakeRuns{}, bucket{}
	return &Handler{Records: fakeRecords{rr}, Runs: runs, S3: b, Bucket: "hub-reports", Log: logx.New(io.Discard),
		Now: func() time.Time { return time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) }}, runs, b
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
	s, f, n, r := contract.StatusSucceeded, contract.StatusFailed, contract.StatusNotStarted, contract.StatusRejected
	cases := []struct {
		statuses []string
		abort    bool
		want     string
	}{
		{[]string{s, s}, true, contract.StatusSucceeded},
		{[]string{s, f, n}, true, contract.StatusAborted},
		{[]string{s, f, n}, false, contract.StatusFailed},
		{[]string{s, f, s}, true, contract.StatusFailed},
		{[]string{s, r, n}, true, contract.StatusRejected},
	}
	for _, c := range cases {
		if got := runStatus(c.statuses, c.abort); got != c.want {
			t.Errorf("runStatus(%v, %v) = %s, want %s", c.statuses, c.abort, got, c.want)
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
