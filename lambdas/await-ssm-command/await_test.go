package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
	"github.com/ec2patch/ec2patch/lambdas/internal/wiretest"
)

type fakeWaits struct {
	registered []store.Waiting
	err        error
}

func (f *fakeWaits) Register(_ context.Context, w store.Waiting) error {
	f.registered = append(f.registered, w)
	return f.err
}

var fixed = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func newHandler(f *fakeWaits) *Handler {
	return &Handler{Waits: f, Log: logx.New(io.Discard), Now: func() time.Time { return fixed }}
}

func TestAwaitRegistersTheWait(t *testing.T) {
	f := &fakeWaits{}
	wiretest.Golden(t, newHandler(f).Handle, "await")
	if len(f.registered) != 1 {
		t.Fatalf("%d registrations, want 1", len(f.registered))
	}
	w := f.registered[0]
	if !w.Deadline.Equal(fixed.Add(time.Hour)) {
		t.Errorf("deadline %s, want now + deadlineSeconds", w.Deadline)
	}
	wiretest.Match(t, "await-registered", w)
}

func TestAwaitRejectsWhatNothingCouldFinish(t *testing.T) {
	for name, want := range map[string]string{"await-no-commands": "commandIds", "await-no-deadline": "deadlineSeconds"} {
		f := &fakeWaits{}
		msg := wiretest.WantError(t, newHandler(f).Handle, name, contract.ErrInvalidRunInput)
		if !strings.Contains(msg, want) {
			t.Errorf("%s: message %q does not name %s", name, msg, want)
		}
		if len(f.registered) != 0 {
			t.Errorf("%s: registered %+v", name, f.registered)
		}
	}
}

func TestAwaitStoreFailure(t *testing.T) {
	f := &fakeWaits{err: &fault.StoreFailure{Op: "register the wait of 222222222222/us-east-1",
		Err: &smithy.GenericAPIError{Code: "ValidationException", Message: "bad"}}}
	wiretest.WantError(t, newHandler(f).Handle, "await", contract.ErrStateStore)
	f.err = &fault.StoreFailure{Op: "register", Err: &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"}}
	wiretest.WantError(t, newHandler(f).Handle, "await", contract.ErrThrottled)
}
