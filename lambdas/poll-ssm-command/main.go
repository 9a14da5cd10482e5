// Command poll-ssm-command is the PollSsmCommand Lambda: one look at the
// progress of a target's SSM commands, returning a phase the state machine's
// Choice loops on.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/awsx"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/spoke"
)

type config struct {
	roleName   string
	externalID string
}

func main() {
	env := &awsx.Env{}
	c := config{
		roleName:   env.StringOr(contract.EnvSpokeRoleName, contract.DefaultSpokeRoleName),
		externalID: env.String(contract.EnvExternalID),
	}
	if err := env.Err(); err != nil {
		awsx.Exit(contract.PollSsmCommand.Dir, err)
	}
	cfg, err := awsx.LoadConfig(context.Background())
	if err != nil {
		awsx.Exit(contract.PollSsmCommand.Dir, err)
	}
	sess := spoke.NewSession(cfg, sts.NewFromConfig(cfg), c.roleName, c.externalID)
	h := &Handler{
		SSM: spoke.FactoryFunc[commandLister](func(t spoke.Target) commandLister { return sess.SSM(t) }),
		Log: logx.New(os.Stdout),
	}
	lambda.StartHandlerFunc(h.Handle)
}
