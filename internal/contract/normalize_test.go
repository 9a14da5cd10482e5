package contract_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2patch/ec2patch/internal/contract"
)

func defaults() contract.RunDefaults {
	return contract.RunDefaults{
		PollIntervalSeconds: 15, WavePauseSeconds: 0, AbortOnIssues: true, MaxWaveConcurrency: 5,
		SSMMaxConcurrency: "10%", SSMMaxErrors: "1%", CommandTimeoutSeconds: 3600,
		FailureThresholdPercent: 0, TagFilters: map[string]string{"PatchGroup": "default"},
		ApprovalTimeoutSeconds: 3600, ReconcileIntervalSeconds: 300,
	}
}

func plan() []contract.WaveInput {
	yes := true
	return []contract.WaveInput{
		{WaveID: "wave1-critical", Accounts: []string{"222222222222"}, Regions: []string{"us-east-1"}},
		{WaveID: "wave2", Accounts: []string{"333333333333"}, Regions: []string{"us-east-1", "us-west-2"}, Approval: &yes},
	}
}

func TestNormalizeSeedShorthand(t *testing.T) {
	raw := `{"waveId": "wave1-critical", "dryRun": false, "accounts": ["111111111111"],
	  "regions": ["us-east-1"], "tagFilters": {"PatchGroup": "default"}}`
	run, err := contract.Normalize([]byte(raw), defaults(), plan(), "manual-patch-1700000000", "2026-11-29T10:00:00Z")
	require.NoError(t, err)
	assert.Equal(t, "manual-patch-1700000000", run.RunID, "runId defaults to the execution name")
	assert.Equal(t, contract.OperationInstall, run.Operation)
	assert.Equal(t, contract.RebootIfNeeded, run.RebootOption)
	assert.Equal(t, 15, run.PollIntervalSeconds)
	assert.Equal(t, 3600/15+2, run.MaxPollAttempts)
	require.Len(t, run.Waves, 1)
	w := run.Waves[0]
	assert.Equal(t, "wave1-critical", w.WaveID)
	assert.Equal(t, []string{"111111111111"}, w.Accounts)
	assert.Equal(t, 5, w.MaxConcurrency, "wave concurrency defaults to max_wave_concurrency")
	assert.Equal(t, "10%", w.SSMMaxConcurrency)
	assert.Equal(t, 1, w.TargetCount)
	assert.Equal(t, "runs/manual-patch-1700000000/targets/wave1-critical.json", w.TargetsKey)
	assert.Equal(t, []contract.TargetRef{{Account: "111111111111", Region: "us-east-1"}}, w.Targets())
}

func TestNormalizeFullForm(t *testing.T) {
	raw := `{"runId": "2026-12-patch", "dryRun": false, "operation": "Install",
	 "rebootOption": "NoReboot", "abortOnIssues": false, "wavePauseSeconds": 30,
	 "pollIntervalSeconds": 1,
	 "waves": [{"waveId": "canary", "accounts": ["111111111111", "222222222222"], "regions": ["us-east-1", "eu-west-1"],
	            "tagFilters": {"PatchGroup": "canary"}, "approval": true, "maxConcurrency": 2,
	            "ssmMaxConcurrency": "3", "ssmMaxErrors": "0", "failureThresholdPercent": 12.5}]}`
	run, err := contract.Normalize([]byte(raw), defaults(), plan(), "exec", "t0")
	require.NoError(t, err)
	assert.Equal(t, "2026-12-patch", run.RunID)
	assert.Equal(t, contract.NoReboot, run.RebootOption)
	assert.False(t, run.AbortOnIssues)
	assert.Equal(t, 30, run.WavePauseSeconds)
	assert.Equal(t, 1, run.PollIntervalSeconds)
	assert.Equal(t, 3602, run.MaxPollAttempts)
	w := run.Waves[0]
	assert.True(t, w.Approval)
	assert.Equal(t, 2, w.MaxConcurrency)
	assert.Equal(t, "3", w.SSMMaxConcurrency)
	assert.Equal(t, "0", w.SSMMaxErrors)
	assert.Equal(t, 12.5, w.FailureThresholdPercent)
	assert.Equal(t, map[string]string{"PatchGroup": "canary"}, w.TagFilters)
	assert.Equal(t, 4, w.TargetCount)
	assert.Equal(t, 1, run.WaveCount)
	assert.Equal(t, 3600, run.ApprovalTimeoutSeconds)
	assert.Equal(t, 3600, run.CommandTimeoutSeconds)
	assert.Equal(t, 3600+2*300, run.AwaitTimeoutSeconds, "the await task outlives two reconciles past the command timeout")
	assert.Equal(t, []string{}, w.HaltAlarms, "no halt alarms is an empty list, never null")
}

func TestNormalizeGates(t *testing.T) {
	raw := `{"approvalTimeoutSeconds": 5, "waves": [{"waveId": "w", "accounts": ["111111111111"], "regions": ["us-east-1"],
	  "approval": true, "haltAlarms": ["payments-5xx", "fleet-health"]}]}`
	run, err := contract.Normalize([]byte(raw), defaults(), plan(), "x", "t0")
	require.NoError(t, err)
	assert.Equal(t, 5, run.ApprovalTimeoutSeconds)
	assert.True(t, run.Waves[0].Approval)
	assert.Equal(t, []string{"payments-5xx", "fleet-health"}, run.Waves[0].HaltAlarms)
}

func TestNormalizeDryRunScansAndNeverReboots(t *testing.T) {
	run, err := contract.Normalize([]byte(`{"dryRun": true, "rebootOption": "RebootIfNeeded"}`), defaults(), plan(), "x", "t0")
	require.NoError(t, err)
	assert.True(t, run.DryRun)
	assert.Equal(t, contract.OperationScan, run.Operation)
	assert.Equal(t, contract.NoReboot, run.RebootOption)
}

func TestNormalizeScanOperationIsADryRun(t *testing.T) {
	run, err := contract.Normalize([]byte(`{"operation": "Scan"}`), defaults(), plan(), "x", "t0")
	require.NoError(t, err)
	assert.True(t, run.DryRun)
	assert.Equal(t, contract.NoReboot, run.RebootOption)
}

func TestNormalizeEmptyInputRunsThePlan(t *testing.T) {
	run, err := contract.Normalize([]byte(`{}`), defaults(), plan(), "scheduled-run", "t0")
	require.NoError(t, err)
	require.Len(t, run.Waves, 2)
	assert.Equal(t, []int{0, 1}, []int{run.Waves[0].Index, run.Waves[1].Index})
	assert.True(t, run.Waves[1].Approval)
	assert.Equal(t, map[string]string{"PatchGroup": "default"}, run.Waves[0].TagFilters, "plan waves take the default tag filters")
	assert.Equal(t, 2, run.Waves[1].TargetCount)
}

func TestNormalizeWaveIDAloneSelectsAPlannedWave(t *testing.T) {
	run, err := contract.Normalize([]byte(`{"waveId": "wave2"}`), defaults(), plan(), "x", "t0")
	require.NoError(t, err)
	require.Len(t, run.Waves, 1)
	assert.Equal(t, []string{"333333333333"}, run.Waves[0].Accounts)
	assert.True(t, run.Waves[0].Approval)
	assert.Equal(t, 0, run.Waves[0].Index)
}

func TestNormalizeExecutionNameBecomesASafeRunID(t *testing.T) {
	run, err := contract.Normalize([]byte(`{}`), defaults(), plan(), "patch:2026.12/a b", "t0")
	require.NoError(t, err)
	assert.Equal(t, "patch-2026-12-a-b", run.RunID)
}

// problems returns the problems of a failed Normalize.
func problems(t *testing.T, raw string) []string {
	t.Helper()
	_, err := contract.Normalize([]byte(raw), defaults(), plan(), "x", "t0")
	require.Error(t, err, raw)
	var ve *contract.ValidationError
	require.True(t, errors.As(err, &ve), "want a ValidationError, got %T", err)
	return ve.Problems
}

func TestNormalizeRejects(t *testing.T) {
	cases := []struct {
		name, input, field string
	}{
		{"unknown field", `{"waveIds": "w"}`, "waveIds: unknown field"},
		{"nested unknown field", `{"waves": [{"waveId": "w", "accounts": ["111111111111"], "regions": ["us-east-1"], "maxConcurency": 3}]}`, "waves[0].maxConcurency: unknown field"},
		{"wrong type", `{"dryRun": "yes"}`, "dryRun: got a JSON string, want true or false"},
		{"wrong nested type", `{"waves": [{"waveId": "w", "accounts": ["111111111111"], "regions": ["us-east-1"], "maxConcurrency": "5"}]}`, "waves.maxConcurrency"},
		{"not an object", `["a"]`, "must be a JSON object"},
		{"null", `null`, "input is empty"},
		{"trailing data", `{} {}`, "data after the JSON object"},
		{"11-digit account", `{"waveId": "w", "accounts": ["11111111111"], "regions": ["us-east-1"]}`, "accounts[0]: \"11111111111\" is not a 12-digit"},
		{"unknown region", `{"waveId": "w", "accounts": ["111111111111"], "regions": ["us-east-9"]}`, "regions[0]: \"us-east-9\" is not an AWS region"},
		{"bad operation", `{"operation": "Patch"}`, "operation"},
		{"install on a dry run", `{"operation": "Install", "dryRun": true}`, "operation"},
		{"bad reboot option", `{"rebootOption": "Always"}`, "rebootOption"},
		{"negative poll interval", `{"pollIntervalSeconds": -1}`, "pollIntervalSeconds"},
		{"zero poll interval", `{"pollIntervalSeconds": 0}`, "pollIntervalSeconds"},
		{"negative pause", `{"wavePauseSeconds": -5}`, "wavePauseSeconds"},
		{"bad run ID", `{"runId": "a/b"}`, "runId"},
		{"150%", `{"waves": [{"waveId": "w", "accounts": ["111111111111"], "regions": ["us-east-1"], "ssmMaxConcurrency": "150%"}]}`, "waves[0].ssmMaxConcurrency"},
		{"bad max errors", `{"waves": [{"waveId": "w", "accounts": ["111111111111"], "regions": ["us-east-1"], "ssmMaxErrors": "ten"}]}`, "waves[0].ssmMaxErrors"},
		{"threshold over 100", `{"waves": [{"waveId": "w", "accounts": ["111111111111"], "regions": ["us-east-1"], "failureThresholdPercent": 101}]}`, "waves[0].failureThresholdPercent"},
		{"zero concurrency", `{"waves": [{"waveId": "w", "accounts": ["111111111111"], "regions": ["us-east-1"], "maxConcurrency": 0}]}`, "waves[0].maxConcurrency"},
		{"duplicate wave IDs", `{"waves": [{"waveId": "w", "accounts": ["111111111111"], "regions": ["us-east-1"]}, {"waveId": "w", "accounts": ["222222222222"], "regions": ["us-east-1"]}]}`, "waves[1].waveId"},
		{"account-region in two waves", `{"waves": [{"waveId": "a", "accounts": ["111111111111"], "regions": ["us-east-1"]}, {"waveId": "b", "accounts": ["111111111111"], "regions": ["us-east-1"]}]}`, "waves[1].accounts"},
		{"empty tag key", `{"waves": [{"waveId": "w", "accounts": ["111111111111"], "regions": ["us-east-1"], "tagFilters": {"": "x"}}]}`, "empty tag key"},
		{"empty tag value", `{"waves": [{"waveId": "w", "accounts": ["111111111111"], "regions": ["us-east-1"], "tagFilters": {"PatchGroup": ""}}]}`, "waves[0].tagFilters.PatchGroup"},
		{"empty wave", `{"waves": [{"waveId": "w", "accounts": [], "regions": []}]}`, "waves[0].accounts"},
		{"both forms", `{"waveId": "x", "waves": [{"waveId": "w", "accounts": ["111111111111"], "regions": ["us-east-1"]}]}`, "waves: give either"},
		{"unknown planned wave", `{"waveId": "nope"}`, "waveId"},
		{"zero approval timeout", `{"approvalTimeoutSeconds": 0}`, "approvalTimeoutSeconds"},
		{"too many halt alarms", `{"waves": [{"waveId": "w", "accounts": ["111111111111"], "regions": ["us-east-1"], "haltAlarms": ["a","b","c","d","e","f","g","h","i","j","k"]}]}`, "waves[0].haltAlarms: lists 11 alarms"},
		{"empty halt alarm", `{"waves": [{"waveId": "w", "accounts": ["111111111111"], "regions": ["us-east-1"], "haltAlarms": [""]}]}`, "waves[0].haltAlarms[0]"},
		{"duplicate halt alarm", `{"waves": [{"waveId": "w", "accounts": ["111111111111"], "regions": ["us-east-1"], "haltAlarms": ["a", "a"]}]}`, "waves[0].haltAlarms[1]"},
		{"duplicate account", `{"waveId": "w", "accounts": ["111111111111", "111111111111"], "regions": ["us-east-1"]}`, "accounts[1]: account 111111111111 is listed twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := problems(t, tc.input)
			assert.True(t, containsSubstring(got, tc.field), "want a problem mentioning %q, got %q", tc.field, got)
		})
	}
}

func TestNormalizeReportsEveryProblemAtOnce(t *testing.T) {
	got := problems(t, `{"runId": "a b", "pollIntervalSeconds": 0, "waves": [
	  {"waveId": "w", "accounts": ["1"], "regions": ["mars-1"], "ssmMaxErrors": "200%"}]}`)
	assert.GreaterOrEqual(t, len(got), 5, "%q", got)
}

func TestNormalizeRejectsAWaveOf10000Accounts(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"waveId": "big", "regions": ["us-east-1"], "accounts": [`)
	for i := 0; i < 10000; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"` + padAccount(i) + `"`)
	}
	b.WriteString("]}")
	got := problems(t, b.String())
	assert.True(t, containsSubstring(got, "accounts: lists 10000 accounts"), "%q", got)
}

func padAccount(i int) string {
	s := "000000000000" + itoa(i)
	return s[len(s)-12:]
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var d []byte
	for ; i > 0; i /= 10 {
		d = append([]byte{byte('0' + i%10)}, d...)
	}
	return string(d)
}

func containsSubstring(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
