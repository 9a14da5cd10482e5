package contract_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ec2patch/ec2patch/internal/contract"
)

func TestValidSSMRate(t *testing.T) {
	for _, ok := range []string{"0", "1", "50", "0%", "10%", "100%"} {
		assert.True(t, contract.ValidSSMRate(ok), ok)
	}
	for _, bad := range []string{"", "-1", "101%", "150%", "1000%", "10 %", "%", "1.5", "ten", "10%%"} {
		assert.False(t, contract.ValidSSMRate(bad), bad)
	}
}

func TestValidAccountAndRegion(t *testing.T) {
	assert.True(t, contract.ValidAccount("123456789012"))
	for _, bad := range []string{"12345678901", "1234567890123", "12345678901a", ""} {
		assert.False(t, contract.ValidAccount(bad), bad)
	}
	assert.True(t, contract.ValidRegion("eu-west-1"))
	assert.False(t, contract.ValidRegion("eu-west-9"))
	assert.Equal(t, "aws-cn", contract.Partition("cn-north-1"))
	assert.Equal(t, "aws-us-gov", contract.Partition("us-gov-west-1"))
	assert.Equal(t, "aws", contract.Partition("us-east-1"))
}

func TestValidateDefaults(t *testing.T) {
	assert.NoError(t, contract.ValidateDefaults(defaults()))
	d := defaults()
	d.PollIntervalSeconds, d.SSMMaxErrors, d.TagFilters = 0, "x", nil
	err := contract.ValidateDefaults(d)
	if assert.Error(t, err) {
		assert.Contains(t, err.Error(), "pollIntervalSeconds")
		assert.Contains(t, err.Error(), "ssmMaxErrors")
		assert.Contains(t, err.Error(), "tagFilters")
	}
}

func TestRoleARNs(t *testing.T) {
	assert.Equal(t, "arn:aws:iam::123456789012:role/ec2patch-PatchOrchestratorRole", contract.HubTaskRoleARN("aws", "123456789012", "ec2patch"))
	assert.Equal(t, "arn:aws:iam::222222222222:role/PatchExecRole", contract.SpokeRoleARN("aws", "222222222222", contract.DefaultSpokeRoleName))
}

func TestStoreKeys(t *testing.T) {
	assert.Equal(t, "RUN#r1", contract.RunPK("r1"))
	assert.Equal(t, "WAVE#002#canary", contract.WaveSK(2, "canary"))
	assert.Equal(t, "TARGET#canary#111111111111#us-east-1", contract.TargetSK("canary", "111111111111", "us-east-1"))
	assert.Equal(t, "reports/r1/report.json", contract.ReportJSONKey("r1"))
}
