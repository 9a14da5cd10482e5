package proxy_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/test/proxy"
)

func TestSendCommandNeedsThePatchTagKeyOnEveryInstance(t *testing.T) {
	fx := newFixture(t, t.TempDir())
	fx.proxy.SetScenario(proxy.Scenario{PatchTagKey: "PatchGroup"})
	const account = "222222222222"
	for id, tags := range map[string]map[string]string{
		"i-tagged":   {"PatchGroup": "default"},
		"i-other":    {"PatchGroup": "other", "Env": "prod"},
		"i-untagged": {"Env": "prod"},
	} {
		fx.proxy.AddInstance(proxy.Instance{ID: id, Account: account, Region: "us-east-1", Outcome: "success",
			Running: true, Tags: tags})
	}
	ctx := context.Background()
	creds, err := stsClient(fx.proxy.URL(), "AKIDHUB").AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String(contract.SpokeRoleARN("aws", account, contract.DefaultSpokeRoleName)), RoleSessionName: aws.String("s")})
	if err != nil {
		t.Fatal(err)
	}
	c := ssmClient(fx.proxy.URL(), aws.ToString(creds.Credentials.AccessKeyId), "us-east-1")
	send := func(ids ...string) error {
		_, err := c.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String(contract.PatchDocument), InstanceIds: ids})
		return err
	}

	err = send("i-tagged", "i-untagged")
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
		t.Fatalf("err = %v, want AccessDeniedException", err)
	}
	for _, want := range []string{"assumed-role/PatchExecRole", "ssm:SendCommand",
		"arn:aws:ec2:us-east-1:" + account + ":instance/i-untagged"} {
		if !strings.Contains(ae.ErrorMessage(), want) {
			t.Errorf("message %q does not name %s", ae.ErrorMessage(), want)
		}
	}
	if n := fx.moto.commands.Load(); n != 0 {
		t.Errorf("moto saw %d commands after a refusal, want 0", n)
	}
	// Any value of the key will do: the wave's filters pick the value.
	if err := send("i-tagged", "i-other"); err != nil {
		t.Fatalf("tagged instances: %v", err)
	}

	var refused []string
	for _, call := range fx.proxy.Calls(0) {
		if call.Action == "SendCommand" && call.Refused != "" {
			refused = append(refused, call.Refused)
		}
	}
	if len(refused) != 1 || refused[0] != "instance without the patch tag key" {
		t.Errorf("refused SendCommand calls = %q, want one for the missing tag key", refused)
	}

	// Without a key in the scenario, nothing is refused for tags.
	fx.proxy.SetScenario(proxy.Scenario{})
	if err := send("i-untagged"); err != nil {
		t.Errorf("no tag key configured: %v", err)
	}
}

func TestExternalIDCanDifferPerAccount(t *testing.T) {
	fx := newFixture(t, t.TempDir())
	fx.proxy.SetScenario(proxy.Scenario{ExternalID: "ext-1", EnforceExternalID: true,
		ExternalIDs: map[string]string{"333333333333": "ext-stale"}})
	ctx := context.Background()
	assume := func(account string) error {
		_, err := stsClient(fx.proxy.URL(), "AKIDHUB").AssumeRole(ctx, &sts.AssumeRoleInput{
			RoleArn:         aws.String(contract.SpokeRoleARN("aws", account, contract.DefaultSpokeRoleName)),
			RoleSessionName: aws.String("s"), ExternalId: aws.String("ext-1")})
		return err
	}
	if err := assume("222222222222"); err != nil {
		t.Errorf("account with the hub's ExternalId: %v", err)
	}
	err := assume("333333333333")
	if errorCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "333333333333:role/PatchExecRole") {
		t.Errorf("account whose role wants another ExternalId: err = %v, want AccessDenied naming its role", err)
	}
}
