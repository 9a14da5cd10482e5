package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/internal/emf"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
)

// resultWriter records the target's result and its instances' ledger
// rows, unless the record belongs to another execution.
type resultWriter interface {
	FinishTargetUnlessOwned(ctx context.Context, k store.TargetKey, r contract.TargetResult, operation, owner string) (contract.TargetResult, bool, error)
}

// Handler records a failed target.
type Handler struct {
	Results resultWriter
	Log     *slog.Logger
	// Metrics receives PatchFailures; nil writes none.
	Metrics logx.Metrics
}

// ReasonNotVerified is the reason of a patchable instance of a failed target.
const ReasonNotVerified = "the target failed before it was verified"

// maxReason keeps a reason readable in a report line.
const maxReason = 1000

// Handle is the Lambda entry point. If the record cannot be written the
// error goes back to the state machine: a target must never vanish. A
// record holding commands that another execution sent is not overwritten.
func (h *Handler) Handle(ctx context.Context, in contract.TargetState) (contract.TargetSummary, error) {
	scope := logx.Scope{RunID: in.RunID, WaveID: in.WaveID, Account: in.Account, Region: in.Region}
	if in.Command != nil {
		scope.CommandID = logx.Commands(in.Command.CommandIDs)
	}
	log := logx.For(ctx, h.Log, scope)
	r := failure(in)
	key := store.TargetKey{RunID: in.RunID, WaveID: in.WaveID, Account: in.Account, Region: in.Region}
	r, written, err := h.Results.FinishTargetUnlessOwned(ctx, key, r, operation(in.TargetInput), in.ExecutionID)
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
		logx.Emit(log, h.Metrics, emf.Dimensions{contract.DimRunID: in.RunID, contract.DimWaveID: in.WaveID, contract.DimAccount: in.Account},
			[]string{contract.DimWaveID}, emf.Metric{Name: contract.MetricPatchFailures, Value: float64(Failures(r)), Unit: emf.Count})
	}
	return contract.TargetSummary{Account: r.Account, Region: r.Region, Status: r.Status, Reason: r.Reason, Counts: r.Counts}, nil
}

// Failures counts the instances of a failed target that did not succeed:
// at least 1, for a target that failed before its instances were known
// (its role could not be assumed), so the failure shows in the metric.
func Failures(r contract.TargetResult) int {
	return max(1, r.Counts.Failed+r.Counts.TimedOut)
}

// operation is what the target's commands ran (or would have): a dry run
// only scans.
func operation(in contract.TargetInput) string {
	if in.DryRun || in.Operation == contract.OperationScan {
		return contract.OperationScan
	}
	return contract.OperationInstall
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
