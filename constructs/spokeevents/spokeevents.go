// Package spokeevents defines SpokeEventsStack: the EventBridge rule that
// forwards a spoke region's AWS-RunPatchBaseline command status-change
// events to the hub's command event bus, where they resume the waiting
// targets.
package spokeevents

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/ec2patch/ec2patch/internal/contract"
)

// StackProps configure SpokeEventsStack.
type StackProps struct {
	awscdk.StackProps
	// HubAccountID and HubRegion locate the hub's event bus. Required.
	HubAccountID, HubRegion string
	// HubNamePrefix is the hub's name_prefix, which names its bus. Required.
	HubNamePrefix string
}

// Stack is SpokeEventsStack.
type Stack struct {
	awscdk.Stack
	// Rule forwards the command events to the hub.
	Rule awsevents.Rule
	// Role is what EventBridge puts the events on the hub bus as.
	Role awsiam.Role
}

// CommandEventPattern matches the terminal status-change events of
// AWS-RunPatchBaseline commands: the only events the hub acts on, so the
// spokes forward nothing else and the hub's rule accepts nothing else.
func CommandEventPattern() *awsevents.EventPattern {
	return &awsevents.EventPattern{
		Source:     jsii.Strings(contract.EventSourceSSM),
		DetailType: jsii.Strings(contract.DetailTypeCommandState),
		Detail: &map[string]interface{}{
			"document-name": []string{contract.PatchDocument},
			"status":        contract.TerminalCommandStatuses(),
		},
	}
}

// NewStack builds SpokeEventsStack. Like SpokeStack it has no assets and no
// bootstrap version rule, because StackSets deploy it into accounts that
// were never bootstrapped; unlike SpokeStack (one IAM role per account) it is
// deployed to every region of a spoke account that a plan patches, since
// EventBridge rules are regional.
func NewStack(scope constructs.Construct, id string, props *StackProps) *Stack {
	if props == nil {
		props = &StackProps{}
	}
	if props.HubAccountID == "" || props.HubRegion == "" || props.HubNamePrefix == "" {
		panic("spokeevents: HubAccountID, HubRegion and HubNamePrefix are required")
	}
	sp := props.StackProps
	if sp.Synthesizer == nil {
		sp.Synthesizer = awscdk.NewBootstraplessSynthesizer(&awscdk.BootstraplessSynthesizerProps{})
	}
	if sp.Description == nil {
		sp.Description = jsii.String("ec2patch SpokeEventsStack: forwards patch command status events to the hub")
	}
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	hubBusARN := contract.HubEventBusARN(*awscdk.Aws_PARTITION(), props.HubRegion, props.HubAccountID, props.HubNamePrefix)
	hubBus := awsevents.EventBus_FromEventBusArn(stack, jsii.String("HubEventBus"), jsii.String(hubBusARN))

	// A generated name: the stack is deployed in several regions of one
	// account, and IAM names are global to the account.
	role := awsiam.NewRole(stack, jsii.String("ForwardRole"), &awsiam.RoleProps{
		Description: jsii.String("Lets EventBridge forward patch command events to the ec2patch hub bus"),
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("events.amazonaws.com"), nil),
	})
	// The target grants the role events:PutEvents on the hub bus and on
	// nothing else.
	rule := awsevents.NewRule(stack, jsii.String("ForwardCommandEvents"), &awsevents.RuleProps{
		Description:  jsii.String("Forwards AWS-RunPatchBaseline terminal command status events to the ec2patch hub"),
		EventPattern: CommandEventPattern(),
		Targets: &[]awsevents.IRuleTarget{
			awseventstargets.NewEventBus(hubBus, &awseventstargets.EventBusProps{Role: role}),
		},
	})
	return &Stack{Stack: stack, Rule: rule, Role: role}
}
