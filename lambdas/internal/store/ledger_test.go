package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
)

func ledgerRows(db *memDB) int {
	n := 0
	for _, item := range db.items {
		if getS(item, "kind") == KindLedger {
			n++
		}
	}
	return n
}

func bigResult(n int) contract.TargetResult {
	r := contract.TargetResult{Account: "222222222222", Region: "us-east-1", Status: contract.StatusSucceeded,
		CommandID: "cmd-1", CommandIDs: []string{"cmd-1", "cmd-2"}}
	for i := range n {
		in := contract.InstanceResult{InstanceID: fmt.Sprintf("i-%04d", i), Status: contract.InstancePatched, CommandID: "cmd-1"}
		switch i % 10 {
		case 1:
			in = contract.InstanceResult{InstanceID: in.InstanceID, Status: contract.InstanceSkipped, Reason: contract.ReasonStopped}
		case 2:
			in = contract.InstanceResult{InstanceID: in.InstanceID, Status: contract.InstanceFailed, Reason: "command Failed"}
		}
		r.Instances = append(r.Instances, in)
	}
	r.Counts = contract.Count(r.Instances)
	return r
}

func TestFinishTargetWritesOneLedgerRowPerInstanceInChunksOf25(t *testing.T) {
	db := newMemDB()
	s := newStore(db)
	k := TargetKey{"run-1", "w1", "222222222222", "us-east-1"}
	got, err := s.FinishTarget(context.Background(), k, bigResult(60), contract.OperationInstall)
	if err != nil {
		t.Fatal(err)
	}
	if got.FinishedAt != fixed.Format(time.RFC3339) || got.StartedAt != got.FinishedAt {
		t.Errorf("times %s..%s, want both %s (no claim)", got.StartedAt, got.FinishedAt, fixed.Format(time.RFC3339))
	}
	if rows := ledgerRows(db); rows != 60 {
		t.Errorf("%d ledger rows, want 60", rows)
	}
	if fmt.Sprint(db.batches) != "[25 25 10]" {
		t.Errorf("BatchWriteItem sizes %v, want [25 25 10]", db.batches)
	}
	rec, ok, err := s.Target(context.Background(), k)
	if err != nil || !ok || rec.Result.FinishedAt != got.FinishedAt {
		t.Fatalf("target record %+v %v %v: want the result with its FinishedAt", rec.Result, ok, err)
	}

	// The same result again (a retry) lands on the same rows.
	db.batches = nil
	s.now = func() time.Time { return fixed.Add(time.Hour) }
	again, err := s.FinishTarget(context.Background(), k, bigResult(60), contract.OperationInstall)
	if err != nil {
		t.Fatal(err)
	}
	if again.FinishedAt != got.FinishedAt {
		t.Errorf("rewritten result finished at %s, want the first %s kept", again.FinishedAt, got.FinishedAt)
	}
	if rows := ledgerRows(db); rows != 60 {
		t.Errorf("%d ledger rows after the same result twice, want 60", rows)
	}
}

func TestLedgerRowFields(t *testing.T) {
	db := newMemDB()
	s := newStore(db)
	k := TargetKey{"run-1", "w1", "222222222222", "us-east-1"}
	// The send claimed the target 10 minutes before the verification.
	claim := key(contract.RunPK(k.RunID), contract.TargetSK(k.WaveID, k.Account, k.Region))
	claim["claimedAt"] = num(fmt.Sprint(fixed.Add(-10 * time.Minute).Unix()))
	db.items[keyOf(claim)] = claim
	r, err := s.FinishTarget(context.Background(), k, bigResult(3), contract.OperationInstall)
	if err != nil {
		t.Fatal(err)
	}
	if r.StartedAt != fixed.Add(-10*time.Minute).Format(time.RFC3339) {
		t.Errorf("StartedAt %s, want the claim's time", r.StartedAt)
	}
	at := fixed.Format(time.RFC3339)
	want := map[string]contract.LedgerEntry{
		"i-0000": {Account: k.Account, Region: k.Region, InstanceID: "i-0000", RunID: "run-1", WaveID: "w1",
			Status: contract.InstancePatched, CommandID: "cmd-1", Operation: contract.OperationInstall, At: at},
		"i-0001": {Account: k.Account, Region: k.Region, InstanceID: "i-0001", RunID: "run-1", WaveID: "w1",
			Status: contract.InstanceSkipped, Reason: contract.ReasonStopped, Operation: contract.OperationInstall, At: at},
		// No command of its own: the target's commands.
		"i-0002": {Account: k.Account, Region: k.Region, InstanceID: "i-0002", RunID: "run-1", WaveID: "w1",
			Status: contract.InstanceFailed, Reason: "command Failed", CommandID: "cmd-1 cmd-2",
			Operation: contract.OperationInstall, At: at},
	}
	for id, w := range want {
		item := db.items[[2]string{contract.LedgerPK(k.Account, k.Region, id), contract.LedgerSK(at, "run-1")}]
		if item == nil {
			t.Fatalf("no ledger row for %s", id)
		}
		if _, ok := item[contract.AttrTTL].(*types.AttributeValueMemberN); !ok {
			t.Errorf("ledger row of %s has no TTL", id)
		}
		hist, err := s.InstanceHistory(context.Background(), k.Account, k.Region, id, 1)
		if err != nil || len(hist) != 1 || hist[0] != w {
			t.Errorf("InstanceHistory(%s) = %+v, %v; want [%+v]", id, hist, err, w)
		}
	}
}

func TestInstanceHistoryIsNewestFirstInOneQuery(t *testing.T) {
	db := newMemDB()
	s := newStore(db)
	for i, run := range []string{"run-a", "run-b", "run-c"} {
		s.now = func() time.Time { return fixed.Add(time.Duration(i) * 24 * time.Hour) }
		r := contract.TargetResult{Account: "222222222222", Region: "us-east-1", Status: contract.StatusSucceeded,
			Instances: []contract.InstanceResult{{InstanceID: "i-1", Status: contract.InstancePatched}}}
		if _, err := s.FinishTarget(context.Background(), TargetKey{run, "w1", r.Account, r.Region}, r, contract.OperationInstall); err != nil {
			t.Fatal(err)
		}
	}
	db.queries = 0
	hist, err := s.InstanceHistory(context.Background(), "222222222222", "us-east-1", "i-1", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].RunID != "run-c" || hist[1].RunID != "run-b" || db.queries != 1 {
		t.Errorf("history %+v in %d queries, want run-c then run-b in 1", hist, db.queries)
	}
}

func TestUnprocessedLedgerRowsAreRetriedThenFailLoudly(t *testing.T) {
	db := newMemDB()
	s := newStore(db)
	var waits []time.Duration
	s.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	db.unprocessed = 5
	k := TargetKey{"run-1", "w1", "222222222222", "us-east-1"}
	_, err := s.FinishTarget(context.Background(), k, bigResult(10), contract.OperationInstall)
	var sf *fault.StoreFailure
	if !errors.As(err, &sf) {
		t.Fatalf("err = %v, want a StoreFailure when rows stay unprocessed", err)
	}
	if len(waits) != ledgerAttempts-1 || waits[1] <= waits[0] {
		t.Errorf("waits %v, want %d growing pauses", waits, ledgerAttempts-1)
	}

	// Throttled once, then written: every row lands.
	db2 := newMemDB()
	s2 := newStore(db2)
	s2.sleep = func(context.Context, time.Duration) error { db2.unprocessed = 0; return nil }
	db2.unprocessed = 4
	if _, err := s2.FinishTarget(context.Background(), k, bigResult(10), contract.OperationInstall); err != nil {
		t.Fatal(err)
	}
	if rows := ledgerRows(db2); rows != 10 || fmt.Sprint(db2.batches) != "[10 4]" {
		t.Errorf("%d rows in batches %v, want 10 in [10 4]", rows, db2.batches)
	}
}

// ownedDB refuses every conditional put, as DynamoDB does when the record
// holds another execution's commands.
type ownedDB struct{ *memDB }

func (d ownedDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if in.ConditionExpression != nil {
		return nil, &types.ConditionalCheckFailedException{Message: aws.String("owned")}
	}
	return d.memDB.PutItem(ctx, in, opts...)
}

func TestFinishTargetUnlessOwnedWritesTheLedgerOnlyWithTheRecord(t *testing.T) {
	k := TargetKey{"run-1", "w1", "222222222222", "us-east-1"}
	db := newMemDB()
	_, written, err := newStore(db).FinishTargetUnlessOwned(context.Background(), k, bigResult(2), contract.OperationScan, "exec-a")
	if err != nil || !written || ledgerRows(db) != 2 {
		t.Fatalf("written %v err %v rows %d, want written with 2 rows", written, err, ledgerRows(db))
	}
	owned := ownedDB{newMemDB()}
	_, written, err = newStore(owned).FinishTargetUnlessOwned(context.Background(), k, bigResult(2), contract.OperationScan, "exec-b")
	if err != nil || written || ledgerRows(owned.memDB) != 0 {
		t.Errorf("written %v err %v rows %d, want neither record nor rows", written, err, ledgerRows(owned.memDB))
	}
}
