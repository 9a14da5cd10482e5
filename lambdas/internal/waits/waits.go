// Package waits finishes the wait of a target whose commands ended (or
// whose deadline passed): the code CommandStatusEvents and the reconciler
// (PollSsmCommand) share. Either may try to finish the same wait at the same
// time; a conditional delete of the waiting record lets exactly one of them
// answer the task token.
package waits

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/smithy-go"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
)

// Claimer deletes a waiting record if it still holds the wait's token.
type Claimer interface {
	Finish(ctx context.Context, w store.Waiting) (won bool, err error)
}

// Restorer puts back a waiting record whose task could not be told.
type Restorer interface {
	Restore(ctx context.Context, w store.Waiting) error
}

// Forgetter deletes the lookup records of a finished wait's commands.
type Forgetter interface {
	Forget(ctx context.Context, w store.Waiting) error
}

// TaskSucceeder answers a task token.
type TaskSucceeder interface {
	SendTaskSuccess(ctx context.Context, in *sfn.SendTaskSuccessInput, optFns ...func(*sfn.Options)) (*sfn.SendTaskSuccessOutput, error)
}

var _ TaskSucceeder = (*sfn.Client)(nil)

// Resumer finishes waits. Its fields are usually one store.Waits and one
// Step Functions client.
type Resumer struct {
	Claim   Claimer
	Restore Restorer
	Forget  Forgetter
	States  TaskSucceeder
}

// Resume ends w's wait with result: it claims the waiting record, then
// answers the task. resumed is false when another finisher claimed it first
// or the task no longer waits (it timed out, or its execution ended); both
// are normal and not errors. When Step Functions could not be told for
// another reason, the record is put back, so the next event or reconcile
// tries again, and the error is returned.
func (r *Resumer) Resume(ctx context.Context, log *slog.Logger, w store.Waiting, result contract.PollResult) (resumed bool, err error) {
	won, err := r.Claim.Finish(ctx, w)
	if err != nil || !won {
		return false, err
	}
	out, err := json.Marshal(result)
	if err != nil {
		return false, fmt.Errorf("encode poll result: %w", err)
	}
	_, err = r.States.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(w.TaskToken), Output: aws.String(string(out))})
	switch {
	case Gone(err):
		// The task's own timeout (CommandTimedOut) or the end of its
		// execution already moved the target on.
		log.Warn("task no longer waits", "error", err.Error())
	case err != nil:
		if rerr := r.Restore.Restore(ctx, w); rerr != nil {
			return false, errors.Join(fmt.Errorf("resume %s/%s: %w", w.Account, w.Region, err), rerr)
		}
		return false, fmt.Errorf("resume %s/%s: %w", w.Account, w.Region, err)
	}
	if ferr := r.Forget.Forget(ctx, w); ferr != nil {
		// They expire with the record retention; an event they lead to
		// finds no waiting record and stops there.
		log.Warn("lookup records left behind", "error", ferr.Error())
	}
	return err == nil, nil
}

// Gone tells Step Functions' answers for a task token that no longer
// waits.
func Gone(err error) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode() {
	case "TaskTimedOut", "TaskDoesNotExist", "InvalidToken":
		return true
	}
	return false
}

// Terminal tells whether a command status is final.
func Terminal(status string) bool {
	for _, s := range contract.TerminalCommandStatuses() {
		if s == status {
			return true
		}
	}
	return false
}

// AllTerminal tells whether every command of a wait ended.
func AllTerminal(w store.Waiting) bool {
	for _, s := range w.Statuses() {
		if !Terminal(s) {
			return false
		}
	}
	return true
}
