package contract_test

import (
	"encoding/json"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2patch/ec2patch/internal/contract"
)

// The ItemSelector is built from TargetInputFields; the handlers decode
// TargetInput. Both must name the same fields.
func TestTargetInputFieldsCoverTargetInput(t *testing.T) {
	raw, err := json.Marshal(contract.TargetInput{})
	require.NoError(t, err)
	var asMap map[string]any
	require.NoError(t, json.Unmarshal(raw, &asMap))
	var want, got []string
	for k := range asMap {
		want = append(want, k)
	}
	for _, f := range contract.TargetInputFields() {
		got = append(got, f.Field)
	}
	sort.Strings(want)
	sort.Strings(got)
	assert.Equal(t, want, got)
}

func TestRawJSONRoundTrip(t *testing.T) {
	var req contract.PrepareRequest
	require.NoError(t, json.Unmarshal([]byte(`{"input": {"waveId": "w", "x": [1, 2]}, "executionName": "e", "startTime": "t"}`), &req))
	assert.JSONEq(t, `{"waveId": "w", "x": [1, 2]}`, string(req.Input))
	out, err := json.Marshal(contract.PrepareRequest{ExecutionName: "e"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"input": null, "executionName": "e", "startTime": ""}`, string(out))
}
