package contract_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ec2patch/ec2patch/internal/contract"
)

func wave(threshold float64, accounts ...string) contract.Wave {
	return contract.Wave{WaveID: "w", Accounts: accounts, Regions: []string{"us-east-1"}, FailureThresholdPercent: threshold}
}

func target(account, status string, c contract.Counts) contract.TargetResult {
	return contract.TargetResult{Account: account, Region: "us-east-1", Status: status, Counts: c}
}

func TestJudgeWave(t *testing.T) {
	cases := []struct {
		name      string
		threshold float64
		recorded  []contract.TargetResult
		want      string
	}{
		{"all patched", 0, []contract.TargetResult{
			target("111111111111", contract.StatusSucceeded, contract.Counts{Patched: 10}),
			target("222222222222", contract.StatusSucceeded, contract.Counts{Patched: 5, Skipped: 2})}, contract.StatusSucceeded},
		{"one failure over a zero threshold", 0, []contract.TargetResult{
			target("111111111111", contract.StatusSucceeded, contract.Counts{Patched: 9, Failed: 1}),
			target("222222222222", contract.StatusSucceeded, contract.Counts{Patched: 10})}, contract.StatusFailed},
		{"one timeout over a zero threshold", 0, []contract.TargetResult{
			target("111111111111", contract.StatusSucceeded, contract.Counts{Patched: 9, TimedOut: 1}),
			target("222222222222", contract.StatusSucceeded, contract.Counts{Patched: 10})}, contract.StatusFailed},
		{"failures exactly at the threshold pass", 10, []contract.TargetResult{
			target("111111111111", contract.StatusSucceeded, contract.Counts{Patched: 9, Failed: 1}),
			target("222222222222", contract.StatusSucceeded, contract.Counts{Patched: 10})}, contract.StatusSucceeded},
		{"failures plus timeouts over the threshold fail", 10, []contract.TargetResult{
			target("111111111111", contract.StatusSucceeded, contract.Counts{Patched: 7, Failed: 2, TimedOut: 1}),
			target("222222222222", contract.StatusSucceeded, contract.Counts{Patched: 9, Failed: 1})}, contract.StatusFailed},
		{"skipped instances are not targeted", 0, []contract.TargetResult{
			target("111111111111", contract.StatusSucceeded, contract.Counts{Patched: 1, Skipped: 50}),
			target("222222222222", contract.StatusSkipped, contract.Counts{Skipped: 3})}, contract.StatusSucceeded},
		{"a failed target fails the wave at any threshold", 100, []contract.TargetResult{
			target("111111111111", contract.StatusFailed, contract.Counts{}),
			target("222222222222", contract.StatusSucceeded, contract.Counts{Patched: 10})}, contract.StatusFailed},
		{"a missing target result fails the wave", 100, []contract.TargetResult{
			target("111111111111", contract.StatusSucceeded, contract.Counts{Patched: 10})}, contract.StatusFailed},
		{"nothing to patch succeeds", 0, []contract.TargetResult{
			target("111111111111", contract.StatusSkipped, contract.Counts{}),
			target("222222222222", contract.StatusSkipped, contract.Counts{})}, contract.StatusSucceeded},
		{"scanned instances count as targeted", 0, []contract.TargetResult{
			target("111111111111", contract.StatusSucceeded, contract.Counts{Scanned: 4, Failed: 1}),
			target("222222222222", contract.StatusSucceeded, contract.Counts{Scanned: 5})}, contract.StatusFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, results := contract.JudgeWave(wave(tc.threshold, "111111111111", "222222222222"), tc.recorded)
			assert.Equal(t, tc.want, v.Status, v.Reason)
			assert.Len(t, results, 2, "one result per manifest target")
			if tc.want == contract.StatusFailed {
				assert.NotEmpty(t, v.Reason, "a failed wave says why")
			}
		})
	}
}

func TestJudgeWaveNamesTheMissingTarget(t *testing.T) {
	v, results := contract.JudgeWave(wave(0, "111111111111", "222222222222"), nil)
	assert.Equal(t, contract.StatusFailed, v.Status)
	assert.Contains(t, v.Reason, "111111111111/us-east-1")
	assert.Equal(t, contract.ReasonNoResult, results[1].Reason)
}

func TestJudgeWaveIgnoresRecordsOutsideTheManifest(t *testing.T) {
	v, results := contract.JudgeWave(wave(0, "111111111111"), []contract.TargetResult{
		target("111111111111", contract.StatusSucceeded, contract.Counts{Patched: 1}),
		target("999999999999", contract.StatusFailed, contract.Counts{Failed: 9})})
	assert.Equal(t, contract.StatusSucceeded, v.Status)
	assert.Len(t, results, 1)
	assert.Equal(t, contract.Counts{Patched: 1}, v.Counts)
}

func TestRunStatus(t *testing.T) {
	cases := []struct {
		waves []string
		want  string
	}{
		{nil, contract.StatusSucceeded},
		{[]string{contract.StatusSucceeded, contract.StatusSucceeded}, contract.StatusSucceeded},
		{[]string{contract.StatusSucceeded, contract.StatusFailed, contract.StatusSucceeded}, contract.StatusFailed},
		{[]string{contract.StatusFailed, contract.StatusRejected, contract.StatusNotStarted}, contract.StatusRejected},
		{[]string{contract.StatusSucceeded, contract.StatusAborted, contract.StatusNotStarted}, contract.StatusAborted},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, contract.RunStatus(tc.waves), "%v", tc.waves)
	}
}

func TestCounts(t *testing.T) {
	c := contract.Count([]contract.InstanceResult{
		{Status: contract.InstancePatched}, {Status: contract.InstancePatched}, {Status: contract.InstanceFailed},
		{Status: contract.InstanceTimedOut}, {Status: contract.InstanceSkipped}, {Status: contract.InstanceScanned}})
	assert.Equal(t, contract.Counts{Patched: 2, Scanned: 1, Failed: 1, TimedOut: 1, Skipped: 1}, c)
	assert.Equal(t, 5, c.Targeted())
	assert.Equal(t, contract.Counts{Patched: 4, Scanned: 2, Failed: 2, TimedOut: 2, Skipped: 2}, c.Add(c))
}

func TestApplyAlarms(t *testing.T) {
	ok := contract.WaveVerdict{WaveID: "w", Status: contract.StatusSucceeded}
	assert.Equal(t, ok, contract.ApplyAlarms(ok, nil))
	assert.Equal(t, ok, contract.ApplyAlarms(ok, &contract.AlarmCheck{Firing: false}))
	got := contract.ApplyAlarms(ok, &contract.AlarmCheck{Firing: true, Alarms: []string{"a"}, Reason: "halt alarm a is in ALARM"})
	assert.Equal(t, contract.StatusFailed, got.Status)
	assert.True(t, got.Halt)
	assert.Equal(t, "halt alarm a is in ALARM", got.Reason)
	failed := contract.WaveVerdict{WaveID: "w", Status: contract.StatusFailed, Reason: "1 target(s) failed"}
	got = contract.ApplyAlarms(failed, &contract.AlarmCheck{Firing: true, Reason: "halt alarm a is in ALARM"})
	assert.Equal(t, "halt alarm a is in ALARM; 1 target(s) failed", got.Reason)
}
