package app

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ec2patch/ec2patch/internal/contract"
)

// commandPattern is the one event pattern of both ends of the command
// event path.
func commandPattern() map[string]any {
	var statuses []any
	for _, s := range contract.TerminalCommandStatuses() {
		statuses = append(statuses, s)
	}
	return map[string]any{
		"source":      []any{contract.EventSourceSSM},
		"detail-type": []any{contract.DetailTypeCommandState},
		"detail": map[string]any{
			"document-name": []any{contract.PatchDocument},
			"status":        statuses,
		},
	}
}

// only returns the one resource of a type in a template or fails the test.
func only(t *testing.T, tmpl map[string]any, typ string) (string, map[string]any) {
	t.Helper()
	rs := resources(tmpl, typ)
	if len(rs) != 1 {
		t.Fatalf("%d %s resources, want 1", len(rs), typ)
	}
	for id, r := range rs {
		return id, r
	}
	return "", nil
}

// ruleTargetedAt returns the hub rule whose one target is the handler.
func ruleTargetedAt(t *testing.T, fn contract.Function) map[string]any {
	t.Helper()
	id, _ := function(t, fn)
	for _, r := range resources(shared.hub, "AWS::Events::Rule") {
		targets := list(props(r)["Targets"])
		if len(targets) == 1 && flat(targets[0].(map[string]any)["Arn"]) == "${"+id+".Arn}" {
			return props(r)
		}
	}
	t.Fatalf("no rule targets %s", fn.Name)
	return nil
}

func TestCommandEvents(t *testing.T) {
	p := shared.params
	hubBusARN := contract.HubEventBusARN("${AWS::Partition}", p.Region, p.Spoke.HubAccountID, p.Hub.NamePrefix)

	t.Run("the spoke forwards only AWS-RunPatchBaseline terminal status events to the hub bus", func(t *testing.T) {
		_, rule := only(t, shared.spokeEvents, "AWS::Events::Rule")
		pr := props(rule)
		if !reflect.DeepEqual(pr["EventPattern"], commandPattern()) {
			t.Errorf("EventPattern = %v, want %v", pr["EventPattern"], commandPattern())
		}
		if _, ok := pr["EventBusName"]; ok {
			t.Errorf("rule is on bus %v; SSM publishes to the default bus", pr["EventBusName"])
		}
		if pr["State"] != "ENABLED" {
			t.Errorf("State = %v", pr["State"])
		}
		targets := list(pr["Targets"])
		if len(targets) != 1 {
			t.Fatalf("%d targets, want the hub bus alone", len(targets))
		}
		target := targets[0].(map[string]any)
		if flat(target["Arn"]) != hubBusARN {
			t.Errorf("target = %s, want %s", flat(target["Arn"]), hubBusARN)
		}
		roleID, role := only(t, shared.spokeEvents, "AWS::IAM::Role")
		if flat(target["RoleArn"]) != "${"+roleID+".Arn}" {
			t.Errorf("target role = %s, want %s", flat(target["RoleArn"]), roleID)
		}
		if _, named := props(role)["RoleName"]; named {
			t.Error("the forwarding role is named; the stack is deployed in several regions of one account")
		}
		trust := statements(props(role)["AssumeRolePolicyDocument"])
		if len(trust) != 1 || flat(trust[0]["Principal"].(map[string]any)["Service"]) != "events.amazonaws.com" {
			t.Errorf("trust = %v, want events.amazonaws.com alone", trust)
		}
		var granted []string
		for _, pol := range resources(shared.spokeEvents, "AWS::IAM::Policy") {
			for _, s := range statements(props(pol)["PolicyDocument"]) {
				for _, a := range list(s["Action"]) {
					for _, r := range list(s["Resource"]) {
						granted = append(granted, fmt.Sprintf("%s %s on %s", s["Effect"], a, flat(r)))
					}
				}
			}
		}
		if want := []string{"Allow events:PutEvents on " + hubBusARN}; !slices.Equal(granted, want) {
			t.Errorf("forwarding role may %v, want %v", granted, want)
		}
	})

	t.Run("the spoke events template has no assets and no bootstrap rule", func(t *testing.T) {
		for _, section := range []string{"Parameters", "Rules", "Conditions"} {
			if v, ok := shared.spokeEvents[section]; ok {
				t.Errorf("spoke events template has %s: %v", section, v)
			}
		}
		name := contract.SpokeEventsStackName(p.Hub.NamePrefix)
		if _, err := os.Stat(filepath.Join(shared.outDir, name+".assets.json")); err == nil {
			t.Error("spoke events stack has an asset manifest")
		}
		var types []string
		for _, r := range resources(shared.spokeEvents, "") {
			types = append(types, r["Type"].(string))
		}
		slices.Sort(types)
		if want := []string{"AWS::Events::Rule", "AWS::IAM::Policy", "AWS::IAM::Role"}; !slices.Equal(types, want) {
			t.Errorf("resources %v, want %v", types, want)
		}
	})

	t.Run("the hub bus accepts events only from the plan's accounts", func(t *testing.T) {
		busID, bus := only(t, shared.hub, "AWS::Events::EventBus")
		if props(bus)["Name"] != contract.HubEventBusName(p.Hub.NamePrefix) {
			t.Errorf("bus name = %v, want %s", props(bus)["Name"], contract.HubEventBusName(p.Hub.NamePrefix))
		}
		if _, ok := props(bus)["Policy"]; ok {
			t.Error("the bus has an inline policy besides its EventBusPolicy")
		}
		var principals []string
		for id, pol := range resources(shared.hub, "AWS::Events::EventBusPolicy") {
			pr := props(pol)
			if flat(pr["EventBusName"]) != "${"+busID+"}" {
				t.Errorf("%s is on bus %s", id, flat(pr["EventBusName"]))
			}
			s := pr["Statement"].(map[string]any)
			if s["Effect"] != "Allow" || !reflect.DeepEqual(list(s["Action"]), []any{"events:PutEvents"}) ||
				flat(s["Resource"]) != "${"+busID+".Arn}" || s["Condition"] != nil {
				t.Errorf("%s statement = %v, want PutEvents on the bus", id, s)
			}
			for _, a := range list(s["Principal"].(map[string]any)["AWS"]) {
				principals = append(principals, flat(a))
			}
		}
		var want []string
		for _, a := range p.SpokeAccounts() {
			want = append(want, "arn:${AWS::Partition}:iam::"+a+":root")
		}
		slices.Sort(principals)
		slices.Sort(want)
		if len(want) == 0 || !slices.Equal(principals, want) {
			t.Errorf("bus principals = %v, want the plan's accounts %v", principals, want)
		}
	})

	t.Run("the hub rule resumes targets with retries and a dead-letter queue", func(t *testing.T) {
		busID, _ := only(t, shared.hub, "AWS::Events::EventBus")
		queueID, queue := only(t, shared.hub, "AWS::SQS::Queue")
		if flat(props(queue)["KmsMasterKeyId"]) != "${"+keyID(t)+".Arn}" {
			t.Errorf("dead-letter queue key = %v, want the stack's key", props(queue)["KmsMasterKeyId"])
		}
		rule := ruleTargetedAt(t, contract.CommandStatusEvents)
		if flat(rule["EventBusName"]) != "${"+busID+"}" || !reflect.DeepEqual(rule["EventPattern"], commandPattern()) {
			t.Errorf("rule on %v with %v, want the command pattern on the hub bus", rule["EventBusName"], rule["EventPattern"])
		}
		target := list(rule["Targets"])[0].(map[string]any)
		retry, _ := target["RetryPolicy"].(map[string]any)
		if n, _ := retry["MaximumRetryAttempts"].(float64); n < 1 {
			t.Errorf("RetryPolicy = %v, want retries", retry)
		}
		if flat(target["DeadLetterConfig"].(map[string]any)["Arn"]) != "${"+queueID+".Arn}" {
			t.Errorf("DeadLetterConfig = %v", target["DeadLetterConfig"])
		}
	})

	t.Run("the reconciler runs every reconcile_interval_minutes", func(t *testing.T) {
		rule := ruleTargetedAt(t, contract.PollSsmCommand)
		unit := "minutes"
		if p.Hub.ReconcileIntervalMinutes == 1 {
			unit = "minute"
		}
		if want := fmt.Sprintf("rate(%d %s)", p.Hub.ReconcileIntervalMinutes, unit); rule["ScheduleExpression"] != want {
			t.Errorf("ScheduleExpression = %v, want %s", rule["ScheduleExpression"], want)
		}
		if _, ok := rule["EventBusName"]; ok {
			t.Error("the schedule is on a custom bus")
		}
		env := envOf(t, contract.PollSsmCommand)
		for _, k := range []string{contract.EnvTable, contract.EnvExternalID, contract.EnvSpokeRoleName, contract.EnvRecordTTLDays} {
			if env[k] == nil {
				t.Errorf("the reconciler lacks %s", k)
			}
		}
	})

	t.Run("only the event and reconcile handlers may resume tasks", func(t *testing.T) {
		sm := resourceID(t, "AWS::StepFunctions::StateMachine")
		resuming := slices.DeleteFunc(taskAnswering(t), func(a string) bool { return strings.HasPrefix(a, "ApprovalCallback ") })
		want := []string{
			"CommandStatusEvents states:SendTaskSuccess on ${" + sm + "}",
			"PollSsmCommand states:SendTaskSuccess on ${" + sm + "}",
		}
		if !slices.Equal(resuming, want) {
			t.Errorf("permissions to resume a waiting target = %v, want %v", resuming, want)
		}
		// Exactly the table actions each handler calls (hub/grants.go).
		tableActions := map[contract.Function][]string{
			contract.AwaitSsmCommand:     {"dynamodb:PutItem"},
			contract.CommandStatusEvents: {"dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"},
		}
		for _, fn := range []contract.Function{contract.AwaitSsmCommand, contract.CommandStatusEvents} {
			env := envOf(t, fn)
			for _, k := range []string{contract.EnvTable, contract.EnvRecordTTLDays} {
				if env[k] == nil {
					t.Errorf("%s lacks %s", fn.Name, k)
				}
			}
			var actions []string
			for _, s := range roleStatements(t, fn) {
				for _, a := range list(s["Action"]) {
					actions = append(actions, a.(string))
				}
			}
			var table []string
			for _, a := range actions {
				if strings.HasPrefix(a, "dynamodb:") {
					table = append(table, a)
				}
			}
			slices.Sort(table)
			if !slices.Equal(table, tableActions[fn]) {
				t.Errorf("%s table actions = %v, want %v", fn.Name, table, tableActions[fn])
			}
			if slices.Contains(actions, "sts:AssumeRole") {
				t.Errorf("%s may assume roles; only the reconciler reads the spokes", fn.Name)
			}
		}
	})
}
