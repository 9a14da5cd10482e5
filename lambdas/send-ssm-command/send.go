package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/spoke"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
)

type commandSender interface {
	SendCommand(ctx context.Context, in *ssm.SendCommandInput, optFns ...func(*ssm.Options)) (*ssm.SendCommandOutput, error)
}

type targetReader interface {
	Target(ctx context.Context, k store.TargetKey) (store.Target, bool, error)
}

type commandRecorder interface {
	AppendCommand(ctx context.Context, k store.TargetKey, commandID string) error
}

type targetClaimer interface {
	ClaimTarget(ctx context.Context, k store.TargetKey, owner string) (bool, error)
}

// Handler sends the patch commands of one account-region.
type Handler struct {
	SSM      spoke.Factory[commandSender]
	Claims   targetClaimer
	Records  targetReader
	Recorder commandRecorder
	// Bucket and HubRegion receive the commands' output.
	Bucket    string
	HubRegion string
	// TimeoutSeconds, when set, is SendCommand's TimeoutSeconds: an
	// instance that has not started the command by then never will, so no
	// instance is patched after the poll loop has given up on it.
	TimeoutSeconds *int32
	Log            *slog.Logger
}

// maxComment is SendCommand's limit on Comment.
const maxComment = 100

// Handle is the Lambda entry point.
func (h *Handler) Handle(ctx context.Context, in contract.TargetState) (contract.SendResult, error) {
	log := logx.For(ctx, h.Log, logx.Scope{RunID: in.RunID, WaveID: in.WaveID, Account: in.Account, Region: in.Region})
	out, err := h.send(ctx, log, in)
	if err != nil {
		err = fault.Boundary(err)
		logx.Failed(log, err)
		return contract.SendResult{}, err
	}
	// The scope had no command before the send; this line names them.
	log = logx.For(ctx, h.Log, logx.Scope{RunID: in.RunID, WaveID: in.WaveID, Account: in.Account, Region: in.Region,
		CommandID: logx.Commands(out.CommandIDs)})
	log.Info("commands ready", "reused", out.Reused)
	return out, nil
}

func (h *Handler) send(ctx context.Context, _ *slog.Logger, in contract.TargetState) (contract.SendResult, error) {
	key := store.TargetKey{RunID: in.RunID, WaveID: in.WaveID, Account: in.Account, Region: in.Region}
	if in.ExecutionID == "" {
		return contract.SendResult{}, fmt.Errorf("target %s/%s has no executionId to claim it with", in.Account, in.Region)
	}
	// Claim the target first: of two executions of one run (a re-run
	// started while the first still runs), only one may send.
	won, err := h.Claims.ClaimTarget(ctx, key, in.ExecutionID)
	if err != nil {
		return contract.SendResult{}, err
	}
	if !won {
		rec, _, err := h.Records.Target(ctx, key)
		if err != nil {
			return contract.SendResult{}, err
		}
		if len(rec.CommandIDs) > 0 && rec.Owner == in.ExecutionID && in.Inventory != nil &&
			len(rec.CommandIDs) < batches(len(in.Inventory.InstanceIDs)) {
			// A Retry of this execution's send after it died between two
			// batches: the same input makes the same batches, so the
			// recorded ones are the first ones. Send the rest.
			return h.sendBatches(ctx, in, key, rec.CommandIDs)
		}
		if len(rec.CommandIDs) > 0 {
			// A Retry of this task, a re-run of the run, or a concurrent
			// execution: the commands are out already. Sending again
			// would patch (and reboot) twice.
			return contract.SendResult{CommandIDs: rec.CommandIDs, Reused: true}, nil
		}
		return contract.SendResult{}, &fault.TargetBusy{Message: fmt.Sprintf(
			"target %s/%s is claimed by another execution of run %s, which is sending its commands now",
			in.Account, in.Region, in.RunID)}
	}
	return h.sendBatches(ctx, in, key, nil)
}

// batches is how many commands n instances take.
func batches(n int) int {
	return (n + contract.MaxInstancesPerCommand - 1) / contract.MaxInstancesPerCommand
}

// sendBatches sends the inventory's batches after the first len(sent),
// which are out already, recording each command before the next batch.
func (h *Handler) sendBatches(ctx context.Context, in contract.TargetState, key store.TargetKey, sent []string) (contract.SendResult, error) {
	if in.Inventory == nil || len(in.Inventory.InstanceIDs) == 0 {
		return contract.SendResult{}, fmt.Errorf("no patchable instance in the inventory of %s/%s", in.Account, in.Region)
	}
	client := h.SSM.Client(spoke.Target{RunID: in.RunID, Account: in.Account, Region: in.Region})
	out := contract.SendResult{CommandIDs: append([]string{}, sent...)}
	for batch := range slices.Chunk(in.Inventory.InstanceIDs[len(sent)*contract.MaxInstancesPerCommand:], contract.MaxInstancesPerCommand) {
		res, err := client.SendCommand(ctx, h.input(in, batch))
		if err != nil {
			return contract.SendResult{}, fmt.Errorf("send %s to %d instance(s) (%d already sent): %w",
				contract.PatchDocument, len(batch), len(out.CommandIDs), err)
		}
		id := aws.ToString(res.Command.CommandId)
		if err := h.Recorder.AppendCommand(ctx, key, id); err != nil {
			return contract.SendResult{}, err
		}
		logx.For(ctx, h.Log, logx.Scope{RunID: in.RunID, WaveID: in.WaveID, Account: in.Account, Region: in.Region,
			CommandID: id}).Info("command sent", "instances", len(batch))
		out.CommandIDs = append(out.CommandIDs, id)
	}
	return out, nil
}

func (h *Handler) input(in contract.TargetState, batch []string) *ssm.SendCommandInput {
	comment := fmt.Sprintf("ec2patch run %s wave %s", in.RunID, in.WaveID)
	if len(comment) > maxComment {
		comment = comment[:maxComment]
	}
	return &ssm.SendCommandInput{
		DocumentName: aws.String(contract.PatchDocument),
		InstanceIds:  batch,
		Parameters: map[string][]string{
			"Operation":    {in.Operation},
			"RebootOption": {in.RebootOption},
		},
		MaxConcurrency:     optional(in.SSMMaxConcurrency),
		MaxErrors:          optional(in.SSMMaxErrors),
		OutputS3BucketName: aws.String(h.Bucket),
		OutputS3KeyPrefix:  aws.String(contract.CommandOutputPrefix(in.RunID, in.Account, in.Region)),
		OutputS3Region:     aws.String(h.HubRegion),
		Comment:            aws.String(comment),
		TimeoutSeconds:     h.TimeoutSeconds,
	}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// parseTimeout reads the optional command timeout; SendCommand accepts 30
// to 2592000 seconds.
func parseTimeout(s string) (*int32, error) {
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 30 || n > 2592000 {
		return nil, fmt.Errorf("environment variable %s=%q must be a number of seconds from 30 to 2592000", contract.EnvCommandTimeout, s)
	}
	return aws.Int32(int32(n)), nil
}
