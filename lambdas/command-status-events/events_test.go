package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
	"github.com/ec2patch/ec2patch/lambdas/internal/waits"
	"github.com/ec2patch/ec2patch/lambdas/internal/waits/waitstest"
	"github.com/ec2patch/ec2patch/lambdas/internal/wiretest"
)

var waiting = store.Waiting{RunID: "2026-12-patch", WaveID: "canary", Account: "222222222222", Region: "us-east-1",
	ExecutionID: "exec", TaskToken: "token-1", CommandIDs: []string{"cmd-1", "cmd-2"},
	Deadline: time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC)}

func setup(t *testing.T) (*Handler, *waitstest.Memory, *waitstest.States) {
	t.Helper()
	mem, states := waitstest.New(), &waitstest.States{}
	if err := mem.Register(context.Background(), waiting); err != nil {
		t.Fatal(err)
	}
	h := &Handler{Commands: mem, Statuses: mem,
		Resumer: &waits.Resumer{Claim: mem, Restore: mem, Forget: mem, States: states},
		Log:     logx.New(io.Discard)}
	return h, mem, states
}

// outcome sends testdata/<name>.json through the Lambda decoder.
func outcome(t *testing.T, h *Handler, name string) string {
	t.Helper()
	out, err := wiretest.Invoke(t, h.Handle, name)
	if err != nil {
		t.Fatalf("%s: %s: %v", name, wiretest.ErrorType(err), err)
	}
	var r Result
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	return r.Outcome
}

func TestLastTerminalEventResumesOnce(t *testing.T) {
	h, mem, states := setup(t)
	steps := []struct{ event, want string }{
		{"event-cmd-1-in-progress", OutcomeNotTerminal},
		{"event-cmd-1-success", OutcomeRecorded},
		{"event-cmd-1-success", OutcomeRecorded}, // a duplicate changes nothing
	}
	for _, s := range steps {
		if got := outcome(t, h, s.event); got != s.want {
			t.Errorf("%s: outcome %s, want %s", s.event, got, s.want)
		}
	}
	w, ok := mem.Get(waiting.SK())
	if !ok || w.CommandStatus["cmd-1"] != "Success" || w.CommandStatus["cmd-2"] != store.CommandPending {
		t.Errorf("waiting record %+v, %v: want cmd-1 Success, cmd-2 pending", w, ok)
	}
	if n := len(states.Sent()); n != 0 {
		t.Fatalf("%d SendTaskSuccess before the last command ended", n)
	}

	wiretest.Golden(t, h.Handle, "event-cmd-2-failed")
	sent := states.Sent()
	if len(sent) != 1 || sent[0].Token != "token-1" {
		t.Fatalf("SendTaskSuccess calls %+v, want one for token-1", sent)
	}
	var res contract.PollResult
	if err := json.Unmarshal([]byte(sent[0].Output), &res); err != nil || res.Phase != contract.PhaseComplete {
		t.Errorf("task output %s (%v), want phase COMPLETE", sent[0].Output, err)
	}
	if _, ok := mem.Get(waiting.SK()); ok {
		t.Error("the waiting record outlived the wait")
	}

	// A second copy of the last event finds no lookup record.
	if got := outcome(t, h, "event-cmd-2-failed"); got != OutcomeUnknownCommand {
		t.Errorf("duplicate last event: outcome %s", got)
	}
	if n := len(states.Sent()); n != 1 {
		t.Errorf("%d SendTaskSuccess calls after a duplicate, want 1", n)
	}
}

func TestDuplicateRacingTheFinisherSendsNothing(t *testing.T) {
	h, mem, states := setup(t)
	outcome(t, h, "event-cmd-1-success")
	// Both copies of the last event found the lookup record; the first
	// finished the wait before the second claimed it.
	first := &Handler{Commands: mem, Statuses: mem, Resumer: h.Resumer, Log: h.Log}
	h.Resumer = racing{inner: h.Resumer, before: func() { outcome(t, first, "event-cmd-2-failed") }}
	if got := outcome(t, h, "event-cmd-2-failed"); got != OutcomeNotResumed {
		t.Errorf("outcome %s, want %s", got, OutcomeNotResumed)
	}
	if n := len(states.Sent()); n != 1 {
		t.Errorf("%d SendTaskSuccess calls, want 1", n)
	}
}

// racing runs before just before the resume it wraps.
type racing struct {
	inner  resumer
	before func()
}

func (r racing) Resume(ctx context.Context, log *slog.Logger, w store.Waiting, res contract.PollResult) (bool, error) {
	r.before()
	return r.inner.Resume(ctx, log, w, res)
}

func TestEventsThatChangeNothing(t *testing.T) {
	cases := map[string]string{
		"event-unknown-command":   OutcomeUnknownCommand,
		"event-other-account":     OutcomeWrongSource,
		"event-not-ssm":           OutcomeNotCommandState,
		"event-cmd-1-in-progress": OutcomeNotTerminal,
	}
	for name, want := range cases {
		h, mem, states := setup(t)
		if got := outcome(t, h, name); got != want {
			t.Errorf("%s: outcome %s, want %s", name, got, want)
		}
		if w, _ := mem.Get(waiting.SK()); w.CommandStatus["cmd-1"] != store.CommandPending || len(states.Sent()) != 0 {
			t.Errorf("%s changed the wait: %+v, %v", name, w.CommandStatus, states.Sent())
		}
	}
}

func TestTaskTimedOutIsIgnored(t *testing.T) {
	h, mem, states := setup(t)
	states.Err = &smithy.OperationError{ServiceID: "SFN", OperationName: "SendTaskSuccess",
		Err: &sfntypes.TaskTimedOut{Message: aws.String("Task Timed Out")}}
	outcome(t, h, "event-cmd-1-success")
	if got := outcome(t, h, "event-cmd-2-failed"); got != OutcomeNotResumed {
		t.Errorf("outcome %s, want %s without an error", got, OutcomeNotResumed)
	}
	if _, ok := mem.Get(waiting.SK()); ok {
		t.Error("the wait of a timed-out task was kept")
	}
}

func TestStoreFailureIsRetried(t *testing.T) {
	h, mem, _ := setup(t)
	mem.Fail = &fault.StoreFailure{Op: "read lookup record of command cmd-1",
		Err: &dbtypes.ProvisionedThroughputExceededException{Message: aws.String("slow down")}}
	wiretest.WantError(t, h.Handle, "event-cmd-1-success", contract.ErrThrottled)
}

// A re-run racing the first execution of its run waits on the same
// commands: the event resumes both executions, each with its own token.
func TestEventResumesEveryExecutionWaitingOnTheCommand(t *testing.T) {
	h, mem, states := setup(t)
	second := waiting
	second.ExecutionID, second.TaskToken = "exec-2", "token-2"
	if err := mem.Register(context.Background(), second); err != nil {
		t.Fatal(err)
	}
	if got := outcome(t, h, "event-cmd-1-success"); got != OutcomeRecorded {
		t.Fatalf("first event: %s", got)
	}
	if got := outcome(t, h, "event-cmd-2-failed"); got != OutcomeResumed {
		t.Fatalf("last event: %s", got)
	}
	tokens := map[string]bool{}
	for _, s := range states.Sent() {
		tokens[s.Token] = true
	}
	if len(states.Sent()) != 2 || !tokens["token-1"] || !tokens["token-2"] {
		t.Errorf("SendTaskSuccess calls %+v, want one for each execution", states.Sent())
	}
}
