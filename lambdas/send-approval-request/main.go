// Command send-approval-request is the SendApprovalRequest Lambda: the
// orchestrator waits on its task token while an approver decides. It keeps
// the token in the hub's table under an opaque approval ID and publishes a
// message that says what the wave will patch, with signed approve and
// reject links.
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/approval"
	"github.com/ec2patch/ec2patch/lambdas/internal/awsx"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
)

type config struct {
	table       string
	topicARN    string
	approvalURL string
	secretARN   string
	ttlDays     int
}

func main() {
	env := &awsx.Env{}
	c := config{
		table:       env.String(contract.EnvTable),
		topicARN:    env.String(contract.EnvTopicARN),
		approvalURL: env.String(contract.EnvApprovalURL),
		secretARN:   env.String(contract.EnvSigningSecret),
		ttlDays:     env.PositiveInt(contract.EnvRecordTTLDays),
	}
	cfg := awsx.Setup(contract.SendApprovalRequest.Dir, env)
	st := store.NewApprovals(dynamodb.NewFromConfig(cfg), c.table, c.ttlDays, nil)
	h := &Handler{
		Keys:        &approval.Keys{Secrets: secretsmanager.NewFromConfig(cfg), SecretID: c.secretARN},
		Approvals:   st,
		Previews:    st,
		SNS:         sns.NewFromConfig(cfg),
		TopicARN:    c.topicARN,
		ApprovalURL: c.approvalURL,
		Log:         logx.New(os.Stdout),
	}
	lambda.StartHandlerFunc(h.Handle)
}
