package contract_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2patch/ec2patch/internal/contract"
)

func tagKeyDefaults() contract.RunDefaults {
	d := defaults()
	d.RequiredTagKey = "PatchGroup"
	return d
}

func TestNormalizeRefusesWavesWithoutThePatchTagKey(t *testing.T) {
	cases := []struct{ name, input, field string }{
		{"full form", `{"waves": [
			{"waveId": "a", "accounts": ["111111111111"], "regions": ["us-east-1"], "tagFilters": {"PatchGroup": "default"}},
			{"waveId": "b", "accounts": ["222222222222"], "regions": ["us-east-1"], "tagFilters": {"Env": "prod"}}]}`,
			"waves[1].tagFilters"},
		{"shorthand", `{"waveId": "x", "accounts": ["111111111111"], "regions": ["us-east-1"], "tagFilters": {"Env": "prod"}}`,
			"tagFilters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := contract.Normalize([]byte(tc.input), tagKeyDefaults(), plan(), "exec", "2026-11-29T10:00:00Z")
			var ve *contract.ValidationError
			require.True(t, errors.As(err, &ve), "want a ValidationError, got %v", err)
			require.Len(t, ve.Problems, 1, "%q", ve.Problems)
			assert.Contains(t, ve.Problems[0], tc.field+`: must include the patch tag key "PatchGroup"`)
		})
	}
}

func TestNormalizeAcceptsWavesWithThePatchTagKey(t *testing.T) {
	// The second wave takes the defaults' filters, which carry the key.
	raw := `{"waves": [
		{"waveId": "a", "accounts": ["111111111111"], "regions": ["us-east-1"], "tagFilters": {"PatchGroup": "web", "Env": "prod"}},
		{"waveId": "b", "accounts": ["222222222222"], "regions": ["us-east-1"]}]}`
	run, err := contract.Normalize([]byte(raw), tagKeyDefaults(), plan(), "exec", "2026-11-29T10:00:00Z")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"PatchGroup": "default"}, run.Waves[1].TagFilters)
}

func TestDefaultsMustCarryTheirOwnTagKey(t *testing.T) {
	d := tagKeyDefaults()
	d.TagFilters = map[string]string{"Env": "prod"}
	err := contract.ValidateDefaults(d)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `tagFilters: must include the patch tag key "PatchGroup"`)

	d = tagKeyDefaults()
	d.RequiredTagKey = "aws:reserved"
	err = contract.ValidateDefaults(d)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "requiredTagKey")
}

func TestValidTagKey(t *testing.T) {
	for _, k := range []string{"PatchGroup", "patch:group", "a", "Team/Owner"} {
		assert.True(t, contract.ValidTagKey(k), k)
	}
	for _, k := range []string{"", " ", "aws:x", "AWS:x", "k*", string(make([]byte, 129))} {
		assert.False(t, contract.ValidTagKey(k), "%q", k)
	}
}

func TestNormalizeRefusesAccountsOutsideTheHub(t *testing.T) {
	d := defaults()
	d.SpokeAccounts = []string{"222222222222", "333333333333"}
	_, err := contract.Normalize([]byte(`{"waves": [
		{"waveId": "w1", "accounts": ["222222222222"], "regions": ["us-east-1"]},
		{"waveId": "w2", "accounts": ["333333333333", "999999999999"], "regions": ["us-east-1"]}]}`),
		d, nil, "exec", "2026-12-10T08:00:00Z")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `waves[1].accounts[1]: "999999999999" is not a spoke account of this hub`)
	assert.NotContains(t, err.Error(), "222222222222")

	_, err = contract.Normalize([]byte(`{"waveId": "w1", "accounts": ["999999999999"], "regions": ["us-east-1"]}`),
		d, nil, "exec", "2026-12-10T08:00:00Z")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `accounts[0]: "999999999999" is not a spoke account of this hub`)
}
