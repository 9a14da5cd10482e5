package config_test

import (
	"fmt"
	"strings"
	"testing"
)

// badParams is one change to params/dev.json that Parse must refuse, with
// the field the refusal must name and, where there is one, the value it
// must quote.
type badParams struct {
	name   string
	change func(m map[string]any)
	// raw, if set, rewrites the encoded document instead.
	raw   func(doc string) string
	field string
	value string
}

func hubOf(m map[string]any) map[string]any   { return m["hub"].(map[string]any) }
func spokeOf(m map[string]any) map[string]any { return m["spoke"].(map[string]any) }
func waveOf(m map[string]any, i int) map[string]any {
	return m["waves"].([]any)[i].(map[string]any)
}

func accounts(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%012d", 100000000000+i)
	}
	return ids
}

func TestBadParamsAreRefusedNamingTheField(t *testing.T) {
	cases := []badParams{
		// Wrong types and unknown or miscased fields.
		{name: "name_prefix given as a number", change: func(m map[string]any) { hubOf(m)["name_prefix"] = 7 },
			field: "hub.name_prefix", value: "JSON number"},
		{name: "abort_on_issues given as a string", change: func(m map[string]any) { hubOf(m)["abort_on_issues"] = "yes" },
			field: "hub.abort_on_issues", value: "JSON string"},
		{name: "waves given as an object", change: func(m map[string]any) { m["waves"] = map[string]any{} },
			field: "waves", value: "JSON object"},
		{name: "unknown hub field", change: func(m map[string]any) { hubOf(m)["poll_intervall_seconds"] = 5 },
			field: "hub.poll_intervall_seconds", value: "unknown field"},
		{name: "unknown alarm field", change: func(m map[string]any) { hubOf(m)["alarms"].(map[string]any)["patch_failure"] = 5 },
			field: "hub.alarms.patch_failure", value: "unknown field"},
		{name: "unknown wave field", change: func(m map[string]any) { waveOf(m, 1)["approved"] = true },
			field: "waves[1].approved", value: "unknown field"},
		{name: "field name in the wrong case", change: func(m map[string]any) { spokeOf(m)["Role_Name"] = "X" },
			field: "spoke.Role_Name", value: "role_name"},
		// Accounts and regions.
		{name: "11-digit account", change: func(m map[string]any) { m["account"] = "12345678901" },
			field: "account", value: "12345678901"},
		{name: "13-digit hub account", change: func(m map[string]any) { spokeOf(m)["hub_account_id"] = "1234567890123" },
			field: "spoke.hub_account_id", value: "1234567890123"},
		{name: "13-digit wave account", change: func(m map[string]any) { waveOf(m, 2)["accounts"] = []string{"4444444444444"} },
			field: "waves[2].accounts[0]", value: "4444444444444"},
		{name: "unknown region", change: func(m map[string]any) { m["region"] = "us-east-9" },
			field: "region", value: "us-east-9"},
		{name: "unknown wave region", change: func(m map[string]any) { waveOf(m, 1)["regions"] = []string{"us-east-1", "mars-1"} },
			field: "waves[1].regions[1]", value: "mars-1"},
		// Rates, intervals, retention.
		{name: "150% concurrency", change: func(m map[string]any) { hubOf(m)["ssm_max_concurrency"] = "150%" },
			field: "hub.ssm_max_concurrency", value: "150%"},
		{name: "101% errors", change: func(m map[string]any) { hubOf(m)["ssm_max_errors"] = "101%" },
			field: "hub.ssm_max_errors", value: "101%"},
		{name: "zero concurrency in a wave", change: func(m map[string]any) { waveOf(m, 0)["ssmMaxConcurrency"] = "0" },
			field: "waves[0].ssmMaxConcurrency", value: `"0"`},
		{name: "150% failure threshold", change: func(m map[string]any) { hubOf(m)["failure_threshold_percent"] = 150 },
			field: "hub.failure_threshold_percent", value: "150"},
		{name: "negative poll interval", change: func(m map[string]any) { hubOf(m)["poll_interval_seconds"] = -1 },
			field: "hub.poll_interval_seconds", value: "-1"},
		{name: "negative wave pause", change: func(m map[string]any) { hubOf(m)["wave_pause_seconds"] = -5 },
			field: "hub.wave_pause_seconds", value: "-5"},
		{name: "negative reconcile interval", change: func(m map[string]any) { hubOf(m)["reconcile_interval_minutes"] = -5 },
			field: "hub.reconcile_interval_minutes", value: "-5"},
		{name: "negative alarm threshold", change: func(m map[string]any) { hubOf(m)["alarms"].(map[string]any)["patch_failures"] = -1 },
			field: "hub.alarms.patch_failures", value: "-1"},
		{name: "alarm period CloudWatch does not offer", change: func(m map[string]any) { hubOf(m)["alarms"].(map[string]any)["period_minutes"] = 7 },
			field: "hub.alarms.period_minutes", value: "7"},
		{name: "log retention CloudWatch does not offer", change: func(m map[string]any) { hubOf(m)["log_retention_days"] = 31 },
			field: "hub.log_retention_days", value: "31"},
		// Waves.
		{name: "empty waves", change: func(m map[string]any) { m["waves"] = []any{} },
			field: "waves", value: "at least one wave"},
		{name: "wave without accounts", change: func(m map[string]any) { delete(waveOf(m, 1), "accounts") },
			field: "waves[1].accounts", value: "at least one account"},
		{name: "duplicate wave IDs", change: func(m map[string]any) { waveOf(m, 2)["waveId"] = "wave2" },
			field: "waves[2].waveId", value: `"wave2"`},
		{name: "wave of 10,000 accounts", change: func(m map[string]any) { waveOf(m, 0)["accounts"] = accounts(10000) },
			field: "waves[0].accounts", value: "10000 accounts"},
		// Tag filters.
		{name: "default tag filter with an empty key", change: func(m map[string]any) { hubOf(m)["default_tag_filters"] = map[string]string{"": "x"} },
			field: "hub.default_tag_filters", value: "empty tag key"},
		{name: "no default tag filter", change: func(m map[string]any) { hubOf(m)["default_tag_filters"] = map[string]string{} },
			field: "hub.default_tag_filters", value: "at least one tag filter"},
		{name: "too-long tag value", change: func(m map[string]any) {
			waveOf(m, 0)["tagFilters"] = map[string]string{"PatchGroup": strings.Repeat("v", 300)}
		}, field: "waves[0].tagFilters.PatchGroup", value: "300 bytes"},
		// Spoke and hub must agree.
		{name: "external IDs differ", change: func(m map[string]any) { spokeOf(m)["external_id"] = "other-ext-id" },
			field: "spoke.external_id", value: "cross_account_external_id"},
		{name: "bad notification e-mail", change: func(m map[string]any) { hubOf(m)["notification_email"] = "ops@" },
			field: "hub.notification_email", value: "ops@"},
		// Documents that are not one JSON object.
		{name: "duplicate key", raw: func(doc string) string {
			return strings.Replace(doc, `{"account":`, `{"account":"999999999999","account":`, 1)
		}, field: "account", value: "twice"},
		{name: "trailing garbage", raw: func(doc string) string { return doc + ` {}` },
			field: "input", value: "after the JSON object"},
		{name: "JSON array", raw: func(doc string) string { return "[" + doc + "]" },
			field: "input", value: "JSON object"},
		{name: "invalid UTF-8", raw: func(doc string) string {
			return strings.Replace(doc, "ec2patch-dev", "ec2patch-d\xe9v", 1)
		}, field: "input", value: "UTF-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := devJSON(t)
			if tc.change != nil {
				tc.change(m)
			}
			doc := string(encode(t, m))
			if tc.raw != nil {
				doc = tc.raw(doc)
			}
			got := problemsOf(t, []byte(doc))
			for _, p := range got {
				if strings.HasPrefix(p, tc.field) && strings.Contains(p, tc.value) {
					return
				}
			}
			t.Errorf("no problem names %s with %q:\n%q", tc.field, tc.value, got)
		})
	}
	if len(cases) < 15 {
		t.Errorf("%d bad params; the issue asks for at least 15", len(cases))
	}
}
