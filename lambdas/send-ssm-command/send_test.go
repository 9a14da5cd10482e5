package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/spoke"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
	"github.com/ec2patch/ec2patch/lambdas/internal/wiretest"
)

// journal records claims, sends and command records in the order they
// happen. Its target record is claimed by owner (empty: unclaimed) and
// holds the recorded command IDs; the claim follows the store's condition.
type journal struct {
	events    []string
	sends     []*ssm.SendCommandInput
	owner     string
	stale     bool     // the owner's claim is older than the claim timeout
	recorded  []string // command IDs already on the target record
	recordErr error
}

func (j *journal) ClaimTarget(_ context.Context, _ store.TargetKey, owner string) (bool, error) {
	won := len(j.recorded) == 0 && (j.owner == "" || j.owner == owner || j.stale)
	j.events = append(j.events, fmt.Sprintf("claim by %s: %v", owner, won))
	if won {
		j.owner, j.stale = owner, false
	}
	return won, nil
}

func (j *journal) SendCommand(_ context.Context, in *ssm.SendCommandInput, _ ...func(*ssm.Options)) (*ssm.SendCommandOutput, error) {
	j.sends = append(j.sends, in)
	id := fmt.Sprintf("cmd-%d", len(j.sends))
	j.events = append(j.events, fmt.Sprintf("send %s (%d)", id, len(in.InstanceIds)))
	return &ssm.SendCommandOutput{Command: &ssmtypes.Command{CommandId: aws.String(id)}}, nil
}

func (j *journal) Target(_ context.Context, _ store.TargetKey) (store.Target, bool, error) {
	j.events = append(j.events, "read")
	if len(j.recorded) == 0 && j.owner == "" {
		return store.Target{}, false, nil
	}
	return store.Target{Status: store.StatusSending, CommandIDs: j.recorded, Owner: j.owner}, true, nil
}

func (j *journal) AppendCommand(_ context.Context, k store.TargetKey, id string) error {
	if j.recordErr != nil {
		return &fault.StoreFailure{Op: "record command " + id, Err: j.recordErr}
	}
	j.events = append(j.events, "record "+id+" on "+k.Account+"/"+k.Region)
	j.recorded = append(j.recorded, id)
	return nil
}

func newHandler(j *journal) *Handler {
	return &Handler{
		SSM:    spoke.FactoryFunc[commandSender](func(spoke.Target) commandSender { return j }),
		Claims: j, Records: j, Recorder: j,
		Bucket: "hub-bucket", HubRegion: "eu-central-1", Log: logx.New(io.Discard),
	}
}

func state(n int) contract.TargetState {
	s := contract.TargetState{TargetInput: contract.TargetInput{RunID: "r1", WaveID: "w1", Account: "222222222222",
		Region: "us-east-1", ExecutionID: "exec-a", Operation: contract.OperationInstall, RebootOption: contract.RebootIfNeeded,
		SSMMaxConcurrency: "10%", SSMMaxErrors: "1%"}, Inventory: &contract.InventoryResult{}}
	for i := range n {
		s.Inventory.InstanceIDs = append(s.Inventory.InstanceIDs, fmt.Sprintf("i-%03d", i))
	}
	s.Inventory.Matched, s.Inventory.TargetCount = n, n
	return s
}

func TestSendBatchesAndRecordsEachCommandFirst(t *testing.T) {
	j := &journal{}
	out, err := newHandler(j).Handle(context.Background(), state(120))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"claim by exec-a: true",
		"send cmd-1 (50)", "record cmd-1 on 222222222222/us-east-1",
		"send cmd-2 (50)", "record cmd-2 on 222222222222/us-east-1",
		"send cmd-3 (20)", "record cmd-3 on 222222222222/us-east-1",
	}
	if !reflect.DeepEqual(j.events, want) {
		t.Errorf("events %q\nwant %q", j.events, want)
	}
	if !reflect.DeepEqual(out, contract.SendResult{CommandIDs: []string{"cmd-1", "cmd-2", "cmd-3"}}) {
		t.Errorf("result %+v", out)
	}
	if got := j.sends[2].InstanceIds; got[0] != "i-100" || got[19] != "i-119" {
		t.Errorf("third batch %v, want i-100..i-119", got)
	}
}

func TestSendReusesRecordedCommands(t *testing.T) {
	j := &journal{owner: "arn:aws:states:eu-central-1:123456789012:execution:PatchOrchestrator:run-1",
		recorded: []string{"cmd-a", "cmd-b"}}
	wiretest.Golden(t, newHandler(j).Handle, "send-reused")
	if len(j.sends) != 0 {
		t.Errorf("%d SendCommand calls, want 0: a retry never sends twice", len(j.sends))
	}
}

// Two executions of one run patch the same target: the claim lets exactly
// one send, whichever order they come in.
func TestSendClaim(t *testing.T) {
	cases := []struct {
		name      string
		j         *journal
		wantSends int
		wantType  string
		reused    bool
	}{
		{"unclaimed: claim won, sends", &journal{}, 1, "", false},
		{"own claim from a retry before anything was sent", &journal{owner: "exec-a"}, 1, "", false},
		{"stale claim of a dead execution", &journal{owner: "exec-b", stale: true}, 1, "", false},
		{"lost, the other execution's commands are recorded: reuse", &journal{owner: "exec-b", recorded: []string{"cmd-b"}}, 0, "", true},
		{"own commands recorded (a retry)", &journal{owner: "exec-a", recorded: []string{"cmd-a"}}, 0, "", true},
		{"lost, the other execution is sending now", &journal{owner: "exec-b"}, 0, contract.ErrTargetBusy, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := newHandler(c.j).Handle(context.Background(), state(2))
			switch {
			case err == nil && c.wantType != "":
				t.Fatalf("no error, want %s", c.wantType)
			case err != nil && wiretest.ErrorType(err) != c.wantType:
				t.Fatalf("error %s (%v), want %q", wiretest.ErrorType(err), err, c.wantType)
			}
			if len(c.j.sends) != c.wantSends {
				t.Errorf("%d SendCommand calls, want %d (events %q)", len(c.j.sends), c.wantSends, c.j.events)
			}
			if out.Reused != c.reused {
				t.Errorf("reused %v, want %v", out.Reused, c.reused)
			}
		})
	}
}

func TestSendConcurrentStartsSendOnce(t *testing.T) {
	j := &journal{}
	a, b := state(2), state(2)
	b.ExecutionID = "exec-b"
	first, err := newHandler(j).Handle(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	second, err := newHandler(j).Handle(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if len(j.sends) != 1 || !second.Reused || !reflect.DeepEqual(first.CommandIDs, second.CommandIDs) {
		t.Errorf("%d sends; second execution got %+v, first %+v", len(j.sends), second, first)
	}
}

func TestSendNeedsAnExecutionID(t *testing.T) {
	s := state(1)
	s.ExecutionID = ""
	j := &journal{}
	if _, err := newHandler(j).Handle(context.Background(), s); wiretest.ErrorType(err) != contract.ErrTargetFailed {
		t.Errorf("error %v, want TargetFailed", err)
	}
	if len(j.sends) != 0 {
		t.Error("sent without a claim")
	}
}

func TestSendWire(t *testing.T) {
	j := &journal{}
	wiretest.Golden(t, newHandler(j).Handle, "send")
	in := j.sends[0]
	want := &ssm.SendCommandInput{
		DocumentName:       aws.String("AWS-RunPatchBaseline"),
		InstanceIds:        []string{"i-0a", "i-0b"},
		Parameters:         map[string][]string{"Operation": {"Scan"}, "RebootOption": {"NoReboot"}},
		MaxConcurrency:     aws.String("10%"),
		MaxErrors:          aws.String("1%"),
		OutputS3BucketName: aws.String("hub-bucket"),
		OutputS3KeyPrefix:  aws.String("ssm-output/2026-12-patch/222222222222/us-east-1"),
		OutputS3Region:     aws.String("eu-central-1"),
		Comment:            aws.String("ec2patch run 2026-12-patch wave canary"),
	}
	if !reflect.DeepEqual(in, want) {
		t.Errorf("SendCommand input\n%+v\nwant\n%+v", in, want)
	}
}

func TestSendStopsWhenTheRecordFails(t *testing.T) {
	j := &journal{recordErr: errors.New("table unavailable")}
	_, err := newHandler(j).Handle(context.Background(), state(120))
	if name := wiretest.ErrorType(err); name != contract.ErrStateStore {
		t.Fatalf("error %s (%v), want %s", name, err, contract.ErrStateStore)
	}
	if len(j.sends) != 1 {
		t.Errorf("%d sends, want 1: no batch goes out before the previous one is recorded", len(j.sends))
	}
}

func TestCommentIsCut(t *testing.T) {
	s := state(1)
	s.RunID = string(make([]byte, 64))
	s.WaveID = string(make([]byte, 64))
	if c := newHandler(&journal{}).input(s, nil).Comment; len(*c) != maxComment {
		t.Errorf("comment of %d chars, want %d", len(*c), maxComment)
	}
}

// A retry after the handler died between two batches sends the batches
// that were not recorded, and only those; another execution never does.
func TestSendResumesOwnBatchesAfterACrash(t *testing.T) {
	j := &journal{owner: "exec-a", recorded: []string{"cmd-0"}}
	out, err := newHandler(j).Handle(context.Background(), state(120))
	if err != nil {
		t.Fatal(err)
	}
	if len(j.sends) != 2 || j.sends[0].InstanceIds[0] != "i-050" || j.sends[1].InstanceIds[19] != "i-119" {
		t.Fatalf("%d sends (events %q), want batches 2 and 3 only", len(j.sends), j.events)
	}
	if want := []string{"cmd-0", "cmd-1", "cmd-2"}; !reflect.DeepEqual(out.CommandIDs, want) || out.Reused {
		t.Errorf("result %+v, want commands %v", out, want)
	}

	other := &journal{owner: "exec-b", recorded: []string{"cmd-0"}}
	out, err = newHandler(other).Handle(context.Background(), state(120))
	if err != nil || len(other.sends) != 0 || !out.Reused {
		t.Errorf("another execution's partial send: %d sends, result %+v, error %v; want its commands reused", len(other.sends), out, err)
	}
}
