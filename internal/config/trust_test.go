package config_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2patch/ec2patch/internal/config"
	"github.com/ec2patch/ec2patch/params"
)

func TestPatchTagKeyReachesTheRunDefaults(t *testing.T) {
	for _, env := range []string{"dev", "prod"} {
		p, err := config.Load(params.Files, env)
		require.NoError(t, err)
		assert.Equal(t, "PatchGroup", p.Spoke.PatchTagKey, env)
		assert.Empty(t, p.Spoke.PrincipalOrgID, "%s: no organization is assumed", env)
		assert.Equal(t, "PatchGroup", p.RunDefaults().RequiredTagKey, env)
	}
}

func TestPrincipalOrgIDIsValidatedWhenSet(t *testing.T) {
	m := devJSON(t)
	spokeOf(m)["principal_org_id"] = "o-abcdef1234"
	p, err := config.Parse("params/test.json", encode(t, m))
	require.NoError(t, err)
	assert.Equal(t, "o-abcdef1234", p.Spoke.PrincipalOrgID)

	for _, bad := range []string{"o-short", "abcdef123456", "o-ABCDEF1234", "r-abcdef1234"} {
		spokeOf(m)["principal_org_id"] = bad
		got := problemsOf(t, encode(t, m))
		assert.True(t, hasPrefix(got, "spoke.principal_org_id:"), "%q: %q", bad, got)
	}
}

func TestPatchTagKeyMustBeAValidTagKey(t *testing.T) {
	for _, bad := range []string{"", "  ", "aws:reserved", "bad*key"} {
		m := devJSON(t)
		spokeOf(m)["patch_tag_key"] = bad
		got := problemsOf(t, encode(t, m))
		assert.True(t, hasPrefix(got, "spoke.patch_tag_key:"), "%q: %q", bad, got)
	}
}

func TestEveryWaveMustFilterOnThePatchTagKey(t *testing.T) {
	m := devJSON(t)
	waves := m["waves"].([]any)
	waves[1].(map[string]any)["tagFilters"] = map[string]string{"Env": "prod"}
	got := problemsOf(t, encode(t, m))
	assert.True(t, hasPrefix(got, "waves[1].tagFilters:"), "%q", got)
	assert.Contains(t, got[0], `"PatchGroup"`)

	// A wave without filters takes the defaults, which must carry the key.
	m = devJSON(t)
	delete(waves[1].(map[string]any), "tagFilters")
	m["waves"] = waves
	m["hub"].(map[string]any)["default_tag_filters"] = map[string]string{"Env": "prod"}
	got = problemsOf(t, encode(t, m))
	assert.True(t, hasPrefix(got, "hub.default_tag_filters:"), "%q", got)
}
