package main

import (
	"context"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/spoke"
	"github.com/ec2patch/ec2patch/lambdas/internal/wiretest"
)

func TestPhase(t *testing.T) {
	cases := []struct {
		name     string
		statuses []string
		attempts int
		want     string
	}{
		{"success", []string{"Success"}, 1, contract.PhaseComplete},
		{"failed", []string{"Failed"}, 1, contract.PhaseComplete},
		{"timed out", []string{"TimedOut"}, 1, contract.PhaseComplete},
		{"cancelled", []string{"Cancelled"}, 1, contract.PhaseComplete},
		{"pending", []string{"Pending"}, 1, contract.PhaseInProgress},
		{"in progress", []string{"InProgress"}, 1, contract.PhaseInProgress},
		{"delayed", []string{"Delayed"}, 1, contract.PhaseInProgress},
		{"cancelling", []string{"Cancelling"}, 1, contract.PhaseInProgress},
		{"not listed yet", []string{""}, 1, contract.PhaseInProgress},
		{"unknown status", []string{"Shiny"}, 1, contract.PhaseInProgress},
		{"one batch still running", []string{"Success", "InProgress", "Failed"}, 2, contract.PhaseInProgress},
		{"all batches terminal", []string{"Success", "TimedOut", "Failed"}, 2, contract.PhaseComplete},
		{"terminal on the last attempt is complete", []string{"Success"}, 5, contract.PhaseComplete},
		{"running on the last attempt", []string{"InProgress"}, 5, contract.PhaseTimedOut},
		{"running past the last attempt", []string{"Pending"}, 6, contract.PhaseTimedOut},
		{"running just before the last attempt", []string{"InProgress"}, 4, contract.PhaseInProgress},
	}
	for _, c := range cases {
		if got := Phase(c.statuses, c.attempts, 5); got != c.want {
			t.Errorf("%s: Phase(%v, %d, 5) = %s, want %s", c.name, c.statuses, c.attempts, got, c.want)
		}
	}
}

type fakeLister struct {
	commands map[string]ssmtypes.Command
	err      error
	calls    []string
}

func (f *fakeLister) ListCommands(_ context.Context, in *ssm.ListCommandsInput, _ ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error) {
	f.calls = append(f.calls, *in.CommandId)
	if f.err != nil {
		return nil, f.err
	}
	out := &ssm.ListCommandsOutput{}
	if c, ok := f.commands[*in.CommandId]; ok {
		out.Commands = []ssmtypes.Command{c}
	}
	return out, nil
}

func newHandler(f *fakeLister) *Handler {
	return &Handler{
		SSM: spoke.FactoryFunc[commandLister](func(spoke.Target) commandLister { return f }),
		Log: logx.New(io.Discard),
	}
}

func TestPollWire(t *testing.T) {
	f := &fakeLister{commands: map[string]ssmtypes.Command{
		"cmd-1": {Status: ssmtypes.CommandStatusSuccess, CompletedCount: 50, TargetCount: 50},
		"cmd-2": {Status: ssmtypes.CommandStatusInProgress, CompletedCount: 3, TargetCount: 20},
	}}
	wiretest.Golden(t, newHandler(f).Handle, "poll-in-progress")
	if len(f.calls) != 2 {
		t.Errorf("%d ListCommands calls, want one per command (2)", len(f.calls))
	}
}

func TestPollThrottled(t *testing.T) {
	f := &fakeLister{err: &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}}
	wiretest.WantError(t, newHandler(f).Handle, "poll-in-progress", contract.ErrThrottled)
}
