// Package spoke defines SpokeStack: the one IAM role that the hub's task role
// assumes in every spoke account to inventory and patch its instances.
package spoke

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/ec2patch/ec2patch/internal/contract"
)

// StackProps configure SpokeStack.
type StackProps struct {
	awscdk.StackProps
	// HubAccountID is the account of the hub whose task role may assume the
	// spoke role. Required.
	HubAccountID string
	// HubNamePrefix is the hub's name_prefix, which names its task role.
	// Required.
	HubNamePrefix string
	// ExternalID is the sts:ExternalId every assumption must carry. Required.
	ExternalID string
	// RoleName is the spoke role's physical name. Default: PatchExecRole.
	RoleName string
	// PrincipalOrgID, when set, also requires the assuming principal to
	// belong to this AWS Organization (aws:PrincipalOrgID). Default: no
	// organization condition.
	PrincipalOrgID string
	// PatchTagKey is the tag an instance must carry for the role to send
	// it a command. Default: PatchGroup.
	PatchTagKey string
}

// Stack is SpokeStack.
type Stack struct {
	awscdk.Stack
	// Role is the role the hub assumes.
	Role awsiam.Role
}

// NewStack builds SpokeStack. The template has no assets and no bootstrap
// version rule: StackSets deploy it into accounts that were never
// bootstrapped, so the stack always uses a bootstrapless synthesizer.
func NewStack(scope constructs.Construct, id string, props *StackProps) *Stack {
	if props == nil {
		props = &StackProps{}
	}
	sp := props.StackProps
	if sp.Synthesizer == nil {
		sp.Synthesizer = awscdk.NewBootstraplessSynthesizer(&awscdk.BootstraplessSynthesizerProps{})
	}
	if sp.Description == nil {
		sp.Description = jsii.String("ec2patch SpokeStack: the role the hub assumes to patch this account's instances")
	}
	roleName := props.RoleName
	if roleName == "" {
		roleName = contract.DefaultSpokeRoleName
	}
	tagKey := props.PatchTagKey
	if tagKey == "" {
		tagKey = contract.DefaultPatchTagKey
	}
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	partition := *awscdk.Aws_PARTITION()

	// Trust the hub account's root with a PrincipalArn condition rather than
	// the task role's ARN as principal: IAM rejects a trust policy naming a
	// role that does not exist yet, so this lets the spoke be deployed before
	// the hub, and the trust survives the hub role being deleted and
	// re-created (a role principal would be rewritten to the old role's
	// unique ID and silently stop matching).
	// The organization condition, when configured, is a second fence: a
	// hub account moved out of the organization loses access even with
	// the right role name and ExternalId.
	equals := map[string]interface{}{"sts:ExternalId": props.ExternalID}
	if props.PrincipalOrgID != "" {
		equals["aws:PrincipalOrgID"] = props.PrincipalOrgID
	}
	trust := awsiam.NewPrincipalWithConditions(
		awsiam.NewAccountPrincipal(jsii.String(props.HubAccountID)),
		&map[string]interface{}{
			"StringEquals": equals,
			"ArnEquals": map[string]interface{}{
				"aws:PrincipalArn": contract.HubTaskRoleARN(partition, props.HubAccountID, props.HubNamePrefix),
			},
		})

	policy := awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{
		Statements: &[]awsiam.PolicyStatement{
			// These read-only EC2 and SSM actions support no resource-level
			// permissions, so "*" is the only resource IAM accepts.
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid: jsii.String("DescribeFleet"),
				Actions: jsii.Strings("ec2:DescribeInstances", "ec2:DescribeInstanceStatus",
					"ssm:DescribeInstanceInformation", "ssm:ListCommands",
					"ssm:ListCommandInvocations"),
				Resources: jsii.Strings("*"),
			}),
			// SendCommand is authorized once per resource: the document and
			// every instance. The document statement allows only
			// AWS-RunPatchBaseline; the instance statement only instances
			// carrying the patch tag key (any value: the wave's filters pick
			// the value), so a bad tag filter cannot reach an untagged
			// instance. SSM evaluates ssm:resourceTag/<key> on instances.
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("RunPatchBaselineDocument"),
				Actions:   jsii.Strings("ssm:SendCommand"),
				Resources: jsii.Strings("arn:" + partition + ":ssm:*::document/" + contract.PatchDocument),
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("RunPatchBaselineOnTaggedInstances"),
				Actions:   jsii.Strings("ssm:SendCommand"),
				Resources: jsii.Strings("arn:" + partition + ":ec2:*:" + *awscdk.Aws_ACCOUNT_ID() + ":instance/*"),
				Conditions: &map[string]interface{}{
					"StringLike": map[string]interface{}{"ssm:resourceTag/" + tagKey: "*"},
				},
			}),
		},
	})

	role := awsiam.NewRole(stack, jsii.String("PatchExecRole"), &awsiam.RoleProps{
		RoleName:           jsii.String(roleName),
		Description:        jsii.String("Assumed by the ec2patch hub task role to inventory and patch EC2 instances"),
		AssumedBy:          trust,
		MaxSessionDuration: awscdk.Duration_Hours(jsii.Number(1)),
		InlinePolicies:     &map[string]awsiam.PolicyDocument{"Patch": policy},
	})

	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("ec2:Describe*, ssm:DescribeInstanceInformation and ssm:ListCommand* " +
			"support no resource-level permissions; SendCommand is limited to " +
			"the AWS-RunPatchBaseline document and this account's instances carrying the patch tag key, " +
			"in any region the plan targets"),
	}}, jsii.Bool(true))

	awscdk.NewCfnOutput(stack, jsii.String("PatchExecRoleArn"), &awscdk.CfnOutputProps{
		Value:       role.RoleArn(),
		Description: jsii.String("The role the hub assumes in this account"),
	})
	return &Stack{Stack: stack, Role: role}
}
