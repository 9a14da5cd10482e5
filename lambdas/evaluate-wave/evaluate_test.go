package main

import (
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ec2patch/ec2patch/internal/contract"
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
