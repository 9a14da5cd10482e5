package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/internal/emf"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
	"github.com/ec2patch/ec2patch/lambdas/internal/wiretest"
)

// pagedDB serves recorded target items one per Query page, through the real
// store, and keeps the wave record it is given.
type pagedDB struct {
	store.DB
	items []map[string]types.AttributeValue
	pages int
	wave  map[string]types.AttributeValue
}

func (d *pagedDB) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	d.pages++
	i := 0
	if in.ExclusiveStartKey != nil {
		i = len(in.ExclusiveStartKey["n"].(*types.AttributeValueMemberS).Value)
	}
	out := &dynamodb.QueryOutput{Items: d.items[i : i+1]}
	if i+1 < len(d.items) {
		out.LastEvaluatedKey = map[string]types.AttributeValue{"n": &types.AttributeValueMemberS{Value: string(make([]byte, i+1))}}
	}
	return out, nil
}

func (d *pagedDB) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if in.Item["kind"].(*types.AttributeValueMemberS).Value == store.KindWave {
		d.wave = in.Item
		return &dynamodb.PutItemOutput{}, nil
	}
	d.items = append(d.items, in.Item)
	return &dynamodb.PutItemOutput{}, nil
}

func TestEvaluateReadsEveryPage(t *testing.T) {
	db := &pagedDB{}
	st := store.New(db, "state", 30, nil)
	ctx := context.Background()
	// Three of the wave's four targets recorded: two good, one with a
	// timed-out instance (over the 10% threshold); the fourth left no result.
	for _, r := range []contract.TargetResult{
		{Account: "222222222222", Region: "us-east-1", Status: contract.StatusSucceeded, Counts: contract.Counts{Patched: 4}},
		{Account: "222222222222", Region: "us-west-2", Status: contract.StatusSucceeded, Counts: contract.Counts{Patched: 3, TimedOut: 1}},
		{Account: "333333333333", Region: "us-east-1", Status: contract.StatusSkipped, Reason: contract.ReasonNoInstance},
	} {
		if err := st.PutTarget(ctx, store.TargetKey{RunID: "2026-12-patch", WaveID: "wave2", Account: r.Account, Region: r.Region}, r); err != nil {
			t.Fatal(err)
		}
	}
	wiretest.Golden(t, (&Handler{Targets: st, Waves: st, Log: logx.New(io.Discard)}).Handle, "evaluate")
	if db.pages != 3 {
		t.Errorf("%d query pages, want 3", db.pages)
	}
	if db.wave == nil {
		t.Fatal("no wave record written")
	}
	if got := db.wave["sk"].(*types.AttributeValueMemberS).Value; got != contract.WaveSK(1, "wave2") {
		t.Errorf("wave record sk %s", got)
	}
	if got := db.wave["status"].(*types.AttributeValueMemberS).Value; got != contract.StatusFailed {
		t.Errorf("wave record status %s, want FAILED", got)
	}
	if _, ok := db.wave["targets"]; !ok {
		t.Error("wave record has no judged targets")
	}
}

func TestEvaluateHaltAlarmAfterTheWave(t *testing.T) {
	db := &pagedDB{}
	st := store.New(db, "state", 30, nil)
	r := contract.TargetResult{Account: "222222222222", Region: "us-east-1", Status: contract.StatusSucceeded, Counts: contract.Counts{Patched: 2}}
	if err := st.PutTarget(context.Background(), store.TargetKey{RunID: "2026-12-patch", WaveID: "canary", Account: r.Account, Region: r.Region}, r); err != nil {
		t.Fatal(err)
	}
	wiretest.Golden(t, (&Handler{Targets: st, Waves: st, Log: logx.New(io.Discard)}).Handle, "evaluate-alarm")
	var recorded contract.WaveVerdict
	if err := json.Unmarshal([]byte(db.wave["verdict"].(*types.AttributeValueMemberS).Value), &recorded); err != nil {
		t.Fatal(err)
	}
	if !recorded.Halt || recorded.Status != contract.StatusFailed {
		t.Errorf("recorded verdict %+v: want FAILED with halt", recorded)
	}
}

type fixedTargets []contract.TargetResult

func (f fixedTargets) WaveTargets(context.Context, string, string) ([]contract.TargetResult, error) {
	return f, nil
}

type noWaves struct{}

func (noWaves) PutWave(context.Context, string, contract.Wave, contract.WaveVerdict, []contract.TargetResult) error {
	return nil
}

type topic struct {
	published []*sns.PublishInput
	err       error
}

func (p *topic) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	p.published = append(p.published, in)
	return &sns.PublishOutput{}, p.err
}

func waveTwo() (contract.EvaluateRequest, fixedTargets) {
	req := contract.EvaluateRequest{RunID: "2026-12-patch", Wave: contract.Wave{Index: 1, WaveID: "wave2",
		Accounts: []string{"222222222222", "333333333333"}, Regions: []string{"us-east-1"}, FailureThresholdPercent: 10}}
	targets := fixedTargets{
		{Account: "222222222222", Region: "us-east-1", Status: contract.StatusSucceeded, Counts: contract.Counts{Patched: 14},
			StartedAt: "2026-12-09T10:02:00Z", FinishedAt: "2026-12-09T10:20:00Z"},
		{Account: "333333333333", Region: "us-east-1", Status: contract.StatusFailed, Reason: "AccessDenied: cannot assume",
			Counts: contract.Counts{Failed: 1}, StartedAt: "2026-12-09T10:00:00Z", FinishedAt: "2026-12-09T10:00:05Z"},
	}
	return req, targets
}

func TestEvaluateWaveDurationAndNotification(t *testing.T) {
	req, targets := waveTwo()
	var buf bytes.Buffer
	tp := &topic{}
	h := &Handler{Targets: targets, Waves: noWaves{}, Log: logx.New(io.Discard), Metrics: emf.New(&buf, "ec2patch-dev", nil),
		SNS: tp, TopicARN: "arn:aws:sns:eu-central-1:123456789012:t", Environment: "ec2patch-dev", Bucket: "hub-bucket",
		Now: func() time.Time { return time.Date(2026, 12, 9, 10, 25, 30, 0, time.UTC) }}
	v, err := h.Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 1 {
		t.Fatalf("%d metric lines, want 1: %s", len(lines), buf.String())
	}
	if err := emf.Validate(lines[0]); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(lines[0], &doc); err != nil {
		t.Fatal(err)
	}
	// From the earliest start (10:00:00) to the verdict (10:25:30).
	if doc[contract.MetricWaveDurationSeconds] != 1530.0 || doc[contract.DimRunID] != req.RunID || doc[contract.DimWaveID] != "wave2" {
		t.Errorf("metric line %s: want WaveDurationSeconds 1530 for run and wave", lines[0])
	}
	if _, ok := doc[contract.DimAccount]; ok {
		t.Errorf("a wave's duration has no account: %s", lines[0])
	}

	if len(tp.published) != 1 {
		t.Fatalf("%d notifications, want 1", len(tp.published))
	}
	n := tp.published[0]
	if want := "ec2patch ec2patch-dev run 2026-12-patch: wave wave2 FAILED (14 patched, 1 failed)"; *n.Subject != want || v.Status != contract.StatusFailed {
		t.Errorf("subject %q, want %q", *n.Subject, want)
	}
	for _, part := range []string{"Why: 1 target(s) failed", "333333333333/us-east-1: AccessDenied", "s3://hub-bucket/reports/2026-12-patch/report.json",
		"s3://hub-bucket/reports/2026-12-patch/report.csv", "14 patched, 0 scanned, 1 failed"} {
		if !strings.Contains(*n.Message, part) {
			t.Errorf("message does not say %q:\n%s", part, *n.Message)
		}
	}
}

func TestEvaluateGoesOnWhenThePublishFails(t *testing.T) {
	req, targets := waveTwo()
	var logs bytes.Buffer
	h := &Handler{Targets: targets, Waves: noWaves{}, Log: logx.New(&logs), SNS: &topic{err: errors.New("topic gone")}}
	if v, err := h.Handle(context.Background(), req); err != nil || v.Status != contract.StatusFailed {
		t.Fatalf("verdict %+v, %v: want the verdict despite the publish error", v, err)
	}
	if !strings.Contains(logs.String(), "topic gone") {
		t.Errorf("the publish error was not logged: %s", logs.String())
	}
}

func TestSubjectIsCut(t *testing.T) {
	v := contract.WaveVerdict{WaveID: strings.Repeat("w", 80), Status: contract.StatusSucceeded, Counts: contract.Counts{Scanned: 3}}
	if s := Subject("ec2patch-prod", "2026-12-patch", v); len(s) != maxSubject {
		t.Errorf("subject of %d chars, want %d", len(s), maxSubject)
	}
	v.WaveID = "canary"
	if s := Subject("ec2patch-dev", "r", v); s != "ec2patch ec2patch-dev run r: wave canary SUCCEEDED (3 scanned, 0 failed)" {
		t.Errorf("dry-run subject %q", s)
	}
}
