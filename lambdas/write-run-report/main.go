// Command write-run-report is the WriteRunReport Lambda: it assembles the run
// report from the run's records, writes it to S3 as JSON and CSV, records
// the run's final status and tells the notification topic how it ended.
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
	cfg := awsx.Setup(contract.WriteRunReport.Dir, env)
	st := store.New(dynamodb.NewFromConfig(cfg), c.table, c.ttlDays, nil)
	h := &Handler{Records: st, Runs: st, S3: awsx.NewS3(cfg), Bucket: c.bucket,
		SNS: sns.NewFromConfig(cfg), TopicARN: c.topicARN, Environment: c.environment, Log: logx.New(os.Stdout),
		Metrics: metrics}
	lambda.StartHandlerFunc(h.Handle)
}
