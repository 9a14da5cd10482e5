package main

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
	"github.com/ec2patch/ec2patch/lambdas/internal/waits"
)

type commandFinder interface {
	Commands(ctx context.Context, commandID string) ([]store.CommandRef, error)
}

type statusRecorder interface {
	RecordStatus(ctx context.Context, waitingSK, commandID, status string) (store.Waiting, bool, error)
}

type resumer interface {
	Resume(ctx context.Context, log *slog.Logger, w store.Waiting, result contract.PollResult) (bool, error)
}

// Handler handles one command status-change event.
type Handler struct {
	Commands commandFinder
	Statuses statusRecorder
	Resumer  resumer
	Log      *slog.Logger
}

// What became of an event. Only OutcomeResumed changed a target's course;
// every other outcome leaves it to a later event or the reconciler.
const (
	OutcomeNotCommandState = "NOT_COMMAND_STATE" // not an SSM command status-change event
	OutcomeNotTerminal     = "NOT_TERMINAL"      // the command goes on: nothing to record
	OutcomeUnknownCommand  = "UNKNOWN_COMMAND"   // not ec2patch's command, or its wait is over
	OutcomeWrongSource     = "WRONG_SOURCE"      // the event's account or region is not the command's
	OutcomeFinished        = "FINISHED"          // the target's wait is over already
	OutcomeRecorded        = "RECORDED"          // recorded; other commands of the target go on
	OutcomeResumed         = "RESUMED"           // the target's last command ended: resumed
	OutcomeNotResumed      = "NOT_RESUMED"       // another finisher won, or the task no longer waits
)

// Result is what the function returns (EventBridge ignores it; it is for
// logs and tests).
type Result struct {
	CommandID string `json:"commandId"`
	Status    string `json:"status"`
	Outcome   string `json:"outcome"`
}

// Handle is the Lambda entry point. It is idempotent: a duplicate event
// records the same status again and finds the wait finished.
func (h *Handler) Handle(ctx context.Context, ev events.CloudWatchEvent) (Result, error) {
	var d contract.CommandStatusDetail
	if ev.Source != contract.EventSourceSSM || ev.DetailType != contract.DetailTypeCommandState {
		return h.done(ctx, ev, d, OutcomeNotCommandState), nil
	}
	if err := json.Unmarshal(ev.Detail, &d); err != nil || d.CommandID == "" {
		// A malformed event would fail the same way on every retry.
		return h.done(ctx, ev, d, OutcomeNotCommandState), nil
	}
	outcome, err := h.handle(ctx, ev, d)
	if err != nil {
		err = fault.Boundary(err)
		logx.Failed(h.logger(ctx, ev, d), err)
		return Result{}, err
	}
	return h.done(ctx, ev, d, outcome), nil
}

func (h *Handler) handle(ctx context.Context, ev events.CloudWatchEvent, d contract.CommandStatusDetail) (string, error) {
	if !waits.Terminal(d.Status) {
		return OutcomeNotTerminal, nil
	}
	refs, err := h.Commands.Commands(ctx, d.CommandID)
	if err != nil || len(refs) == 0 {
		return OutcomeUnknownCommand, err
	}
	// Usually one execution waits on a command; a re-run racing the first
	// execution of its run makes two, and each is resumed.
	outcome := OutcomeWrongSource
	for _, ref := range refs {
		if ref.Account != ev.AccountID || ref.Region != ev.Region {
			// Only the account that ran a command may report on it.
			continue
		}
		o, err := h.finish(ctx, ref, d)
		if err != nil {
			return "", err
		}
		outcome = strongest(outcome, o)
	}
	return outcome, nil
}

// finish records the command's status on one waiting record and resumes
// the wait when every command of it has ended.
func (h *Handler) finish(ctx context.Context, ref store.CommandRef, d contract.CommandStatusDetail) (string, error) {
	w, ok, err := h.Statuses.RecordStatus(ctx, ref.WaitingSK, d.CommandID, d.Status)
	if err != nil || !ok {
		return OutcomeFinished, err
	}
	if !waits.AllTerminal(w) {
		return OutcomeRecorded, nil
	}
	log := logx.For(ctx, h.Log, logx.Scope{RunID: w.RunID, WaveID: w.WaveID, Account: w.Account, Region: w.Region,
		CommandID: d.CommandID})
	resumed, err := h.Resumer.Resume(ctx, log, w, contract.PollResult{Phase: contract.PhaseComplete})
	if err != nil {
		return "", err
	}
	if !resumed {
		return OutcomeNotResumed, nil
	}
	return OutcomeResumed, nil
}

// outcomeRank orders outcomes so that, over several waits on one command,
// the result says the most that happened.
var outcomeRank = map[string]int{OutcomeWrongSource: 0, OutcomeFinished: 1, OutcomeNotResumed: 2,
	OutcomeRecorded: 3, OutcomeResumed: 4}

func strongest(a, b string) string {
	if outcomeRank[b] > outcomeRank[a] {
		return b
	}
	return a
}

func (h *Handler) logger(ctx context.Context, ev events.CloudWatchEvent, d contract.CommandStatusDetail) *slog.Logger {
	return logx.For(ctx, h.Log, logx.Scope{Account: ev.AccountID, Region: ev.Region, CommandID: d.CommandID}).
		With("eventId", ev.ID, "status", d.Status)
}

func (h *Handler) done(ctx context.Context, ev events.CloudWatchEvent, d contract.CommandStatusDetail, outcome string) Result {
	h.logger(ctx, ev, d).Info("command status event", "outcome", outcome)
	return Result{CommandID: d.CommandID, Status: d.Status, Outcome: outcome}
}
