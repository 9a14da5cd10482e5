package hub

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/ec2patch/ec2patch/internal/contract"
)

// checkov's CloudFormation checks that the hub answers by design rather
// than by configuration. Each skip is written into the template, next to
// the resource, with its reason, where checkov reads it.
const (
	checkovLambdaVPC         = "CKV_AWS_117"
	checkovLambdaDLQ         = "CKV_AWS_116"
	checkovLambdaConcurrency = "CKV_AWS_115"
	checkovAPIAuthorizer     = "CKV_AWS_59"
	checkovStageCache        = "CKV_AWS_120"
	checkovStageXRay         = "CKV_AWS_73"
	checkovBucketLogging     = "CKV_AWS_18"
)

// checkovSkip is one entry of a resource's Metadata.checkov.skip list.
type checkovSkip struct {
	ID, Comment string
}

// checkov encrypts every function's environment with the hub key and lets
// the function's role decrypt it (Lambda decrypts the environment with that
// role; CDK's EnvironmentEncryption would set the key but grant nothing),
// and records why the checks the hub does not meet do not apply to it.
func (h *Stack) checkov() {
	for _, fn := range contract.Functions() {
		cfn := h.Functions[fn.Name].Node().DefaultChild().(awslambda.CfnFunction)
		cfn.SetKmsKeyArn(h.Key.KeyArn())
		h.Key.GrantDecrypt(h.Functions[fn.Name])
		skips := []checkovSkip{
			{checkovLambdaVPC, "No VPC: the handlers call only AWS service APIs (STS, EC2, SSM, DynamoDB, S3, SNS, " +
				"KMS, Step Functions, CloudWatch) through their endpoints and reach no private network resource"},
			{checkovLambdaConcurrency, "No reserved concurrency: invocations are bounded by the waves' map " +
				"concurrency (max_wave_concurrency), the approval API's stage throttle and one event per SSM " +
				"command, and reserving capacity would take it from the account's other workloads"},
			{checkovLambdaDLQ, dlqReason(fn)},
		}
		addCheckovSkips(cfn, skips)
	}

	for _, m := range *h.ApprovalAPI.Methods() {
		addCheckovSkips(m.Node().DefaultChild(), []checkovSkip{{checkovAPIAuthorizer,
			"No authorizer: the signed link is the authorization; ApprovalCallback verifies its HMAC " +
				"signature and expiry and records the decision once, and approvers have no AWS identity"}})
	}
	addCheckovSkips(h.ApprovalAPI.DeploymentStage().Node().DefaultChild(), []checkovSkip{
		{checkovStageCache, "No cache: every request is a one-time decision on a unique signed link, " +
			"so a cached answer could only be wrong"},
		{checkovStageXRay, "X-Ray is excluded by requirement: the product ships pure CloudFormation without X-Ray"},
	})
	addCheckovSkips(h.Bucket.Node().DefaultChild(), []checkovSkip{{checkovBucketLogging,
		"Only the hub's own roles and SSM write here; object-level access is audited with CloudTrail " +
			"data events, and a log bucket would need its own log bucket (as AwsSolutions-S1)"}})
}

// dlqReason says why fn needs no dead-letter queue of its own, from how it
// is invoked.
func dlqReason(fn contract.Function) string {
	switch fn.Name {
	case contract.ApprovalCallback.Name:
		return "No DLQ: API Gateway invokes it synchronously and the approver sees any failure; " +
			"the link stays valid until it expires"
	case contract.CommandStatusEvents.Name:
		return "No DLQ: the event rule retries and keeps undeliverable events in its own dead-letter " +
			"queue, and a lost event is recovered by the reconciler (PollSsmCommand), which re-reads " +
			"every waiting target on its schedule"
	case contract.PollSsmCommand.Name:
		return "No DLQ: the reconcile schedule invokes it, and a failed run loses nothing: the next, " +
			"within reconcile_interval_minutes, re-reads every waiting target"
	}
	return "No DLQ: Step Functions invokes it synchronously, and the state machine's Retry and Catch " +
		"handle its failures"
}

// addCheckovSkips sets the skips of the CloudFormation resource c, which
// has none yet: each resource gets all of its skips in one call.
func addCheckovSkips(c constructs.IConstruct, skips []checkovSkip) {
	res, ok := c.(awscdk.CfnResource)
	if !ok {
		panic("hub: checkov skips need a CloudFormation resource")
	}
	// jsii passes maps and strings through to the template, not Go structs.
	list := make([]any, 0, len(skips))
	for _, s := range skips {
		list = append(list, map[string]any{"id": s.ID, "comment": s.Comment})
	}
	res.AddMetadata(jsii.String("checkov"), map[string]any{"skip": list})
}
