// Command await-ssm-command is the AwaitSsmCommand Lambda, the task of a
// waitForTaskToken state: it registers the target's task token against its
// command IDs and returns at once. The target then waits, with no polling
// in its history, until CommandStatusEvents or the reconciler answers the
// token.
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/awsx"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
)

type config struct {
	table   string
	ttlDays int
}

func main() {
	env := &awsx.Env{}
	c := config{table: env.String(contract.EnvTable), ttlDays: env.PositiveInt(contract.EnvRecordTTLDays)}
	cfg := awsx.Setup(contract.AwaitSsmCommand.Dir, env)
	h := &Handler{
		Waits: store.NewWaits(dynamodb.NewFromConfig(cfg), c.table, c.ttlDays, nil),
		Log:   logx.New(os.Stdout),
	}
	lambda.StartHandlerFunc(h.Handle)
}
