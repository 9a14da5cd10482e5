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
	// function of contract.Functions() is required.
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
	for _, fn := range contract.Functions() {
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
}

func at(path string) *string { return sfn.JsonPath_StringAt(jsii.String(path)) }

func (b *builder) orchestrator() sfn.IChainable {
	s := b.scope
	prepare := b.invoke(contract.StatePrepareRun, contract.PrepareRun, map[string]interface{}{
		"input":         at("$"),
		"executionName": at("$$.Execution.Name"),
		"startTime":     at("$$.Execution.StartTime"),
	}, "")

	selectWave := sfn.NewPass(s, jsii.String(contract.StateSelectWave), &sfn.PassProps{
		Parameters: &map[string]interface{}{
			"run":    at("$.run"),
			"cursor": at("$.cursor"),
			"wave": sfn.JsonPath_ArrayGetItem(sfn.JsonPath_ListAt(jsii.String("$.run.waves")),
				sfn.JsonPath_NumberAt(jsii.String("$.cursor.index"))),
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
		"runId": at("$.run.runId"),
		"wave":  at("$.wave"),
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

	abort := sfn.NewChoice(s, jsii.String(contract.StateAbortCheck), nil).
		When(sfn.Condition_And(
			sfn.Condition_StringEquals(jsii.String("$.verdict.status"), jsii.String(contract.StatusFailed)),
			sfn.Condition_BooleanEquals(jsii.String("$.run.abortOnIssues"), jsii.Bool(true))),
			report, nil).
		Otherwise(advance)

	return prepare.Next(selectWave).Next(targets).Next(evaluate).Next(abort)
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

// patchTarget is the PatchTarget workflow: inventory, send, poll, verify. It
// catches its own errors and always returns a contract.TargetSummary.
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
	poll := catch(b.invoke(contract.StatePollCommand, contract.PollSsmCommand, map[string]interface{}{
		"account":         at("$.account"),
		"region":          at("$.region"),
		"runId":           at("$.runId"),
		"waveId":          at("$.waveId"),
		"commandIds":      at(contract.PathCommand + ".commandIds"),
		"attempts":        at(contract.PathPoll + ".attempts"),
		"maxPollAttempts": at("$.maxPollAttempts"),
	}, contract.PathPoll))
	verify := catch(b.invoke(contract.StateVerify, contract.PostEC2Verify, nil, ""))
	verify.Next(done)

	startPolling := sfn.NewPass(s, jsii.String(contract.StateStartPolling), &sfn.PassProps{
		Result:     sfn.Result_FromObject(toMap(contract.PollStart())),
		ResultPath: jsii.String(contract.PathPoll),
	})
	wait := sfn.NewWait(s, jsii.String(contract.StatePollWait), &sfn.WaitProps{
		Time: sfn.WaitTime_SecondsPath(jsii.String("$.pollIntervalSeconds")),
	})
	commandDone := sfn.NewChoice(s, jsii.String(contract.StateCommandDone), nil).
		When(sfn.Condition_StringEquals(jsii.String(contract.PathPoll+".phase"), jsii.String(contract.PhaseInProgress)), wait, nil).
		Otherwise(verify)
	send.Next(startPolling).Next(wait).Next(poll).Next(commandDone)

	hasInstances := sfn.NewChoice(s, jsii.String(contract.StateHasInstances), nil).
		When(sfn.Condition_NumberGreaterThan(jsii.String(contract.PathInventory+".targetCount"), jsii.Number(0)), send, nil).
		Otherwise(verify)
	return inventory.Next(hasInstances)
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
