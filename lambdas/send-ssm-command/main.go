// Command send-ssm-command is the SendSsmCommand Lambda: it sends
// AWS-RunPatchBaseline to a target's patchable instances, at most 50 per
// command, recording each command before sending the next. It claims the
// target first, so it never sends twice for a target that already has
// commands, nor while another execution of the run is sending to it.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/awsx"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/spoke"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
)

type config struct {
	roleName       string
	externalID     string
	table          string
	bucket         string
	ttlDays        int
	timeoutSeconds string // optional
}

func main() {
	env := &awsx.Env{}
	c := config{
		roleName:       env.StringOr(contract.EnvSpokeRoleName, contract.DefaultSpokeRoleName),
		externalID:     env.String(contract.EnvExternalID),
		table:          env.String(contract.EnvTable),
		bucket:         env.String(contract.EnvBucket),
		ttlDays:        env.PositiveInt(contract.EnvRecordTTLDays),
		timeoutSeconds: env.StringOr(contract.EnvCommandTimeout, ""),
	}
	timeout, err := parseTimeout(c.timeoutSeconds)
	if err == nil {
		err = env.Err()
	}
	if err != nil {
		awsx.Exit(contract.SendSsmCommand.Dir, err)
	}
	cfg, err := awsx.LoadConfig(context.Background())
	if err != nil {
		awsx.Exit(contract.SendSsmCommand.Dir, err)
	}
	sess := spoke.NewSession(cfg, sts.NewFromConfig(cfg), c.roleName, c.externalID)
	st := store.New(dynamodb.NewFromConfig(cfg), c.table, c.ttlDays, nil)
	h := &Handler{
		SSM:            spoke.FactoryFunc[commandSender](func(t spoke.Target) commandSender { return sess.SSM(t) }),
		Claims:         st,
		Records:        st,
		Recorder:       st,
		Bucket:         c.bucket,
		HubRegion:      cfg.Region,
		TimeoutSeconds: timeout,
		Log:            logx.New(os.Stdout),
	}
	lambda.StartHandlerFunc(h.Handle)
}
