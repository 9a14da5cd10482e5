package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
)

type registrar interface {
	Register(ctx context.Context, w store.Waiting) error
}

// Handler registers a target's wait.
type Handler struct {
	Waits registrar
	Log   *slog.Logger
	// Now is time.Now when nil.
	Now func() time.Time
}

// Ack is what the function returns. Step Functions ignores it: the task's
// result is what answers its token.
type Ack struct {
	Deadline string `json:"deadline"`
}

// Handle is the Lambda entry point.
func (h *Handler) Handle(ctx context.Context, req contract.AwaitRequest) (Ack, error) {
	log := logx.For(ctx, h.Log, logx.Scope{RunID: req.RunID, WaveID: req.WaveID, Account: req.Account, Region: req.Region,
		CommandID: logx.Commands(req.CommandIDs)})
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	deadline := now().UTC().Add(time.Duration(req.DeadlineSeconds) * time.Second)
	err := check(req)
	if err == nil {
		err = h.Waits.Register(ctx, store.Waiting{RunID: req.RunID, WaveID: req.WaveID, Account: req.Account,
			Region: req.Region, ExecutionID: req.ExecutionID, TaskToken: req.TaskToken, CommandIDs: req.CommandIDs,
			Deadline: deadline})
	}
	if err != nil {
		err = fault.Boundary(err)
		logx.Failed(log, err)
		return Ack{}, err
	}
	log.Info("waiting", "deadline", deadline.Format(time.RFC3339))
	return Ack{Deadline: deadline.Format(time.RFC3339)}, nil
}

// check rejects a payload the state machine cannot have meant: it would
// register a wait nothing can finish, or one that times out at once.
func check(req contract.AwaitRequest) error {
	var missing []string
	for _, f := range []struct{ name, value string }{{"taskToken", req.TaskToken}, {"runId", req.RunID},
		{"waveId", req.WaveID}, {"account", req.Account}, {"region", req.Region}} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(req.CommandIDs) == 0 || slices.Contains(req.CommandIDs, "") {
		missing = append(missing, "commandIds")
	}
	if len(missing) > 0 {
		return &fault.InvalidRunInput{Message: "await request without " + strings.Join(missing, ", ")}
	}
	if req.DeadlineSeconds < 1 {
		return &fault.InvalidRunInput{Message: fmt.Sprintf("await request: deadlineSeconds %d must be at least 1", req.DeadlineSeconds)}
	}
	return nil
}
