package hub

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsscheduler"
	"github.com/aws/jsii-runtime-go"

	"github.com/ec2patch/ec2patch/internal/config"
	"github.com/ec2patch/ec2patch/internal/contract"
)

// Schedule delivery: a firing that cannot start the orchestrator is retried
// for up to an hour, then kept in the dead-letter queue.
const (
	scheduleRetryAttempts = 2
	scheduleMaxAgeSeconds = 3600
)

// ScheduleName is the physical name of a campaign's schedule. Operators
// find it by name in the console, and the execution role's key condition
// names the group.
func ScheduleName(namePrefix, campaign string) string { return namePrefix + "-" + campaign }

// ScheduleInput is the run input a campaign's schedule starts the
// orchestrator with. Scheduler replaces contract.SchedulerTimePlaceholder
// with the firing's scheduled time.
func ScheduleInput(c config.Campaign) (string, error) {
	s := c.Schedule
	in := contract.RunInput{
		Campaign:     c.Name,
		PlanWaveIDs:  c.Waves,
		Operation:    c.Operation,
		RebootOption: c.RebootOption,
		Schedule:     &contract.ScheduledRun{ScheduledTime: contract.SchedulerTimePlaceholder, Timezone: s.Timezone},
	}
	if s.PatchTuesday != nil {
		offset := s.PatchTuesday.OffsetDays
		in.Schedule.PatchTuesdayOffsetDays = &offset
	}
	// Scheduler replaces the placeholder only as written: json.Marshal
	// would escape its angle brackets.
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(in); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// schedules creates one EventBridge Scheduler schedule per campaign that has
// one, in a schedule group named after the hub, all starting the
// orchestrator through one execution role that may do nothing else.
func (h *Stack) schedules(p config.Params) {
	var scheduled []config.Campaign
	for _, c := range p.Campaigns {
		if c.Schedule != nil {
			scheduled = append(scheduled, c)
		}
	}
	if len(scheduled) == 0 {
		return
	}
	prefix := p.Hub.NamePrefix
	group := awsscheduler.NewCfnScheduleGroup(h.Stack, jsii.String("ScheduleGroup"), &awsscheduler.CfnScheduleGroupProps{
		Name: jsii.String(prefix),
	})
	orchestrator := h.StateMachine.Orchestrator.StateMachineArn()
	role := awsiam.NewRole(h.Stack, jsii.String("SchedulerRole"), &awsiam.RoleProps{
		Description: jsii.String("ec2patch " + prefix + ": EventBridge Scheduler starts the campaigns' runs"),
		AssumedBy: awsiam.NewPrincipalWithConditions(awsiam.NewServicePrincipal(jsii.String("scheduler.amazonaws.com"), nil),
			&map[string]interface{}{"StringEquals": map[string]interface{}{"aws:SourceAccount": *h.Account()}}),
	})
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("StartCampaignRuns"),
		Actions:   jsii.Strings("states:StartExecution"),
		Resources: jsii.Strings(*orchestrator),
	}))
	// Scheduler encrypts each schedule's input with the hub key and decrypts
	// it with the execution role when it fires, naming the schedule in the
	// encryption context: the role may decrypt only this group's schedules.
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("DecryptCampaignSchedules"),
		Actions:   jsii.Strings("kms:Decrypt"),
		Resources: jsii.Strings(*h.Key.KeyArn()),
		Conditions: &map[string]interface{}{
			"ArnLike": map[string]interface{}{
				"kms:EncryptionContext:aws:scheduler:schedule-arn": fmt.Sprintf("arn:%s:scheduler:%s:%s:schedule/%s/*",
					*h.Partition(), *h.Region(), *h.Account(), prefix),
			},
		},
	}))
	// Scheduler sends what it could not deliver with the execution role.
	h.DeadLetterQueue.GrantSendMessages(role)

	for _, c := range scheduled {
		expr, err := c.Schedule.Expression()
		if err != nil {
			panic(fmt.Sprintf("campaign %s: %v (params are validated before synth)", c.Name, err))
		}
		input, err := ScheduleInput(c)
		if err != nil {
			panic(fmt.Sprintf("campaign %s: encode input: %v", c.Name, err))
		}
		state := "ENABLED"
		if !c.Schedule.IsEnabled() {
			state = "DISABLED"
		}
		s := awsscheduler.NewCfnSchedule(h.Stack, jsii.String("Schedule-"+c.Name), &awsscheduler.CfnScheduleProps{
			Name:                       jsii.String(ScheduleName(prefix, c.Name)),
			GroupName:                  group.Name(),
			Description:                jsii.String("ec2patch campaign " + c.Name + ": " + c.Schedule.String()),
			ScheduleExpression:         jsii.String(expr),
			ScheduleExpressionTimezone: jsii.String(c.Schedule.Timezone),
			State:                      jsii.String(state),
			FlexibleTimeWindow:         &awsscheduler.CfnSchedule_FlexibleTimeWindowProperty{Mode: jsii.String("OFF")},
			KmsKeyArn:                  h.Key.KeyArn(),
			Target: &awsscheduler.CfnSchedule_TargetProperty{
				Arn:     orchestrator,
				RoleArn: role.RoleArn(),
				Input:   jsii.String(input),
				RetryPolicy: &awsscheduler.CfnSchedule_RetryPolicyProperty{
					MaximumRetryAttempts:     jsii.Number(scheduleRetryAttempts),
					MaximumEventAgeInSeconds: jsii.Number(scheduleMaxAgeSeconds),
				},
				DeadLetterConfig: &awsscheduler.CfnSchedule_DeadLetterConfigProperty{Arn: h.DeadLetterQueue.QueueArn()},
			},
		})
		s.AddDependency(group)
		// The role's policy must exist before the first firing; the role
		// itself is implied by the GetAtt of its ARN.
		if policy := defaultPolicy(role); policy != nil {
			s.AddDependency(policy)
		}
	}
}
