// Command approval-callback is the ApprovalCallback Lambda behind the
// approval API: it answers the signed links of an approval request. A GET
// shows the decision and a form, and changes nothing (mail scanners fetch
// links); the form's POST records the decision once and tells the waiting
// orchestrator.
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/approval"
	"github.com/ec2patch/ec2patch/lambdas/internal/awsx"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
)

type config struct {
	table     string
	secretARN string
	ttlDays   int
}

func main() {
	env := &awsx.Env{}
	c := config{table: env.String(contract.EnvTable), secretARN: env.String(contract.EnvSigningSecret),
		ttlDays: env.PositiveInt(contract.EnvRecordTTLDays)}
	cfg := awsx.Setup(contract.ApprovalCallback.Dir, env)
	st := store.NewApprovals(dynamodb.NewFromConfig(cfg), c.table, c.ttlDays, nil)
	states := sfn.NewFromConfig(cfg)
	h := &Handler{
		Keys:         &approval.Keys{Secrets: secretsmanager.NewFromConfig(cfg), SecretID: c.secretARN},
		Approvals:    st,
		Decisions:    st,
		Undo:         st,
		RunDecisions: st,
		Succeed:      states,
		Fail:         states,
		Log:          logx.New(os.Stdout),
	}
	lambda.StartHandlerFunc(h.Handle)
}
