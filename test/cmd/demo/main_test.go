package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/test/fleet"
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
