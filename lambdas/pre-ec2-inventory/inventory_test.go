package main

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/fleet"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/spoke"
	"github.com/ec2patch/ec2patch/lambdas/internal/wiretest"
)

// fakeEC2 serves instances one per page, so pagination is exercised.
type fakeEC2 struct {
	instances []ec2types.Instance
	err       error
	inputs    []*ec2.DescribeInstancesInput
}

func (f *fakeEC2) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	f.inputs = append(f.inputs, in)
	if f.err != nil {
		return nil, f.err
	}
	page := 0
	if in.NextToken != nil {
		fmt.Sscan(*in.NextToken, &page)
	}
	out := &ec2.DescribeInstancesOutput{}
	if page < len(f.instances) {
		out.Reservations = []ec2types.Reservation{{Instances: []ec2types.Instance{f.instances[page]}}}
	}
	if page+1 < len(f.instances) {
		out.NextToken = aws.String(fmt.Sprint(page + 1))
	}
	return out, nil
}

type fakeSSM struct {
	ping  map[string]ssmtypes.PingStatus
	calls [][]string
}

func (f *fakeSSM) DescribeInstanceInformation(_ context.Context, in *ssm.DescribeInstanceInformationInput, _ ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error) {
	ids := in.Filters[0].Values
	f.calls = append(f.calls, ids)
	out := &ssm.DescribeInstanceInformationOutput{}
	for _, id := range ids {
		if p, ok := f.ping[id]; ok {
			out.InstanceInformationList = append(out.InstanceInformationList,
				ssmtypes.InstanceInformation{InstanceId: aws.String(id), PingStatus: p})
		}
	}
	return out, nil
}

func instance(id string, state ec2types.InstanceStateName) ec2types.Instance {
	return ec2types.Instance{InstanceId: aws.String(id), State: &ec2types.InstanceState{Name: state}}
}

func newHandler(e *fakeEC2, s *fakeSSM) *Handler {
	return &Handler{
		EC2: spoke.FactoryFunc[instanceDescriber](func(spoke.Target) instanceDescriber { return e }),
		SSM: spoke.FactoryFunc[fleet.InstanceInformer](func(spoke.Target) fleet.InstanceInformer { return s }),
		Log: logx.New(io.Discard),
	}
}

func TestInventorySkipReasons(t *testing.T) {
	e := &fakeEC2{instances: []ec2types.Instance{
		instance("i-online-2", ec2types.InstanceStateNameRunning),
		instance("i-stopped", ec2types.InstanceStateNameStopped),
		instance("i-stopping", ec2types.InstanceStateNameStopping),
		instance("i-pending", ec2types.InstanceStateNamePending),
		instance("i-online-1", ec2types.InstanceStateNameRunning),
		instance("i-lost", ec2types.InstanceStateNameRunning),
		instance("i-no-agent", ec2types.InstanceStateNameRunning),
	}}
	s := &fakeSSM{ping: map[string]ssmtypes.PingStatus{
		"i-online-1": ssmtypes.PingStatusOnline, "i-online-2": ssmtypes.PingStatusOnline,
		"i-lost": ssmtypes.PingStatusConnectionLost,
		// Not running, so never asked about: Online must not make it patchable.
		"i-stopped": ssmtypes.PingStatusOnline,
	}}
	wiretest.Golden(t, newHandler(e, s).Handle, "inventory")

	// One tag:K filter per tag filter, sorted, plus the state filter.
	want := []ec2types.Filter{
		{Name: aws.String("tag:Env"), Values: []string{"prod"}},
		{Name: aws.String("tag:PatchGroup"), Values: []string{"default"}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}},
	}
	if !reflect.DeepEqual(e.inputs[0].Filters, want) || aws.ToInt32(e.inputs[0].MaxResults) != 1000 {
		t.Errorf("DescribeInstances input %+v", e.inputs[0])
	}
	if len(e.inputs) != len(e.instances) {
		t.Errorf("%d DescribeInstances pages, want %d", len(e.inputs), len(e.instances))
	}
	if !reflect.DeepEqual(s.calls, [][]string{{"i-lost", "i-no-agent", "i-online-1", "i-online-2"}}) {
		t.Errorf("SSM asked about %v, want the running instances only", s.calls)
	}
}

func TestInventoryAsksSSMAtMost50AtATime(t *testing.T) {
	e := &fakeEC2{}
	s := &fakeSSM{ping: map[string]ssmtypes.PingStatus{}}
	for i := range 120 {
		id := fmt.Sprintf("i-%03d", i)
		e.instances = append(e.instances, instance(id, ec2types.InstanceStateNameRunning))
		s.ping[id] = ssmtypes.PingStatusOnline
	}
	out, err := newHandler(e, s).Handle(context.Background(), contract.TargetInput{TagFilters: map[string]string{"K": "V"}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Matched != 120 || out.TargetCount != 120 || len(out.InstanceIDs) != 120 || len(out.Skipped) != 0 {
		t.Errorf("matched %d, patchable %d, skipped %d", out.Matched, out.TargetCount, len(out.Skipped))
	}
	var sizes []int
	for _, c := range s.calls {
		sizes = append(sizes, len(c))
	}
	if !reflect.DeepEqual(sizes, []int{50, 50, 20}) {
		t.Errorf("DescribeInstanceInformation batch sizes %v, want [50 50 20]", sizes)
	}
}

func TestInventoryNothingMatches(t *testing.T) {
	out, err := newHandler(&fakeEC2{}, &fakeSSM{}).Handle(context.Background(), contract.TargetInput{})
	if err != nil {
		t.Fatal(err)
	}
	if out.Matched != 0 || out.InstanceIDs == nil || out.Skipped == nil {
		t.Errorf("empty inventory %+v: want zero matches and empty (not null) lists", out)
	}
}

func TestInventoryAssumeDenied(t *testing.T) {
	e := &fakeEC2{err: &smithy.OperationError{ServiceID: "EC2", OperationName: "DescribeInstances",
		Err: &fault.AssumeRoleError{RoleARN: "arn:aws:iam::222222222222:role/PatchExecRole", Account: "222222222222",
			Err: &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized"}}}}
	msg := wiretest.WantError(t, newHandler(e, &fakeSSM{}).Handle, "inventory", contract.ErrAccessDenied)
	if !strings.HasPrefix(msg, "cannot assume arn:aws:iam::222222222222:role/PatchExecRole with the configured ExternalId") {
		t.Errorf("message %q does not name the role", msg)
	}
}
