package main

import (
	"bytes"
	"context"
	"errors"
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
	"github.com/ec2patch/ec2patch/internal/emf"
	"github.com/ec2patch/ec2patch/internal/emf/emftest"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/fleet"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/spoke"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
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
		// Only a token this fake handed out parses.
		if _, err := fmt.Sscan(*in.NextToken, &page); err != nil {
			return nil, fmt.Errorf("fake: NextToken %q: %w", *in.NextToken, err)
		}
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

// records holds target records by key and the previews written.
type records struct {
	targets  map[store.TargetKey]store.Target
	previews []contract.PreviewSummary
	keys     []string
	err      error
}

func (r *records) Target(_ context.Context, k store.TargetKey) (store.Target, bool, error) {
	t, ok := r.targets[k]
	return t, ok, nil
}

func (r *records) PutPreview(_ context.Context, runID, waveID string, p contract.PreviewSummary) error {
	if r.err != nil {
		return &fault.StoreFailure{Op: "write preview record", Err: r.err}
	}
	r.keys = append(r.keys, runID+"/"+waveID)
	r.previews = append(r.previews, p)
	return nil
}

func newHandler(e *fakeEC2, s *fakeSSM) *Handler {
	return newHandlerWith(e, s, &records{})
}

func newHandlerWith(e *fakeEC2, s *fakeSSM, r *records) *Handler {
	return &Handler{
		EC2:     spoke.FactoryFunc[instanceDescriber](func(spoke.Target) instanceDescriber { return e }),
		SSM:     spoke.FactoryFunc[fleet.InstanceInformer](func(spoke.Target) fleet.InstanceInformer { return s }),
		Records: r, Previews: r,
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

var canaryKey = store.TargetKey{RunID: "2026-12-patch", WaveID: "canary", Account: "222222222222", Region: "us-east-1"}

func TestInventoryAlreadyRecorded(t *testing.T) {
	for _, status := range []string{contract.StatusSucceeded, contract.StatusSkipped} {
		t.Run(status, func(t *testing.T) {
			e := &fakeEC2{instances: []ec2types.Instance{instance("i-1", ec2types.InstanceStateNameRunning)}}
			r := &records{targets: map[store.TargetKey]store.Target{canaryKey: {Status: status}}}
			wiretest.Golden(t, newHandlerWith(e, &fakeSSM{}, r).Handle, "inventory-already")
			if len(e.inputs) != 0 {
				t.Errorf("%d spoke calls for a target whose result is final", len(e.inputs))
			}
		})
	}
}

func TestInventoryRetriesAFailedTarget(t *testing.T) {
	e := &fakeEC2{instances: []ec2types.Instance{instance("i-1", ec2types.InstanceStateNameRunning)}}
	s := &fakeSSM{ping: map[string]ssmtypes.PingStatus{"i-1": ssmtypes.PingStatusOnline}}
	for _, status := range []string{contract.StatusFailed, store.StatusSending} {
		r := &records{targets: map[store.TargetKey]store.Target{canaryKey: {Status: status}}}
		out, err := newHandlerWith(e, s, r).Handle(context.Background(), contract.TargetInput{RunID: canaryKey.RunID,
			WaveID: canaryKey.WaveID, Account: canaryKey.Account, Region: canaryKey.Region})
		if err != nil {
			t.Fatal(err)
		}
		if out.AlreadyRecorded || out.TargetCount != 1 {
			t.Errorf("status %s: inventory %+v, want the target inventoried again", status, out)
		}
	}
}

func TestInventoryPreviewRecordsWhatWouldBePatched(t *testing.T) {
	e := &fakeEC2{instances: []ec2types.Instance{
		instance("i-1", ec2types.InstanceStateNameRunning), instance("i-2", ec2types.InstanceStateNameRunning),
		instance("i-3", ec2types.InstanceStateNameStopped)}}
	s := &fakeSSM{ping: map[string]ssmtypes.PingStatus{"i-1": ssmtypes.PingStatusOnline, "i-2": ssmtypes.PingStatusOnline}}
	// A final record does not hide the target from the preview: the
	// approver sees the whole wave.
	r := &records{targets: map[store.TargetKey]store.Target{canaryKey: {Status: contract.StatusSucceeded}}}
	wiretest.Golden(t, newHandlerWith(e, s, r).Handle, "inventory-preview")
	wiretest.Match(t, "inventory-preview.recorded", r.previews)
	if len(r.keys) != 1 || r.keys[0] != "2026-12-patch/canary" {
		t.Errorf("previews written under %v", r.keys)
	}
}

func TestInventoryPreviewRecordsASpokeFailure(t *testing.T) {
	e := &fakeEC2{err: &smithy.OperationError{ServiceID: "EC2", OperationName: "DescribeInstances",
		Err: &fault.AssumeRoleError{RoleARN: "arn:aws:iam::222222222222:role/PatchExecRole", Account: "222222222222",
			Err: &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized"}}}}
	r := &records{}
	out, err := newHandlerWith(e, &fakeSSM{}, r).Handle(context.Background(),
		contract.TargetInput{RunID: "r", WaveID: "w", Account: "222222222222", Region: "us-east-1", Preview: true})
	if err != nil {
		t.Fatalf("preview failed with %v: a spoke problem must be recorded, not failed", err)
	}
	if out.TargetCount != 0 || out.InstanceIDs == nil {
		t.Errorf("inventory %+v", out)
	}
	want := []contract.PreviewSummary{{Account: "222222222222", Region: "us-east-1",
		Error: "AccessDenied: cannot assume arn:aws:iam::222222222222:role/PatchExecRole with the configured ExternalId: AccessDenied: not authorized"}}
	if !reflect.DeepEqual(r.previews, want) {
		t.Errorf("previews %+v\nwant %+v", r.previews, want)
	}
}

func TestInventoryPreviewRetriesAThrottle(t *testing.T) {
	e := &fakeEC2{err: &smithy.GenericAPIError{Code: "RequestLimitExceeded", Message: "slow down"}}
	r := &records{}
	_, err := newHandlerWith(e, &fakeSSM{}, r).Handle(context.Background(),
		contract.TargetInput{RunID: "r", WaveID: "w", Account: "222222222222", Region: "us-east-1", Preview: true})
	if wiretest.ErrorType(err) != contract.ErrThrottled {
		t.Fatalf("error %v, want Throttled so the state machine retries", err)
	}
	if len(r.previews) != 1 || r.previews[0].Error == "" {
		t.Errorf("previews %+v: the throttle is recorded in case the retries run out", r.previews)
	}
}

func TestInventoryPreviewStoreFailure(t *testing.T) {
	r := &records{err: errors.New("table gone")}
	wiretest.WantError(t, newHandlerWith(&fakeEC2{}, &fakeSSM{}, r).Handle, "inventory-preview", contract.ErrStateStore)
}

func TestInventoryMetrics(t *testing.T) {
	e := &fakeEC2{instances: []ec2types.Instance{
		instance("i-online-1", ec2types.InstanceStateNameRunning),
		instance("i-online-2", ec2types.InstanceStateNameRunning),
		instance("i-stopped", ec2types.InstanceStateNameStopped),
		instance("i-stopping", ec2types.InstanceStateNameStopping),
		instance("i-pending", ec2types.InstanceStateNamePending),
		instance("i-lost", ec2types.InstanceStateNameRunning),
		instance("i-no-agent", ec2types.InstanceStateNameRunning),
	}}
	s := &fakeSSM{ping: map[string]ssmtypes.PingStatus{"i-online-1": ssmtypes.PingStatusOnline,
		"i-online-2": ssmtypes.PingStatusOnline, "i-lost": ssmtypes.PingStatusConnectionLost}}
	in := contract.TargetInput{RunID: "2026-12-patch", WaveID: "canary", Account: "222222222222", Region: "us-east-1"}
	var buf bytes.Buffer
	h := newHandler(e, s)
	h.Metrics = emf.New(&buf, "ec2patch-test", nil)
	if _, err := h.Handle(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	got := emftest.Sums(t, buf.Bytes(), map[string]string{contract.DimRunID: in.RunID, contract.DimWaveID: in.WaveID,
		contract.DimAccount: in.Account, contract.DimEnvironment: "ec2patch-test"})
	want := map[string]float64{contract.MetricInstancesTargeted: 2,
		contract.MetricInstancesSkipped + "/" + contract.SkipReasonStopped:   3,
		contract.MetricInstancesSkipped + "/" + contract.SkipReasonUnmanaged: 2}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("metrics %v, want %v", got, want)
	}

	// A preview and a target a re-run finds done count nothing.
	buf.Reset()
	preview := in
	preview.Preview = true
	if _, err := h.Handle(context.Background(), preview); err != nil {
		t.Fatal(err)
	}
	done := newHandlerWith(e, s, &records{targets: map[store.TargetKey]store.Target{canaryKey: {Status: contract.StatusSucceeded}}})
	done.Metrics = h.Metrics
	if _, err := done.Handle(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Errorf("preview or re-run wrote metrics: %s", buf.String())
	}
}

func TestSkipReasonDimension(t *testing.T) {
	for reason, want := range map[string]string{
		contract.ReasonStopped + " (stopped)":                contract.SkipReasonStopped,
		contract.ReasonUnmanaged + " (ping status Inactive)": contract.SkipReasonUnmanaged,
		contract.ReasonUnmanaged:                             contract.SkipReasonUnmanaged,
		"something new":                                      "Other",
	} {
		if got := SkipReason(reason); got != want {
			t.Errorf("SkipReason(%q) = %s, want %s", reason, got, want)
		}
	}
}
