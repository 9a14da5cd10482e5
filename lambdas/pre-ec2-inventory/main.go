// Command pre-ec2-inventory is the PreEC2Inventory Lambda: it finds the
// instances of one account-region that match the wave's tag filters and
// splits them into patchable and skipped (with the reason). On a re-run it
// skips a target whose recorded result is final; for an approval wave's
// preview it records what would be patched.
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
	cfg := awsx.Setup(contract.PreEC2Inventory.Dir, env)
	sess := spoke.NewSession(cfg, sts.NewFromConfig(cfg), c.roleName, c.externalID)
	st := store.New(dynamodb.NewFromConfig(cfg), c.table, c.ttlDays, nil)
	h := &Handler{
		EC2:      spoke.FactoryFunc[instanceDescriber](func(t spoke.Target) instanceDescriber { return sess.EC2(t) }),
		SSM:      spoke.FactoryFunc[fleet.InstanceInformer](func(t spoke.Target) fleet.InstanceInformer { return sess.SSM(t) }),
		Records:  st,
		Previews: st,
		Log:      logx.New(os.Stdout),
		Metrics:  metrics,
	}
	lambda.StartHandlerFunc(h.Handle)
}
