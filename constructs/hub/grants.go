package hub

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"
)

// What the handler roles are granted, as explicit action lists that match
// what each handler calls (lambdas/ and lambdas/internal/store), and, next to
// each grant, why an action that no emulator scenario calls is granted all
// the same. The e2e package measures it: every recorded call must be
// allowed, and every grant used or explained here (UnusedGrantReasons).

// grantTarget is the stack resource a grant applies to.
type grantTarget int

const (
	onTable     grantTarget = iota
	onManifests             // the bucket's runs/ prefix: each wave's target list
	onReports               // reports/: the run reports
	onTopic
	onSigningSecret
	onKey
)

// grant is one statement of a handler role's policy.
type grant struct {
	sid     string
	on      grantTarget
	actions []string
	// unused gives, for an action no emulator scenario calls, the reason
	// it is granted.
	unused map[string]string
}

// Reasons shared by several grants.
const (
	// The handlers never call KMS themselves; the services below do, with
	// the caller's credentials, and the key policy admits them only through
	// those services.
	whyKMS = "DynamoDB, S3, SNS and Secrets Manager call KMS on the role's behalf " +
		"(kms:ViaService), and Lambda decrypts the function's environment with it (checkov.go); " +
		"moto does not model KMS, so no recorded call shows it"
)

// keyUse is the KMS statement of a role whose handler reads encrypted data
// (decrypt) and, with encrypt, also writes S3 objects or publishes to SNS.
func keyUse(encrypt bool) grant {
	actions := []string{"kms:Decrypt", "kms:DescribeKey"}
	if encrypt {
		actions = append(actions, "kms:GenerateDataKey")
	}
	unused := map[string]string{}
	for _, a := range actions {
		unused[a] = whyKMS
	}
	return grant{sid: "UseStackKeyViaServices", on: onKey, actions: actions, unused: unused}
}

// handlerGrants maps a role's construct ID to its grants. The task role
// (PatchTaskRole) is shared by the spoke-calling handlers, so it holds the
// union of theirs; its sts:AssumeRole grant is built in roles().
func handlerGrants() map[string][]grant {
	publish := grant{sid: "PublishNotifications", on: onTopic, actions: []string{"sns:Publish"}}
	readSecret := grant{sid: "ReadSigningKey", on: onSigningSecret, actions: []string{"secretsmanager:GetSecretValue"}}
	return map[string][]grant{
		"PatchTaskRole": {
			// PreEC2Inventory and PostEC2Verify record targets and the
			// instance ledger (BatchWriteItem); SendSsmCommand claims a
			// target and appends its command; the reconciler (PollSsmCommand)
			// reads and completes the waiting records.
			{sid: "TargetRecords", on: onTable, actions: []string{"dynamodb:GetItem", "dynamodb:PutItem",
				"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:BatchWriteItem"}},
			// No S3: SSM in the spoke writes the command output (the bucket
			// policy's SpokeCommandOutput), and no handler reads it.
			keyUse(false),
		},
		"PrepareRunRole": {
			// StartRun: one conditional update, which also refuses a
			// second start of the same run.
			{sid: "RunRecords", on: onTable, actions: []string{"dynamodb:UpdateItem"}},
			{sid: "WriteManifests", on: onManifests, actions: []string{"s3:PutObject"}},
			publish, // announces the run's start
			keyUse(true),
		},
		"RecordTargetFailureRole": {
			// FinishTargetUnlessOwned: read the target, then a conditional put.
			{sid: "TargetRecords", on: onTable, actions: []string{"dynamodb:GetItem", "dynamodb:PutItem"}},
			keyUse(false),
		},
		"EvaluateWaveRole": {
			// WaveTargets (query), PutWave (put).
			{sid: "WaveRecords", on: onTable, actions: []string{"dynamodb:PutItem", "dynamodb:Query"}},
			publish, // each wave's verdict
			keyUse(true),
		},
		"WriteRunReportRole": {
			// Run (query), FinishRun (update).
			{sid: "RunRecords", on: onTable, actions: []string{"dynamodb:UpdateItem", "dynamodb:Query"}},
			{sid: "WriteReports", on: onReports, actions: []string{"s3:PutObject"}},
			publish,
			keyUse(true),
		},
		"SendApprovalRequestRole": {
			// Previews (query), PutApproval (the approval and its pending
			// record: two puts).
			{sid: "ApprovalRecords", on: onTable, actions: []string{"dynamodb:PutItem", "dynamodb:Query"}},
			publish, // the approve and reject links
			readSecret,
			keyUse(true),
		},
		"ApprovalCallbackRole": {
			// Approval (get), DecideApproval and UndoDecision (update),
			// PutRunDecision (put), ForgetPending (delete).
			{sid: "ApprovalRecords", on: onTable, actions: []string{"dynamodb:GetItem", "dynamodb:PutItem",
				"dynamodb:UpdateItem", "dynamodb:DeleteItem"}},
			readSecret,
			keyUse(false),
		},
		"AwaitSsmCommandRole": {
			// Register: one transaction of puts (TransactWriteItems needs
			// each item's action).
			{sid: "WaitingRecords", on: onTable, actions: []string{"dynamodb:PutItem"}},
			keyUse(false),
		},
		"CommandStatusEventsRole": {
			// Commands (query), RecordStatus and Finish (update), Forget
			// (delete), Restore (put).
			{sid: "WaitingRecords", on: onTable, actions: []string{"dynamodb:PutItem", "dynamodb:UpdateItem",
				"dynamodb:DeleteItem", "dynamodb:Query"},
				unused: map[string]string{"dynamodb:PutItem": "Restore puts a finished waiting record back when " +
					"SendTaskSuccess fails, so the reconciler retries it; no scenario fails that call"}},
			keyUse(false),
		},
	}
}

// otherRoleReasons explains the unused grants of the roles whose policies
// the CDK or other constructs write, keyed by role construct ID.
func otherRoleReasons() map[string]map[string]string {
	const (
		logDelivery = "Step Functions sets up the state machine's log delivery with it when the state " +
			"machine is created or updated (the CDK's LogOptions grant); no execution calls it"
		children = "the distributed map's child executions on AWS (the CDK's DistributedMap grant); " +
			"moto runs the children in process, without these calls"
		redrive  = "redriving a failed map run (an operator's action after a fault); no scenario redrives"
		schedule = "EventBridge Scheduler starts campaign runs with it (schedules.go); moto's CloudFormation " +
			"skips AWS::Scheduler::Schedule, so the harness starts scheduled runs itself"
		deadLetter = "the schedules' dead-letter queue: only a schedule that cannot start a run writes to it, " +
			"and moto runs no schedules"
	)
	return map[string]map[string]string{
		"PatchWaveStateMachinePatchOrchestratorRole": {
			"logs:CreateLogDelivery": logDelivery, "logs:DeleteLogDelivery": logDelivery,
			"logs:DescribeLogGroups": logDelivery, "logs:DescribeResourcePolicies": logDelivery,
			"logs:GetLogDelivery": logDelivery, "logs:ListLogDeliveries": logDelivery,
			"logs:PutResourcePolicy": logDelivery, "logs:UpdateLogDelivery": logDelivery,
			"states:StartExecution": children, "states:DescribeExecution": children,
			"states:StopExecution": children, "states:RedriveExecution": redrive,
			"kms:Decrypt": whyKMS,
		},
		"SchedulerRole": {
			"states:StartExecution": schedule, "kms:Decrypt": schedule,
			"sqs:GetQueueAttributes": deadLetter, "sqs:GetQueueUrl": deadLetter, "sqs:SendMessage": deadLetter,
			"kms:Encrypt": deadLetter, "kms:GenerateDataKey*": deadLetter, "kms:ReEncrypt*": deadLetter,
		},
		// The spoke's roles (constructs/spoke, constructs/spokeevents) are
		// measured here too: the hub's handlers are their only users.
		"CheckHaltAlarmsRole": {"kms:Decrypt": whyKMS},
		"ForwardRole": {
			"events:PutEvents": "EventBridge forwards the spokes' command events with it; moto routes no events, " +
				"the test proxy delivers them to CommandStatusEvents itself",
		},
	}
}

// UnusedGrantReasons returns, per role construct ID (the role's logical ID
// without the CDK's hash) and granted action, the written reason a grant
// that no emulator scenario uses is kept.
func UnusedGrantReasons() map[string]map[string]string {
	out := otherRoleReasons()
	for role, grants := range handlerGrants() {
		for _, g := range grants {
			for action, why := range g.unused {
				if out[role] == nil {
					out[role] = map[string]string{}
				}
				out[role][action] = why
			}
		}
	}
	return out
}

// grant adds the handler grants of the role with construct ID id.
func (h *Stack) grant(id string, role awsiam.Role) {
	for _, g := range handlerGrants()[id] {
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String(g.sid),
			Actions:   jsii.Strings(g.actions...),
			Resources: jsii.Strings(h.grantARN(g.on)),
		}))
	}
}

func (h *Stack) grantARN(t grantTarget) string {
	switch t {
	case onTable:
		return *h.Table.TableArn()
	case onManifests:
		return *h.Bucket.ArnForObjects(jsii.String("runs/*"))
	case onReports:
		return *h.Bucket.ArnForObjects(jsii.String("reports/*"))
	case onTopic:
		return *h.Topic.TopicArn()
	case onSigningSecret:
		return *h.SigningSecret.SecretArn()
	case onKey:
		return *h.Key.KeyArn()
	}
	panic("hub: unknown grant target")
}
