// Command check-halt-alarms is the CheckHaltAlarms Lambda: before a wave
// starts and after it ends, it reads the wave's halt alarms in the hub's
// region and says whether any of them halts the run.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/awsx"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
)

func main() {
	cfg, err := awsx.LoadConfig(context.Background())
	if err != nil {
		awsx.Exit(contract.CheckHaltAlarms.Dir, err)
	}
	h := &Handler{Alarms: cloudwatch.NewFromConfig(cfg), Log: logx.New(os.Stdout)}
	lambda.StartHandlerFunc(h.Handle)
}
