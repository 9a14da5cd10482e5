package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
)

type resultWriter interface {
	PutTargetUnlessOwned(ctx context.Context, k store.TargetKey, r contract.TargetResult, owner string) (bool, error)
}

// Handler records a failed target.
type Handler struct {
	Results resultWriter
	Log     *slog.Logger
}

// ReasonNotVerified is the reason of a patchable instance of a failed target.
const ReasonNotVerified = "the target failed before it was verified"

// maxReason keeps a reason readable in a report line.
const maxReason = 1000

// Handle is the Lambda entry point. If the record cannot be written the
// error goes back to the state machine: a target must never vanish. A
// record holding commands that another execution sent is not overwritten.
func (h *Handler) Handle(ctx context.Context, in contract.TargetState) (contract.TargetSummary, error) {
	log := logx.For(ctx, h.Log, logx.Scope{RunID: in.RunID, WaveID: in.WaveID, Account: in.Account, Region: in.Region})
	r := failure(in)
	if in.Command != nil {
		log = log.With("commandId", in.Command.CommandIDs)
	}
	key := store.TargetKey{RunID: in.RunID, WaveID: in.WaveID, Account: in.Account, Region: in.Region}
	written, err := h.Results.PutTargetUnlessOwned(ctx, key, r, in.ExecutionID)
	if err != nil {
		err = fault.Boundary(err)
		logx.Failed(log, err)
		return contract.TargetSummary{}, err
	}
	if !written {
		// Another execution of the run sent this target's commands (this
		// one lost the claim, or found them done): its result stands.
		log.Warn("target failed here, but its record belongs to the execution that sent its commands; left as it is",
			"reason", r.Reason)
	} else {
		log.Warn("target failed", "reason", r.Reason, "counts", r.Counts)
	}
	return contract.TargetSummary{Account: r.Account, Region: r.Region, Status: r.Status, Reason: r.Reason, Counts: r.Counts}, nil
}

// failure builds the FAILED result of a target from its state.
func failure(in contract.TargetState) contract.TargetResult {
	r := contract.TargetResult{Account: in.Account, Region: in.Region, Status: contract.StatusFailed,
		Reason: Reason(in.Error), Instances: []contract.InstanceResult{}}
	if in.Inventory != nil {
		for _, id := range in.Inventory.InstanceIDs {
			r.Instances = append(r.Instances, contract.InstanceResult{InstanceID: id, Status: contract.InstanceFailed, Reason: ReasonNotVerified})
		}
		r.Instances = append(r.Instances, in.Inventory.Skipped...)
	}
	if in.Command != nil && len(in.Command.CommandIDs) > 0 {
		r.CommandIDs = in.Command.CommandIDs
		r.CommandID = r.CommandIDs[0]
	}
	r.Counts = contract.Count(r.Instances)
	return r
}

// Reason turns a caught error into one line, "<Error>: <message>". Cause is
// Lambda's JSON ({"errorType", "errorMessage", ...}) for a handler error, or
// plain text for a Step Functions error such as States.Timeout.
func Reason(e *contract.TaskError) string {
	if e == nil {
		return "unknown error: the target failed without an error"
	}
	name, msg := e.Error, strings.TrimSpace(e.Cause)
	var lambdaErr struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if strings.HasPrefix(msg, "{") && json.Unmarshal([]byte(msg), &lambdaErr) == nil &&
		(lambdaErr.ErrorType != "" || lambdaErr.ErrorMessage != "") {
		msg = lambdaErr.ErrorMessage
		if name == "" {
			name = lambdaErr.ErrorType
		}
	}
	if name == "" {
		name = "Error"
	}
	line := strings.Join(strings.Fields(name+": "+msg), " ")
	line = strings.TrimSuffix(line, ":")
	if len(line) > maxReason {
		line = line[:maxReason-3] + "..."
	}
	return line
}
