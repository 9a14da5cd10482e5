package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/internal/emf"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/fleet"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/spoke"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
)

type invocationLister interface {
	ListCommandInvocations(ctx context.Context, in *ssm.ListCommandInvocationsInput, optFns ...func(*ssm.Options)) (*ssm.ListCommandInvocationsOutput, error)
}

type statusDescriber interface {
	DescribeInstanceStatus(ctx context.Context, in *ec2.DescribeInstanceStatusInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error)
}

// resultWriter records the target's result and its instances' ledger rows.
type resultWriter interface {
	FinishTarget(ctx context.Context, k store.TargetKey, r contract.TargetResult, operation string) (contract.TargetResult, error)
}

// Handler verifies one account-region after its commands finished.
type Handler struct {
	Invocations spoke.Factory[invocationLister]
	Status      spoke.Factory[statusDescriber]
	Info        spoke.Factory[fleet.InstanceInformer]
	Results     resultWriter
	Log         *slog.Logger
	// Metrics receives PatchSuccess, PatchFailures, InstancesHealthy and
	// InstancesUnhealthy; nil writes none.
	Metrics logx.Metrics
}

// ReasonNoPatchable is the reason of a target whose instances all matched
// but none could be patched (all stopped or unmanaged).
const ReasonNoPatchable = "no patchable instance"

const (
	maxInvocations = 50  // ListCommandInvocations' MaxResults limit
	maxStatusIDs   = 100 // DescribeInstanceStatus' limit on InstanceIds
)

// Handle is the Lambda entry point.
func (h *Handler) Handle(ctx context.Context, in contract.TargetState) (contract.TargetSummary, error) {
	scope := logx.Scope{RunID: in.RunID, WaveID: in.WaveID, Account: in.Account, Region: in.Region}
	if in.Command != nil {
		scope.CommandID = logx.Commands(in.Command.CommandIDs)
	}
	log := logx.For(ctx, h.Log, scope)
	r, health, err := h.verify(ctx, in)
	if err == nil {
		r, err = h.Results.FinishTarget(ctx, store.TargetKey{RunID: in.RunID, WaveID: in.WaveID, Account: in.Account, Region: in.Region},
			r, operation(in.TargetInput))
	}
	if err != nil {
		err = fault.Boundary(err)
		logx.Failed(log, err)
		return contract.TargetSummary{}, err
	}
	log.Info("target verified", "status", r.Status, "reason", r.Reason, "counts", r.Counts)
	// After the record: a retry that fails to record counts nothing.
	logx.Emit(log, h.Metrics, emf.Dimensions{contract.DimRunID: in.RunID, contract.DimWaveID: in.WaveID, contract.DimAccount: in.Account},
		[]string{contract.DimWaveID},
		emf.Metric{Name: contract.MetricPatchSuccess, Value: float64(r.Counts.Patched + r.Counts.Scanned), Unit: emf.Count},
		emf.Metric{Name: contract.MetricPatchFailures, Value: float64(r.Counts.Failed + r.Counts.TimedOut), Unit: emf.Count},
		emf.Metric{Name: contract.MetricInstancesHealthy, Value: float64(health.healthy), Unit: emf.Count},
		emf.Metric{Name: contract.MetricInstancesUnhealthy, Value: float64(health.unhealthy), Unit: emf.Count})
	return contract.TargetSummary{Account: r.Account, Region: r.Region, Status: r.Status, Reason: r.Reason, Counts: r.Counts}, nil
}

// operation is what the target's commands ran: a dry run only scans.
func operation(in contract.TargetInput) string {
	if in.DryRun || in.Operation == contract.OperationScan {
		return contract.OperationScan
	}
	return contract.OperationInstall
}

// healthCounts are the post-patch verification's outcome: instances whose
// command succeeded and that passed (healthy) or failed (unhealthy) the
// health checks.
type healthCounts struct{ healthy, unhealthy int }

func (h *Handler) verify(ctx context.Context, in contract.TargetState) (contract.TargetResult, healthCounts, error) {
	var health healthCounts
	if in.Inventory == nil {
		return contract.TargetResult{}, health, fmt.Errorf("target %s/%s has no inventory to verify", in.Account, in.Region)
	}
	r := contract.TargetResult{Account: in.Account, Region: in.Region, Status: contract.StatusSucceeded}
	if in.Command == nil || len(in.Command.CommandIDs) == 0 {
		r.Status, r.Reason = contract.StatusSkipped, ReasonNoPatchable
		if in.Inventory.Matched == 0 {
			r.Reason = contract.ReasonNoInstance
		}
		r.Instances = append([]contract.InstanceResult{}, in.Inventory.Skipped...)
		r.Counts = contract.Count(r.Instances)
		return r, health, nil
	}
	r.CommandIDs = in.Command.CommandIDs
	r.CommandID = r.CommandIDs[0]
	t := spoke.Target{RunID: in.RunID, Account: in.Account, Region: in.Region}
	timedOut := in.Poll != nil && in.Poll.Phase == contract.PhaseTimedOut

	invocations, err := listInvocations(ctx, h.Invocations.Client(t), r.CommandIDs)
	if err != nil {
		return contract.TargetResult{}, health, err
	}
	var candidates []string
	commandOf := map[string]string{}
	for _, id := range in.Inventory.InstanceIDs {
		inv, ok := invocations[id]
		if !ok {
			r.Instances = append(r.Instances, failed(id, "no invocation"))
			continue
		}
		switch res := invocationOutcome(id, inv, timedOut); res {
		case nil:
			candidates = append(candidates, id)
			commandOf[id] = aws.ToString(inv.CommandId)
		default:
			res.CommandID = aws.ToString(inv.CommandId)
			r.Instances = append(r.Instances, *res)
		}
	}
	unhealthy, err := h.health(ctx, t, candidates)
	if err != nil {
		return contract.TargetResult{}, health, err
	}
	done := contract.InstancePatched
	if operation(in.TargetInput) == contract.OperationScan {
		done = contract.InstanceScanned
	}
	for _, id := range candidates {
		if what, bad := unhealthy[id]; bad {
			res := failed(id, "unhealthy after patching: "+what)
			res.CommandID = commandOf[id]
			r.Instances = append(r.Instances, res)
			health.unhealthy++
		} else {
			r.Instances = append(r.Instances, contract.InstanceResult{InstanceID: id, Status: done, CommandID: commandOf[id]})
			health.healthy++
		}
	}
	r.Instances = append(r.Instances, in.Inventory.Skipped...)
	sort.Slice(r.Instances, func(i, j int) bool { return r.Instances[i].InstanceID < r.Instances[j].InstanceID })
	r.Counts = contract.Count(r.Instances)
	// Instance failures are the wave's to judge against its threshold.
	return r, health, nil
}

func failed(id, reason string) contract.InstanceResult {
	return contract.InstanceResult{InstanceID: id, Status: contract.InstanceFailed, Reason: reason}
}

// invocationOutcome maps one instance's invocation to its result, or nil
// when it succeeded and its health must be checked. An invocation that is
// not terminal counts as timed out: the poll loop has stopped waiting.
func invocationOutcome(id string, inv ssmtypes.CommandInvocation, pollTimedOut bool) *contract.InstanceResult {
	details := aws.ToString(inv.StatusDetails)
	switch inv.Status {
	case ssmtypes.CommandInvocationStatusSuccess:
		return nil
	case ssmtypes.CommandInvocationStatusTimedOut:
		return &contract.InstanceResult{InstanceID: id, Status: contract.InstanceTimedOut, Reason: "command timed out: " + orStatus(details, inv.Status)}
	case ssmtypes.CommandInvocationStatusFailed, ssmtypes.CommandInvocationStatusCancelled:
		return &contract.InstanceResult{InstanceID: id, Status: contract.InstanceFailed, Reason: "command " + orStatus(details, inv.Status)}
	case ssmtypes.CommandInvocationStatusPending, ssmtypes.CommandInvocationStatusInProgress,
		ssmtypes.CommandInvocationStatusDelayed, ssmtypes.CommandInvocationStatusCancelling:
		reason := "command still " + string(inv.Status) + " when polling stopped"
		if pollTimedOut {
			reason = "command still " + string(inv.Status) + " after the last poll"
		}
		return &contract.InstanceResult{InstanceID: id, Status: contract.InstanceTimedOut, Reason: reason}
	}
	// Statuses SSM may add later, and details like Undeliverable or
	// Terminated: not a success, so a failure with what SSM said.
	return &contract.InstanceResult{InstanceID: id, Status: contract.InstanceFailed, Reason: "command " + orStatus(details, inv.Status)}
}

func orStatus(details string, status ssmtypes.CommandInvocationStatus) string {
	if details != "" && details != string(status) {
		return string(status) + " (" + details + ")"
	}
	return string(status)
}

// listInvocations returns the invocation of each instance across the
// commands. Invocations of instances ec2patch did not send to are kept but
// never looked up (SSM, and moto, may list more).
func listInvocations(ctx context.Context, client invocationLister, commandIDs []string) (map[string]ssmtypes.CommandInvocation, error) {
	out := map[string]ssmtypes.CommandInvocation{}
	for _, cid := range commandIDs {
		in := &ssm.ListCommandInvocationsInput{CommandId: aws.String(cid), MaxResults: aws.Int32(maxInvocations)}
		for {
			res, err := client.ListCommandInvocations(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("list invocations of command %s: %w", cid, err)
			}
			for _, inv := range res.CommandInvocations {
				if inv.CommandId == nil {
					inv.CommandId = aws.String(cid)
				}
				out[aws.ToString(inv.InstanceId)] = inv
			}
			if aws.ToString(res.NextToken) == "" {
				break
			}
			in.NextToken = res.NextToken
		}
	}
	return out, nil
}

// healthyChecks are the EC2 status-check values that pass. "initializing"
// passes because status checks restart with every reboot and take minutes
// to settle, longer than a patch reboot leaves; the SSM ping check below
// still requires the instance's agent to be back Online, which proves the
// OS came up. "not-applicable" is what EC2 reports when a check does not
// apply to the instance.
var healthyChecks = map[ec2types.SummaryStatus]bool{
	ec2types.SummaryStatusOk: true, ec2types.SummaryStatusNotApplicable: true, ec2types.SummaryStatusInitializing: true,
}

// health returns what is wrong with each unhealthy instance: not running,
// an EC2 status check not passing, or SSM's agent not Online.
func (h *Handler) health(ctx context.Context, t spoke.Target, ids []string) (map[string]string, error) {
	problems := map[string][]string{}
	if len(ids) == 0 {
		return map[string]string{}, nil
	}
	seen := map[string]bool{}
	client := h.Status.Client(t)
	for batch := range slices.Chunk(ids, maxStatusIDs) {
		in := &ec2.DescribeInstanceStatusInput{InstanceIds: batch, IncludeAllInstances: aws.Bool(true)}
		for {
			res, err := client.DescribeInstanceStatus(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("describe instance status: %w", err)
			}
			for _, st := range res.InstanceStatuses {
				id := aws.ToString(st.InstanceId)
				seen[id] = true
				if st.InstanceState == nil || st.InstanceState.Name != ec2types.InstanceStateNameRunning {
					state := "unknown"
					if st.InstanceState != nil {
						state = string(st.InstanceState.Name)
					}
					problems[id] = append(problems[id], "state "+state)
				}
				if st.InstanceStatus != nil && !healthyChecks[st.InstanceStatus.Status] {
					problems[id] = append(problems[id], "instance status "+string(st.InstanceStatus.Status))
				}
				if st.SystemStatus != nil && !healthyChecks[st.SystemStatus.Status] {
					problems[id] = append(problems[id], "system status "+string(st.SystemStatus.Status))
				}
			}
			if aws.ToString(res.NextToken) == "" {
				break
			}
			in.NextToken = res.NextToken
		}
	}
	ping, err := fleet.PingStatuses(ctx, h.Info.Client(t), ids)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, id := range ids {
		if !seen[id] {
			problems[id] = append(problems[id], "instance not found")
		}
		switch p, ok := ping[id]; {
		case !ok:
			problems[id] = append(problems[id], "not registered with SSM")
		case p != ssmtypes.PingStatusOnline:
			problems[id] = append(problems[id], "SSM ping "+string(p))
		}
		if len(problems[id]) > 0 {
			out[id] = strings.Join(problems[id], ", ")
		}
	}
	return out, nil
}
