package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/internal/emf"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/spoke"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
	"github.com/ec2patch/ec2patch/lambdas/internal/waits"
)

type commandLister interface {
	ListCommands(ctx context.Context, in *ssm.ListCommandsInput, optFns ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error)
}

type waitingLister interface {
	Waitings(ctx context.Context) ([]store.Waiting, error)
}

type statusRecorder interface {
	RecordStatus(ctx context.Context, waitingSK, commandID, status string) (store.Waiting, bool, error)
}

type passCounter interface {
	CountPass(ctx context.Context, waitingSK string) (passes int, ok bool, err error)
}

type resumer interface {
	Resume(ctx context.Context, log *slog.Logger, w store.Waiting, result contract.PollResult) (bool, error)
}

type pendingLister interface {
	PendingApprovals(ctx context.Context) ([]store.PendingApproval, error)
}

type pendingForgetter interface {
	ForgetPending(ctx context.Context, approvalID string) error
}

type metricPutter interface {
	Put(dims emf.Dimensions, coarse []string, metrics ...emf.Metric) error
}

// DefaultConcurrency is how many targets a reconcile reads at once.
const DefaultConcurrency = 16

// sessionRunID scopes the reconciler's spoke credentials. The reconciler
// reads for every run at once, so its credentials are per account, not per
// run, and its role session is named for it ("ec2patch-reconciler").
const sessionRunID = "reconciler"

// Handler reconciles every waiting target: one ListCommands per command not
// yet known to have ended, never one call per instance.
type Handler struct {
	Waitings waitingLister
	Statuses statusRecorder
	Passes   passCounter
	Resumer  resumer
	SSM      spoke.Factory[commandLister]
	Log      *slog.Logger
	// Now is time.Now when nil.
	Now func() time.Time
	// Concurrency bounds the targets read at once; DefaultConcurrency
	// when 0.
	Concurrency int
	// Pending lists the approval gates waiting for a decision; Expired
	// deletes the row of a gate whose links expired (its task timed out,
	// a rejection). Every pass publishes the gates' count and the age of
	// the oldest to Metrics. No gauge when Pending is nil.
	Pending pendingLister
	Expired pendingForgetter
	Metrics metricPutter
}

// Summary is what one reconcile did, by target.
type Summary struct {
	Waiting    int `json:"waiting"`
	Completed  int `json:"completed"`  // resumed: every command ended
	TimedOut   int `json:"timedOut"`   // resumed: the deadline passed
	InProgress int `json:"inProgress"` // left waiting
	Deferred   int `json:"deferred"`   // left waiting without a read: not its pass (see Due)
	Finished   int `json:"finished"`   // finished meanwhile by another finisher
	Failed     int `json:"failed"`     // not read: a spoke or store error (logged)
}

// Handle is the Lambda entry point; its input is the schedule's event. Only
// a failure to read the waiting targets fails it: a target that cannot be
// read is logged and left to the next reconcile.
func (h *Handler) Handle(ctx context.Context, _ events.CloudWatchEvent) (Summary, error) {
	log := logx.For(ctx, h.Log, logx.Scope{})
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	// First, so the gauge is published even when the waits cannot be read.
	h.gaugeApprovals(ctx, log, now())
	list, err := h.Waitings.Waitings(ctx)
	if err != nil {
		err = fault.Boundary(err)
		logx.Failed(log, err)
		return Summary{}, err
	}
	n := h.Concurrency
	if n < 1 {
		n = DefaultConcurrency
	}
	sum := Summary{Waiting: len(list)}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, n)
	for _, w := range list {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			o := h.reconcile(ctx, w, now())
			mu.Lock()
			defer mu.Unlock()
			switch o {
			case outcomeCompleted:
				sum.Completed++
			case outcomeTimedOut:
				sum.TimedOut++
			case outcomeInProgress:
				sum.InProgress++
			case outcomeDeferred:
				sum.Deferred++
			case outcomeFinished:
				sum.Finished++
			default:
				sum.Failed++
			}
		}()
	}
	wg.Wait()
	log.Info("reconciled", "waiting", sum.Waiting, "completed", sum.Completed, "timedOut", sum.TimedOut,
		"inProgress", sum.InProgress, "deferred", sum.Deferred, "finished", sum.Finished, "failed", sum.Failed)
	return sum, nil
}

// gaugeApprovals publishes PendingApprovals and
// OldestPendingApprovalMinutes (0 when none) under the Environment
// dimension alone, which the ApprovalTimeout alarm reads, and deletes the
// rows of gates whose links expired: those waits timed out, which the
// orchestrator counts as a rejection. A failure is logged, not returned:
// the gauge must not stop the reconcile.
func (h *Handler) gaugeApprovals(ctx context.Context, log *slog.Logger, now time.Time) {
	if h.Pending == nil {
		return
	}
	list, err := h.Pending.PendingApprovals(ctx)
	if err != nil {
		log.Error("pending approvals not read", "error", err.Error())
		return
	}
	count, oldest := PendingGauge(list, now)
	for _, p := range list {
		if now.Before(p.LinkExpiresAt) || h.Expired == nil {
			continue
		}
		if err := h.Expired.ForgetPending(ctx, p.ApprovalID); err != nil {
			log.Error("expired approval row not deleted", "approvalId", p.ApprovalID, "error", err.Error())
			continue
		}
		log.Info("approval timed out", "approvalId", p.ApprovalID, "runId", p.RunID, "waveId", p.WaveID)
	}
	if h.Metrics == nil {
		return
	}
	if err := h.Metrics.Put(nil, nil,
		emf.Metric{Name: contract.MetricPendingApprovals, Value: float64(count), Unit: emf.Count},
		emf.Metric{Name: contract.MetricOldestPendingApprovalMinutes, Value: oldest, Unit: emf.None}); err != nil {
		log.Error("pending approval metrics not written", "error", err.Error())
	}
}

// PendingGauge counts the gates still waiting at now (their links have not
// expired) and the age in whole minutes of the oldest, 0 when none.
func PendingGauge(list []store.PendingApproval, now time.Time) (count int, oldestMinutes float64) {
	for _, p := range list {
		if !now.Before(p.LinkExpiresAt) {
			continue
		}
		count++
		if age := now.Sub(p.CreatedAt).Minutes(); age > oldestMinutes {
			oldestMinutes = age
		}
	}
	return count, math.Floor(oldestMinutes)
}

type outcome int

const (
	outcomeFailed outcome = iota
	outcomeCompleted
	outcomeTimedOut
	outcomeInProgress
	outcomeFinished
	outcomeDeferred
)

// Due tells whether the reconcile pass number passes (1 for the first pass
// that sees a waiting target) reads its commands. The status events are the
// main path; the reconciler is the net under them, so it reads a target on
// its 1st, 2nd and 4th pass and every 4th pass after (20 minutes with the
// default 5-minute schedule): a lost event is found within four passes,
// and a long patch costs a few reads, not one per pass. A target past its
// deadline is read on every pass.
func Due(passes int) bool { return passes <= 2 || passes%4 == 0 }

// reconcile reads one waiting target and resumes it if its wait is over.
func (h *Handler) reconcile(ctx context.Context, w store.Waiting, now time.Time) outcome {
	log := logx.For(ctx, h.Log, logx.Scope{RunID: w.RunID, WaveID: w.WaveID, Account: w.Account, Region: w.Region,
		CommandID: logx.Commands(w.CommandIDs)})
	if h.Passes != nil && now.Before(w.Deadline) {
		passes, ok, err := h.Passes.CountPass(ctx, w.SK())
		switch {
		case err != nil:
			logx.Failed(log, fault.Boundary(err))
			return outcomeFailed
		case !ok:
			return outcomeFinished
		case !Due(passes):
			return outcomeDeferred
		}
	}
	res, gone, err := h.read(ctx, w)
	if gone {
		return outcomeFinished
	}
	var phase string
	if err != nil {
		err = fault.Boundary(err)
		logx.Failed(log, err)
		// Past its deadline a target is resumed even when its spoke cannot
		// be read: nothing better will be learned by waiting.
		if now.Before(w.Deadline) {
			return outcomeFailed
		}
		phase = contract.PhaseTimedOut
	} else {
		phase = Phase(w.Statuses(), now, w.Deadline)
	}
	if phase == contract.PhaseInProgress {
		return outcomeInProgress
	}
	res.Phase = phase
	resumed, err := h.Resumer.Resume(ctx, log, w, res)
	switch {
	case err != nil:
		err = fault.Boundary(err)
		logx.Failed(log, err)
		return outcomeFailed
	case !resumed:
		return outcomeFinished
	}
	log.Info("resumed", "phase", res.Phase, "completed", res.Completed, "targets", res.Targets)
	if phase == contract.PhaseTimedOut {
		return outcomeTimedOut
	}
	return outcomeCompleted
}

// read lists each command of w not yet known to have ended, updating
// w.CommandStatus in place and recording the statuses that are terminal,
// so the next reconcile does not list them again. gone is true when the
// waiting record disappeared meanwhile (another finisher won).
func (h *Handler) read(ctx context.Context, w store.Waiting) (res contract.PollResult, gone bool, err error) {
	client := h.SSM.Client(spoke.Target{RunID: sessionRunID, Account: w.Account, Region: w.Region})
	for _, id := range w.CommandIDs {
		if waits.Terminal(w.CommandStatus[id]) {
			continue
		}
		out, err := client.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(id)})
		if err != nil {
			return res, false, fmt.Errorf("list command %s: %w", id, err)
		}
		if len(out.Commands) == 0 {
			// SSM is eventually consistent just after SendCommand: a
			// command not yet listed is "not yet", bounded by the deadline.
			continue
		}
		cmd := out.Commands[0]
		res.Completed += int(cmd.CompletedCount)
		res.Targets += int(cmd.TargetCount)
		status := string(cmd.Status)
		w.CommandStatus[id] = status
		if !waits.Terminal(status) {
			continue
		}
		_, ok, err := h.Statuses.RecordStatus(ctx, w.SK(), id, status)
		if err != nil {
			return res, false, err
		}
		if !ok {
			return res, true, nil
		}
	}
	return res, false, nil
}

// Phase decides a waiting target's fate as a pure function of its commands'
// statuses, the time and its deadline. Every status that is not terminal
// (pending, Pending, InProgress, Delayed, Cancelling, an unknown or a
// not-yet-listed command) means "not yet", as in the SDK's CommandExecuted
// waiter; a target whose commands all ended is complete even past its
// deadline.
func Phase(statuses []string, now, deadline time.Time) string {
	done := true
	for _, s := range statuses {
		if !waits.Terminal(s) {
			done = false
		}
	}
	switch {
	case done:
		return contract.PhaseComplete
	case !now.Before(deadline):
		return contract.PhaseTimedOut
	}
	return contract.PhaseInProgress
}
