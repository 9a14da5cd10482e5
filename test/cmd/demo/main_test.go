package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/test/fleet"
	"github.com/ec2patch/ec2patch/test/proxy"
)

func sampleReport() (*contract.Report, fleet.Expectation) {
	counts := contract.Counts{Patched: 3, Skipped: 1}
	r := &contract.Report{RunID: "r1", Status: contract.StatusFailed, Operation: contract.OperationInstall, Totals: counts,
		Waves: []contract.WaveReport{{WaveID: "w1", Status: contract.StatusFailed, Counts: counts, Targets: []contract.TargetResult{
			{Account: "222222222222", Region: "us-east-1", Status: contract.StatusSucceeded, Counts: counts},
			{Account: "555555555555", Region: "us-east-1", Status: contract.StatusFailed, Reason: "AccessDenied: role missing"},
		}}}}
	exp := fleet.Expectation{Status: contract.StatusFailed, Totals: counts, Waves: []fleet.WaveExpectation{{
		WaveID: "w1", Status: contract.StatusFailed, Counts: counts, Targets: []fleet.TargetExpectation{
			{Account: "222222222222", Region: "us-east-1", Status: contract.StatusSucceeded, Counts: counts},
			{Account: "555555555555", Region: "us-east-1", Status: contract.StatusFailed, ReasonContains: "AccessDenied"},
		}}}}
	return r, exp
}

func TestPrintReportSaysWhetherTheFleetMatches(t *testing.T) {
	r, exp := sampleReport()
	var out bytes.Buffer
	printReport(&out, r, exp)
	if !strings.Contains(out.String(), "the report matches") || !strings.Contains(out.String(), "555555555555") {
		t.Errorf("matching report:\n%s", out.String())
	}

	r.Waves[0].Targets[0].Counts.Patched = 2
	out.Reset()
	printReport(&out, r, exp)
	if !strings.Contains(out.String(), "DOES NOT match") {
		t.Errorf("mismatching report:\n%s", out.String())
	}
}

func TestPrintUnstartedSaysWhetherCallsReachedTheWave(t *testing.T) {
	r := &contract.Report{Waves: []contract.WaveReport{
		{WaveID: "wave1", Status: contract.StatusSucceeded, Targets: []contract.TargetResult{{Account: "222222222222"}}},
		{WaveID: "wave2", Status: contract.StatusRejected, Targets: []contract.TargetResult{}},
		{WaveID: "wave3", Status: contract.StatusNotStarted, Targets: []contract.TargetResult{}},
	}}
	run := contract.Run{Waves: []contract.Wave{{WaveID: "wave1", Accounts: []string{"222222222222"}},
		{WaveID: "wave2", Accounts: []string{"333333333333"}}, {WaveID: "wave3", Accounts: []string{"444444444444"}}}}
	calls := []proxy.Call{{Account: "222222222222", Service: "ssm", Action: "SendCommand"},
		{Account: "333333333333", Service: "ec2", Action: "DescribeInstances"},
		{Account: "444444444444", Service: "ssm", Action: "SendCommand"}}
	var out bytes.Buffer
	printUnstarted(&out, r, run, calls)
	got := out.String()
	if !strings.Contains(got, "wave wave2 REJECTED (accounts 333333333333): no command; its approval preview made 1 read-only calls") ||
		!strings.Contains(got, "wave wave3 NOT_STARTED (accounts 444444444444): 1 SendCommand and 0 other calls reached") ||
		strings.Contains(got, "wave wave1") {
		t.Errorf("printUnstarted:\n%s", got)
	}
}

type ledger map[string][]contract.LedgerEntry

func (l ledger) InstanceHistory(_ context.Context, account, region, id string, limit int) ([]contract.LedgerEntry, error) {
	rows := l[contract.LedgerPK(account, region, id)]
	return rows[:min(limit, len(rows))], nil
}

func TestTheDemoEndsWithWhereTheRecordWentTheLedgerAndASummary(t *testing.T) {
	r, _ := sampleReport()
	r.Waves[0].Targets[0].Instances = []contract.InstanceResult{{InstanceID: "i-good", Status: contract.InstancePatched},
		{InstanceID: "i-bad", Status: contract.InstanceFailed, Reason: "command Failed"}}
	l := ledger{
		contract.LedgerPK("222222222222", "us-east-1", "i-good"): {{InstanceID: "i-good", Account: "222222222222", Region: "us-east-1",
			Status: contract.InstancePatched, RunID: "r1", WaveID: "w1", CommandID: "cmd-1", At: "2026-12-09T10:20:00Z"}},
		contract.LedgerPK("222222222222", "us-east-1", "i-bad"): {{InstanceID: "i-bad", Account: "222222222222", Region: "us-east-1",
			Status: contract.InstanceFailed, Reason: "command Failed", RunID: "r1", WaveID: "w1", CommandID: "cmd-1", At: "2026-12-09T10:20:00Z"}},
	}
	var out bytes.Buffer
	printWhere(&out, &contract.ReportSummary{ReportURI: "s3://b/reports/r1/report.json", CSVURI: "s3://b/reports/r1/report.csv"}, "state")
	if err := printLedger(context.Background(), &out, l, r); err != nil {
		t.Fatal(err)
	}
	if err := printSummary(&out, r); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"s3://b/reports/r1/report.json", "s3://b/reports/r1/report.csv", "INSTANCE#<account>#<region>#<instanceId>",
		"i-good    222222222222  us-east-1  PATCHED  2026-12-09T10:20:00Z  r1   w1    cmd-1    -",
		"i-bad     222222222222  us-east-1  FAILED   2026-12-09T10:20:00Z  r1   w1    cmd-1    command Failed",
		"WAVE   STATUS  PATCHED  FAILED  TIMED OUT  SKIPPED", "w1     FAILED  3        0       0          1",
		"TOTAL  FAILED  3        0       0          1"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}
