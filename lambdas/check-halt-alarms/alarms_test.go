package main

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/wiretest"
)

// fakeCW holds alarms by name and answers one alarm per page, metric
// alarms and composite alarms alike, so pagination is exercised.
type fakeCW struct {
	metric    map[string]cwtypes.StateValue
	composite map[string]cwtypes.StateValue
	err       error
	inputs    []*cloudwatch.DescribeAlarmsInput
}

func (f *fakeCW) DescribeAlarms(_ context.Context, in *cloudwatch.DescribeAlarmsInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error) {
	f.inputs = append(f.inputs, in)
	if f.err != nil {
		return nil, f.err
	}
	var found []string
	for _, name := range in.AlarmNames {
		if _, ok := f.metric[name]; ok {
			found = append(found, name)
		} else if _, ok := f.composite[name]; ok {
			found = append(found, name)
		}
	}
	page := 0
	if in.NextToken != nil {
		// Only a token this fake handed out parses.
		if _, err := fmt.Sscan(*in.NextToken, &page); err != nil {
			return nil, fmt.Errorf("fake: NextToken %q: %w", *in.NextToken, err)
		}
	}
	out := &cloudwatch.DescribeAlarmsOutput{}
	if page < len(found) {
		name := found[page]
		if s, ok := f.metric[name]; ok {
			out.MetricAlarms = []cwtypes.MetricAlarm{{AlarmName: aws.String(name), StateValue: s}}
		} else {
			out.CompositeAlarms = []cwtypes.CompositeAlarm{{AlarmName: aws.String(name), StateValue: f.composite[name]}}
		}
	}
	if page+1 < len(found) {
		out.NextToken = aws.String(fmt.Sprint(page + 1))
	}
	return out, nil
}

func handler(f *fakeCW) *Handler { return &Handler{Alarms: f, Log: logx.New(io.Discard)} }

func TestAlarmsWire(t *testing.T) {
	f := &fakeCW{
		metric: map[string]cwtypes.StateValue{"payments-5xx": cwtypes.StateValueAlarm,
			"checkout-latency": cwtypes.StateValueInsufficientData},
		composite: map[string]cwtypes.StateValue{"fleet-health": cwtypes.StateValueAlarm},
	}
	wiretest.Golden(t, handler(f).Handle, "alarms-after")
	in := f.inputs[0]
	if !reflect.DeepEqual(in.AlarmTypes, []cwtypes.AlarmType{cwtypes.AlarmTypeMetricAlarm, cwtypes.AlarmTypeCompositeAlarm}) {
		t.Errorf("alarm types %v: composite alarms would be missed", in.AlarmTypes)
	}
	if len(f.inputs) != 3 {
		t.Errorf("%d DescribeAlarms pages, want 3", len(f.inputs))
	}
}

func TestAlarmStates(t *testing.T) {
	f := &fakeCW{
		metric:    map[string]cwtypes.StateValue{"ok-alarm": cwtypes.StateValueOk, "bad-alarm": cwtypes.StateValueAlarm, "no-data": cwtypes.StateValueInsufficientData},
		composite: map[string]cwtypes.StateValue{"composite-ok": cwtypes.StateValueOk, "composite-bad": cwtypes.StateValueAlarm},
	}
	cases := []struct {
		name   string
		names  []string
		phase  string
		firing bool
		alarms []string
		reason string
	}{
		{"all OK", []string{"ok-alarm", "composite-ok"}, contract.PhaseBeforeWave, false, []string{}, ""},
		{"insufficient data does not halt", []string{"no-data"}, contract.PhaseAfterWave, false, []string{}, ""},
		{"metric alarm in ALARM before", []string{"ok-alarm", "bad-alarm"}, contract.PhaseBeforeWave, true,
			[]string{"bad-alarm"}, "halt alarm bad-alarm is in ALARM before the wave"},
		{"composite in ALARM after", []string{"composite-bad"}, contract.PhaseAfterWave, true,
			[]string{"composite-bad"}, "halt alarm composite-bad is in ALARM after the wave"},
		{"missing name fails closed", []string{"ok-alarm", "typo-alarm"}, contract.PhaseBeforeWave, true,
			[]string{"typo-alarm"}, "halt alarm typo-alarm does not exist"},
		{"two in ALARM", []string{"composite-bad", "bad-alarm"}, contract.PhaseAfterWave, true,
			[]string{"bad-alarm", "composite-bad"}, "halt alarms bad-alarm, composite-bad are in ALARM after the wave"},
		{"no alarms listed", nil, contract.PhaseBeforeWave, false, []string{}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := handler(f).Handle(context.Background(), contract.AlarmCheckRequest{RunID: "r", WaveID: "w", AlarmNames: c.names, Phase: c.phase})
			if err != nil {
				t.Fatal(err)
			}
			want := contract.AlarmCheck{Firing: c.firing, Alarms: c.alarms, Reason: c.reason}
			if !reflect.DeepEqual(out, want) {
				t.Errorf("check = %+v, want %+v", out, want)
			}
		})
	}
}

func TestNoAlarmsNoCall(t *testing.T) {
	f := &fakeCW{}
	if _, err := handler(f).Handle(context.Background(), contract.AlarmCheckRequest{Phase: contract.PhaseBeforeWave}); err != nil {
		t.Fatal(err)
	}
	if len(f.inputs) != 0 {
		t.Errorf("%d DescribeAlarms calls for a wave without halt alarms", len(f.inputs))
	}
}

func TestAlarmThrottled(t *testing.T) {
	f := &fakeCW{err: &smithy.OperationError{ServiceID: "CloudWatch", OperationName: "DescribeAlarms",
		Err: &smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded"}}}
	wiretest.WantError(t, handler(f).Handle, "alarms-after", contract.ErrThrottled)
}
