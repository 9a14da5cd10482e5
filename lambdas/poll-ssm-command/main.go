// Command poll-ssm-command is the PollSsmCommand Lambda, the scheduled
// reconciler: every few minutes it reads the progress of every waiting
// target's commands and resumes the targets whose commands ended or whose
// deadline passed. Command status events resume most targets sooner; the
// reconciler covers an event that was lost.
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/awsx"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/spoke"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
	"github.com/ec2patch/ec2patch/lambdas/internal/waits"
)

type config struct {
	roleName   string
	externalID string
	table      string
	ttlDays    int
}

func main() {
	env := &awsx.Env{}
	c := config{
		roleName:   env.StringOr(contract.EnvSpokeRoleName, contract.DefaultSpokeRoleName),
		externalID: env.String(contract.EnvExternalID),
		table:      env.String(contract.EnvTable),
		ttlDays:    env.PositiveInt(contract.EnvRecordTTLDays),
	}
	metrics := env.Metrics()
	cfg := awsx.Setup(contract.PollSsmCommand.Dir, env)
	// The session caches credentials per account for the life of the warm
	// function: every target of an account shares one assumption.
	sess := spoke.NewSession(cfg, sts.NewFromConfig(cfg), c.roleName, c.externalID)
	db := dynamodb.NewFromConfig(cfg)
	w := store.NewWaits(db, c.table, c.ttlDays, nil)
	gates := store.NewApprovals(db, c.table, c.ttlDays, nil)
	h := &Handler{
		Waitings: w,
		Statuses: w,
		Passes:   w,
		Resumer:  &waits.Resumer{Claim: w, Restore: w, Forget: w, States: sfn.NewFromConfig(cfg)},
		SSM:      spoke.FactoryFunc[commandLister](func(t spoke.Target) commandLister { return sess.SSM(t) }),
		Log:      logx.New(os.Stdout),
		Pending:  gates,
		Expired:  gates,
		Metrics:  metrics,
	}
	lambda.StartHandlerFunc(h.Handle)
}
