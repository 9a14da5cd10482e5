// Command evaluate-wave is the EvaluateWave Lambda: it reads the recorded
// results of a wave's targets, judges the wave (with the after-wave halt
// alarm check, when the wave has halt alarms) and records the verdict.
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
	cfg := awsx.Setup(contract.EvaluateWave.Dir, env)
	st := store.New(dynamodb.NewFromConfig(cfg), c.table, c.ttlDays, nil)
	h := &Handler{Targets: st, Waves: st, Log: logx.New(os.Stdout)}
	lambda.StartHandlerFunc(h.Handle)
}
