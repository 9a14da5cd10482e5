package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/test/emulator"
	"github.com/ec2patch/ec2patch/test/fleet"
)

// Accounts of the trust scenario: the first trusts the hub's ExternalId,
// the second's spoke role was deployed with a stale one.
const (
	trustedAccount = "222222222222"
	staleAccount   = "333333333333"
)

// trustFleet has, in the trusted account, instances with the patch tag key
// and one without it (which no run may reach); the stale account has
// tagged instances only.
const trustFleet = `{"accounts": [
  {"id": "222222222222", "regions": [{"name": "us-east-1", "instances": [
    {"count": 2, "tags": {"PatchGroup": "default"}, "state": "running", "outcome": "success"},
    {"count": 1, "tags": {"Env": "prod"}, "state": "running", "outcome": "success"}]}]},
  {"id": "333333333333", "regions": [{"name": "us-east-1", "instances": [
    {"count": 2, "tags": {"PatchGroup": "default"}, "state": "running", "outcome": "success"}]}]}],
 "patchSeconds": 1}`

// TestTrust proves the spoke's two fences in the emulator: the role is
// assumed only with its ExternalId, and commands reach only instances that
// carry the patch tag key.
func TestTrust(t *testing.T) {
	if testing.Short() {
		t.Skip("emulator runs take minutes")
	}
	f, err := fleet.Parse([]byte(trustFleet))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	h := emulator.NewForTest(t, ctx, emulator.Options{Fleet: f})
	tagKey := h.Params.Spoke.PatchTagKey
	if tagKey == "" {
		t.Fatal("the dev params have no spoke.patch_tag_key")
	}
	s := h.Proxy.Scenario()
	s.ExternalIDs = map[string]string{staleAccount: h.Params.Hub.CrossAccountExternalID + "-stale"}
	h.Proxy.SetScenario(s)

	t.Run("a wrong ExternalId fails that target with the role and the ExternalId named; the others patch", func(t *testing.T) {
		id := runID("e2e-trust")
		input := `{"runId": "` + id + `", "pollIntervalSeconds": 1, "abortOnIssues": false, "waves": [
		  {"waveId": "w", "accounts": ["` + trustedAccount + `", "` + staleAccount + `"], "regions": ["us-east-1"],
		   "tagFilters": {"PatchGroup": "default"}, "failureThresholdPercent": 100}]}`
		res := mustRun(t, ctx, h, input, id)

		// To the run, a role it cannot assume with its ExternalId is one it
		// cannot assume at all: compare with the fleet where the stale
		// account's role is missing.
		expected := *h.Fleet
		expected.Accounts = append([]fleet.Account(nil), h.Fleet.Accounts...)
		for i := range expected.Accounts {
			expected.Accounts[i].RoleMissing = expected.Accounts[i].ID == staleAccount
		}
		func() {
			saved := h.Fleet
			h.Fleet = &expected
			defer func() { h.Fleet = saved }()
			checkAgainstFleet(t, h, res, input)
		}()

		stale := targetReport(res.Report, "w", staleAccount, "us-east-1")
		role := contract.SpokeRoleARN("aws", staleAccount, h.Params.Spoke.RoleName)
		if stale.Status != contract.StatusFailed || !strings.Contains(stale.Reason, role) || !strings.Contains(stale.Reason, "ExternalId") {
			t.Errorf("stale account: %s %q, want FAILED naming %s and the ExternalId", stale.Status, stale.Reason, role)
		}
		if ok := targetReport(res.Report, "w", trustedAccount, "us-east-1"); ok.Status != contract.StatusSucceeded || ok.Counts.Patched != 2 {
			t.Errorf("trusted account: %s %+v (%s), want SUCCEEDED with 2 patched", ok.Status, ok.Counts, ok.Reason)
		}
		refused := 0
		for _, c := range res.Calls {
			if c.TargetAccount() != staleAccount {
				continue
			}
			if c.Action != "AssumeRole" || c.Refused != "wrong ExternalId" {
				t.Errorf("%s:%s reached the stale account (refused %q)", c.Service, c.Action, c.Refused)
			}
			refused++
		}
		if refused == 0 {
			t.Error("the stale account was never tried")
		}
	})

	t.Run("the run input cannot leave out the patch tag key", func(t *testing.T) {
		input := `{"pollIntervalSeconds": 1, "waves": [{"waveId": "w", "accounts": ["` + trustedAccount + `"],
		  "regions": ["us-east-1"], "tagFilters": {"Env": "prod"}}]}`
		mark := h.Proxy.Mark()
		res, err := h.Run(ctx, input, emulator.UniqueName("trust-notag"))
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != "FAILED" || res.Error != contract.ErrInvalidRunInput {
			t.Fatalf("status %s error %q, want FAILED with %s (cause %.300s)", res.Status, res.Error, contract.ErrInvalidRunInput, res.Cause)
		}
		if !strings.Contains(res.Cause, "waves[0].tagFilters") || !strings.Contains(res.Cause, `\"`+tagKey+`\"`) {
			t.Errorf("cause does not name waves[0].tagFilters and %s: %.500s", tagKey, res.Cause)
		}
		for _, c := range h.Proxy.Calls(mark) {
			if c.Action == "AssumeRole" || c.TargetAccount() != h.Params.Account {
				t.Errorf("the refused input reached a spoke: %s:%s in %s", c.Service, c.Action, c.TargetAccount())
			}
		}
	})

	t.Run("the spoke role cannot send a command to an untagged instance", func(t *testing.T) {
		var untagged, tagged string
		for _, in := range h.Instances {
			if in.Account != trustedAccount {
				continue
			}
			if _, ok := in.Group.Tags[tagKey]; ok {
				tagged = in.ID
			} else {
				untagged = in.ID
			}
		}
		if untagged == "" || tagged == "" {
			t.Fatalf("the fleet has no tagged (%q) or untagged (%q) instance", tagged, untagged)
		}
		client := spokeSSM(t, ctx, h, trustedAccount)
		mark := h.Proxy.Mark()
		_, err := client.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String(contract.PatchDocument),
			InstanceIds: []string{tagged, untagged}, Parameters: map[string][]string{"Operation": {contract.OperationScan}}})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
			t.Fatalf("SendCommand to %s: err = %v, want AccessDeniedException", untagged, err)
		}
		if !strings.Contains(ae.ErrorMessage(), "instance/"+untagged) || !strings.Contains(ae.ErrorMessage(), h.Params.Spoke.RoleName) {
			t.Errorf("denial %q does not name the instance %s and the spoke role", ae.ErrorMessage(), untagged)
		}
		if n := len(sendCommands(h.Proxy.Calls(mark))); n != 0 {
			t.Errorf("%d commands were sent", n)
		}
		// The same credentials may patch the tagged instance: the refusal
		// is the tag, not the caller.
		if _, err := client.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String(contract.PatchDocument),
			InstanceIds: []string{tagged}, Parameters: map[string][]string{"Operation": {contract.OperationScan}}}); err != nil {
			t.Errorf("SendCommand to the tagged %s: %v", tagged, err)
		}
	})
}

// spokeSSM is an SSM client acting, through the proxy, as the spoke role of
// account, assumed as the hub does (with the configured ExternalId).
func spokeSSM(t *testing.T, ctx context.Context, h *emulator.Harness, account string) *ssm.Client {
	t.Helper()
	cfg := aws.Config{Region: h.Params.Region, BaseEndpoint: aws.String(h.Proxy.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("HUBTEST", "hub", "")}
	out, err := sts.NewFromConfig(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String(contract.SpokeRoleARN("aws", account, h.Params.Spoke.RoleName)),
		RoleSessionName: aws.String("trust-test"),
		ExternalId:      aws.String(h.Params.Hub.CrossAccountExternalID),
	})
	if err != nil {
		t.Fatal(err)
	}
	c := out.Credentials
	cfg.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId),
		aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
	return ssm.NewFromConfig(cfg)
}
