package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/internal/emf"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/fleet"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/spoke"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
)

type instanceDescriber interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

type targetReader interface {
	Target(ctx context.Context, k store.TargetKey) (store.Target, bool, error)
}

type previewWriter interface {
	PutPreview(ctx context.Context, runID, waveID string, p contract.PreviewSummary) error
}

// Handler takes the inventory of one account-region.
type Handler struct {
	EC2      spoke.Factory[instanceDescriber]
	SSM      spoke.Factory[fleet.InstanceInformer]
	Records  targetReader
	Previews previewWriter
	Log      *slog.Logger
	// Metrics receives InstancesTargeted and InstancesSkipped; nil writes
	// none.
	Metrics logx.Metrics
}

// Handle is the Lambda entry point.
func (h *Handler) Handle(ctx context.Context, in contract.TargetInput) (contract.InventoryResult, error) {
	log := logx.For(ctx, h.Log, logx.Scope{RunID: in.RunID, WaveID: in.WaveID, Account: in.Account, Region: in.Region})
	var out contract.InventoryResult
	var err error
	if in.Preview {
		out, err = h.preview(ctx, log, in)
	} else {
		out, err = h.patchInventory(ctx, in)
	}
	if err != nil {
		err = fault.Boundary(err)
		logx.Failed(log, err)
		return contract.InventoryResult{}, err
	}
	log.Info("inventory", "preview", in.Preview, "alreadyRecorded", out.AlreadyRecorded,
		"matched", out.Matched, "patchable", out.TargetCount, "skipped", len(out.Skipped))
	if !in.Preview && !out.AlreadyRecorded {
		// Once per target: a preview counts nothing, and a target a
		// re-run found done was counted by the run that did it.
		h.emit(log, in, out)
	}
	return out, nil
}

// emit writes the target's "before" view: the instances running and
// managed (to be patched), and the skipped ones by reason, the
// compliance drift view.
func (h *Handler) emit(log *slog.Logger, in contract.TargetInput, out contract.InventoryResult) {
	dims := emf.Dimensions{contract.DimRunID: in.RunID, contract.DimWaveID: in.WaveID, contract.DimAccount: in.Account}
	logx.Emit(log, h.Metrics, dims, []string{contract.DimWaveID},
		emf.Metric{Name: contract.MetricInstancesTargeted, Value: float64(len(out.InstanceIDs)), Unit: emf.Count})
	byReason := map[string]int{}
	for _, s := range out.Skipped {
		byReason[SkipReason(s.Reason)]++
	}
	for _, reason := range slices.Sorted(maps.Keys(byReason)) {
		d := maps.Clone(dims)
		d[contract.DimReason] = reason
		logx.Emit(log, h.Metrics, d, []string{contract.DimReason},
			emf.Metric{Name: contract.MetricInstancesSkipped, Value: float64(byReason[reason]), Unit: emf.Count})
	}
}

// SkipReason is the Reason dimension of a skipped instance. The report's
// reason may carry a detail after the contract's sentence ("instance is not
// running (stopped)"); the dimension is the sentence's short name.
func SkipReason(reason string) string {
	for _, base := range []string{contract.ReasonStopped, contract.ReasonUnmanaged, contract.ReasonNoInstance} {
		if strings.HasPrefix(reason, base) {
			return contract.SkipReasonDimension(base)
		}
	}
	return contract.SkipReasonDimension(reason)
}

// patchInventory is the inventory of the patch map. A re-run of the run
// finds a target whose recorded result is final and leaves it alone.
func (h *Handler) patchInventory(ctx context.Context, in contract.TargetInput) (contract.InventoryResult, error) {
	key := store.TargetKey{RunID: in.RunID, WaveID: in.WaveID, Account: in.Account, Region: in.Region}
	rec, ok, err := h.Records.Target(ctx, key)
	if err != nil {
		return contract.InventoryResult{}, err
	}
	if ok && (rec.Status == contract.StatusSucceeded || rec.Status == contract.StatusSkipped) {
		return contract.InventoryResult{InstanceIDs: []string{}, Skipped: []contract.InstanceResult{}, AlreadyRecorded: true}, nil
	}
	return h.inventory(ctx, in)
}

// preview is the inventory of an approval wave's preview: it records what
// would be patched, so the approval request can say it. A spoke that cannot
// be inventoried is recorded with the error, not failed: the approver must
// see it, and one bad account-region must not stop the request. A throttle
// or 5xx is recorded too, then returned, so the state machine retries it.
func (h *Handler) preview(ctx context.Context, log *slog.Logger, in contract.TargetInput) (contract.InventoryResult, error) {
	p := contract.PreviewSummary{Account: in.Account, Region: in.Region}
	out, invErr := h.inventory(ctx, in)
	if invErr != nil {
		invErr = fault.Boundary(invErr)
		p.Error = wiretype(invErr) + ": " + invErr.Error()
		out = contract.InventoryResult{InstanceIDs: []string{}, Skipped: []contract.InstanceResult{}}
	} else {
		p.Matched, p.TargetCount, p.Skipped = out.Matched, out.TargetCount, len(out.Skipped)
	}
	if err := h.Previews.PutPreview(ctx, in.RunID, in.WaveID, p); err != nil {
		return contract.InventoryResult{}, err
	}
	var throttled *fault.Throttled
	var transient *fault.Transient
	switch {
	case invErr == nil:
	case errors.As(invErr, &throttled), errors.As(invErr, &transient):
		return contract.InventoryResult{}, invErr
	default:
		log.Warn("preview could not inventory the target", "reason", p.Error)
	}
	return out, nil
}

// wiretype is the error's name as Step Functions would show it.
func wiretype(err error) string {
	name := fmt.Sprintf("%T", err)
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	return name
}

func (h *Handler) inventory(ctx context.Context, in contract.TargetInput) (contract.InventoryResult, error) {
	t := spoke.Target{RunID: in.RunID, Account: in.Account, Region: in.Region}
	states, err := matching(ctx, h.EC2.Client(t), in.TagFilters)
	if err != nil {
		return contract.InventoryResult{}, err
	}
	var running []string
	out := contract.InventoryResult{Matched: len(states), InstanceIDs: []string{}, Skipped: []contract.InstanceResult{}}
	for id, state := range states {
		if state == ec2types.InstanceStateNameRunning {
			running = append(running, id)
			continue
		}
		out.Skipped = append(out.Skipped, contract.InstanceResult{InstanceID: id, Status: contract.InstanceSkipped,
			Reason: fmt.Sprintf("%s (%s)", contract.ReasonStopped, state)})
	}
	sort.Strings(running)
	ping, err := fleet.PingStatuses(ctx, h.SSM.Client(t), running)
	if err != nil {
		return contract.InventoryResult{}, err
	}
	for _, id := range running {
		switch p, known := ping[id]; {
		case p == ssmtypes.PingStatusOnline:
			out.InstanceIDs = append(out.InstanceIDs, id)
		case known:
			out.Skipped = append(out.Skipped, contract.InstanceResult{InstanceID: id, Status: contract.InstanceSkipped,
				Reason: fmt.Sprintf("%s (ping status %s)", contract.ReasonUnmanaged, p)})
		default:
			out.Skipped = append(out.Skipped, contract.InstanceResult{InstanceID: id, Status: contract.InstanceSkipped,
				Reason: contract.ReasonUnmanaged})
		}
	}
	sort.Slice(out.Skipped, func(i, j int) bool { return out.Skipped[i].InstanceID < out.Skipped[j].InstanceID })
	out.TargetCount = len(out.InstanceIDs)
	return out, nil
}

// matching returns the state of every instance that matches the tag
// filters and is not terminated or shutting down.
func matching(ctx context.Context, client instanceDescriber, tags map[string]string) (map[string]ec2types.InstanceStateName, error) {
	filters := make([]ec2types.Filter, 0, len(tags)+1)
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		filters = append(filters, ec2types.Filter{Name: aws.String("tag:" + k), Values: []string{tags[k]}})
	}
	filters = append(filters, ec2types.Filter{Name: aws.String("instance-state-name"),
		Values: []string{"pending", "running", "stopping", "stopped"}})
	in := &ec2.DescribeInstancesInput{Filters: filters, MaxResults: aws.Int32(1000)}
	states := map[string]ec2types.InstanceStateName{}
	for {
		out, err := client.DescribeInstances(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("describe instances: %w", err)
		}
		for _, r := range out.Reservations {
			for _, inst := range r.Instances {
				state := ec2types.InstanceStateName("unknown")
				if inst.State != nil {
					state = inst.State.Name
				}
				states[aws.ToString(inst.InstanceId)] = state
			}
		}
		if aws.ToString(out.NextToken) == "" {
			return states, nil
		}
		in.NextToken = out.NextToken
	}
}
