package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/internal/emf"
	"github.com/ec2patch/ec2patch/internal/emf/emftest"
	"github.com/ec2patch/ec2patch/lambdas/internal/fleet"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/spoke"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
	"github.com/ec2patch/ec2patch/lambdas/internal/wiretest"
)

// spokeFake answers every spoke call of the handler from one table.
type spokeFake struct {
	invocations map[string][]ssmtypes.CommandInvocation // by command ID, one per page
	status      map[string]ec2types.InstanceStatus
	ping        map[string]ssmtypes.PingStatus
	pages       int
}

func (f *spokeFake) ListCommandInvocations(_ context.Context, in *ssm.ListCommandInvocationsInput, _ ...func(*ssm.Options)) (*ssm.ListCommandInvocationsOutput, error) {
	f.pages++
	all := f.invocations[*in.CommandId]
	page := 0
	if in.NextToken != nil {
		page = int((*in.NextToken)[0] - '0')
	}
	out := &ssm.ListCommandInvocationsOutput{}
	if page < len(all) {
		out.CommandInvocations = all[page : page+1]
	}
	if page+1 < len(all) {
		out.NextToken = aws.String(string(rune('0' + page + 1)))
	}
	return out, nil
}

func (f *spokeFake) DescribeInstanceStatus(_ context.Context, in *ec2.DescribeInstanceStatusInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error) {
	out := &ec2.DescribeInstanceStatusOutput{}
	for _, id := range in.InstanceIds {
		if st, ok := f.status[id]; ok {
			st.InstanceId = aws.String(id)
			out.InstanceStatuses = append(out.InstanceStatuses, st)
		}
	}
	return out, nil
}

func (f *spokeFake) DescribeInstanceInformation(_ context.Context, in *ssm.DescribeInstanceInformationInput, _ ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error) {
	out := &ssm.DescribeInstanceInformationOutput{}
	for _, id := range in.Filters[0].Values {
		if p, ok := f.ping[id]; ok {
			out.InstanceInformationList = append(out.InstanceInformationList, ssmtypes.InstanceInformation{InstanceId: aws.String(id), PingStatus: p})
		}
	}
	return out, nil
}

type results struct {
	put        []contract.TargetResult
	operations []string
}

func (r *results) FinishTarget(_ context.Context, _ store.TargetKey, res contract.TargetResult, operation string) (contract.TargetResult, error) {
	r.put = append(r.put, res)
	r.operations = append(r.operations, operation)
	return res, nil
}

func newHandler(f *spokeFake, r *results) *Handler {
	return &Handler{
		Invocations: spoke.FactoryFunc[invocationLister](func(spoke.Target) invocationLister { return f }),
		Status:      spoke.FactoryFunc[statusDescriber](func(spoke.Target) statusDescriber { return f }),
		Info:        spoke.FactoryFunc[fleet.InstanceInformer](func(spoke.Target) fleet.InstanceInformer { return f }),
		Results:     r,
		Log:         logx.New(io.Discard),
	}
}

func inv(id string, status ssmtypes.CommandInvocationStatus, details string) ssmtypes.CommandInvocation {
	return ssmtypes.CommandInvocation{InstanceId: aws.String(id), Status: status, StatusDetails: aws.String(details)}
}

func ok(state ec2types.InstanceStateName, inst, sys ec2types.SummaryStatus) ec2types.InstanceStatus {
	return ec2types.InstanceStatus{InstanceState: &ec2types.InstanceState{Name: state},
		InstanceStatus: &ec2types.InstanceStatusSummary{Status: inst}, SystemStatus: &ec2types.InstanceStatusSummary{Status: sys}}
}

func fleetFake() *spokeFake {
	run := ec2types.InstanceStateNameRunning
	return &spokeFake{
		invocations: map[string][]ssmtypes.CommandInvocation{
			"cmd-1": {
				inv("i-ok", ssmtypes.CommandInvocationStatusSuccess, "Success"),
				inv("i-rebooting", ssmtypes.CommandInvocationStatusSuccess, "Success"),
				inv("i-failed", ssmtypes.CommandInvocationStatusFailed, "Failed"),
				inv("i-undeliverable", ssmtypes.CommandInvocationStatusFailed, "Undeliverable"),
				inv("i-timedout", ssmtypes.CommandInvocationStatusTimedOut, "ExecutionTimedOut"),
			},
			"cmd-2": {
				inv("i-slow", ssmtypes.CommandInvocationStatusInProgress, "InProgress"),
				inv("i-impaired", ssmtypes.CommandInvocationStatusSuccess, "Success"),
				inv("i-gone", ssmtypes.CommandInvocationStatusSuccess, "Success"),
				// An instance ec2patch never sent to: ignored.
				inv("i-other", ssmtypes.CommandInvocationStatusFailed, "Failed"),
			},
		},
		status: map[string]ec2types.InstanceStatus{
			"i-ok":        ok(run, ec2types.SummaryStatusOk, ec2types.SummaryStatusOk),
			"i-rebooting": ok(run, ec2types.SummaryStatusInitializing, ec2types.SummaryStatusNotApplicable),
			"i-impaired":  ok(run, ec2types.SummaryStatusImpaired, ec2types.SummaryStatusOk),
			"i-gone":      ok(ec2types.InstanceStateNameStopped, ec2types.SummaryStatusNotApplicable, ec2types.SummaryStatusNotApplicable),
		},
		ping: map[string]ssmtypes.PingStatus{
			"i-ok": ssmtypes.PingStatusOnline, "i-rebooting": ssmtypes.PingStatusOnline,
			"i-impaired": ssmtypes.PingStatusConnectionLost,
		},
	}
}

// TestVerifyStatusMapping covers success, failure, undeliverable, timed
// out, still running at TIMED_OUT, no invocation, unhealthy and skipped.
func TestVerifyStatusMapping(t *testing.T) {
	f, r := fleetFake(), &results{}
	wiretest.Golden(t, newHandler(f, r).Handle, "verify-timed-out")
	if len(r.put) != 1 {
		t.Fatalf("%d records written, want 1", len(r.put))
	}
	wiretest.Match(t, "verify-timed-out.recorded", r.put[0])
	if f.pages != 9 {
		t.Errorf("%d ListCommandInvocations pages, want 9 (one invocation a page)", f.pages)
	}
}

func TestVerifyDryRunScans(t *testing.T) {
	wiretest.Golden(t, newHandler(fleetFake(), &results{}).Handle, "verify-dry-run")
}

func TestVerifyNoCommandIsSkipped(t *testing.T) {
	r := &results{}
	wiretest.Golden(t, newHandler(&spokeFake{}, r).Handle, "verify-no-command")
	if got := r.put[0]; got.Status != contract.StatusSkipped || got.Reason != ReasonNoPatchable || len(got.Instances) != 1 {
		t.Errorf("recorded %+v", got)
	}
	st := contract.TargetState{Inventory: &contract.InventoryResult{InstanceIDs: []string{}}}
	sum, err := newHandler(&spokeFake{}, r).Handle(context.Background(), st)
	if err != nil || sum.Status != contract.StatusSkipped || sum.Reason != contract.ReasonNoInstance {
		t.Errorf("nothing matched: %+v, %v", sum, err)
	}
}

// TestVerifyMetrics: the timed-out fixture has 2 patched, 3 failed (one
// unhealthy, one stopped after patching, one with no invocation), 3 timed
// out or failed by SSM; its healthy and unhealthy counts are of the
// instances whose command succeeded.
func TestVerifyMetrics(t *testing.T) {
	raw, err := os.ReadFile("testdata/verify-timed-out.json")
	if err != nil {
		t.Fatal(err)
	}
	var st contract.TargetState
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	h := newHandler(fleetFake(), &results{})
	h.Metrics = emf.New(&buf, "ec2patch-test", nil)
	sum, err := h.Handle(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	got := emftest.Sums(t, buf.Bytes(), map[string]string{contract.DimRunID: st.RunID, contract.DimWaveID: st.WaveID,
		contract.DimAccount: st.Account})
	c := sum.Counts
	want := map[string]float64{
		contract.MetricPatchSuccess:       float64(c.Patched + c.Scanned),
		contract.MetricPatchFailures:      float64(c.Failed + c.TimedOut),
		contract.MetricInstancesHealthy:   2,
		contract.MetricInstancesUnhealthy: 2,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("metrics %v, want %v (counts %+v)", got, want, c)
	}
	if want[contract.MetricPatchSuccess] == 0 || want[contract.MetricPatchFailures] == 0 {
		t.Errorf("fixture counts %+v: the check proves nothing", c)
	}
}

func TestVerifyRecordsTheOperation(t *testing.T) {
	r := &results{}
	wiretest.Golden(t, newHandler(fleetFake(), r).Handle, "verify-dry-run")
	if len(r.operations) != 1 || r.operations[0] != contract.OperationScan {
		t.Errorf("operations %v, want [Scan] for a dry run", r.operations)
	}
}
