package app

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/ec2patch/ec2patch/constructs/hub"
	"github.com/ec2patch/ec2patch/internal/contract"
)

// scheduleNamed returns the hub's schedule of a campaign.
func scheduleNamed(t *testing.T, campaign string) map[string]any {
	t.Helper()
	name := hub.ScheduleName(shared.params.Hub.NamePrefix, campaign)
	for _, r := range resources(shared.hub, "AWS::Scheduler::Schedule") {
		if p := props(r); p["Name"] == name {
			return p
		}
	}
	t.Fatalf("no schedule named %s", name)
	return nil
}

func TestSchedules(t *testing.T) {
	prefix := shared.params.Hub.NamePrefix
	orchestrator := "${" + resourceID(t, "AWS::StepFunctions::StateMachine") + "}"

	t.Run("one schedule per scheduled campaign, in the hub's group", func(t *testing.T) {
		schedules := resources(shared.hub, "AWS::Scheduler::Schedule")
		if len(schedules) != 2 {
			t.Fatalf("%d schedules, want 2 (monthly and weekly-scan)", len(schedules))
		}
		groups := resources(shared.hub, "AWS::Scheduler::ScheduleGroup")
		if len(groups) != 1 {
			t.Fatalf("%d schedule groups, want 1", len(groups))
		}
		for _, g := range groups {
			if props(g)["Name"] != prefix {
				t.Errorf("group name %v, want %s", props(g)["Name"], prefix)
			}
		}
		for _, s := range schedules {
			if props(s)["GroupName"] != prefix {
				t.Errorf("schedule %v is in group %v", props(s)["Name"], props(s)["GroupName"])
			}
		}
	})

	cases := []struct {
		campaign, expression, zone, state string
		input                             contract.RunInput
	}{
		{"monthly", "cron(0 3 ? * THU *)", "America/New_York", "ENABLED", contract.RunInput{
			Campaign: "monthly", Operation: contract.OperationInstall, RebootOption: contract.RebootIfNeeded,
			Schedule: &contract.ScheduledRun{ScheduledTime: contract.SchedulerTimePlaceholder,
				Timezone: "America/New_York", PatchTuesdayOffsetDays: intPtr(2)}}},
		{"weekly-scan", "cron(0 4 ? * SUN *)", "Europe/Berlin", "DISABLED", contract.RunInput{
			Campaign: "weekly-scan", PlanWaveIDs: []string{"wave1-critical", "wave2"}, Operation: contract.OperationScan,
			RebootOption: contract.NoReboot,
			Schedule:     &contract.ScheduledRun{ScheduledTime: contract.SchedulerTimePlaceholder, Timezone: "Europe/Berlin"}}},
	}
	for _, tc := range cases {
		t.Run(tc.campaign+" fires "+tc.expression+" in "+tc.zone+", "+tc.state, func(t *testing.T) {
			s := scheduleNamed(t, tc.campaign)
			if s["ScheduleExpression"] != tc.expression || s["ScheduleExpressionTimezone"] != tc.zone || s["State"] != tc.state {
				t.Errorf("expression %v in %v, state %v", s["ScheduleExpression"], s["ScheduleExpressionTimezone"], s["State"])
			}
			if w := s["FlexibleTimeWindow"].(map[string]any); w["Mode"] != "OFF" {
				t.Errorf("flexible time window %v", w)
			}
			if flat(s["KmsKeyArn"]) != "${"+keyID(t)+".Arn}" {
				t.Errorf("KmsKeyArn = %s, want the hub key", flat(s["KmsKeyArn"]))
			}
		})
		t.Run(tc.campaign+" starts the orchestrator with the campaign's run input", func(t *testing.T) {
			target := scheduleNamed(t, tc.campaign)["Target"].(map[string]any)
			if flat(target["Arn"]) != orchestrator {
				t.Errorf("target %s, want the orchestrator %s", flat(target["Arn"]), orchestrator)
			}
			var got contract.RunInput
			if err := contract.DecodeStrict([]byte(target["Input"].(string)), &got); err != nil {
				t.Fatalf("input %v: %v", target["Input"], err)
			}
			if !reflect.DeepEqual(got, tc.input) {
				t.Errorf("input %s\nwant %+v", target["Input"], tc.input)
			}
			retry := target["RetryPolicy"].(map[string]any)
			if retry["MaximumRetryAttempts"] != 2.0 || retry["MaximumEventAgeInSeconds"] != 3600.0 {
				t.Errorf("retry policy %v", retry)
			}
			if dlq := target["DeadLetterConfig"].(map[string]any); flat(dlq["Arn"]) == "" {
				t.Errorf("no dead-letter queue: %v", dlq)
			}
		})
	}

	t.Run("the scheduler role is trusted by Scheduler in this account only", func(t *testing.T) {
		role := schedulerRole(t)
		stmts := statements(role["AssumeRolePolicyDocument"])
		if len(stmts) != 1 {
			t.Fatalf("trust policy %v", stmts)
		}
		s := stmts[0]
		want := map[string]any{"StringEquals": map[string]any{"aws:SourceAccount": shared.params.Account}}
		if flat(s["Principal"].(map[string]any)["Service"]) != "scheduler.amazonaws.com" || !reflect.DeepEqual(s["Condition"], want) {
			t.Errorf("trust %v", s)
		}
	})

	t.Run("the scheduler role may only start the orchestrator and decrypt its schedules", func(t *testing.T) {
		roleID := schedulerRoleID(t)
		var actions []string
		for _, p := range resources(shared.hub, "AWS::IAM::Policy") {
			attached := false
			for _, r := range list(props(p)["Roles"]) {
				attached = attached || flat(r) == "${"+roleID+"}"
			}
			if !attached {
				continue
			}
			for _, s := range statements(props(p)["PolicyDocument"]) {
				for _, a := range list(s["Action"]) {
					actions = append(actions, a.(string))
					switch a {
					case "states:StartExecution":
						if flat(s["Resource"]) != orchestrator {
							t.Errorf("StartExecution on %s", flat(s["Resource"]))
						}
					case "kms:Decrypt":
						if s["Sid"] != "DecryptCampaignSchedules" {
							continue // the dead-letter queue's grant, on the same key
						}
						cond := s["Condition"].(map[string]any)["ArnLike"].(map[string]any)
						if got := flat(cond["kms:EncryptionContext:aws:scheduler:schedule-arn"]); got !=
							"arn:${AWS::Partition}:scheduler:us-east-1:"+shared.params.Account+":schedule/"+prefix+"/*" {
							t.Errorf("decrypt condition %s", got)
						}
					}
				}
			}
		}
		allowed := map[string]bool{"states:StartExecution": true, "kms:Decrypt": true,
			"sqs:SendMessage": true, "sqs:GetQueueAttributes": true, "sqs:GetQueueUrl": true,
			"kms:Encrypt": true, "kms:ReEncrypt*": true, "kms:GenerateDataKey*": true}
		for _, a := range actions {
			if !allowed[a] {
				t.Errorf("the scheduler role may %s", a)
			}
		}
		if len(actions) == 0 {
			t.Error("the scheduler role has no policy")
		}
	})
}

func intPtr(n int) *int { return &n }

func schedulerRoleID(t *testing.T) string {
	t.Helper()
	for id, r := range resources(shared.hub, "AWS::IAM::Role") {
		for _, s := range statements(props(r)["AssumeRolePolicyDocument"]) {
			if p, ok := s["Principal"].(map[string]any); ok && flat(p["Service"]) == "scheduler.amazonaws.com" {
				return id
			}
		}
	}
	t.Fatal("no role trusted by scheduler.amazonaws.com")
	return ""
}

func schedulerRole(t *testing.T) map[string]any {
	t.Helper()
	return props(resources(shared.hub, "AWS::IAM::Role")[schedulerRoleID(t)])
}

// Every schedule's input is JSON whose scheduled time is Scheduler's
// placeholder, which Scheduler replaces in the input as a whole.
func TestScheduleInputsCarryThePlaceholder(t *testing.T) {
	for _, r := range resources(shared.hub, "AWS::Scheduler::Schedule") {
		raw := props(r)["Target"].(map[string]any)["Input"].(string)
		// Scheduler replaces the placeholder only as written, not escaped.
		if !strings.Contains(raw, `"scheduledTime":"`+contract.SchedulerTimePlaceholder+`"`) {
			t.Errorf("%v: input does not carry %s literally: %s", props(r)["Name"], contract.SchedulerTimePlaceholder, raw)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatalf("%v: %v", props(r)["Name"], err)
		}
		if m["schedule"].(map[string]any)["scheduledTime"] != contract.SchedulerTimePlaceholder {
			t.Errorf("%v: scheduledTime is not Scheduler's placeholder: %s", props(r)["Name"], raw)
		}
	}
}
