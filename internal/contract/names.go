package contract

import "time"

// Function identifies one Lambda handler: its seed name (the construct ID and
// the name operators see in the console) and its directory under lambdas/.
type Function struct {
	Name    string        // seed-compatible name, e.g. PreEC2Inventory
	Dir     string        // kebab-case main package under lambdas/
	Timeout time.Duration // from the seed's Lambda table where it names one
}

// The handlers. Names and timeouts of the seed's Lambdas are a compatibility
// surface: they appear in dashboards, alarms and runbooks.
var (
	PrepareRun      = Function{Name: "PrepareRun", Dir: "prepare-run", Timeout: time.Minute}
	PreEC2Inventory = Function{Name: "PreEC2Inventory", Dir: "pre-ec2-inventory", Timeout: 5 * time.Minute}
	SendSsmCommand  = Function{Name: "SendSsmCommand", Dir: "send-ssm-command", Timeout: 2 * time.Minute}
	// PollSsmCommand is the scheduled reconciler: it reads the progress of
	// every waiting target's commands, one ListCommands per command, and
	// resumes the targets whose commands ended (or whose deadline passed).
	PollSsmCommand      = Function{Name: "PollSsmCommand", Dir: "poll-ssm-command", Timeout: 10 * time.Minute}
	PostEC2Verify       = Function{Name: "PostEC2Verify", Dir: "post-ec2-verify", Timeout: 5 * time.Minute}
	RecordTargetFailure = Function{Name: "RecordTargetFailure", Dir: "record-target-failure", Timeout: time.Minute}
	EvaluateWave        = Function{Name: "EvaluateWave", Dir: "evaluate-wave", Timeout: 2 * time.Minute}
	WriteRunReport      = Function{Name: "WriteRunReport", Dir: "write-run-report", Timeout: 5 * time.Minute}
	SendApprovalRequest = Function{Name: "SendApprovalRequest", Dir: "send-approval-request", Timeout: time.Minute}
	ApprovalCallback    = Function{Name: "ApprovalCallback", Dir: "approval-callback", Timeout: time.Minute}
	CheckHaltAlarms     = Function{Name: "CheckHaltAlarms", Dir: "check-halt-alarms", Timeout: time.Minute}
	// AwaitSsmCommand registers a target's task token against its command
	// IDs; the target then waits without polling.
	AwaitSsmCommand = Function{Name: "AwaitSsmCommand", Dir: "await-ssm-command", Timeout: time.Minute}
	// CommandStatusEvents receives the spokes' SSM command status-change
	// events from the hub's event bus and resumes the waiting targets.
	CommandStatusEvents = Function{Name: "CommandStatusEvents", Dir: "command-status-events", Timeout: time.Minute}
)

// Functions lists every handler.
func Functions() []Function {
	return append(StateMachineFunctions(), ApprovalCallback, CommandStatusEvents, PollSsmCommand)
}

// StateMachineFunctions lists the handlers the PatchOrchestrator invokes,
// in the order a run first calls them. The others are not among them: the
// approval API invokes ApprovalCallback, the hub's event bus
// CommandStatusEvents, and a schedule PollSsmCommand.
func StateMachineFunctions() []Function {
	return []Function{PrepareRun, CheckHaltAlarms, SendApprovalRequest, PreEC2Inventory,
		SendSsmCommand, AwaitSsmCommand, PostEC2Verify, RecordTargetFailure, EvaluateWave, WriteRunReport}
}

// SpokeFunctions are the handlers that assume the spoke role; they share the
// hub task role that the spoke trusts.
func SpokeFunctions() []Function {
	return []Function{PreEC2Inventory, SendSsmCommand, PollSsmCommand, PostEC2Verify}
}

// Environment variables set by the constructs and read by the handlers' main.
const (
	EnvHandler        = "EC2PATCH_HANDLER"         // Function.Dir of the handler; lets tools map a function to its code
	EnvTable          = "EC2PATCH_TABLE"           // DynamoDB state table name
	EnvBucket         = "EC2PATCH_BUCKET"          // S3 bucket for manifests, command output and reports
	EnvSpokeRoleName  = "EC2PATCH_SPOKE_ROLE_NAME" // role assumed in every spoke account
	EnvExternalID     = "EC2PATCH_EXTERNAL_ID"     // sts:ExternalId for every spoke assumption
	EnvRunDefaults    = "EC2PATCH_RUN_DEFAULTS"    // JSON RunDefaults: what omitted run input fields take
	EnvTopicARN       = "EC2PATCH_TOPIC_ARN"       // SNS topic for notifications
	EnvRecordTTLDays  = "EC2PATCH_RECORD_TTL_DAYS" // days a run's DynamoDB records are kept
	EnvPlanWaves      = "EC2PATCH_PLAN_WAVES"      // JSON []WaveInput: the configured wave plan
	EnvEnvironment    = "EC2PATCH_ENVIRONMENT"     // hub name prefix: the Environment dimension of every metric
	EnvCommandTimeout = "EC2PATCH_COMMAND_TIMEOUT" // seconds an SSM command may run (executionTimeout)
	EnvApprovalURL    = "EC2PATCH_APPROVAL_URL"    // base URL of the approval API; links are <url>/<approvalId>?...
	EnvSigningSecret  = "EC2PATCH_SIGNING_SECRET"  //nolint:gosec // G101 on the word SECRET: this variable holds the ARN of the Secrets Manager secret that signs approval links, not a credential
)

// Defaults of the spoke side.
const (
	DefaultSpokeRoleName = "PatchExecRole"
	PatchDocument        = "AWS-RunPatchBaseline"
	// MaxInstancesPerCommand is SendCommand's limit on InstanceIds.
	MaxInstancesPerCommand = 50
)

// HubTaskRoleName is the physical name of the hub role that the spoke-calling
// handlers run as. It is named (unlike every other hub resource) because each
// spoke's trust policy must name it before the hub exists.
func HubTaskRoleName(namePrefix string) string { return namePrefix + "-PatchOrchestratorRole" }

// HubTaskRoleARN is the ARN a spoke trusts.
func HubTaskRoleARN(partition, hubAccount, namePrefix string) string {
	return "arn:" + partition + ":iam::" + hubAccount + ":role/" + HubTaskRoleName(namePrefix)
}

// SpokeRoleARN is the role a handler assumes in a spoke account.
func SpokeRoleARN(partition, account, roleName string) string {
	return "arn:" + partition + ":iam::" + account + ":role/" + roleName
}

// State names. They appear in execution history, alarms and runbooks:
// renaming one is a breaking change.
const (
	// Orchestrator.
	StatePrepareRun     = "PrepareRun"
	StateSelectWave     = "SelectWave"
	StatePatchTargets   = "PatchTargets"
	StateEvaluateWave   = "EvaluateWave"
	StateAbortCheck     = "AbortOnIssues"
	StateAdvanceWave    = "AdvanceWave"
	StateMoreWaves      = "MoreWaves"
	StateWavePause      = "WavePause"
	StateWriteRunReport = "WriteRunReport"
	StateRunDone        = "RunDone"
	// StateIsPatchDay is a Choice on PrepareResult.NotPatchDay; a scheduled
	// firing that is not the campaign's run day ends in StateNotPatchDay.
	StateIsPatchDay  = "IsPatchDay"
	StateNotPatchDay = "NotPatchDay"

	// Gates before and after a wave.
	StateAlarmsBefore     = "CheckAlarmsBeforeWave" // CheckHaltAlarms, phase "before"
	StateAlarmsClear      = "AlarmsClear"           // Choice on $.alarms.firing
	StateHaltedByAlarm    = "HaltedByAlarm"         // Pass: verdict ABORTED with the alarm, halt
	StateApprovalRequired = "ApprovalRequired"      // Choice on $.wave.approval
	StatePreviewWave      = "PreviewWave"           // distributed map: inventory only, recorded as PREVIEW
	StatePreviewInventory = "PreviewInventory"      // PreEC2Inventory with preview: true
	StateRequestApproval  = "SendApprovalRequest"   // waitForTaskToken
	StateApprovalRejected = "ApprovalRejected"      // Pass: verdict REJECTED, halt
	StateAlarmsAfter      = "CheckAlarmsAfterWave"  // CheckHaltAlarms, phase "after", before EvaluateWave
	// A halt alarm check that fails (after retries) counts as a firing alarm.
	StateAlarmCheckFailedBefore = "AlarmCheckFailedBeforeWave"
	StateAlarmCheckFailedAfter  = "AlarmCheckFailedAfterWave"
	StateHasAlarmsBefore        = "HasHaltAlarmsBefore" // Choice: does the wave list halt alarms? (before it)
	StateHasAlarmsAfter         = "HasHaltAlarmsAfter"  // Choice: does the wave list halt alarms? (after it)
	StatePreviewFailed          = "PreviewFailed"       // Pass: one target's preview failed; the preview goes on

	// PatchTarget (the distributed map's item processor).
	StateInventory    = "PreEC2Inventory"
	StateHasInstances = "HasInstances"
	StateSendCommand  = "SendSsmCommand"
	// AwaitSsmCommand waits for the target's task token to be answered
	// (see await.go); CommandTimedOut catches the task's own timeout.
	StateAwaitCommand    = "AwaitSsmCommand"
	StateAwaitTimedOut   = "CommandTimedOut"
	StateVerify          = "PostEC2Verify"
	StateRecordFailure   = "RecordTargetFailure"
	StateTargetSucceeded = "TargetDone"
	StateAlreadyDone     = "AlreadyRecorded" // Choice branch: a re-run skips a target with a final result
)

// Error names a handler returns as errorType. Each is the name of a Go type in
// lambdas/internal/fault; Retry and Catch match on them.
const (
	ErrInvalidRunInput = "InvalidRunInput" // bad run input: fail the execution, touch nothing
	ErrThrottled       = "Throttled"       // an AWS API throttled us: retry with backoff
	ErrTransient       = "Transient"       // a 5xx or network error: retry with backoff
	ErrAccessDenied    = "AccessDenied"    // role missing, trust or ExternalId wrong: record, do not retry
	ErrTargetFailed    = "TargetFailed"    // the target cannot be patched for a stated reason
	ErrStateStore      = "StateStoreError" // DynamoDB or S3 refused a write: fail loudly
	ErrTargetBusy      = "TargetBusy"      // another execution is sending to this target right now: retry
	// ErrApprovalRejected is the error ApprovalCallback sends with
	// SendTaskFailure when an approver rejects a wave.
	ErrApprovalRejected = "ApprovalRejected"
)

// RetryableErrors are the errors every Task retries, in addition to Lambda's
// own transient service errors.
func RetryableErrors() []string { return []string{ErrThrottled, ErrTransient, ErrTargetBusy} }

// LambdaServiceErrors are the Lambda service's transient errors that every
// LambdaInvoke task retries.
func LambdaServiceErrors() []string {
	return []string{"Lambda.ServiceException", "Lambda.AWSLambdaException",
		"Lambda.SdkClientException", "Lambda.TooManyRequestsException"}
}

// LambdaCrashErrors are the errors Step Functions reports when a function's
// process dies before it returns (Runtime.ExitError) or ends without an
// error type (Lambda.Unknown: out of memory, a crash). Every handler is
// idempotent (it re-reads its records before acting), so every Task
// retries them, a few times.
func LambdaCrashErrors() []string { return []string{"Runtime.ExitError", "Lambda.Unknown"} }

// CloudFormation output keys of the hub stack, read by operators and by the
// emulator harness.
const (
	OutputOrchestratorARN = "PatchOrchestratorArn"
	OutputTableName       = "StateTableName"
	OutputBucketName      = "ReportBucketName"
	OutputTopicARN        = "NotificationTopicArn"
	OutputTaskRoleARN     = "PatchTaskRoleArn"
	OutputApprovalURL     = "ApprovalApiUrl"     // base URL of approval links (EnvApprovalURL)
	OutputEventBusARN     = "CommandEventBusArn" // the hub bus the spokes forward command events to
)

// Stack names per environment.
func HubStackName(namePrefix string) string   { return namePrefix + "-hub" }
func SpokeStackName(namePrefix string) string { return namePrefix + "-spoke" }
