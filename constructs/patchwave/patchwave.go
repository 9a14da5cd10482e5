// Package patchwave defines PatchWaveStateMachine: the PatchOrchestrator
// Standard workflow, whose distributed map runs the PatchTarget workflow once
// per account-region of each wave.
package patchwave

import (
	"encoding/json"
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	sfn "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctionstasks"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/ec2patch/ec2patch/internal/contract"
)

// Props configure PatchWaveStateMachine.
type Props struct {
	// Functions maps each contract.Function's Name to its Lambda. Every
	// function of contract.StateMachineFunctions() is required; others
	// (ApprovalCallback, which the approval API invokes) are ignored.
	Functions map[string]awslambda.IFunction
	// Bucket holds the wave manifests under runs/, the distributed map's
	// item source. Required.
	Bucket awss3.IBucket
	// LogGroup receives the state machine's execution logs. Required.
	LogGroup awslogs.ILogGroup
	// Retry settings for every Task's transient errors. Default: 2 s
	// interval, backoff rate 2, 4 attempts.
	RetryInterval awscdk.Duration
}

// StateMachine is PatchWaveStateMachine.
type StateMachine struct {
	constructs.Construct
	// Orchestrator is the PatchOrchestrator state machine.
	Orchestrator sfn.StateMachine
}

// NewStateMachine builds the PatchOrchestrator. It panics, as constructs do,
// when a required prop is missing.
func NewStateMachine(scope constructs.Construct, id string, props *Props) *StateMachine {
	if props == nil {
		props = &Props{}
	}
	for _, fn := range contract.StateMachineFunctions() {
		if props.Functions[fn.Name] == nil {
			panic(fmt.Sprintf("patchwave: no Lambda for %s", fn.Name))
		}
	}
	if props.Bucket == nil || props.LogGroup == nil {
		panic("patchwave: Bucket and LogGroup are required")
	}
	if props.RetryInterval == nil {
		props.RetryInterval = awscdk.Duration_Seconds(jsii.Number(2))
	}
	node := constructs.NewConstruct(scope, jsii.String(id))
	b := &builder{scope: node, props: props}

	definition := b.orchestrator()
	sm := sfn.NewStateMachine(node, jsii.String("PatchOrchestrator"), &sfn.StateMachineProps{
		Comment:          jsii.String("ec2patch PatchOrchestrator: patches a plan's waves in order"),
		DefinitionBody:   sfn.DefinitionBody_FromChainable(definition),
		StateMachineType: sfn.StateMachineType_STANDARD,
		QueryLanguage:    sfn.QueryLanguage_JSON_PATH,
		TracingEnabled:   jsii.Bool(false),
		Logs: &sfn.LogOptions{
			Destination:          props.LogGroup,
			Level:                sfn.LogLevel_ALL,
			IncludeExecutionData: jsii.Bool(true),
		},
	})
	// The ItemReader reads the wave manifests, and only those: the bucket
	// is named literally in the ItemReader (see itemReader), so the CDK
	// grants nothing bucket-wide and this is the whole read permission.
	sm.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("s3:GetObject"),
		Resources: jsii.Strings(*props.Bucket.ArnForObjects(jsii.String("runs/*"))),
	}))
	if key := props.Bucket.EncryptionKey(); key != nil {
		key.GrantDecrypt(sm.Role())
	}
	// The CDK itself grants states:StartExecution on this state machine and
	// states:DescribeExecution/StopExecution on its executions, which the
	// distributed map needs to run its children.
	return &StateMachine{Construct: node, Orchestrator: sm}
}

type builder struct {
	scope constructs.Construct
	props *Props
}

// invoke is a LambdaInvoke whose result is the function's payload alone, so
// history holds no Lambda response metadata. With no payload the function
// receives the whole state.
func (b *builder) invoke(state string, fn contract.Function, payload map[string]interface{}, resultPath string) awsstepfunctionstasks.LambdaInvoke {
	props := &awsstepfunctionstasks.LambdaInvokeProps{
		StateName:                jsii.String(state),
		LambdaFunction:           b.props.Functions[fn.Name],
		PayloadResponseOnly:      jsii.Bool(true),
		RetryOnServiceExceptions: jsii.Bool(false), // retried by retry() with the contract's list
	}
	if payload != nil {
		props.Payload = sfn.TaskInput_FromObject(&payload)
	}
	if resultPath != "" {
		props.ResultPath = jsii.String(resultPath)
	}
	task := awsstepfunctionstasks.NewLambdaInvoke(b.scope, jsii.String(state), props)
	b.retry(task)
	return task
}

// retry adds the transient-error retrier every Task has.
func (b *builder) retry(task sfn.TaskStateBase) {
	errs := append(contract.RetryableErrors(), contract.LambdaServiceErrors()...)
	task.AddRetry(&sfn.RetryProps{
		Errors:         jsii.Strings(errs...),
		Interval:       b.props.RetryInterval,
		BackoffRate:    jsii.Number(2),
		MaxAttempts:    jsii.Number(4),
		JitterStrategy: sfn.JitterType_FULL,
	})
	// A crashed handler is retried too: a retry re-reads what the crashed
	// attempt recorded (SendSsmCommand reuses the commands it sent), so it
	// never acts twice. Two attempts: a handler that keeps crashing is a
	// bug, not an outage.
	task.AddRetry(&sfn.RetryProps{
		Errors:         jsii.Strings(contract.LambdaCrashErrors()...),
		Interval:       b.props.RetryInterval,
		BackoffRate:    jsii.Number(2),
		MaxAttempts:    jsii.Number(2),
		JitterStrategy: sfn.JitterType_FULL,
	})
}

func at(path string) *string { return sfn.JsonPath_StringAt(jsii.String(path)) }

func (b *builder) orchestrator() sfn.IChainable {
	s := b.scope
	prepare := b.invoke(contract.StatePrepareRun, contract.PrepareRun, map[string]interface{}{
		"input":         at("$"),
		"executionName": at("$$.Execution.Name"),
		"startTime":     at("$$.Execution.StartTime"),
	}, "")

	// SelectWave starts each wave with a clear alarm check, so EvaluateWave
	// always has one to apply and a previous wave's check never leaks in.
	selectWave := sfn.NewPass(s, jsii.String(contract.StateSelectWave), &sfn.PassProps{
		Parameters: &map[string]interface{}{
			"run":    at("$.run"),
			"cursor": at("$.cursor"),
			"wave": sfn.JsonPath_ArrayGetItem(sfn.JsonPath_ListAt(jsii.String("$.run.waves")),
				sfn.JsonPath_NumberAt(jsii.String("$.cursor.index"))),
			"alarms": toMap(contract.AlarmCheck{Alarms: []string{}}),
		},
	})

	targets := sfn.NewDistributedMap(s, jsii.String(contract.StatePatchTargets), &sfn.DistributedMapProps{
		ItemReader:         itemReader(b.props.Bucket),
		ItemSelector:       ItemSelector(),
		MaxConcurrencyPath: jsii.String("$.wave.maxConcurrency"),
		ResultPath:         sfn.JsonPath_DISCARD(), // targets record their results in DynamoDB
		MapExecutionType:   sfn.StateMachineType_STANDARD,
	})
	targets.ItemProcessor(b.patchTarget(), nil) // DISTRIBUTED, STANDARD children (MapExecutionType)

	evaluate := b.invoke(contract.StateEvaluateWave, contract.EvaluateWave, map[string]interface{}{
		"runId":  at("$.run.runId"),
		"wave":   at("$.wave"),
		"alarms": at(contract.PathAlarms),
	}, contract.PathVerdict)

	report := b.invoke(contract.StateWriteRunReport, contract.WriteRunReport, map[string]interface{}{
		"run":     at("$.run"),
		"cursor":  at("$.cursor"),
		"verdict": at(contract.PathVerdict),
	}, "")
	report.Next(sfn.NewSucceed(s, jsii.String(contract.StateRunDone), nil))

	// AdvanceWave keeps the verdict, so WriteRunReport always has the last one.
	advance := sfn.NewPass(s, jsii.String(contract.StateAdvanceWave), &sfn.PassProps{
		Parameters: &map[string]interface{}{
			"run": at("$.run"),
			"cursor": map[string]interface{}{
				"index": sfn.JsonPath_MathAdd(sfn.JsonPath_NumberAt(jsii.String("$.cursor.index")), jsii.Number(1)),
			},
			"verdict": at(contract.PathVerdict),
		},
	})
	pause := sfn.NewWait(s, jsii.String(contract.StateWavePause), &sfn.WaitProps{
		Time: sfn.WaitTime_SecondsPath(jsii.String("$.run.wavePauseSeconds")),
	})
	more := sfn.NewChoice(s, jsii.String(contract.StateMoreWaves), nil).
		When(sfn.Condition_NumberLessThanJsonPath(jsii.String("$.cursor.index"), jsii.String("$.run.waveCount")),
			pause.Next(selectWave), nil).
		Otherwise(report)
	advance.Next(more)

	// A halt (alarm or rejected approval) stops the run whatever
	// abortOnIssues says; a FAILED wave stops it only with abortOnIssues.
	abort := sfn.NewChoice(s, jsii.String(contract.StateAbortCheck), nil).
		When(sfn.Condition_Or(
			sfn.Condition_BooleanEquals(jsii.String(contract.PathVerdict+".halt"), jsii.Bool(true)),
			sfn.Condition_And(
				sfn.Condition_StringEquals(jsii.String(contract.PathVerdict+".status"), jsii.String(contract.StatusFailed)),
				sfn.Condition_BooleanEquals(jsii.String("$.run.abortOnIssues"), jsii.Bool(true)))),
			report, nil).
		Otherwise(advance)

	// After the wave: the halt alarms, when the wave lists any, then the
	// verdict, which folds the alarm check in.
	hasAlarmsAfter := sfn.NewChoice(s, jsii.String(contract.StateHasAlarmsAfter), nil).
		When(hasHaltAlarms(), b.checkAlarms(contract.StateAlarmsAfter, contract.StateAlarmCheckFailedAfter,
			contract.PhaseAfterWave, evaluate), nil).
		Otherwise(evaluate)
	targets.Next(hasAlarmsAfter)
	evaluate.Next(abort)

	// Before the wave: the approval gate, after the halt alarms.
	approvalRequired := sfn.NewChoice(s, jsii.String(contract.StateApprovalRequired), nil).
		When(sfn.Condition_BooleanEquals(jsii.String("$.wave.approval"), jsii.Bool(true)),
			b.previewWave().Next(b.requestApproval(report)).Next(targets), nil).
		Otherwise(targets)

	halted := haltVerdict(s, contract.StateHaltedByAlarm, contract.StatusAborted, at(contract.PathAlarms+".reason"))
	halted.Next(report)
	alarmsClear := sfn.NewChoice(s, jsii.String(contract.StateAlarmsClear), nil).
		When(sfn.Condition_BooleanEquals(jsii.String(contract.PathAlarms+".firing"), jsii.Bool(true)), halted, nil).
		Otherwise(approvalRequired)
	hasAlarmsBefore := sfn.NewChoice(s, jsii.String(contract.StateHasAlarmsBefore), nil).
		When(hasHaltAlarms(), b.checkAlarms(contract.StateAlarmsBefore, contract.StateAlarmCheckFailedBefore,
			contract.PhaseBeforeWave, alarmsClear), nil).
		Otherwise(approvalRequired)

	// A Patch Tuesday schedule fires weekly; PrepareRun marks the firings
	// that are not the run day, which end here without touching a spoke.
	isPatchDay := sfn.NewChoice(s, jsii.String(contract.StateIsPatchDay), nil).
		When(sfn.Condition_IsPresent(jsii.String(contract.PathNotPatchDay)),
			sfn.NewSucceed(s, jsii.String(contract.StateNotPatchDay), &sfn.SucceedProps{
				Comment: jsii.String("A scheduled firing on a day that is not the campaign's run day"),
			}), nil).
		Otherwise(selectWave)
	selectWave.Next(hasAlarmsBefore)
	return prepare.Next(isPatchDay)
}

// hasHaltAlarms is true when the wave lists at least one halt alarm.
func hasHaltAlarms() sfn.Condition {
	return sfn.Condition_IsPresent(jsii.String("$.wave.haltAlarms[0]"))
}

// checkAlarms invokes CheckHaltAlarms for the wave's halt alarms, then goes
// to next. It fails closed: a check that cannot be made (after its retries)
// counts as a firing alarm, so a wave never starts or passes unchecked.
func (b *builder) checkAlarms(state, failedState, phase string, next sfn.IChainable) sfn.IChainable {
	check := b.invoke(state, contract.CheckHaltAlarms, map[string]interface{}{
		"runId":      at("$.run.runId"),
		"waveId":     at("$.wave.waveId"),
		"alarmNames": sfn.JsonPath_ListAt(jsii.String("$.wave.haltAlarms")),
		"phase":      phase,
	}, contract.PathAlarms)
	failed := sfn.NewPass(b.scope, jsii.String(failedState), &sfn.PassProps{
		Parameters: &map[string]interface{}{
			"firing": true,
			"alarms": sfn.JsonPath_ListAt(jsii.String("$.wave.haltAlarms")),
			"reason": sfn.JsonPath_Format(jsii.String("halt alarms could not be checked "+phase+" the wave ({}): {}"),
				at(contract.PathAlarms+".Error"), at(contract.PathAlarms+".Cause")),
		},
		ResultPath: jsii.String(contract.PathAlarms),
	})
	check.AddCatch(failed, &sfn.CatchProps{
		Errors:     jsii.Strings(*sfn.Errors_ALL()),
		ResultPath: jsii.String(contract.PathAlarms),
	})
	failed.Next(next)
	return check.Next(next)
}

// haltVerdict is a Pass that puts the verdict of a wave that never ran
// (rejected, or halted by an alarm before it) at PathVerdict, with halt set:
// the run ends there whatever abortOnIssues says, and WriteRunReport takes
// the wave's status and reason from this verdict.
func haltVerdict(s constructs.Construct, state, status string, reason *string) sfn.Pass {
	return sfn.NewPass(s, jsii.String(state), &sfn.PassProps{
		Parameters: &map[string]interface{}{
			"waveId": at("$.wave.waveId"),
			"status": status,
			"reason": reason,
			"halt":   true,
			"counts": toMap(contract.Counts{}),
		},
		ResultPath: jsii.String(contract.PathVerdict),
	})
}

// previewWave inventories every target of the wave without patching
// anything: PreEC2Inventory in preview mode records a PREVIEW summary per
// account-region for the approval request. One failing target never fails
// the preview, and the children's outputs are kept tiny (the records are
// the result).
func (b *builder) previewWave() sfn.DistributedMap {
	s := b.scope
	sel := *ItemSelector()
	sel["preview"] = true
	preview := sfn.NewDistributedMap(s, jsii.String(contract.StatePreviewWave), &sfn.DistributedMapProps{
		ItemReader:         itemReader(b.props.Bucket),
		ItemSelector:       &sel,
		MaxConcurrencyPath: jsii.String("$.wave.maxConcurrency"),
		ResultPath:         sfn.JsonPath_DISCARD(),
		MapExecutionType:   sfn.StateMachineType_STANDARD,
	})
	inventory := awsstepfunctionstasks.NewLambdaInvoke(s, jsii.String(contract.StatePreviewInventory), &awsstepfunctionstasks.LambdaInvokeProps{
		StateName:                jsii.String(contract.StatePreviewInventory),
		LambdaFunction:           b.props.Functions[contract.PreEC2Inventory.Name],
		PayloadResponseOnly:      jsii.Bool(true),
		RetryOnServiceExceptions: jsii.Bool(false),
		ResultSelector: &map[string]interface{}{
			"matched":     sfn.JsonPath_NumberAt(jsii.String("$.matched")),
			"targetCount": sfn.JsonPath_NumberAt(jsii.String("$.targetCount")),
		},
		ResultPath: jsii.String("$"),
	})
	b.retry(inventory)
	failed := sfn.NewPass(s, jsii.String(contract.StatePreviewFailed), &sfn.PassProps{
		Parameters: &map[string]interface{}{
			"account": at("$.account"),
			"region":  at("$.region"),
			"error":   at(contract.PathError + ".Error"),
		},
	})
	inventory.AddCatch(failed, &sfn.CatchProps{
		Errors:     jsii.Strings(*sfn.Errors_ALL()),
		ResultPath: jsii.String(contract.PathError),
	})
	preview.ItemProcessor(inventory, nil)
	return preview
}

// requestApproval is the approval gate: SendApprovalRequest stores the task
// token and notifies the approvers, and the task waits for ApprovalCallback
// to answer, at most the run's approval timeout. A rejection, a timeout or
// a request that could not be sent makes the wave REJECTED and ends the run.
func (b *builder) requestApproval(report sfn.IChainable) awsstepfunctionstasks.LambdaInvoke {
	task := awsstepfunctionstasks.NewLambdaInvoke(b.scope, jsii.String(contract.StateRequestApproval), &awsstepfunctionstasks.LambdaInvokeProps{
		StateName:                jsii.String(contract.StateRequestApproval),
		LambdaFunction:           b.props.Functions[contract.SendApprovalRequest.Name],
		IntegrationPattern:       sfn.IntegrationPattern_WAIT_FOR_TASK_TOKEN,
		RetryOnServiceExceptions: jsii.Bool(false),
		Payload: sfn.TaskInput_FromObject(&map[string]interface{}{
			"taskToken":      sfn.JsonPath_TaskToken(),
			"runId":          at("$.run.runId"),
			"dryRun":         at("$.run.dryRun"),
			"operation":      at("$.run.operation"),
			"timeoutSeconds": at("$.run.approvalTimeoutSeconds"),
			"wave":           at("$.wave"),
		}),
		TaskTimeout: sfn.Timeout_At(jsii.String("$.run.approvalTimeoutSeconds")),
		ResultPath:  jsii.String(contract.PathApproval),
	})
	b.retry(task)
	rejected := haltVerdict(b.scope, contract.StateApprovalRejected, contract.StatusRejected,
		sfn.JsonPath_Format(jsii.String("{}: {}"),
			at(contract.PathApprovalError+".Error"), at(contract.PathApprovalError+".Cause")))
	rejected.Next(report)
	task.AddCatch(rejected, &sfn.CatchProps{
		Errors:     jsii.Strings(*sfn.Errors_ALL()),
		ResultPath: jsii.String(contract.PathApprovalError),
	})
	return task
}

// itemReader reads the wave's manifest (a JSON array of contract.TargetRef)
// at the key in $.wave.targetsKey. The bucket is given by name rather than as
// a construct so the CDK does not grant s3:GetObject on the whole bucket;
// NewStateMachine grants the runs/ prefix instead.
func itemReader(bucket awss3.IBucket) sfn.IItemReader {
	return sfn.NewS3JsonItemReader(&sfn.S3FileItemReaderProps{
		BucketNamePath: bucket.BucketName(),
		Key:            at("$.wave.targetsKey"),
	})
}

// ItemSelector builds a contract.TargetInput for each manifest item from
// contract.TargetInputFields.
func ItemSelector() *map[string]interface{} {
	sel := map[string]interface{}{}
	for _, f := range contract.TargetInputFields() {
		sel[f.Field] = at(f.Path)
	}
	return &sel
}

// patchTarget is the PatchTarget workflow: inventory, send, await, verify.
// It catches its own errors and always returns a contract.TargetSummary.
func (b *builder) patchTarget() sfn.IChainable {
	s := b.scope
	done := sfn.NewSucceed(s, jsii.String(contract.StateTargetSucceeded), nil)

	// RecordTargetFailure has the retrier but no Catch: if the failure cannot
	// be recorded, the map must fail loudly.
	record := b.invoke(contract.StateRecordFailure, contract.RecordTargetFailure, nil, "")
	record.Next(done)
	catch := func(t awsstepfunctionstasks.LambdaInvoke) awsstepfunctionstasks.LambdaInvoke {
		t.AddCatch(record, &sfn.CatchProps{
			Errors:     jsii.Strings(*sfn.Errors_ALL()),
			ResultPath: jsii.String(contract.PathError),
		})
		return t
	}

	inventory := catch(b.invoke(contract.StateInventory, contract.PreEC2Inventory, nil, contract.PathInventory))
	send := catch(b.invoke(contract.StateSendCommand, contract.SendSsmCommand, nil, contract.PathCommand))
	verify := catch(b.invoke(contract.StateVerify, contract.PostEC2Verify, nil, ""))
	verify.Next(done)
	await := b.awaitCommand(verify, record)
	send.Next(await)

	// A re-run skips a target whose recorded result is final. The flag is
	// omitted when false, so its presence is tested first.
	alreadyDone := sfn.NewSucceed(s, jsii.String(contract.StateAlreadyDone), &sfn.SucceedProps{
		OutputPath: jsii.String(contract.PathInventory),
	})
	hasInstances := sfn.NewChoice(s, jsii.String(contract.StateHasInstances), nil).
		When(sfn.Condition_And(
			sfn.Condition_IsPresent(jsii.String(contract.PathInventory+".alreadyRecorded")),
			sfn.Condition_BooleanEquals(jsii.String(contract.PathInventory+".alreadyRecorded"), jsii.Bool(true))),
			alreadyDone, nil).
		When(sfn.Condition_NumberGreaterThan(jsii.String(contract.PathInventory+".targetCount"), jsii.Number(0)), send, nil).
		Otherwise(verify)
	return inventory.Next(hasInstances)
}

// awaitCommand registers the target's task token with AwaitSsmCommand and
// waits, without a poll loop, until CommandStatusEvents or the reconciler
// answers it with a contract.PollResult: the target's history is the same
// few events whatever the patch's duration. If nothing answers within the
// run's await timeout (the command timeout plus two reconcile intervals),
// the task's own timeout makes the poll TIMED_OUT and verification records
// what the instances report.
func (b *builder) awaitCommand(verify, record sfn.IChainable) awsstepfunctionstasks.LambdaInvoke {
	s := b.scope
	task := awsstepfunctionstasks.NewLambdaInvoke(s, jsii.String(contract.StateAwaitCommand), &awsstepfunctionstasks.LambdaInvokeProps{
		StateName:                jsii.String(contract.StateAwaitCommand),
		LambdaFunction:           b.props.Functions[contract.AwaitSsmCommand.Name],
		IntegrationPattern:       sfn.IntegrationPattern_WAIT_FOR_TASK_TOKEN,
		RetryOnServiceExceptions: jsii.Bool(false),
		Payload: sfn.TaskInput_FromObject(&map[string]interface{}{
			"taskToken":       sfn.JsonPath_TaskToken(),
			"runId":           at("$.runId"),
			"waveId":          at("$.waveId"),
			"account":         at("$.account"),
			"region":          at("$.region"),
			"executionId":     at("$.executionId"),
			"commandIds":      at(contract.PathCommand + ".commandIds"),
			"deadlineSeconds": at("$.commandTimeoutSeconds"),
		}),
		TaskTimeout: sfn.Timeout_At(jsii.String("$.awaitTimeoutSeconds")),
		ResultPath:  jsii.String(contract.PathPoll),
	})
	b.retry(task)
	timedOut := sfn.NewPass(s, jsii.String(contract.StateAwaitTimedOut), &sfn.PassProps{
		Result:     sfn.Result_FromObject(toMap(contract.PollResult{Phase: contract.PhaseTimedOut})),
		ResultPath: jsii.String(contract.PathPoll),
	})
	timedOut.Next(verify)
	// The timeout is caught first: Catch rules match in order, and
	// States.ALL would otherwise record the target as failed.
	task.AddCatch(timedOut, &sfn.CatchProps{
		Errors:     jsii.Strings(*sfn.Errors_TIMEOUT()),
		ResultPath: jsii.String(contract.PathAwaitError),
	})
	task.AddCatch(record, &sfn.CatchProps{
		Errors:     jsii.Strings(*sfn.Errors_ALL()),
		ResultPath: jsii.String(contract.PathError),
	})
	task.Next(verify)
	return task
}

// toMap turns a contract value into the map the CDK renders, through its
// JSON tags, so the state machine and the handlers agree on field names.
func toMap(v any) *map[string]interface{} {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("patchwave: %v", err))
	}
	var m map[string]interface{}
	if err := json.Unmarshal(data, &m); err != nil {
		panic(fmt.Sprintf("patchwave: %v", err))
	}
	return &m
}
