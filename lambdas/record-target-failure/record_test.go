package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/internal/emf"
	"github.com/ec2patch/ec2patch/internal/emf/emftest"
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

// results is one target record: who claimed it and whether it holds
// commands, with the store's write condition.
type results struct {
	put      []contract.TargetResult
	owner    string
	commands bool
	err      error
}

func (r *results) FinishTargetUnlessOwned(_ context.Context, _ store.TargetKey, res contract.TargetResult, _, owner string) (contract.TargetResult, bool, error) {
	if r.err != nil {
		return res, false, &fault.StoreFailure{Op: "write target record", Err: r.err}
	}
	if r.commands && r.owner != owner {
		return res, false, nil
	}
	r.put = append(r.put, res)
	return res, true, nil
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

func TestRecordFailureLeavesAnotherExecutionsCommands(t *testing.T) {
	cases := []struct {
		name  string
		r     *results
		write bool
	}{
		{"no commands recorded", &results{owner: "exec-b"}, true},
		{"own commands", &results{owner: "arn:aws:states:eu-central-1:123456789012:execution:PatchOrchestrator:run-1", commands: true}, true},
		{"another execution's commands", &results{owner: "exec-b", commands: true}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := wiretest.Invoke(t, (&Handler{Results: c.r, Log: logx.New(io.Discard)}).Handle, "failure")
			if err != nil {
				t.Fatal(err)
			}
			if got := len(c.r.put) == 1; got != c.write {
				t.Errorf("written %v, want %v", got, c.write)
			}
			var sum contract.TargetSummary
			if err := json.Unmarshal(out, &sum); err != nil || sum.Status != contract.StatusFailed {
				t.Errorf("summary %s (%v): the target's own outcome is still returned", out, err)
			}
		})
	}
}

func TestRecordFailureMetrics(t *testing.T) {
	cases := []struct {
		name  string
		state contract.TargetState
		want  float64
	}{
		{"role not assumed: no instance known", contract.TargetState{}, 1},
		{"failed after the inventory", contract.TargetState{Inventory: &contract.InventoryResult{
			InstanceIDs: []string{"i-1", "i-2", "i-3"},
			Skipped:     []contract.InstanceResult{{InstanceID: "i-4", Status: contract.InstanceSkipped, Reason: contract.ReasonStopped}}}}, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := c.state
			in.RunID, in.WaveID, in.Account, in.Region = "2026-12-patch", "wave2", "333333333333", "us-east-1"
			var buf bytes.Buffer
			h := &Handler{Results: &results{}, Log: logx.New(io.Discard), Metrics: emf.New(&buf, "ec2patch-test", nil)}
			if _, err := h.Handle(context.Background(), in); err != nil {
				t.Fatal(err)
			}
			got := emftest.Sums(t, buf.Bytes(), map[string]string{contract.DimRunID: in.RunID, contract.DimWaveID: in.WaveID,
				contract.DimAccount: in.Account})
			if !reflect.DeepEqual(got, map[string]float64{contract.MetricPatchFailures: c.want}) {
				t.Errorf("metrics %v, want PatchFailures %v", got, c.want)
			}
		})
	}
	// A record left to another execution counts nothing here.
	var buf bytes.Buffer
	h := &Handler{Results: &results{owner: "exec-b", commands: true}, Log: logx.New(io.Discard), Metrics: emf.New(&buf, "e", nil)}
	if _, err := h.Handle(context.Background(), contract.TargetState{TargetInput: contract.TargetInput{ExecutionID: "exec-a"}}); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Errorf("metrics written for a record left alone: %s", buf.String())
	}
}
