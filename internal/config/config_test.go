package config_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2patch/ec2patch/internal/config"
	"github.com/ec2patch/ec2patch/params"
)

func devJSON(t *testing.T) map[string]any {
	t.Helper()
	raw, err := params.Files.ReadFile("dev.json")
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}

func encode(t *testing.T, m map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

func problemsOf(t *testing.T, data []byte) []string {
	t.Helper()
	_, err := config.Parse("params/test.json", data)
	require.Error(t, err)
	var ce *config.Error
	require.True(t, errors.As(err, &ce), "want *config.Error, got %T: %v", err, err)
	assert.Equal(t, "params/test.json", ce.File)
	return ce.Problems
}

func TestDevParams(t *testing.T) {
	p, err := config.Load(params.Files, "dev")
	require.NoError(t, err)
	assert.Equal(t, "ec2patch-dev", p.Hub.NamePrefix)
	assert.Equal(t, "PatchExecRole", p.Spoke.RoleName)
	// The plan's accounts and the extra one the emulator scenarios fix up.
	assert.Equal(t, []string{"222222222222", "333333333333", "444444444444", "555555555555"}, p.SpokeAccounts())
	assert.Equal(t, []string{"us-east-1", "us-west-2"}, p.SpokeRegions())
	d := p.RunDefaults()
	assert.Equal(t, 15, d.PollIntervalSeconds)
	assert.Equal(t, "10%", d.SSMMaxConcurrency)
	assert.Equal(t, map[string]string{"PatchGroup": "default"}, d.TagFilters)
}

func TestUnknownEnvironmentNamesTheKnownOnes(t *testing.T) {
	_, err := config.Load(params.Files, "staging")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"staging"`)
	assert.Contains(t, err.Error(), "dev, prod")
	_, err = config.Load(params.Files, "../etc")
	require.Error(t, err)
}

func TestUnknownFieldIsRejected(t *testing.T) {
	m := devJSON(t)
	m["hub"].(map[string]any)["poll_intervall_seconds"] = 5
	got := problemsOf(t, encode(t, m))
	assert.Equal(t, []string{"hub.poll_intervall_seconds: unknown field"}, got)
}

func TestWrongTypeNamesTheField(t *testing.T) {
	m := devJSON(t)
	m["hub"].(map[string]any)["max_wave_concurrency"] = "5"
	got := problemsOf(t, encode(t, m))
	require.Len(t, got, 1)
	assert.Contains(t, got[0], "hub.max_wave_concurrency")
}

func TestEveryProblemIsReportedAtOnce(t *testing.T) {
	m := devJSON(t)
	hub := m["hub"].(map[string]any)
	hub["name_prefix"] = "Bad Prefix"
	hub["poll_interval_seconds"] = 0
	hub["ssm_max_concurrency"] = "150%"
	hub["ssm_max_errors"] = "-1"
	hub["notification_email"] = "not-an-email"
	hub["log_retention_days"] = 31
	hub["artifact_bucket"] = "only-bucket"
	spoke := m["spoke"].(map[string]any)
	spoke["hub_account_id"] = "12345"
	spoke["external_id"] = "different"
	spoke["role_name"] = "bad role"
	waves := m["waves"].([]any)
	waves[1].(map[string]any)["waveId"] = "wave1-critical"
	waves[2].(map[string]any)["accounts"] = []string{"4444"}
	waves[2].(map[string]any)["regions"] = []string{"us-north-7"}
	waves[0].(map[string]any)["tagFilters"] = map[string]string{"": "x"}
	m["region"] = "moon-1"

	got := problemsOf(t, encode(t, m))
	for _, field := range []string{"region", "hub.name_prefix", "hub.poll_interval_seconds",
		"hub.ssm_max_concurrency", "hub.ssm_max_errors", "hub.notification_email",
		"hub.log_retention_days", "hub.artifact_key", "spoke.hub_account_id", "spoke.external_id",
		"spoke.role_name", "waves[1].waveId", "waves[2].accounts[0]", "waves[2].regions[0]",
		"waves[0].tagFilters"} {
		assert.True(t, hasPrefix(got, field+":"), "no problem reported for %s in %q", field, got)
	}
}

func TestErrorMessageNamesFileOnEveryLine(t *testing.T) {
	m := devJSON(t)
	m["account"] = "1"
	_, err := config.Parse("params/x.json", encode(t, m))
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.GreaterOrEqual(t, len(lines), 2)
	for _, l := range lines[1:] {
		assert.Contains(t, l, "params/x.json: ")
	}
}

func TestLoadFromAnotherFS(t *testing.T) {
	fsys := fstest.MapFS{"qa.json": {Data: []byte(`{"account": 1}`)}}
	_, err := config.Load(fsys, "qa")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "params/qa.json")
	assert.Contains(t, err.Error(), "account: got a JSON number, want a string")
}

func hasPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// Campaign problems reach Parse's error with the file and the field.
func TestCampaignProblemsReachParse(t *testing.T) {
	m := devJSON(t)
	m["campaigns"] = []any{map[string]any{"name": "x", "schedule": map[string]any{
		"patch_tuesday": map[string]any{"offset_days": 1, "time": "03:00"}, "timezone": "Mars/Olympus"}}}
	_, err := config.Parse("params/test.json", encode(t, m))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `params/test.json: campaigns[0].schedule.timezone: "Mars/Olympus" is not an IANA time zone`)
}
