package store

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
)

// memDB keeps items in memory, answers Query two items per page, and
// records UpdateItem calls (their expressions are asserted, not evaluated).
type memDB struct {
	items   map[[2]string]map[string]types.AttributeValue
	updates []*dynamodb.UpdateItemInput
	queries int
	fail    error
	// batches records every BatchWriteItem call's item count; unprocessed
	// holds back that many items of each call (throttling).
	batches     []int
	unprocessed int
}

func (m *memDB) BatchWriteItem(_ context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	if m.fail != nil {
		return nil, m.fail
	}
	out := &dynamodb.BatchWriteItemOutput{UnprocessedItems: map[string][]types.WriteRequest{}}
	for table, reqs := range in.RequestItems {
		if len(reqs) > 25 {
			return nil, errors.New("ValidationException: too many items in one BatchWriteItem")
		}
		m.batches = append(m.batches, len(reqs))
		held := min(m.unprocessed, len(reqs))
		for _, r := range reqs[:len(reqs)-held] {
			m.items[keyOf(r.PutRequest.Item)] = r.PutRequest.Item
		}
		if held > 0 {
			out.UnprocessedItems[table] = reqs[len(reqs)-held:]
		}
	}
	return out, nil
}

func newMemDB() *memDB { return &memDB{items: map[[2]string]map[string]types.AttributeValue{}} }

func keyOf(item map[string]types.AttributeValue) [2]string {
	return [2]string{getS(item, contract.AttrPK), getS(item, contract.AttrSK)}
}

func (m *memDB) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if m.fail != nil {
		return nil, m.fail
	}
	m.items[keyOf(in.Item)] = in.Item
	return &dynamodb.PutItemOutput{}, nil
}

func (m *memDB) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return &dynamodb.GetItemOutput{Item: m.items[keyOf(in.Key)]}, nil
}

func (m *memDB) UpdateItem(_ context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if m.fail != nil {
		return nil, m.fail
	}
	m.updates = append(m.updates, in)
	return &dynamodb.UpdateItemOutput{}, nil
}

func (m *memDB) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	m.queries++
	pk := in.ExpressionAttributeValues[":pk"].(*types.AttributeValueMemberS).Value
	prefix := ""
	if p, ok := in.ExpressionAttributeValues[":prefix"]; ok {
		prefix = p.(*types.AttributeValueMemberS).Value
	}
	var keys [][2]string
	for k := range m.items {
		if k[0] == pk && strings.HasPrefix(k[1], prefix) {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][1] < keys[j][1] })
	if in.ScanIndexForward != nil && !*in.ScanIndexForward {
		// Newest first, one page of Limit items: what the ledger asks.
		slices.Reverse(keys)
		if in.Limit != nil && int(*in.Limit) < len(keys) {
			keys = keys[:*in.Limit]
		}
		out := &dynamodb.QueryOutput{}
		for _, k := range keys {
			out.Items = append(out.Items, m.items[k])
		}
		return out, nil
	}
	start := 0
	if in.ExclusiveStartKey != nil {
		last := keyOf(in.ExclusiveStartKey)
		for start < len(keys) && keys[start][1] <= last[1] {
			start++
		}
	}
	out := &dynamodb.QueryOutput{}
	for i := start; i < len(keys) && i < start+2; i++ {
		out.Items = append(out.Items, m.items[keys[i]])
	}
	if start+2 < len(keys) {
		out.LastEvaluatedKey = key(keys[start+1][0], keys[start+1][1])
	}
	return out, nil
}

var fixed = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func newStore(db DB) *Store { return New(db, "state", 90, func() time.Time { return fixed }) }

func TestTargetRoundTripAndPagedWaveQuery(t *testing.T) {
	db := newMemDB()
	s := newStore(db)
	ctx := context.Background()
	var want []contract.TargetResult
	for _, region := range []string{"eu-west-1", "us-east-1", "us-east-2", "us-west-2", "ap-south-1"} {
		r := contract.TargetResult{Account: "222222222222", Region: region, Status: contract.StatusSucceeded,
			CommandIDs: []string{"c-1"}, Counts: contract.Counts{Patched: 1},
			Instances: []contract.InstanceResult{{InstanceID: "i-1", Status: contract.InstancePatched}}}
		if err := s.PutTarget(ctx, TargetKey{"run", "w1", r.Account, region}, r); err != nil {
			t.Fatal(err)
		}
		want = append(want, r)
	}
	// A record of another wave must not be read.
	if err := s.PutTarget(ctx, TargetKey{"run", "w10", "333333333333", "us-east-1"}, contract.TargetResult{Status: contract.StatusFailed}); err != nil {
		t.Fatal(err)
	}
	got, err := s.WaveTargets(ctx, "run", "w1")
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(want, func(i, j int) bool { return want[i].Region < want[j].Region })
	if !reflect.DeepEqual(got, want) {
		t.Errorf("WaveTargets = %+v\nwant %+v", got, want)
	}
	if db.queries != 3 {
		t.Errorf("%d query pages, want 3 (5 records, 2 a page)", db.queries)
	}
	rec, ok, err := s.Target(ctx, TargetKey{"run", "w1", "222222222222", "us-east-1"})
	if err != nil || !ok || rec.Status != contract.StatusSucceeded || !reflect.DeepEqual(rec.CommandIDs, []string{"c-1"}) {
		t.Errorf("Target = %+v, %v, %v", rec, ok, err)
	}
	item := db.items[[2]string{"RUN#run", "TARGET#w1#222222222222#us-east-1"}]
	if exp := item[contract.AttrTTL].(*types.AttributeValueMemberN).Value; exp != "1803895200" {
		t.Errorf("expiresAt = %s, want now + 90 days", exp)
	}
}

func TestAppendCommandAppendsToTheList(t *testing.T) {
	db := newMemDB()
	if err := newStore(db).AppendCommand(context.Background(), TargetKey{"run", "w1", "222222222222", "us-east-1"}, "cmd-9"); err != nil {
		t.Fatal(err)
	}
	in := db.updates[0]
	if !strings.Contains(*in.UpdateExpression, "list_append(if_not_exists(#commandIds, :empty), :ids)") {
		t.Errorf("update expression %q does not append", *in.UpdateExpression)
	}
	ids := in.ExpressionAttributeValues[":ids"].(*types.AttributeValueMemberL).Value
	if len(ids) != 1 || ids[0].(*types.AttributeValueMemberS).Value != "cmd-9" {
		t.Errorf(":ids = %v", ids)
	}
	if got := getS(in.Key, contract.AttrSK); got != contract.TargetSK("w1", "222222222222", "us-east-1") {
		t.Errorf("sk = %s", got)
	}
}

func TestRunReadsEveryKind(t *testing.T) {
	db := newMemDB()
	s := newStore(db)
	ctx := context.Background()
	w := contract.Wave{Index: 1, WaveID: "w2"}
	v := contract.WaveVerdict{WaveID: "w2", Status: contract.StatusFailed, Reason: "1 target(s) failed"}
	targets := []contract.TargetResult{{Account: "222222222222", Region: "us-east-1", Status: contract.StatusFailed, Instances: []contract.InstanceResult{}}}
	if err := s.PutWave(ctx, "run", w, v, targets); err != nil {
		t.Fatal(err)
	}
	if err := s.PutTarget(ctx, TargetKey{"run", "w2", "222222222222", "us-east-1"}, targets[0]); err != nil {
		t.Fatal(err)
	}
	db.items[[2]string{"RUN#run", "RUN"}] = map[string]types.AttributeValue{contract.AttrPK: str("RUN#run"), contract.AttrSK: str("RUN"), "kind": str(KindRun)}
	rr, err := s.Run(ctx, "run")
	if err != nil {
		t.Fatal(err)
	}
	if got := rr.Waves["w2"]; got.Index != 1 || !reflect.DeepEqual(got.Verdict, v) || !reflect.DeepEqual(got.Targets, targets) {
		t.Errorf("wave record = %+v", got)
	}
	if len(rr.Targets["w2"]) != 1 || rr.Run == nil {
		t.Errorf("targets %v, run %v", rr.Targets, rr.Run)
	}
}

func TestWriteFailureIsAStoreFailure(t *testing.T) {
	db := newMemDB()
	db.fail = errors.New("connection reset")
	err := newStore(db).StartRun(context.Background(), contract.Run{RunID: "r"})
	var sf *fault.StoreFailure
	if !errors.As(err, &sf) {
		t.Fatalf("StartRun error %v is not a StoreFailure", err)
	}
	var sse *fault.StateStoreError
	if !errors.As(fault.Boundary(err), &sse) {
		t.Errorf("Boundary(%v) = %T, want StateStoreError", err, fault.Boundary(err))
	}
}
