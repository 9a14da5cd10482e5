package hub

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"
)

// defaultPolicy returns the CloudFormation resource of a role's default
// policy (where AddToPrincipalPolicy and grants put statements), or nil.
func defaultPolicy(role awsiam.IRole) awscdk.CfnResource {
	r, ok := role.(awsiam.Role)
	if !ok {
		return nil
	}
	child := r.Node().TryFindChild(jsii.String("DefaultPolicy"))
	if child == nil {
		return nil
	}
	cfn, ok := child.(awsiam.Policy).Node().DefaultChild().(awscdk.CfnResource)
	if !ok {
		return nil
	}
	return cfn
}

// dependOnPolicyOnly makes res depend on its role's default policy and
// nothing else. The CDK makes a function or state machine depend on its
// role and the role's policy, so nothing runs before it may; the role
// dependency is already implied by the GetAtt of the role's ARN, and
// cfn-lint reports it (W3005). An override keeps the one that matters: the
// policy, which nothing in the resource references.
func dependOnPolicyOnly(res awscdk.CfnResource, role awsiam.IRole) {
	policy := defaultPolicy(role)
	if policy == nil {
		res.AddOverride(jsii.String("DependsOn"), []string{})
		return
	}
	res.AddOverride(jsii.String("DependsOn"), []*string{awscdk.Stack_Of(res).GetLogicalId(policy.(awscdk.CfnElement))})
}

// pruneDependsOn applies dependOnPolicyOnly to every function and the
// orchestrator.
func (h *Stack) pruneDependsOn() {
	for _, fn := range h.Functions {
		dependOnPolicyOnly(fn.Node().DefaultChild().(awscdk.CfnResource), fn.Role())
	}
	sm := h.StateMachine.Orchestrator
	dependOnPolicyOnly(sm.Node().DefaultChild().(awscdk.CfnResource), sm.Role())
}
