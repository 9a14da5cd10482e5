// Command record-target-failure is the RecordTargetFailure Lambda: the
// PatchTarget's Catch sends every error here, and it records the target as
// FAILED with a one-line reason, so the wave's verdict sees it.
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
	metrics := env.Metrics()
	cfg := awsx.Setup(contract.RecordTargetFailure.Dir, env)
	h := &Handler{
		Results: store.New(dynamodb.NewFromConfig(cfg), c.table, c.ttlDays, nil),
		Log:     logx.New(os.Stdout),
		Metrics: metrics,
	}
	lambda.StartHandlerFunc(h.Handle)
}
