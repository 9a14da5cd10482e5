package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/wiretest"
)

type bucket struct {
	objects map[string]string
	err     error
}

func (b *bucket) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	if b.err != nil {
		return nil, b.err
	}
	body, err := io.ReadAll(in.Body)
	b.objects[*in.Bucket+"/"+*in.Key] = string(body)
	return &s3.PutObjectOutput{}, err
}

type runs struct{ started []contract.Run }

func (r *runs) StartRun(_ context.Context, run contract.Run) error {
	r.started = append(r.started, run)
	return nil
}

func newHandler(b *bucket, r *runs) *Handler {
	return &Handler{
		Defaults: contract.RunDefaults{PollIntervalSeconds: 15, MaxWaveConcurrency: 5, SSMMaxConcurrency: "10%",
			SSMMaxErrors: "1%", CommandTimeoutSeconds: 3600, AbortOnIssues: true,
			TagFilters: map[string]string{"PatchGroup": "default"}, ApprovalTimeoutSeconds: 3600,
			ReconcileIntervalSeconds: 300},
		Plan:   []contract.WaveInput{{WaveID: "wave1-critical", Accounts: []string{"222222222222"}, Regions: []string{"us-east-1"}}},
		Bucket: "hub-bucket", S3: b, Runs: r, Log: logx.New(io.Discard),
	}
}

func TestPrepareWritesManifestsAndRunRecord(t *testing.T) {
	b, r := &bucket{objects: map[string]string{}}, &runs{}
	wiretest.Golden(t, newHandler(b, r).Handle, "prepare")
	want := `[{"account":"111111111111","region":"us-east-1"},{"account":"111111111111","region":"eu-west-1"},` +
		`{"account":"222222222222","region":"us-east-1"},{"account":"222222222222","region":"eu-west-1"}]`
	if got := b.objects["hub-bucket/runs/2026-12-patch/targets/canary.json"]; got != want {
		t.Errorf("canary manifest %s\nwant %s", got, want)
	}
	if len(b.objects) != 2 || len(r.started) != 1 || r.started[0].RunID != "2026-12-patch" {
		t.Errorf("objects %v, runs started %v", b.objects, r.started)
	}
}

func TestPrepareInvalidInputListsEveryProblem(t *testing.T) {
	b, r := &bucket{objects: map[string]string{}}, &runs{}
	msg := wiretest.WantError(t, newHandler(b, r).Handle, "prepare-invalid", contract.ErrInvalidRunInput)
	for _, field := range []string{"operation", "waves[0].accounts[0]", "waves[0].regions[0]", "waves[1].ssmMaxErrors"} {
		if !strings.Contains(msg, field+":") {
			t.Errorf("message %q does not name %s", msg, field)
		}
	}
	if len(b.objects) != 0 || len(r.started) != 0 {
		t.Errorf("bad input wrote %v and %v", b.objects, r.started)
	}
}

func TestPrepareManifestWriteFailure(t *testing.T) {
	b := &bucket{err: errors.New("no such bucket")}
	wiretest.WantError(t, newHandler(b, &runs{}).Handle, "prepare", contract.ErrStateStore)
}

func TestPrepareSkipsAFiringOffThePatchDay(t *testing.T) {
	b, r := &bucket{objects: map[string]string{}}, &runs{}
	out, err := wiretest.Invoke(t, newHandler(b, r).Handle, "prepare-not-patch-day")
	if err != nil {
		t.Fatalf("unexpected error %s: %v", wiretest.ErrorType(err), err)
	}
	var res contract.PrepareResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	want := "2026-12-02 is not Patch Tuesday + 1 (next: 2026-12-09 03:00 America/New_York)"
	if res.NotPatchDay != want || res.Run.RunID != "monthly-20261202T0300" || res.Run.Campaign != "monthly" {
		t.Errorf("result %s\nwant notPatchDay %q and runId monthly-20261202T0300", out, want)
	}
	if len(b.objects) != 0 || len(r.started) != 0 {
		t.Errorf("a skipped firing wrote %v and started %v", b.objects, r.started)
	}
}

func TestPrepareStartsTheRunOnThePatchDay(t *testing.T) {
	b, r := &bucket{objects: map[string]string{}}, &runs{}
	out, err := wiretest.Invoke(t, newHandler(b, r).Handle, "prepare-patch-day")
	if err != nil {
		t.Fatalf("unexpected error %s: %v", wiretest.ErrorType(err), err)
	}
	var res contract.PrepareResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	if res.NotPatchDay != "" || res.Run.RunID != "monthly-20261209T0300" || res.Run.WaveCount != 1 ||
		res.Run.ScheduledTime != "2026-12-09T08:00:00Z" {
		t.Errorf("result %s", out)
	}
	if _, ok := b.objects["hub-bucket/runs/monthly-20261209T0300/targets/wave1-critical.json"]; !ok || len(r.started) != 1 {
		t.Errorf("the run day wrote %v and started %v", b.objects, r.started)
	}
}
