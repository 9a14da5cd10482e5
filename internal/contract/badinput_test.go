package contract_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ec2patch/ec2patch/internal/contract"
)

// badRunInput is one run input Normalize must refuse, with the field the
// refusal must name and, where the input has one, the value it must quote.
type badRunInput struct {
	name  string
	input string
	field string
	value string
}

// oneWave is a valid full-form run input with extra fields in its one wave.
func oneWave(extra string) string {
	return `{"waves": [{"waveId": "w", "accounts": ["111111111111"], "regions": ["us-east-1"]` + extra + `}]}`
}

// accountList is n distinct 12-digit account IDs as a JSON list.
func accountList(n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf(`"%012d"`, 100000000000+i)
	}
	return "[" + strings.Join(ids, ",") + "]"
}

// nested is depth objects, each {"x": ...}, around a number.
func nested(depth int) string {
	return `{"runId": "deep", "x": ` + strings.Repeat(`{"x": `, depth) + "1" + strings.Repeat("}", depth+1)
}

// BadRunInputs are the run inputs every layer must refuse: Normalize here,
// the deployed orchestrator in test/e2e. Each names the field it breaks.
func badRunInputs() []badRunInput {
	regions21 := `["us-east-1","us-east-2","us-west-1","us-west-2","eu-west-1","eu-west-2","eu-west-3","eu-central-1",
	  "eu-north-1","eu-south-1","ap-south-1","ap-northeast-1","ap-northeast-2","ap-northeast-3","ap-southeast-1",
	  "ap-southeast-2","ca-central-1","sa-east-1","me-south-1","af-south-1","il-central-1"]`
	return []badRunInput{
		// Wrong types.
		{"bool given as a string", `{"dryRun": "yes"}`, "dryRun", "JSON string"},
		{"integer given as a string", `{"pollIntervalSeconds": "15"}`, "pollIntervalSeconds", "JSON string"},
		{"integer given as a fraction", `{"pollIntervalSeconds": 1.5}`, "pollIntervalSeconds", "1.5"},
		{"waves given as an object", `{"waves": {"waveId": "w"}}`, "waves", "JSON object"},
		{"accounts given as a string", `{"waveId": "w", "accounts": "111111111111", "regions": ["us-east-1"]}`, "accounts", "JSON string"},
		{"tag value given as a number", `{"tagFilters": {"PatchGroup": 1}}`, "tagFilters", "JSON number"},
		// Unknown fields, at every depth, and names in the wrong case.
		{"unknown field", `{"dryrunn": true}`, "dryrunn", "unknown field"},
		{"unknown field in a wave", oneWave(`, "maxConcurency": 3`), "waves[0].maxConcurency", "unknown field"},
		{"field name in the wrong case", `{"DryRun": true}`, "DryRun", "dryRun"},
		{"wave field name in the wrong case", oneWave(`, "WaveID": "x"`), "waves[0].WaveID", "waveId"},
		// Accounts and regions.
		{"11-digit account", `{"waveId": "w", "accounts": ["11111111111"], "regions": ["us-east-1"]}`, "accounts[0]", "11111111111"},
		{"13-digit account", `{"waveId": "w", "accounts": ["1111111111111"], "regions": ["us-east-1"]}`, "accounts[0]", "1111111111111"},
		{"account with a letter", `{"waves": [{"waveId": "w", "accounts": ["111111111111", "11111111111O"], "regions": ["us-east-1"]}]}`, "waves[0].accounts[1]", "11111111111O"},
		{"account with spaces", `{"waveId": "w", "accounts": [" 111111111111"], "regions": ["us-east-1"]}`, "accounts[0]", " 111111111111"},
		{"unknown region", `{"waveId": "w", "accounts": ["111111111111"], "regions": ["us-east-9"]}`, "regions[0]", "us-east-9"},
		{"region in capitals", `{"waves": [{"waveId": "w", "accounts": ["111111111111"], "regions": ["us-east-1", "US-EAST-1"]}]}`, "waves[0].regions[1]", "US-EAST-1"},
		{"region in capitals, shorthand", `{"waveId": "w", "accounts": ["111111111111"], "regions": ["US-EAST-1"]}`, "regions[0]", "US-EAST-1"},
		// SSM rates and thresholds.
		{"150% concurrency", oneWave(`, "ssmMaxConcurrency": "150%"`), "waves[0].ssmMaxConcurrency", "150%"},
		{"101% errors", oneWave(`, "ssmMaxErrors": "101%"`), "waves[0].ssmMaxErrors", "101%"},
		{"zero concurrency, which SSM refuses", oneWave(`, "ssmMaxConcurrency": "0"`), "waves[0].ssmMaxConcurrency", `"0"`},
		{"rate with a leading zero", oneWave(`, "ssmMaxErrors": "05%"`), "waves[0].ssmMaxErrors", "05%"},
		{"negative threshold", oneWave(`, "failureThresholdPercent": -1`), "waves[0].failureThresholdPercent", "-1"},
		{"map concurrency over the limit", oneWave(`, "maxConcurrency": 1001`), "waves[0].maxConcurrency", "1001"},
		// Intervals.
		{"negative poll interval", `{"pollIntervalSeconds": -1}`, "pollIntervalSeconds", "-1"},
		{"negative wave pause", `{"wavePauseSeconds": -30}`, "wavePauseSeconds", "-30"},
		{"wave pause over a week", `{"wavePauseSeconds": 604801}`, "wavePauseSeconds", "604801"},
		{"negative approval timeout", `{"approvalTimeoutSeconds": -1}`, "approvalTimeoutSeconds", "-1"},
		// Waves.
		{"empty wave list", `{"waves": []}`, "waves", "at least one wave"},
		{"empty account list", `{"accounts": []}`, "accounts", "at least one account"},
		{"empty account list for a planned wave", `{"waveId": "wave2", "accounts": []}`, "accounts", "at least one account"},
		{"wave without accounts", `{"waves": [{"waveId": "w", "regions": ["us-east-1"]}]}`, "waves[0].accounts", "at least one account"},
		{"wave without regions", `{"waves": [{"waveId": "w", "accounts": ["111111111111"]}]}`, "waves[0].regions", "at least one region"},
		{"null wave", `{"waves": [null]}`, "waves[0].waveId", `""`},
		{"duplicate wave IDs", `{"waves": [{"waveId": "w", "accounts": ["111111111111"], "regions": ["us-east-1"]},
		  {"waveId": "w", "accounts": ["222222222222"], "regions": ["us-east-1"]}]}`, "waves[1].waveId", `"w"`},
		{"account-region in two waves", `{"waves": [{"waveId": "a", "accounts": ["111111111111"], "regions": ["us-east-1"]},
		  {"waveId": "b", "accounts": ["111111111111"], "regions": ["us-east-1"]}]}`, "waves[1].accounts", "111111111111"},
		{"wave ID with a slash", `{"waves": [{"waveId": "a/b", "accounts": ["111111111111"], "regions": ["us-east-1"]}]}`, "waves[0].waveId", "a/b"},
		{"waves and the shorthand together", `{"waveId": "x", "waves": [{"waveId": "w", "accounts": ["111111111111"], "regions": ["us-east-1"]}]}`, "waves", "either"},
		{"planned wave that does not exist", `{"waveId": "wave9"}`, "waveId", "wave9"},
		{"51 waves", fiftyOneWaves(), "waves", "51 waves"},
		{"10,000 accounts in a wave", `{"waveId": "big", "regions": ["us-east-1"], "accounts": ` + accountList(10000) + `}`, "accounts", "10000 accounts"},
		{"21,000 account-regions in a run", `{"waveId": "wide", "regions": ` + regions21 + `, "accounts": ` + accountList(1000) + `}`, "waves", "21000"},
		// Tag filters.
		{"tag filter with an empty key", oneWave(`, "tagFilters": {"": "x"}`), "waves[0].tagFilters", "empty tag key"},
		{"tag filter with a blank key", oneWave(`, "tagFilters": {"  ": "x"}`), "waves[0].tagFilters", "empty tag key"},
		{"tag filter with an empty value", oneWave(`, "tagFilters": {"PatchGroup": ""}`), "waves[0].tagFilters.PatchGroup", "empty"},
		{"no tag filter at all", oneWave(`, "tagFilters": {}`), "waves[0].tagFilters", "at least one tag filter"},
		{"reserved tag key", oneWave(`, "tagFilters": {"aws:cloudformation:stack-name": "x"}`), "waves[0].tagFilters.aws:cloudformation:stack-name", "reserved"},
		{"too-long tag value", oneWave(`, "tagFilters": {"PatchGroup": "` + strings.Repeat("v", 257) + `"}`), "waves[0].tagFilters.PatchGroup", "257 bytes"},
		{"too-long tag key", oneWave(`, "tagFilters": {"` + strings.Repeat("k", 129) + `": "v"}`), "waves[0].tagFilters.kkkk", "not a valid tag key"},
		{"control character in a tag value", oneWave(`, "tagFilters": {"PatchGroup": "a\u0000b"}`), "waves[0].tagFilters.PatchGroup", `a\x00b`},
		// Halt alarms.
		{"too-long alarm name", oneWave(`, "haltAlarms": ["` + strings.Repeat("a", 256) + `"]`), "waves[0].haltAlarms[0]", "256 bytes"},
		// Operation, reboot option, run ID.
		{"Install with dryRun", `{"operation": "Install", "dryRun": true}`, "operation", "Install"},
		{"operation in lower case", `{"operation": "install"}`, "operation", "install"},
		{"bad rebootOption", `{"rebootOption": "Always"}`, "rebootOption", "Always"},
		{"run ID with a slash", `{"runId": "2026/12"}`, "runId", "2026/12"},
		{"run ID with a space", `{"runId": "a b"}`, "runId", "a b"},
		{"run ID of 65 characters", `{"runId": "` + strings.Repeat("r", 65) + `"}`, "runId", strings.Repeat("r", 65)},
		{"run ID with an accent", `{"runId": "été"}`, "runId", "été"},
		// Documents that are not one JSON object.
		{"JSON array", `[{"waveId": "w"}]`, "input", "JSON object"},
		{"JSON null", `null`, "input", "empty"},
		{"JSON string", `"wave1"`, "input", "JSON object"},
		{"empty document", ``, "input", "empty"},
		{"trailing garbage", `{"dryRun": true} rm -rf`, "input", "after the JSON object"},
		{"second object", `{}{"dryRun": false}`, "input", "after the JSON object"},
		{"truncated object", `{"runId": "a"`, "input", "EOF"},
		{"duplicate key", `{"dryRun": true, "dryRun": false}`, "dryRun", "twice"},
		{"duplicate key in a wave", oneWave(`, "waveId": "again"`), "waves[0].waveId", "twice"},
		{"duplicate key in the tag filters", oneWave(`, "tagFilters": {"PatchGroup": "a", "PatchGroup": "b"}`), "waves[0].tagFilters.PatchGroup", "twice"},
		{"deeply nested garbage", nested(200), "x", "unknown field"},
		{"nesting past the decoder's limit", nested(20000), "input", "depth"},
		{"invalid UTF-8", "{\"runId\": \"a\xffb\"}", "input", "UTF-8 at byte 12"},
		{"byte order mark", "\xef\xbb\xbf{}", "input", "JSON object"},
		{"300 KB input", `{"runId": "big", "waveId": "w", "regions": ["us-east-1"], "tagFilters": {"PatchGroup": "` +
			strings.Repeat("x", 300*1024) + `"}}`, "input", "at most 262144"},
		// planWaveIds comes with campaigns (issue 5).
		{"planWaveIds entry not in the plan", `{"planWaveIds": ["wave1-critical", "nope"]}`, "planWaveIds[1]", "nope"},
	}
}

func fiftyOneWaves() string {
	waves := make([]string, 51)
	for i := range waves {
		waves[i] = fmt.Sprintf(`{"waveId": "w%d", "accounts": ["%012d"], "regions": ["us-east-1"]}`, i, 100000000000+i)
	}
	return `{"waves": [` + strings.Join(waves, ",") + `]}`
}

func TestBadRunInputsAreRefusedNamingTheField(t *testing.T) {
	cases := badRunInputs()
	if len(cases) < 30 {
		t.Fatalf("%d bad inputs; the issue asks for at least 30", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := contract.Normalize([]byte(tc.input), defaults(), plan(), "exec", "t0")
			if err == nil {
				t.Fatalf("accepted %.200s", tc.input)
			}
			var ve *contract.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want a ValidationError, got %T: %v", err, err)
			}
			if !namesField(ve.Problems, tc.field, tc.value) {
				t.Errorf("no problem names %s with %q:\n%q", tc.field, tc.value, ve.Problems)
			}
			if n := len(err.Error()); n > 8<<10 {
				t.Errorf("the message is %d bytes: it becomes the execution's cause, keep it short", n)
			}
		})
	}
}

// namesField reports whether one problem starts with field and mentions
// value.
func namesField(problems []string, field, value string) bool {
	for _, p := range problems {
		if strings.HasPrefix(p, field) && strings.Contains(p, value) {
			return true
		}
	}
	return false
}

func TestAMessageListsAtMost25Problems(t *testing.T) {
	ids := make([]string, 40)
	for i := range ids {
		ids[i] = fmt.Sprintf(`"%d"`, i)
	}
	input := `{"waveId": "w", "regions": ["us-east-1"], "accounts": [` + strings.Join(ids, ",") + `]}`
	_, err := contract.Normalize([]byte(input), defaults(), plan(), "exec", "t0")
	var ve *contract.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a ValidationError, got %v", err)
	}
	if len(ve.Problems) != 40 {
		t.Errorf("%d problems, want all 40 kept", len(ve.Problems))
	}
	msg := err.Error()
	if !strings.Contains(msg, "40 problem(s)") || !strings.Contains(msg, "and 15 more") || strings.Contains(msg, "accounts[25]") {
		t.Errorf("message does not list 25 of 40 problems: %s", msg)
	}
}

func TestEmptyOrNullListsAreNotTheSame(t *testing.T) {
	// "waves": null is an omitted field (the plan runs); "waves": [] is a
	// mistake.
	if _, err := contract.Normalize([]byte(`{"waves": null}`), defaults(), plan(), "exec", "t0"); err != nil {
		t.Errorf("waves: null refused: %v", err)
	}
	if _, err := contract.Normalize([]byte(`{"waves": []}`), defaults(), plan(), "exec", "t0"); err == nil {
		t.Error("waves: [] accepted")
	}
}
