package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/fleet"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/spoke"
)

type instanceDescriber interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

// Handler takes the inventory of one account-region.
type Handler struct {
	EC2 spoke.Factory[instanceDescriber]
	SSM spoke.Factory[fleet.InstanceInformer]
	Log *slog.Logger
}

// Handle is the Lambda entry point.
func (h *Handler) Handle(ctx context.Context, in contract.TargetInput) (contract.InventoryResult, error) {
	log := logx.For(ctx, h.Log, logx.Scope{RunID: in.RunID, WaveID: in.WaveID, Account: in.Account, Region: in.Region})
	out, err := h.inventory(ctx, in)
	if err != nil {
		err = fault.Boundary(err)
		logx.Failed(log, err)
		return contract.InventoryResult{}, err
	}
	log.Info("inventory", "matched", out.Matched, "patchable", out.TargetCount, "skipped", len(out.Skipped))
	return out, nil
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
