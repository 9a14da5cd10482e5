package patchwave_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"

	"github.com/ec2patch/ec2patch/constructs/patchwave"
	"github.com/ec2patch/ec2patch/internal/contract"
)

var update = flag.Bool("update", false, "rewrite testdata/orchestrator.asl.json")

const goldenFile = "testdata/orchestrator.asl.json"

// synthesized is the one synthesis this test binary makes: the state
// machine in a stack of its own, with imported functions and bucket so every
// ARN in the definition is a stable literal.
type synthesized struct {
	template   map[string]any
	definition map[string]any // resolved orchestrator definition
	asl        []byte         // the same, indented
}

var shared *synthesized

func TestMain(m *testing.M) {
	flag.Parse()
	var err error
	shared, err = synth()
	if err != nil {
		fmt.Fprintln(os.Stderr, "synthesizing the test stack:", err)
		os.Exit(1)
	}
	code := m.Run()
	jsii.Close()
	os.Exit(code)
}

func synth() (s *synthesized, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{"aws:cdk:bundling-stacks": []any{}}})
	stack := awscdk.NewStack(app, jsii.String("TestStack"), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String("123456789012"), Region: jsii.String("us-east-1")},
	})
	// Only the functions the state machine invokes: ApprovalCallback is the
	// approval API's.
	fns := map[string]awslambda.IFunction{}
	for _, fn := range contract.StateMachineFunctions() {
		fns[fn.Name] = awslambda.Function_FromFunctionArn(stack, jsii.String(fn.Name),
			jsii.String("arn:aws:lambda:us-east-1:123456789012:function:"+fn.Name))
	}
	patchwave.NewStateMachine(stack, "PatchWaveStateMachine", &patchwave.Props{
		Functions: fns,
		Bucket:    awss3.Bucket_FromBucketName(stack, jsii.String("Bucket"), jsii.String("hub-bucket")),
		LogGroup:  awslogs.NewLogGroup(stack, jsii.String("Logs"), nil),
	})
	tmpl := assertions.Template_FromStack(stack, nil)
	s = &synthesized{template: toMap((*tmpl.ToJSON()))}
	for _, r := range resourcesOfType(s.template, "AWS::StepFunctions::StateMachine") {
		def, err := resolveDefinition(r["Properties"].(map[string]any)["DefinitionString"])
		if err != nil {
			return nil, err
		}
		s.definition = def
	}
	if s.definition == nil {
		return nil, fmt.Errorf("no state machine in the template")
	}
	s.asl, err = json.MarshalIndent(s.definition, "", "  ")
	return s, err
}

func toMap(v map[string]interface{}) map[string]any {
	data, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return m
}

func resourcesOfType(tmpl map[string]any, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range tmpl["Resources"].(map[string]any) {
		if res := r.(map[string]any); res["Type"] == typ {
			out[id] = res
		}
	}
	return out
}

// resolveDefinition joins a DefinitionString, replacing each token by a
// stable placeholder: ${LogicalID} for a Ref, ${LogicalID.Attr} for a GetAtt,
// and "aws" for the partition.
func resolveDefinition(v any) (map[string]any, error) {
	var text string
	switch d := v.(type) {
	case string:
		text = d
	case map[string]any:
		parts := d["Fn::Join"].([]any)[1].([]any)
		var b strings.Builder
		for _, p := range parts {
			switch t := p.(type) {
			case string:
				b.WriteString(t)
			case map[string]any:
				switch {
				case t["Ref"] == "AWS::Partition":
					b.WriteString("aws")
				case t["Ref"] != nil:
					fmt.Fprintf(&b, "${%s}", t["Ref"])
				case t["Fn::GetAtt"] != nil:
					ga := t["Fn::GetAtt"].([]any)
					fmt.Fprintf(&b, "${%s.%s}", ga[0], ga[1])
				default:
					return nil, fmt.Errorf("unexpected token %v", t)
				}
			}
		}
		text = b.String()
	}
	var def map[string]any
	if err := json.Unmarshal([]byte(text), &def); err != nil {
		return nil, fmt.Errorf("resolved definition is not JSON: %w", err)
	}
	return def, nil
}

func states(def map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for name, s := range def["States"].(map[string]any) {
		out[name] = s.(map[string]any)
	}
	return out
}

func processor(t *testing.T) map[string]any { return processorOf(t, contract.StatePatchTargets) }

func processorOf(t *testing.T, mapState string) map[string]any {
	t.Helper()
	m := states(shared.definition)[mapState]
	if m == nil {
		t.Fatalf("no %s state", mapState)
	}
	return m["ItemProcessor"].(map[string]any)
}

// state returns one orchestrator state or fails the test.
func state(t *testing.T, name string) map[string]any {
	t.Helper()
	s := states(shared.definition)[name]
	if s == nil {
		t.Fatalf("no %s state", name)
	}
	return s
}

// choices returns a Choice state's rules.
func choices(t *testing.T, name string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, c := range state(t, name)["Choices"].([]any) {
		out = append(out, c.(map[string]any))
	}
	return out
}

// next follows a state's Next (a Choice's Default when it has none).
func next(t *testing.T, name string) string {
	t.Helper()
	s := state(t, name)
	if n, ok := s["Next"].(string); ok {
		return n
	}
	n, _ := s["Default"].(string)
	return n
}

// haltAlarmsPresent is the rule a Choice uses to ask whether the wave
// lists halt alarms.
var haltAlarmsPresent = map[string]any{"Variable": "$.wave.haltAlarms[0]", "IsPresent": true}

func jsonFields(v any) []string {
	var out []string
	typ := reflect.TypeOf(v)
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Anonymous {
			out = append(out, jsonFields(reflect.New(f.Type).Elem().Interface())...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func parameterKeys(state map[string]any) []string {
	var out []string
	for k := range state["Parameters"].(map[string]any) {
		out = append(out, strings.TrimSuffix(k, ".$"))
	}
	sort.Strings(out)
	return out
}

func TestOrchestratorDefinition(t *testing.T) {
	t.Run("orchestrator ASL matches the golden file", func(t *testing.T) {
		if *update {
			if err := os.WriteFile(goldenFile, append(shared.asl, '\n'), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(goldenFile)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if !bytes.Equal(bytes.TrimSpace(want), bytes.TrimSpace(shared.asl)) {
			t.Errorf("definition differs from %s; if the change is intended, run go test ./constructs/patchwave -update\n%s", goldenFile, shared.asl)
		}
	})

	t.Run("definition passes asl-validator", func(t *testing.T) {
		validator := aslValidator(t)
		file := filepath.Join(t.TempDir(), "orchestrator.asl.json")
		if err := os.WriteFile(file, shared.asl, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(validator, "--json-path", file).CombinedOutput()
		if err != nil {
			t.Fatalf("asl-validator: %v\n%s", err, out)
		}
	})

	t.Run("state machine logs ALL to CloudWatch Logs", func(t *testing.T) {
		for _, r := range resourcesOfType(shared.template, "AWS::StepFunctions::StateMachine") {
			props := r["Properties"].(map[string]any)
			logging, _ := props["LoggingConfiguration"].(map[string]any)
			if logging["Level"] != "ALL" || logging["IncludeExecutionData"] != true {
				t.Errorf("LoggingConfiguration = %v, want Level ALL with execution data", logging)
			}
			if dest, _ := logging["Destinations"].([]any); len(dest) != 1 {
				t.Errorf("log destinations = %v, want the one log group", logging["Destinations"])
			}
			if props["StateMachineType"] != "STANDARD" {
				t.Errorf("type = %v, want STANDARD", props["StateMachineType"])
			}
			if tr, ok := props["TracingConfiguration"].(map[string]any); ok && tr["Enabled"] == true {
				t.Error("tracing is on; X-Ray is excluded")
			}
		}
	})

	t.Run("every PatchTarget Task has a Retry and a Catch", func(t *testing.T) {
		tasks := 0
		for name, s := range states(processor(t)) {
			if s["Type"] != "Task" {
				continue
			}
			tasks++
			retry, _ := s["Retry"].([]any)
			var retried []string
			for _, r := range retry {
				for _, e := range r.(map[string]any)["ErrorEquals"].([]any) {
					retried = append(retried, e.(string))
				}
			}
			for _, e := range append(contract.RetryableErrors(), contract.LambdaServiceErrors()...) {
				if !slices.Contains(retried, e) {
					t.Errorf("%s does not retry %s", name, e)
				}
			}
			catch, _ := s["Catch"].([]any)
			if name == contract.StateRecordFailure {
				if len(catch) != 0 {
					t.Errorf("%s has a Catch; it must fail the map loudly", name)
				}
				continue
			}
			// The await task first catches its own timeout (see "a timed-out
			// wait is verified as TIMED_OUT"); every Task ends with States.ALL.
			want := 1
			if name == contract.StateAwaitCommand {
				want = 2
			}
			if len(catch) != want {
				t.Fatalf("%s has %d Catch clauses, want %d", name, len(catch), want)
			}
			c := catch[len(catch)-1].(map[string]any)
			if !reflect.DeepEqual(c["ErrorEquals"], []any{"States.ALL"}) || c["Next"] != contract.StateRecordFailure || c["ResultPath"] != contract.PathError {
				t.Errorf("%s Catch = %v, want States.ALL at %s to %s", name, c, contract.PathError, contract.StateRecordFailure)
			}
		}
		if tasks != 5 {
			t.Errorf("PatchTarget has %d Tasks, want 5", tasks)
		}
	})

	t.Run("item selector builds exactly contract.TargetInput", func(t *testing.T) {
		m := states(shared.definition)[contract.StatePatchTargets]
		sel := m["ItemSelector"].(map[string]any)
		var keys []string
		for _, f := range contract.TargetInputFields() {
			if got := sel[f.Field+".$"]; got != f.Path {
				t.Errorf("ItemSelector %s = %v, want %s", f.Field, got, f.Path)
			}
		}
		for k := range sel {
			keys = append(keys, strings.TrimSuffix(k, ".$"))
		}
		sort.Strings(keys)
		want := slices.DeleteFunc(jsonFields(contract.TargetInput{}), func(f string) bool { return f == "preview" })
		if !slices.Equal(keys, want) {
			t.Errorf("ItemSelector fields = %v, want TargetInput's %v without preview", keys, want)
		}
	})

	t.Run("preview map selects the same TargetInput with preview true", func(t *testing.T) {
		patch := state(t, contract.StatePatchTargets)
		preview := state(t, contract.StatePreviewWave)
		want := map[string]any{"preview": true}
		for k, v := range patch["ItemSelector"].(map[string]any) {
			want[k] = v
		}
		if !reflect.DeepEqual(preview["ItemSelector"], want) {
			t.Errorf("PreviewWave ItemSelector = %v, want %v", preview["ItemSelector"], want)
		}
		for _, k := range []string{"ItemReader", "MaxConcurrencyPath"} {
			if !reflect.DeepEqual(preview[k], patch[k]) {
				t.Errorf("PreviewWave %s = %v, want PatchTargets' %v", k, preview[k], patch[k])
			}
		}
		if v, ok := preview["ResultPath"]; !ok || v != nil {
			t.Errorf("PreviewWave ResultPath = %v, want null (discarded)", v)
		}
		inv := states(processorOf(t, contract.StatePreviewWave))[contract.StatePreviewInventory]
		if !strings.HasSuffix(flatResource(inv), ":"+contract.PreEC2Inventory.Name) {
			t.Errorf("%s invokes %v, want %s", contract.StatePreviewInventory, inv["Parameters"], contract.PreEC2Inventory.Name)
		}
		catch, _ := inv["Catch"].([]any)
		if len(catch) != 1 || catch[0].(map[string]any)["Next"] != contract.StatePreviewFailed {
			t.Errorf("%s Catch = %v, want one to %s", contract.StatePreviewInventory, catch, contract.StatePreviewFailed)
		}
	})

	t.Run("distributed map reads the wave manifest from S3", func(t *testing.T) {
		m := states(shared.definition)[contract.StatePatchTargets]
		pc := processor(t)["ProcessorConfig"].(map[string]any)
		if pc["Mode"] != "DISTRIBUTED" || pc["ExecutionType"] != "STANDARD" {
			t.Errorf("ProcessorConfig = %v", pc)
		}
		reader := m["ItemReader"].(map[string]any)
		params := reader["Parameters"].(map[string]any)
		if params["Bucket"] != "hub-bucket" || params["Key.$"] != "$.wave.targetsKey" {
			t.Errorf("ItemReader parameters = %v", params)
		}
		if m["MaxConcurrencyPath"] != "$.wave.maxConcurrency" || m["ResultPath"] != nil {
			t.Errorf("MaxConcurrencyPath = %v, ResultPath = %v", m["MaxConcurrencyPath"], m["ResultPath"])
		}
		for _, forbidden := range []string{"ResultWriter", "ToleratedFailurePercentage", "ItemsPath"} {
			if _, ok := m[forbidden]; ok {
				t.Errorf("map has %s", forbidden)
			}
		}
	})

	t.Run("task payloads are the contract's request types", func(t *testing.T) {
		all := states(shared.definition)
		for name, s := range states(processor(t)) {
			all[name] = s
		}
		for state, want := range map[string]any{
			contract.StatePrepareRun:     contract.PrepareRequest{},
			contract.StateEvaluateWave:   contract.EvaluateRequest{},
			contract.StateWriteRunReport: contract.ReportRequest{},
			contract.StateAlarmsBefore:   contract.AlarmCheckRequest{},
			contract.StateAlarmsAfter:    contract.AlarmCheckRequest{},
		} {
			if got, w := parameterKeys(all[state]), jsonFields(want); !slices.Equal(got, w) {
				t.Errorf("%s payload fields = %v, want %v", state, got, w)
			}
		}
		for _, whole := range []string{contract.StateInventory, contract.StateSendCommand, contract.StateVerify, contract.StateRecordFailure} {
			if _, ok := all[whole]["Parameters"]; ok {
				t.Errorf("%s has Parameters; it must receive the whole state", whole)
			}
		}
		payload := all[contract.StateRequestApproval]["Parameters"].(map[string]any)["Payload"].(map[string]any)
		var got []string
		for k := range payload {
			got = append(got, strings.TrimSuffix(k, ".$"))
		}
		sort.Strings(got)
		if w := jsonFields(contract.ApprovalRequest{}); !slices.Equal(got, w) {
			t.Errorf("%s payload fields = %v, want %v", contract.StateRequestApproval, got, w)
		}
		for _, verdict := range []string{contract.StateHaltedByAlarm, contract.StateApprovalRejected} {
			if got, w := parameterKeys(all[verdict]), jsonFields(contract.WaveVerdict{}); !slices.Equal(got, w) {
				t.Errorf("%s verdict fields = %v, want %v", verdict, got, w)
			}
		}
		payload = all[contract.StateAwaitCommand]["Parameters"].(map[string]any)["Payload"].(map[string]any)
		got = nil
		for k := range payload {
			got = append(got, strings.TrimSuffix(k, ".$"))
		}
		sort.Strings(got)
		if w := jsonFields(contract.AwaitRequest{}); !slices.Equal(got, w) {
			t.Errorf("%s payload fields = %v, want %v", contract.StateAwaitCommand, got, w)
		}
		data, _ := json.Marshal(all[contract.StateAwaitTimedOut]["Result"])
		var timedOut contract.PollResult
		if err := contract.DecodeStrict(data, &timedOut); err != nil || timedOut.Phase != contract.PhaseTimedOut {
			t.Errorf("%s result = %s (%v), want a TIMED_OUT contract.PollResult", contract.StateAwaitTimedOut, data, err)
		}
	})

	t.Run("no JSONata", func(t *testing.T) {
		if strings.Contains(string(shared.asl), "JSONata") || strings.Contains(string(shared.asl), "{%") {
			t.Error("the definition uses JSONata")
		}
		if ql, ok := shared.definition["QueryLanguage"]; ok && ql != "JSONPath" {
			t.Errorf("QueryLanguage = %v", ql)
		}
	})

	t.Run("every state name is a contract constant", func(t *testing.T) {
		known := []string{contract.StatePrepareRun, contract.StateSelectWave, contract.StatePatchTargets,
			contract.StateEvaluateWave, contract.StateAbortCheck, contract.StateAdvanceWave, contract.StateMoreWaves,
			contract.StateWavePause, contract.StateWriteRunReport, contract.StateRunDone, contract.StateInventory,
			contract.StateHasInstances, contract.StateSendCommand, contract.StateAwaitCommand, contract.StateAwaitTimedOut,
			contract.StateVerify, contract.StateRecordFailure,
			contract.StateTargetSucceeded, contract.StateAlreadyDone, contract.StateHasAlarmsBefore,
			contract.StateAlarmsBefore, contract.StateAlarmsClear, contract.StateHaltedByAlarm,
			contract.StateApprovalRequired, contract.StatePreviewWave, contract.StatePreviewInventory,
			contract.StatePreviewFailed, contract.StateRequestApproval, contract.StateApprovalRejected,
			contract.StateHasAlarmsAfter, contract.StateAlarmsAfter, contract.StateAlarmCheckFailedBefore,
			contract.StateAlarmCheckFailedAfter, contract.StateIsPatchDay, contract.StateNotPatchDay}
		var got []string
		for name := range states(shared.definition) {
			got = append(got, name)
		}
		for name := range states(processor(t)) {
			got = append(got, name)
		}
		for name := range states(processorOf(t, contract.StatePreviewWave)) {
			got = append(got, name)
		}
		sort.Strings(got)
		slices.Sort(known)
		if !slices.Equal(got, known) {
			t.Errorf("states = %v, want %v", got, known)
		}
	})
}

// processorState returns one PatchTarget state or fails the test.
func processorState(t *testing.T, name string) map[string]any {
	t.Helper()
	s := states(processor(t))[name]
	if s == nil {
		t.Fatalf("no %s state in PatchTarget", name)
	}
	return s
}

func TestAwait(t *testing.T) {
	t.Run("a target waits on a task token, not a poll loop", func(t *testing.T) {
		for name, s := range states(processor(t)) {
			if s["Type"] == "Wait" || s["Type"] == "Choice" && name != contract.StateHasInstances {
				t.Errorf("PatchTarget has %s state %s: its history would grow with the patch's duration", s["Type"], name)
			}
		}
		if n := processorState(t, contract.StateSendCommand)["Next"]; n != contract.StateAwaitCommand {
			t.Errorf("%s goes to %v, want %s", contract.StateSendCommand, n, contract.StateAwaitCommand)
		}
		s := processorState(t, contract.StateAwaitCommand)
		if s["Resource"] != "arn:aws:states:::lambda:invoke.waitForTaskToken" {
			t.Errorf("Resource = %v, want lambda:invoke.waitForTaskToken", s["Resource"])
		}
		params := s["Parameters"].(map[string]any)
		if !strings.HasSuffix(fmt.Sprint(params["FunctionName"]), ":"+contract.AwaitSsmCommand.Name) {
			t.Errorf("FunctionName = %v, want %s", params["FunctionName"], contract.AwaitSsmCommand.Name)
		}
		payload := params["Payload"].(map[string]any)
		for k, want := range map[string]string{
			"taskToken.$":       "$$.Task.Token",
			"commandIds.$":      contract.PathCommand + ".commandIds",
			"deadlineSeconds.$": "$.commandTimeoutSeconds",
			"executionId.$":     "$.executionId",
		} {
			if payload[k] != want {
				t.Errorf("payload %s = %v, want %s", k, payload[k], want)
			}
		}
		if s["TimeoutSecondsPath"] != "$.awaitTimeoutSeconds" {
			t.Errorf("TimeoutSecondsPath = %v, want $.awaitTimeoutSeconds", s["TimeoutSecondsPath"])
		}
		if _, ok := s["TimeoutSeconds"]; ok {
			t.Error("the task has a fixed TimeoutSeconds as well")
		}
		if _, ok := s["HeartbeatSeconds"]; ok {
			t.Error("the task has a heartbeat; nothing sends one")
		}
		if s["ResultPath"] != contract.PathPoll || s["Next"] != contract.StateVerify {
			t.Errorf("ResultPath = %v, Next = %v; want %s, %s", s["ResultPath"], s["Next"], contract.PathPoll, contract.StateVerify)
		}
	})

	t.Run("a timed-out wait is verified as TIMED_OUT", func(t *testing.T) {
		catch, _ := processorState(t, contract.StateAwaitCommand)["Catch"].([]any)
		want := map[string]any{"ErrorEquals": []any{"States.Timeout"}, "ResultPath": contract.PathAwaitError,
			"Next": contract.StateAwaitTimedOut}
		if len(catch) == 0 || !reflect.DeepEqual(catch[0], want) {
			t.Fatalf("first Catch = %v, want %v", catch, want)
		}
		for _, r := range processorState(t, contract.StateAwaitCommand)["Retry"].([]any) {
			for _, e := range r.(map[string]any)["ErrorEquals"].([]any) {
				if e == "States.Timeout" || e == "States.ALL" {
					t.Errorf("the await task retries %v; a timed-out wait must not send the commands' wait again", e)
				}
			}
		}
		timedOut := processorState(t, contract.StateAwaitTimedOut)
		if timedOut["Type"] != "Pass" || timedOut["ResultPath"] != contract.PathPoll || timedOut["Next"] != contract.StateVerify {
			t.Errorf("%s = %v, want a Pass to %s at %s", contract.StateAwaitTimedOut, timedOut, contract.StateVerify, contract.PathPoll)
		}
		data, _ := json.Marshal(timedOut["Result"])
		var poll contract.PollResult
		if err := contract.DecodeStrict(data, &poll); err != nil || poll.Phase != contract.PhaseTimedOut {
			t.Errorf("%s result = %s (%v), want phase %s", contract.StateAwaitTimedOut, data, err, contract.PhaseTimedOut)
		}
	})
}

func TestGates(t *testing.T) {
	t.Run("approval task waits for a task token with the run's timeout", func(t *testing.T) {
		s := state(t, contract.StateRequestApproval)
		if s["Resource"] != "arn:aws:states:::lambda:invoke.waitForTaskToken" {
			t.Errorf("Resource = %v, want lambda:invoke.waitForTaskToken", s["Resource"])
		}
		params := s["Parameters"].(map[string]any)
		if !strings.HasSuffix(fmt.Sprint(params["FunctionName"]), ":"+contract.SendApprovalRequest.Name) {
			t.Errorf("FunctionName = %v, want %s", params["FunctionName"], contract.SendApprovalRequest.Name)
		}
		payload := params["Payload"].(map[string]any)
		if payload["taskToken.$"] != "$$.Task.Token" || payload["timeoutSeconds.$"] != "$.run.approvalTimeoutSeconds" {
			t.Errorf("payload = %v, want the task token and the run's timeout", payload)
		}
		if s["TimeoutSecondsPath"] != "$.run.approvalTimeoutSeconds" {
			t.Errorf("TimeoutSecondsPath = %v, want $.run.approvalTimeoutSeconds", s["TimeoutSecondsPath"])
		}
		if _, ok := s["TimeoutSeconds"]; ok {
			t.Error("the task has a fixed TimeoutSeconds as well")
		}
		if s["ResultPath"] != contract.PathApproval {
			t.Errorf("ResultPath = %v, want %s", s["ResultPath"], contract.PathApproval)
		}
		if next(t, contract.StateRequestApproval) != contract.StatePatchTargets {
			t.Errorf("approved wave goes to %s, want %s", next(t, contract.StateRequestApproval), contract.StatePatchTargets)
		}
	})

	t.Run("approval gate previews the wave first, only when the wave asks for approval", func(t *testing.T) {
		rules := choices(t, contract.StateApprovalRequired)
		want := map[string]any{"Variable": "$.wave.approval", "BooleanEquals": true, "Next": contract.StatePreviewWave}
		if len(rules) != 1 || !reflect.DeepEqual(rules[0], want) {
			t.Errorf("%s rules = %v, want %v", contract.StateApprovalRequired, rules, want)
		}
		if d := next(t, contract.StateApprovalRequired); d != contract.StatePatchTargets {
			t.Errorf("%s default = %s, want %s", contract.StateApprovalRequired, d, contract.StatePatchTargets)
		}
		if n := next(t, contract.StatePreviewWave); n != contract.StateRequestApproval {
			t.Errorf("%s goes to %s, want %s", contract.StatePreviewWave, n, contract.StateRequestApproval)
		}
	})

	t.Run("a rejection or timeout reaches ApprovalRejected", func(t *testing.T) {
		catch, _ := state(t, contract.StateRequestApproval)["Catch"].([]any)
		want := []any{map[string]any{"ErrorEquals": []any{"States.ALL"}, "ResultPath": contract.PathApprovalError,
			"Next": contract.StateApprovalRejected}}
		if !reflect.DeepEqual(catch, want) {
			t.Errorf("Catch = %v, want %v", catch, want)
		}
		for _, r := range state(t, contract.StateRequestApproval)["Retry"].([]any) {
			for _, e := range r.(map[string]any)["ErrorEquals"].([]any) {
				if e == contract.ErrApprovalRejected || e == "States.Timeout" || e == "States.ALL" {
					t.Errorf("the approval task retries %v; a rejection or timeout is final", e)
				}
			}
		}
		rejected := state(t, contract.StateApprovalRejected)
		params := rejected["Parameters"].(map[string]any)
		if params["status"] != contract.StatusRejected || params["halt"] != true ||
			params["reason.$"] != "States.Format('{}: {}', $.approvalError.Error, $.approvalError.Cause)" {
			t.Errorf("%s verdict = %v", contract.StateApprovalRejected, params)
		}
		if rejected["ResultPath"] != contract.PathVerdict || next(t, contract.StateApprovalRejected) != contract.StateWriteRunReport {
			t.Errorf("%s puts its verdict at %v and goes to %s", contract.StateApprovalRejected, rejected["ResultPath"],
				next(t, contract.StateApprovalRejected))
		}
	})

	t.Run("halt alarms are checked before and after a wave", func(t *testing.T) {
		for _, c := range []struct{ choice, check, phase, then, otherwise string }{
			{contract.StateHasAlarmsBefore, contract.StateAlarmsBefore, contract.PhaseBeforeWave, contract.StateAlarmsClear, contract.StateApprovalRequired},
			{contract.StateHasAlarmsAfter, contract.StateAlarmsAfter, contract.PhaseAfterWave, contract.StateEvaluateWave, contract.StateEvaluateWave},
		} {
			rules := choices(t, c.choice)
			want := map[string]any{"Next": c.check}
			for k, v := range haltAlarmsPresent {
				want[k] = v
			}
			if len(rules) != 1 || !reflect.DeepEqual(rules[0], want) {
				t.Errorf("%s rules = %v, want %v", c.choice, rules, want)
			}
			if d := next(t, c.choice); d != c.otherwise {
				t.Errorf("%s default = %s, want %s", c.choice, d, c.otherwise)
			}
			check := state(t, c.check)
			payload := check["Parameters"].(map[string]any)
			if payload["phase"] != c.phase || payload["alarmNames.$"] != "$.wave.haltAlarms" {
				t.Errorf("%s payload = %v, want phase %s and the wave's alarms", c.check, payload, c.phase)
			}
			if !strings.HasSuffix(flatResource(check), ":"+contract.CheckHaltAlarms.Name) || check["ResultPath"] != contract.PathAlarms {
				t.Errorf("%s invokes %v with result at %v", c.check, payload, check["ResultPath"])
			}
			if n := next(t, c.check); n != c.then {
				t.Errorf("%s goes to %s, want %s", c.check, n, c.then)
			}
		}
		if next(t, contract.StateSelectWave) != contract.StateHasAlarmsBefore || next(t, contract.StatePatchTargets) != contract.StateHasAlarmsAfter {
			t.Error("the alarm checks are not right after SelectWave and PatchTargets")
		}
		firing := choices(t, contract.StateAlarmsClear)
		if len(firing) != 1 || firing[0]["Variable"] != contract.PathAlarms+".firing" || firing[0]["BooleanEquals"] != true ||
			firing[0]["Next"] != contract.StateHaltedByAlarm || next(t, contract.StateAlarmsClear) != contract.StateApprovalRequired {
			t.Errorf("%s = %v", contract.StateAlarmsClear, state(t, contract.StateAlarmsClear))
		}
		halted := state(t, contract.StateHaltedByAlarm)
		params := halted["Parameters"].(map[string]any)
		if params["status"] != contract.StatusAborted || params["halt"] != true || params["reason.$"] != contract.PathAlarms+".reason" ||
			halted["ResultPath"] != contract.PathVerdict || next(t, contract.StateHaltedByAlarm) != contract.StateWriteRunReport {
			t.Errorf("%s = %v", contract.StateHaltedByAlarm, halted)
		}
		// Every wave starts with a clear check, so EvaluateWave always has one.
		clearCheck := state(t, contract.StateSelectWave)["Parameters"].(map[string]any)["alarms"]
		if !reflect.DeepEqual(clearCheck, map[string]any{"firing": false, "alarms": []any{}}) {
			t.Errorf("SelectWave alarms = %v, want a clear AlarmCheck", clearCheck)
		}
		if got := state(t, contract.StateEvaluateWave)["Parameters"].(map[string]any)["alarms.$"]; got != contract.PathAlarms {
			t.Errorf("EvaluateWave alarms = %v, want %s", got, contract.PathAlarms)
		}
	})

	t.Run("an alarm check that fails counts as a firing alarm", func(t *testing.T) {
		for _, c := range []struct{ check, failed, then string }{
			{contract.StateAlarmsBefore, contract.StateAlarmCheckFailedBefore, contract.StateAlarmsClear},
			{contract.StateAlarmsAfter, contract.StateAlarmCheckFailedAfter, contract.StateEvaluateWave},
		} {
			catches, _ := state(t, c.check)["Catch"].([]any)
			if len(catches) != 1 {
				t.Fatalf("%s has %d catchers, want 1", c.check, len(catches))
			}
			catch := catches[0].(map[string]any)
			if !reflect.DeepEqual(catch["ErrorEquals"], []any{"States.ALL"}) || catch["Next"] != c.failed {
				t.Errorf("%s catch = %v, want States.ALL to %s", c.check, catch, c.failed)
			}
			failed := state(t, c.failed)
			params := failed["Parameters"].(map[string]any)
			if params["firing"] != true || failed["ResultPath"] != contract.PathAlarms || next(t, c.failed) != c.then {
				t.Errorf("%s = %v, want a firing check at %s going to %s", c.failed, failed, contract.PathAlarms, c.then)
			}
		}
	})

	t.Run("a halt stops the run whatever abortOnIssues says", func(t *testing.T) {
		rules := choices(t, contract.StateAbortCheck)
		want := []map[string]any{{
			"Or": []any{
				map[string]any{"Variable": "$.verdict.halt", "BooleanEquals": true},
				map[string]any{"And": []any{
					map[string]any{"Variable": "$.verdict.status", "StringEquals": contract.StatusFailed},
					map[string]any{"Variable": "$.run.abortOnIssues", "BooleanEquals": true},
				}},
			},
			"Next": contract.StateWriteRunReport,
		}}
		if !reflect.DeepEqual(rules, want) {
			t.Errorf("%s rules = %v, want %v", contract.StateAbortCheck, rules, want)
		}
		if d := next(t, contract.StateAbortCheck); d != contract.StateAdvanceWave {
			t.Errorf("%s default = %s", contract.StateAbortCheck, d)
		}
	})

	t.Run("a re-run skips recorded targets", func(t *testing.T) {
		p := states(processor(t))
		has := p[contract.StateHasInstances]
		rules := has["Choices"].([]any)
		first := rules[0].(map[string]any)
		want := map[string]any{
			"And": []any{
				map[string]any{"Variable": "$.inventory.alreadyRecorded", "IsPresent": true},
				map[string]any{"Variable": "$.inventory.alreadyRecorded", "BooleanEquals": true},
			},
			"Next": contract.StateAlreadyDone,
		}
		if !reflect.DeepEqual(first, want) {
			t.Errorf("first %s rule = %v, want %v", contract.StateHasInstances, first, want)
		}
		if done := p[contract.StateAlreadyDone]; done["Type"] != "Succeed" {
			t.Errorf("%s = %v, want a Succeed state", contract.StateAlreadyDone, done)
		}
		if len(rules) != 2 || rules[1].(map[string]any)["Next"] != contract.StateSendCommand {
			t.Errorf("%s rules = %v, want the skip, then send when there are instances", contract.StateHasInstances, rules)
		}
	})
}

// flatResource is the function a Lambda task invokes: its Resource when the
// task invokes the function directly (payload response only), otherwise
// its FunctionName parameter.
func flatResource(s map[string]any) string {
	if r, _ := s["Resource"].(string); strings.HasPrefix(r, "arn:aws:lambda:") {
		return r
	}
	params, _ := s["Parameters"].(map[string]any)
	return fmt.Sprint(params["FunctionName"])
}

// aslValidator finds the asl-validator binary: $EC2PATCH_ASL_VALIDATOR, or
// tools/node_modules/.bin under the module root.
func aslValidator(t *testing.T) string {
	t.Helper()
	if v := os.Getenv("EC2PATCH_ASL_VALIDATOR"); v != "" {
		return v
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
	bin := filepath.Join(dir, "tools", "node_modules", ".bin", "asl-validator")
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("asl-validator not found at %s (run make tools)", bin)
		}
		t.Skipf("asl-validator not found at %s; run make tools", bin)
	}
	return bin
}

func TestScheduledFiringOffThePatchDay(t *testing.T) {
	if next(t, contract.StatePrepareRun) != contract.StateIsPatchDay {
		t.Fatalf("%s goes to %s, want %s", contract.StatePrepareRun, next(t, contract.StatePrepareRun), contract.StateIsPatchDay)
	}
	rules := choices(t, contract.StateIsPatchDay)
	if len(rules) != 1 || rules[0]["Variable"] != contract.PathNotPatchDay || rules[0]["IsPresent"] != true ||
		rules[0]["Next"] != contract.StateNotPatchDay {
		t.Errorf("%s = %v", contract.StateIsPatchDay, state(t, contract.StateIsPatchDay))
	}
	if next(t, contract.StateIsPatchDay) != contract.StateSelectWave {
		t.Errorf("a run day does not go on to %s", contract.StateSelectWave)
	}
	if typ := state(t, contract.StateNotPatchDay)["Type"]; typ != "Succeed" {
		t.Errorf("%s is a %v, want Succeed", contract.StateNotPatchDay, typ)
	}
}
