package waits_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
	"github.com/ec2patch/ec2patch/lambdas/internal/waits"
	"github.com/ec2patch/ec2patch/lambdas/internal/waits/waitstest"
)

func setup(t *testing.T) (*waitstest.Memory, *waitstest.States, *waits.Resumer, store.Waiting) {
	t.Helper()
	mem, states := waitstest.New(), &waitstest.States{}
	w := store.Waiting{RunID: "run", WaveID: "w1", Account: "222222222222", Region: "us-east-1",
		TaskToken: "token-1", CommandIDs: []string{"cmd-1", "cmd-2"}, Deadline: time.Unix(1796122800, 0)}
	if err := mem.Register(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	return mem, states, &waits.Resumer{Claim: mem, Restore: mem, Forget: mem, States: states}, w
}

func TestResumeOnce(t *testing.T) {
	mem, states, r, w := setup(t)
	log := logx.New(io.Discard)
	res := contract.PollResult{Phase: contract.PhaseComplete, Completed: 3, Targets: 3}
	resumed, err := r.Resume(context.Background(), log, w, res)
	if err != nil || !resumed {
		t.Fatalf("Resume = %v, %v", resumed, err)
	}
	sent := states.Sent()
	if len(sent) != 1 || sent[0].Token != "token-1" ||
		sent[0].Output != `{"phase":"COMPLETE","attempts":0,"completed":3,"targets":3}` {
		t.Fatalf("SendTaskSuccess calls %+v", sent)
	}
	if _, ok := mem.Get(w.SK()); ok {
		t.Error("the waiting record was kept")
	}
	if mem.HasCommand("cmd-1") || mem.HasCommand("cmd-2") {
		t.Error("lookup records were kept")
	}
	resumed, err = r.Resume(context.Background(), log, w, res)
	if err != nil || resumed || len(states.Sent()) != 1 {
		t.Errorf("second Resume = %v, %v with %d calls, want nothing sent", resumed, err, len(states.Sent()))
	}
}

func TestResumeIgnoresAStaleToken(t *testing.T) {
	_, states, r, w := setup(t)
	w.TaskToken = "token-of-an-earlier-attempt"
	resumed, err := r.Resume(context.Background(), logx.New(io.Discard), w, contract.PollResult{Phase: contract.PhaseComplete})
	if err != nil || resumed || len(states.Sent()) != 0 {
		t.Errorf("Resume = %v, %v with %v, want nothing sent", resumed, err, states.Sent())
	}
}

func TestResumeOfATaskThatNoLongerWaits(t *testing.T) {
	for _, code := range []string{"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"} {
		t.Run(code, func(t *testing.T) {
			mem, states, r, w := setup(t)
			states.Err = &smithy.OperationError{ServiceID: "SFN", OperationName: "SendTaskSuccess",
				Err: &smithy.GenericAPIError{Code: code, Message: "gone"}}
			if code == "TaskTimedOut" {
				states.Err = &sfntypes.TaskTimedOut{Message: aws.String("Task Timed Out")}
			}
			resumed, err := r.Resume(context.Background(), logx.New(io.Discard), w, contract.PollResult{Phase: contract.PhaseComplete})
			if err != nil || resumed {
				t.Errorf("Resume = %v, %v, want ignored", resumed, err)
			}
			if _, ok := mem.Get(w.SK()); ok {
				t.Error("the waiting record of a task that no longer waits was restored")
			}
		})
	}
}

func TestResumeRestoresWhenStepFunctionsFails(t *testing.T) {
	mem, states, r, w := setup(t)
	states.Err = &smithy.GenericAPIError{Code: "ServiceUnavailable", Message: "try later"}
	resumed, err := r.Resume(context.Background(), logx.New(io.Discard), w, contract.PollResult{Phase: contract.PhaseComplete})
	var apiErr smithy.APIError
	if resumed || !errors.As(err, &apiErr) {
		t.Fatalf("Resume = %v, %v, want the error", resumed, err)
	}
	if got, ok := mem.Get(w.SK()); !ok || got.TaskToken != "token-1" {
		t.Errorf("waiting record %+v, %v: want it restored for the next try", got, ok)
	}
	if !mem.HasCommand("cmd-1") {
		t.Error("lookup records were deleted before the task was told")
	}
}

func TestTerminal(t *testing.T) {
	for _, s := range []string{"Success", "Failed", "TimedOut", "Cancelled"} {
		if !waits.Terminal(s) {
			t.Errorf("%s is not terminal", s)
		}
	}
	for _, s := range []string{"", store.CommandPending, "Pending", "InProgress", "Delayed", "Cancelling"} {
		if waits.Terminal(s) {
			t.Errorf("%q is terminal", s)
		}
	}
	w := store.Waiting{CommandIDs: []string{"a", "b"}, CommandStatus: map[string]string{"a": "Success", "b": store.CommandPending}}
	if waits.AllTerminal(w) {
		t.Error("a wait with a pending command is over")
	}
	w.CommandStatus["b"] = "Failed"
	if !waits.AllTerminal(w) {
		t.Error("a wait whose commands all ended is not over")
	}
}
