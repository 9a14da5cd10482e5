// Command evaluate-wave is the EvaluateWave Lambda: it reads the recorded
// results of a wave's targets, judges the wave (with the after-wave halt
// alarm check, when the wave has halt alarms), records the verdict and
// tells the notification topic.
package main

import (
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
	table       string
	bucket      string
	topicARN    string
	environment string
	ttlDays     int
}

func main() {
	env := &awsx.Env{}
	c := config{table: env.String(contract.EnvTable), bucket: env.String(contract.EnvBucket),
		topicARN: env.String(contract.EnvTopicARN), environment: env.String(contract.EnvEnvironment),
		ttlDays: env.PositiveInt(contract.EnvRecordTTLDays)}
	metrics := env.Metrics()
	cfg := awsx.Setup(contract.EvaluateWave.Dir, env)
	st := store.New(dynamodb.NewFromConfig(cfg), c.table, c.ttlDays, nil)
	h := &Handler{Targets: st, Waves: st, Log: logx.New(os.Stdout), Metrics: metrics,
		SNS: sns.NewFromConfig(cfg), TopicARN: c.topicARN, Environment: c.environment, Bucket: c.bucket}
	lambda.StartHandlerFunc(h.Handle)
}
