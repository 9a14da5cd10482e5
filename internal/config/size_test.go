package config_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2patch/ec2patch/internal/config"
	"github.com/ec2patch/ec2patch/params"
)

// A plan that would synthesize but fail to deploy is refused at synth.
func TestSizeLimitsStopSynth(t *testing.T) {
	p, err := config.Load(params.Files, "dev")
	require.NoError(t, err)
	assert.Empty(t, p.Validate(), "dev fits")

	p.Hub.ExtraSpokeAccounts = nil
	for i := range config.MaxSpokeAccounts + 1 {
		p.Hub.ExtraSpokeAccounts = append(p.Hub.ExtraSpokeAccounts, fmt.Sprintf("%012d", 100000000000+i))
	}
	probs := strings.Join(p.Validate(), "\n")
	assert.Contains(t, probs, fmt.Sprintf("name %d accounts; the hub task role's AssumeRole grant holds at most %d",
		config.MaxSpokeAccounts+4, config.MaxSpokeAccounts))

	p.Hub.ExtraSpokeAccounts = nil
	w := p.Waves[0]
	for i := range 200 {
		w.Accounts = append(w.Accounts, fmt.Sprintf("%012d", 200000000000+i))
	}
	p.Waves[0] = w
	probs = strings.Join(p.Validate(), "\n")
	assert.Contains(t, probs, "of PrepareRun's environment; at most 3300")
}
