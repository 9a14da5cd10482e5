package main

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
)

type alarmDescriber interface {
	DescribeAlarms(ctx context.Context, in *cloudwatch.DescribeAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
}

var _ alarmDescriber = (*cloudwatch.Client)(nil)

// Handler checks a wave's halt alarms.
type Handler struct {
	Alarms alarmDescriber
	Log    *slog.Logger
}

// Handle is the Lambda entry point.
func (h *Handler) Handle(ctx context.Context, req contract.AlarmCheckRequest) (contract.AlarmCheck, error) {
	log := logx.For(ctx, h.Log, logx.Scope{RunID: req.RunID, WaveID: req.WaveID})
	out, err := h.check(ctx, req)
	if err != nil {
		err = fault.Boundary(err)
		logx.Failed(log, err)
		return contract.AlarmCheck{}, err
	}
	if out.Firing {
		log.Warn("halt alarm firing", "phase", req.Phase, "alarms", out.Alarms, "reason", out.Reason)
	} else {
		log.Info("halt alarms clear", "phase", req.Phase, "alarmNames", req.AlarmNames)
	}
	return out, nil
}

func (h *Handler) check(ctx context.Context, req contract.AlarmCheckRequest) (contract.AlarmCheck, error) {
	out := contract.AlarmCheck{Alarms: []string{}}
	if len(req.AlarmNames) == 0 {
		return out, nil
	}
	states, err := h.states(ctx, req.AlarmNames)
	if err != nil {
		return contract.AlarmCheck{}, err
	}
	var inAlarm, missing []string
	for _, name := range req.AlarmNames {
		state, ok := states[name]
		switch {
		case !ok:
			missing = append(missing, name)
		case state == cwtypes.StateValueAlarm:
			inAlarm = append(inAlarm, name)
		}
	}
	sort.Strings(inAlarm)
	sort.Strings(missing)
	out.Reason = Reason(inAlarm, missing, req.Phase)
	// A listed alarm that does not exist halts too: a typo or a deleted
	// alarm must not turn the gate off silently.
	out.Alarms = append(append(out.Alarms, inAlarm...), missing...)
	sort.Strings(out.Alarms)
	out.Firing = len(out.Alarms) > 0
	return out, nil
}

// states returns the state of every listed alarm that exists, metric or
// composite.
func (h *Handler) states(ctx context.Context, names []string) (map[string]cwtypes.StateValue, error) {
	in := &cloudwatch.DescribeAlarmsInput{
		AlarmNames: names,
		AlarmTypes: []cwtypes.AlarmType{cwtypes.AlarmTypeMetricAlarm, cwtypes.AlarmTypeCompositeAlarm},
	}
	states := map[string]cwtypes.StateValue{}
	for {
		out, err := h.Alarms.DescribeAlarms(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("describe halt alarms %s: %w", strings.Join(names, ", "), err)
		}
		for _, a := range out.MetricAlarms {
			states[aws.ToString(a.AlarmName)] = a.StateValue
		}
		for _, a := range out.CompositeAlarms {
			states[aws.ToString(a.AlarmName)] = a.StateValue
		}
		if aws.ToString(out.NextToken) == "" {
			return states, nil
		}
		in.NextToken = out.NextToken
	}
}

// Reason says which alarms halt the run and when, for the report:
// "halt alarm payments-5xx is in ALARM before the wave". It is empty when
// nothing fires.
func Reason(inAlarm, missing []string, phase string) string {
	when := "after the wave"
	if phase == contract.PhaseBeforeWave {
		when = "before the wave"
	}
	var parts []string
	switch len(inAlarm) {
	case 0:
	case 1:
		parts = append(parts, fmt.Sprintf("halt alarm %s is in ALARM %s", inAlarm[0], when))
	default:
		parts = append(parts, fmt.Sprintf("halt alarms %s are in ALARM %s", strings.Join(inAlarm, ", "), when))
	}
	for _, name := range missing {
		parts = append(parts, fmt.Sprintf("halt alarm %s does not exist", name))
	}
	return strings.Join(parts, "; ")
}
