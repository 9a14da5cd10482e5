// Command post-ec2-verify is the PostEC2Verify Lambda: it reads each
// instance's command outcome, checks the health of those that succeeded,
// and records the target's full result.
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/awsx"
	"github.com/ec2patch/ec2patch/lambdas/internal/fleet"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/spoke"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
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
	cfg := awsx.Setup(contract.PostEC2Verify.Dir, env)
	sess := spoke.NewSession(cfg, sts.NewFromConfig(cfg), c.roleName, c.externalID)
	h := &Handler{
		Invocations: spoke.FactoryFunc[invocationLister](func(t spoke.Target) invocationLister { return sess.SSM(t) }),
		Status:      spoke.FactoryFunc[statusDescriber](func(t spoke.Target) statusDescriber { return sess.EC2(t) }),
		Info:        spoke.FactoryFunc[fleet.InstanceInformer](func(t spoke.Target) fleet.InstanceInformer { return sess.SSM(t) }),
		Results:     store.New(dynamodb.NewFromConfig(cfg), c.table, c.ttlDays, nil),
		Log:         logx.New(os.Stdout),
		Metrics:     metrics,
	}
	lambda.StartHandlerFunc(h.Handle)
}
