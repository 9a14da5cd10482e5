package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/spoke"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
	"github.com/ec2patch/ec2patch/lambdas/internal/waits"
	"github.com/ec2patch/ec2patch/lambdas/internal/waits/waitstest"
	"github.com/ec2patch/ec2patch/lambdas/internal/wiretest"
)

var (
	now      = time.Date(2026, 12, 1, 10, 30, 0, 0, time.UTC)
	later    = now.Add(30 * time.Minute)
	earlier  = now.Add(-time.Minute)
	terminal = []string{"Success", "Failed", "TimedOut", "Cancelled"}
)

func TestPhase(t *testing.T) {
	cases := []struct {
		name     string
		statuses []string
		deadline time.Time
		want     string
	}{
		{"pending", []string{store.CommandPending}, later, contract.PhaseInProgress},
		{"in progress", []string{"InProgress"}, later, contract.PhaseInProgress},
		{"delayed", []string{"Delayed"}, later, contract.PhaseInProgress},
		{"cancelling", []string{"Cancelling"}, later, contract.PhaseInProgress},
		{"not listed yet", []string{""}, later, contract.PhaseInProgress},
		{"unknown status", []string{"Shiny"}, later, contract.PhaseInProgress},
		{"one batch still running", []string{"Success", "InProgress", "Failed"}, later, contract.PhaseInProgress},
		{"all batches terminal", []string{"Success", "TimedOut", "Failed"}, later, contract.PhaseComplete},
		{"terminal past the deadline is complete", []string{"Success"}, earlier, contract.PhaseComplete},
		{"running past the deadline", []string{"InProgress"}, earlier, contract.PhaseTimedOut},
		{"running at the deadline", []string{"Pending"}, now, contract.PhaseTimedOut},
	}
	for _, s := range terminal {
		cases = append(cases, struct {
			name     string
			statuses []string
			deadline time.Time
			want     string
		}{s, []string{s}, later, contract.PhaseComplete})
	}
	for _, c := range cases {
		if got := Phase(c.statuses, now, c.deadline); got != c.want {
			t.Errorf("%s: Phase(%v) = %s, want %s", c.name, c.statuses, got, c.want)
		}
	}
}

// fakeSSM answers ListCommands for every spoke from one table of commands,
// and fails every call in the accounts in fail.
type fakeSSM struct {
	mu       sync.Mutex
	commands map[string]ssmtypes.Command
	fail     map[string]error
	calls    []string
	targets  []spoke.Target
	// during, when set, runs inside ListCommands (a racing finisher).
	during func(commandID string)
}

func (f *fakeSSM) Client(t spoke.Target) commandLister {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.targets = append(f.targets, t)
	return lister{f: f, account: t.Account}
}

type lister struct {
	f       *fakeSSM
	account string
}

func (l lister) ListCommands(_ context.Context, in *ssm.ListCommandsInput, _ ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error) {
	id := aws.ToString(in.CommandId)
	if l.f.during != nil {
		l.f.during(id)
	}
	l.f.mu.Lock()
	defer l.f.mu.Unlock()
	l.f.calls = append(l.f.calls, id)
	if err := l.f.fail[l.account]; err != nil {
		return nil, err
	}
	out := &ssm.ListCommandsOutput{}
	if c, ok := l.f.commands[id]; ok {
		out.Commands = []ssmtypes.Command{c}
	}
	return out, nil
}

func register(t *testing.T, mem *waitstest.Memory, run, account, region, token string, deadline time.Time, ids ...string) store.Waiting {
	t.Helper()
	w := store.Waiting{RunID: run, WaveID: "w1", Account: account, Region: region, TaskToken: token,
		ExecutionID: "exec-1", CommandIDs: ids, Deadline: deadline}
	if err := mem.Register(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	return w
}

func newHandler(mem *waitstest.Memory, f *fakeSSM, states *waitstest.States) *Handler {
	return &Handler{Waitings: mem, Statuses: mem, Passes: mem,
		Resumer: &waits.Resumer{Claim: mem, Restore: mem, Forget: mem, States: states},
		SSM:     f, Log: logx.New(io.Discard), Now: func() time.Time { return now }, Concurrency: 2}
}

func TestReconcile(t *testing.T) {
	mem, states := waitstest.New(), &waitstest.States{}
	// Complete: a2 ended and was recorded by its event; a1's event was lost.
	register(t, mem, "r1", "222222222222", "us-east-1", "tok-a", later, "a1", "a2")
	if _, _, err := mem.RecordStatus(context.Background(), contract.WaitingSK("r1", "w1", "222222222222", "us-east-1", "exec-1"), "a2", "Success"); err != nil {
		t.Fatal(err)
	}
	// In progress, before its deadline.
	register(t, mem, "r1", "222222222222", "us-west-2", "tok-b", later, "b1")
	// Past its deadline and still running.
	register(t, mem, "r2", "333333333333", "us-east-1", "tok-c", earlier, "c1")
	// Its spoke fails: the others go on.
	register(t, mem, "r2", "444444444444", "us-east-1", "tok-d", later, "d1")
	// Every command recorded as ended, but not resumed yet (a restored wait).
	e := register(t, mem, "r2", "555555555555", "us-east-1", "tok-e", later, "e1")
	if _, _, err := mem.RecordStatus(context.Background(), e.SK(), "e1", "Failed"); err != nil {
		t.Fatal(err)
	}

	f := &fakeSSM{
		commands: map[string]ssmtypes.Command{
			"a1": {Status: ssmtypes.CommandStatusSuccess, CompletedCount: 50, TargetCount: 50},
			"b1": {Status: ssmtypes.CommandStatusInProgress, CompletedCount: 3, TargetCount: 20},
			"c1": {Status: ssmtypes.CommandStatusInProgress, CompletedCount: 1, TargetCount: 2},
		},
		fail: map[string]error{"444444444444": &smithy.GenericAPIError{Code: "AccessDenied", Message: "no"}},
	}
	wiretest.Golden(t, newHandler(mem, f, states).Handle, "scheduled")

	slices.Sort(f.calls)
	if want := []string{"a1", "b1", "c1", "d1"}; !slices.Equal(f.calls, want) {
		t.Errorf("ListCommands for %v, want one per command not known to have ended: %v", f.calls, want)
	}
	for _, target := range f.targets {
		if target.RunID != sessionRunID {
			t.Errorf("spoke client for %+v: credentials would be per run, not per account", target)
		}
	}
	got := map[string]contract.PollResult{}
	for _, s := range states.Sent() {
		var r contract.PollResult
		if err := json.Unmarshal([]byte(s.Output), &r); err != nil {
			t.Fatal(err)
		}
		got[s.Token] = r
	}
	want := map[string]contract.PollResult{
		"tok-a": {Phase: contract.PhaseComplete, Completed: 50, Targets: 50},
		"tok-c": {Phase: contract.PhaseTimedOut, Completed: 1, Targets: 2},
		"tok-e": {Phase: contract.PhaseComplete},
	}
	if len(got) != len(states.Sent()) || !mapsEqual(got, want) {
		t.Errorf("SendTaskSuccess %+v, want %+v", states.Sent(), want)
	}
	left, _ := mem.Waitings(context.Background())
	var tokens []string
	for _, w := range left {
		tokens = append(tokens, w.TaskToken)
	}
	if !slices.Equal(tokens, []string{"tok-b", "tok-d"}) {
		t.Errorf("still waiting: %v, want tok-b and tok-d", tokens)
	}

	// The next reconcile lists only what is still running, and resumes
	// nothing twice.
	f.calls, f.fail = nil, nil
	if _, err := newHandler(mem, f, states).Handle(context.Background(), scheduled()); err != nil {
		t.Fatal(err)
	}
	slices.Sort(f.calls)
	if !slices.Equal(f.calls, []string{"b1", "d1"}) || len(states.Sent()) != 3 {
		t.Errorf("second reconcile: ListCommands %v, %d sends", f.calls, len(states.Sent()))
	}
}

func mapsEqual(a, b map[string]contract.PollResult) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func scheduled() events.CloudWatchEvent {
	return events.CloudWatchEvent{Source: "aws.events", DetailType: "Scheduled Event"}
}

func TestReconcileRacingAnEvent(t *testing.T) {
	for _, when := range []string{"while listing", "before resuming"} {
		t.Run(when, func(t *testing.T) {
			mem, states := waitstest.New(), &waitstest.States{}
			w := register(t, mem, "r1", "222222222222", "us-east-1", "tok-a", later, "a1")
			f := &fakeSSM{commands: map[string]ssmtypes.Command{"a1": {Status: ssmtypes.CommandStatusSuccess}}}
			h := newHandler(mem, f, states)
			eventSide := h.Resumer
			event := func() {
				// What CommandStatusEvents does for a1's status event.
				cur, ok, err := mem.RecordStatus(context.Background(), w.SK(), "a1", "Success")
				if err != nil {
					t.Error(err)
				}
				if ok {
					if _, err := eventSide.Resume(context.Background(), h.Log, cur, contract.PollResult{Phase: contract.PhaseComplete}); err != nil {
						t.Error(err)
					}
				}
			}
			if when == "while listing" {
				f.during = func(string) { event() }
			} else {
				h.Resumer = racing{inner: h.Resumer, before: event}
			}
			sum, err := h.Handle(context.Background(), scheduled())
			if err != nil {
				t.Fatal(err)
			}
			if n := len(states.Sent()); n != 1 {
				t.Errorf("%d SendTaskSuccess calls, want 1 (the event's)", n)
			}
			if sum.Finished != 1 || sum.Completed != 0 {
				t.Errorf("summary %+v, want the target finished by the event", sum)
			}
		})
	}
}

type racing struct {
	inner  resumer
	before func()
}

func (r racing) Resume(ctx context.Context, log *slog.Logger, w store.Waiting, res contract.PollResult) (bool, error) {
	r.before()
	return r.inner.Resume(ctx, log, w, res)
}

func TestReconcileIgnoresATaskThatTimedOut(t *testing.T) {
	mem, states := waitstest.New(), &waitstest.States{Err: &smithy.OperationError{ServiceID: "SFN",
		OperationName: "SendTaskSuccess", Err: &sfntypes.TaskTimedOut{Message: aws.String("Task Timed Out")}}}
	register(t, mem, "r1", "222222222222", "us-east-1", "tok-a", earlier, "a1")
	f := &fakeSSM{commands: map[string]ssmtypes.Command{"a1": {Status: ssmtypes.CommandStatusInProgress}}}
	sum, err := newHandler(mem, f, states).Handle(context.Background(), scheduled())
	if err != nil || sum.Finished != 1 || sum.Failed != 0 {
		t.Errorf("Handle = %+v, %v: want the target finished, no failure", sum, err)
	}
	if left, _ := mem.Waitings(context.Background()); len(left) != 0 {
		t.Errorf("still waiting: %+v", left)
	}
}

func TestReconcileTimesOutAnUnreadableTargetPastItsDeadline(t *testing.T) {
	mem, states := waitstest.New(), &waitstest.States{}
	register(t, mem, "r1", "222222222222", "us-east-1", "tok-a", earlier, "a1")
	f := &fakeSSM{fail: map[string]error{"222222222222": &smithy.GenericAPIError{Code: "AccessDenied"}}}
	sum, err := newHandler(mem, f, states).Handle(context.Background(), scheduled())
	if err != nil || sum.TimedOut != 1 {
		t.Errorf("Handle = %+v, %v", sum, err)
	}
	if sent := states.Sent(); len(sent) != 1 || sent[0].Output != `{"phase":"TIMED_OUT","attempts":0,"completed":0,"targets":0}` {
		t.Errorf("sent %+v", sent)
	}
}

func TestReconcileStoreFailure(t *testing.T) {
	mem := waitstest.New()
	mem.Fail = &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"}
	wiretest.WantError(t, newHandler(mem, &fakeSSM{}, &waitstest.States{}).Handle, "scheduled", contract.ErrThrottled)
}

func TestDue(t *testing.T) {
	var due []int
	for p := 1; p <= 16; p++ {
		if Due(p) {
			due = append(due, p)
		}
	}
	if want := []int{1, 2, 4, 8, 12, 16}; !slices.Equal(due, want) {
		t.Errorf("passes that read = %v, want %v", due, want)
	}
}

// A long patch costs a few reads, not one per pass: over eight passes (40
// minutes on the default schedule) a target still running is read four
// times, and it is read on every pass once past its deadline.
func TestReconcileBacksOffOnALongPatch(t *testing.T) {
	mem, states := waitstest.New(), &waitstest.States{}
	register(t, mem, "r1", "222222222222", "us-east-1", "tok-a", later, "a1")
	f := &fakeSSM{commands: map[string]ssmtypes.Command{"a1": {Status: ssmtypes.CommandStatusInProgress}}}
	h := newHandler(mem, f, states)
	for pass := 1; pass <= 8; pass++ {
		if _, err := h.Handle(context.Background(), events.CloudWatchEvent{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(f.calls); got != 4 {
		t.Errorf("%d ListCommands over 8 passes, want 4 (passes 1, 2, 4, 8)", got)
	}
	h.Now = func() time.Time { return later.Add(time.Second) }
	if _, err := h.Handle(context.Background(), events.CloudWatchEvent{}); err != nil {
		t.Fatal(err)
	}
	if got := len(f.calls); got != 5 {
		t.Errorf("%d ListCommands after the deadline passed, want 5", got)
	}
	if sent := states.Sent(); len(sent) != 1 {
		t.Errorf("%d resumes, want the timed-out target resumed once", len(sent))
	}
}
