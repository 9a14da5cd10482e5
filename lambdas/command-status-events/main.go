// Command command-status-events is the CommandStatusEvents Lambda, the
// target of the hub event bus's rule: the spokes forward SSM's command
// status-change events to it. It records each terminal status on the
// command's waiting target and resumes the target once all its commands
// ended.
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/awsx"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
	"github.com/ec2patch/ec2patch/lambdas/internal/waits"
)

type config struct {
	table   string
	ttlDays int
}

func main() {
	env := &awsx.Env{}
	c := config{table: env.String(contract.EnvTable), ttlDays: env.PositiveInt(contract.EnvRecordTTLDays)}
	cfg := awsx.Setup(contract.CommandStatusEvents.Dir, env)
	w := store.NewWaits(dynamodb.NewFromConfig(cfg), c.table, c.ttlDays, nil)
	h := &Handler{
		Commands: w,
		Statuses: w,
		Resumer:  &waits.Resumer{Claim: w, Restore: w, Forget: w, States: sfn.NewFromConfig(cfg)},
		Log:      logx.New(os.Stdout),
	}
	lambda.StartHandlerFunc(h.Handle)
}
