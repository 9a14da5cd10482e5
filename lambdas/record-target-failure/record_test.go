package main

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
	"github.com/ec2patch/ec2patch/lambdas/internal/wiretest"
)

func TestReason(t *testing.T) {
	cases := []struct {
		name string
		err  *contract.TaskError
		want string
	}{
		{"lambda error", &contract.TaskError{Error: "AccessDenied",
			Cause: `{"errorType":"AccessDenied","errorMessage":"cannot assume arn:aws:iam::222222222222:role/PatchExecRole with the configured ExternalId: AccessDenied: no"}`},
			"AccessDenied: cannot assume arn:aws:iam::222222222222:role/PatchExecRole with the configured ExternalId: AccessDenied: no"},
		{"lambda error with a stack trace", &contract.TaskError{Error: "TargetFailed",
			Cause: `{"errorType":"TargetFailed","errorMessage":"describe instances:\n  boom","stackTrace":["a","b"]}`},
			"TargetFailed: describe instances: boom"},
		{"state machine error in plain text", &contract.TaskError{Error: "States.Timeout", Cause: "Task timed out after 300.00 seconds"},
			"States.Timeout: Task timed out after 300.00 seconds"},
		{"no cause", &contract.TaskError{Error: "States.TaskFailed"}, "States.TaskFailed"},
		{"error name only in the cause", &contract.TaskError{Cause: `{"errorType":"Throttled","errorMessage":"Rate exceeded"}`},
			"Throttled: Rate exceeded"},
		{"JSON that is not Lambda's", &contract.TaskError{Error: "X", Cause: `{"other":1}`}, `X: {"other":1}`},
		{"no error at all", nil, "unknown error: the target failed without an error"},
	}
	for _, c := range cases {
		if got := Reason(c.err); got != c.want {
			t.Errorf("%s: Reason = %q, want %q", c.name, got, c.want)
		}
	}
}

type results struct {
	put []contract.TargetResult
	err error
}

func (r *results) PutTarget(_ context.Context, _ store.TargetKey, res contract.TargetResult) error {
	if r.err != nil {
		return &fault.StoreFailure{Op: "write target record", Err: r.err}
	}
	r.put = append(r.put, res)
	return nil
}

func TestRecordFailureWire(t *testing.T) {
	r := &results{}
	wiretest.Golden(t, (&Handler{Results: r, Log: logx.New(io.Discard)}).Handle, "failure")
	wiretest.Match(t, "failure.recorded", r.put[0])
}

func TestRecordFailureFailsLoudly(t *testing.T) {
	r := &results{err: errors.New("table gone")}
	wiretest.WantError(t, (&Handler{Results: r, Log: logx.New(io.Discard)}).Handle, "failure", contract.ErrStateStore)
}
