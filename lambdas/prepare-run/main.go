// Command prepare-run is the PrepareRun Lambda: it validates and normalizes
// the run input, writes each wave's target manifest and the RUN record. It
// touches no spoke.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/awsx"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
)

type config struct {
	defaults contract.RunDefaults
	plan     []contract.WaveInput
	table    string
	bucket   string
	ttlDays  int
}

func main() {
	env := &awsx.Env{}
	var c config
	env.JSON(contract.EnvRunDefaults, &c.defaults)
	env.JSON(contract.EnvPlanWaves, &c.plan)
	c.table = env.String(contract.EnvTable)
	c.bucket = env.String(contract.EnvBucket)
	c.ttlDays = env.PositiveInt(contract.EnvRecordTTLDays)
	topicARN, environment := env.String(contract.EnvTopicARN), env.String(contract.EnvEnvironment)
	if err := env.Err(); err != nil {
		awsx.Exit(contract.PrepareRun.Dir, err)
	}
	if err := contract.ValidateDefaults(c.defaults); err != nil {
		awsx.Exit(contract.PrepareRun.Dir, err)
	}
	cfg, err := awsx.LoadConfig(context.Background())
	if err != nil {
		awsx.Exit(contract.PrepareRun.Dir, err)
	}
	h := &Handler{
		Defaults: c.defaults,
		Plan:     c.plan,
		Bucket:   c.bucket,
		S3:       awsx.NewS3(cfg),
		Runs:     store.New(dynamodb.NewFromConfig(cfg), c.table, c.ttlDays, nil),
		Log:      logx.New(os.Stdout),
		Announce: &Announcer{SNS: sns.NewFromConfig(cfg), TopicARN: topicARN, Environment: environment, Bucket: c.bucket},
	}
	lambda.StartHandlerFunc(h.Handle)
}
