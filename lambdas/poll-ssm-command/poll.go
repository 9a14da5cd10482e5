package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/spoke"
)

type commandLister interface {
	ListCommands(ctx context.Context, in *ssm.ListCommandsInput, optFns ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error)
}

// Handler reads the progress of a target's commands: one ListCommands per
// command, never one call per instance.
type Handler struct {
	SSM spoke.Factory[commandLister]
	Log *slog.Logger
}

// Handle is the Lambda entry point.
func (h *Handler) Handle(ctx context.Context, req contract.PollRequest) (contract.PollResult, error) {
	log := logx.For(ctx, h.Log, logx.Scope{RunID: req.RunID, WaveID: req.WaveID, Account: req.Account, Region: req.Region}).
		With("commandId", req.CommandIDs)
	out, err := h.poll(ctx, req)
	if err != nil {
		err = fault.Boundary(err)
		logx.Failed(log, err)
		return contract.PollResult{}, err
	}
	log.Info("polled", "phase", out.Phase, "attempts", out.Attempts, "completed", out.Completed, "targets", out.Targets)
	return out, nil
}

func (h *Handler) poll(ctx context.Context, req contract.PollRequest) (contract.PollResult, error) {
	client := h.SSM.Client(spoke.Target{RunID: req.RunID, Account: req.Account, Region: req.Region})
	out := contract.PollResult{Attempts: req.Attempts + 1}
	statuses := make([]string, 0, len(req.CommandIDs))
	for _, id := range req.CommandIDs {
		res, err := client.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(id)})
		if err != nil {
			return contract.PollResult{}, fmt.Errorf("list command %s: %w", id, err)
		}
		if len(res.Commands) == 0 {
			// SSM is eventually consistent just after SendCommand: a
			// command not yet listed is "not yet", bounded by the attempts.
			statuses = append(statuses, "")
			continue
		}
		cmd := res.Commands[0]
		statuses = append(statuses, string(cmd.Status))
		out.Completed += int(cmd.CompletedCount)
		out.Targets += int(cmd.TargetCount)
	}
	out.Phase = Phase(statuses, out.Attempts, req.MaxPollAttempts)
	return out, nil
}

// terminal are the SSM command statuses after which nothing changes.
var terminal = map[string]bool{"Success": true, "Failed": true, "TimedOut": true, "Cancelled": true}

// Phase is the poll phase as a pure function of the command statuses, the
// attempts made (this one included) and the attempt limit. Every status that
// is not terminal (Pending, InProgress, Delayed, Cancelling, an unknown or a
// not-yet-listed command) means "not yet", as in the SDK's CommandExecuted
// waiter.
func Phase(statuses []string, attempts, maxAttempts int) string {
	done := true
	for _, s := range statuses {
		if !terminal[s] {
			done = false
		}
	}
	switch {
	case done:
		return contract.PhaseComplete
	case attempts >= maxAttempts:
		return contract.PhaseTimedOut
	}
	return contract.PhaseInProgress
}
