package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
)

// waitDB adds to memDB what the waits use. It evaluates the waits' few
// conditions (their expressions are asserted separately).
type waitDB struct {
	*memDB
	transactions []*dynamodb.TransactWriteItemsInput
	deletes      []*dynamodb.DeleteItemInput
}

func (m *waitDB) TransactWriteItems(_ context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if m.fail != nil {
		return nil, m.fail
	}
	m.transactions = append(m.transactions, in)
	for _, it := range in.TransactItems {
		m.items[keyOf(it.Put.Item)] = it.Put.Item
	}
	return &dynamodb.TransactWriteItemsOutput{}, nil
}

func (m *waitDB) DeleteItem(_ context.Context, in *dynamodb.DeleteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if m.fail != nil {
		return nil, m.fail
	}
	m.deletes = append(m.deletes, in)
	item, ok := m.items[keyOf(in.Key)]
	if in.ConditionExpression != nil {
		token := in.ExpressionAttributeValues[":token"].(*types.AttributeValueMemberS).Value
		if !ok || getS(item, "taskToken") != token {
			return nil, conditionalFailure()
		}
	}
	delete(m.items, keyOf(in.Key))
	return &dynamodb.DeleteItemOutput{}, nil
}

func (m *waitDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if _, ok := m.items[keyOf(in.Item)]; ok && in.ConditionExpression != nil {
		return nil, conditionalFailure()
	}
	return m.memDB.PutItem(ctx, in, opts...)
}

func (m *waitDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if _, err := m.memDB.UpdateItem(ctx, in, opts...); err != nil {
		return nil, err
	}
	item, ok := m.items[keyOf(in.Key)]
	id := in.ExpressionAttributeNames["#id"]
	if !ok {
		return nil, conditionalFailure()
	}
	statuses := item["commandStatus"].(*types.AttributeValueMemberM).Value
	if _, mine := statuses[id]; !mine {
		return nil, conditionalFailure()
	}
	statuses[id] = in.ExpressionAttributeValues[":status"]
	return &dynamodb.UpdateItemOutput{Attributes: item}, nil
}

func newWaits() (*Waits, *waitDB) {
	db := &waitDB{memDB: newMemDB()}
	return NewWaits(db, "state", 90, func() time.Time { return fixed }), db
}

var aWait = Waiting{RunID: "run", WaveID: "w1", Account: "222222222222", Region: "us-east-1", ExecutionID: "exec",
	TaskToken: "token-1", CommandIDs: []string{"cmd-1", "cmd-2"}, Deadline: fixed.Add(time.Hour)}

func TestRegisterWritesOneTransaction(t *testing.T) {
	w, db := newWaits()
	if err := w.Register(context.Background(), aWait); err != nil {
		t.Fatal(err)
	}
	if len(db.transactions) != 1 || len(db.transactions[0].TransactItems) != 3 {
		t.Fatalf("%d transactions, want one with the waiting record and two lookup records", len(db.transactions))
	}
	waiting := db.items[[2]string{contract.WaitingPK, "run#w1#222222222222#us-east-1#exec"}]
	if getS(waiting, "taskToken") != "token-1" || getS(waiting, "kind") != KindWaiting {
		t.Errorf("waiting record %v", waiting)
	}
	if d := waiting["deadline"].(*types.AttributeValueMemberN).Value; d != "1796122800" {
		t.Errorf("deadline %s, want epoch seconds of now + 1 h", d)
	}
	// Kept for the record retention (90 days) past the deadline.
	if exp := waiting[contract.AttrTTL].(*types.AttributeValueMemberN).Value; exp != "1803898800" {
		t.Errorf("expiresAt %s", exp)
	}
	lookup := db.items[[2]string{"COMMAND#cmd-2", contract.CommandSK("exec")}]
	if getS(lookup, "waitingSk") != aWait.SK() || getS(lookup, "account") != aWait.Account {
		t.Errorf("lookup record %v", lookup)
	}

	got, err := w.Waitings(context.Background())
	want := aWait
	want.CommandStatus = map[string]string{"cmd-1": CommandPending, "cmd-2": CommandPending}
	want.Deadline = want.Deadline.UTC()
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("Waitings = %+v, %v\nwant %+v", got, err, want)
	}
}

func TestRegisterManyCommands(t *testing.T) {
	w, db := newWaits()
	many := aWait
	many.CommandIDs = nil
	for i := range 150 {
		many.CommandIDs = append(many.CommandIDs, fmt.Sprintf("cmd-%03d", i))
	}
	if err := w.Register(context.Background(), many); err != nil {
		t.Fatal(err)
	}
	if len(db.transactions) != 2 {
		t.Fatalf("%d transactions for 151 records, want 2", len(db.transactions))
	}
	last := db.transactions[1].TransactItems
	if getS(last[len(last)-1].Put.Item, contract.AttrPK) != contract.WaitingPK {
		t.Error("the waiting record is not written last, after every lookup record")
	}
	for _, tx := range db.transactions {
		if len(tx.TransactItems) > maxTransactItems {
			t.Errorf("a transaction of %d items", len(tx.TransactItems))
		}
	}
}

func TestLookupRecordStatusAndFinish(t *testing.T) {
	w, db := newWaits()
	ctx := context.Background()
	if err := w.Register(ctx, aWait); err != nil {
		t.Fatal(err)
	}
	refs, err := w.Commands(ctx, "cmd-1")
	if err != nil || len(refs) != 1 || refs[0] != (CommandRef{WaitingSK: aWait.SK(), Account: aWait.Account, Region: aWait.Region}) {
		t.Fatalf("Commands = %+v, %v", refs, err)
	}
	if refs, _ := w.Commands(ctx, "cmd-9"); len(refs) != 0 {
		t.Error("an unknown command was found")
	}
	// A second execution of the run waiting on the same commands gets its
	// own waiting and lookup records: neither replaces the other's token.
	second := aWait
	second.ExecutionID, second.TaskToken = "exec-2", "token-b"
	if err := w.Register(ctx, second); err != nil {
		t.Fatal(err)
	}
	if refs, _ := w.Commands(ctx, "cmd-1"); len(refs) != 2 || refs[0].WaitingSK == refs[1].WaitingSK {
		t.Fatalf("lookups for two waiting executions = %+v", refs)
	}
	if won, err := w.Finish(ctx, second); !won || err != nil {
		t.Fatalf("Finish of the second execution = %v, %v", won, err)
	}
	if err := w.Forget(ctx, second); err != nil {
		t.Fatal(err)
	}

	got, ok, err := w.RecordStatus(ctx, aWait.SK(), "cmd-1", "Success")
	if err != nil || !ok || got.CommandStatus["cmd-1"] != "Success" || got.CommandStatus["cmd-2"] != CommandPending {
		t.Fatalf("RecordStatus = %+v, %v, %v", got, ok, err)
	}
	in := db.updates[len(db.updates)-1]
	if *in.UpdateExpression != "SET #cs.#id = :status, #updatedAt = :now" ||
		*in.ConditionExpression != "attribute_exists(#cs.#id)" || in.ReturnValues != types.ReturnValueAllNew {
		t.Errorf("update %q if %q returning %s", *in.UpdateExpression, *in.ConditionExpression, in.ReturnValues)
	}
	if _, ok, err := w.RecordStatus(ctx, aWait.SK(), "cmd-9", "Success"); ok || err != nil {
		t.Errorf("status of a command not of the wait: %v, %v", ok, err)
	}

	stale := aWait
	stale.TaskToken = "token-0"
	if won, err := w.Finish(ctx, stale); won || err != nil {
		t.Errorf("Finish with another token = %v, %v", won, err)
	}
	if won, err := w.Finish(ctx, aWait); !won || err != nil {
		t.Fatalf("Finish = %v, %v", won, err)
	}
	if cond := *db.deletes[len(db.deletes)-1].ConditionExpression; cond != "#taskToken = :token" {
		t.Errorf("delete condition %q", cond)
	}
	if won, err := w.Finish(ctx, aWait); won || err != nil {
		t.Errorf("second Finish = %v, %v, want lost", won, err)
	}
	if _, ok, err := w.RecordStatus(ctx, aWait.SK(), "cmd-2", "Failed"); ok || err != nil {
		t.Errorf("status after the wait finished: %v, %v", ok, err)
	}

	if err := w.Restore(ctx, aWait); err != nil {
		t.Fatal(err)
	}
	if list, _ := w.Waitings(ctx); len(list) != 1 || list[0].TaskToken != "token-1" {
		t.Errorf("restored %+v", list)
	}
	newer := aWait
	newer.TaskToken = "token-2"
	if err := w.Restore(ctx, newer); err != nil {
		t.Errorf("Restore over a newer record: %v", err)
	}
	if list, _ := w.Waitings(ctx); list[0].TaskToken != "token-1" {
		t.Error("Restore replaced an existing record")
	}

	if err := w.Forget(ctx, aWait); err != nil {
		t.Fatal(err)
	}
	if refs, _ := w.Commands(ctx, "cmd-1"); len(refs) != 0 {
		t.Errorf("forgotten lookup records were found: %+v", refs)
	}
}

func TestWaitsStoreFailure(t *testing.T) {
	w, db := newWaits()
	db.fail = fmt.Errorf("boom")
	err := w.Register(context.Background(), aWait)
	var sf *fault.StoreFailure
	if !errors.As(err, &sf) || !strings.Contains(err.Error(), "register the wait of 222222222222/us-east-1") {
		t.Errorf("Register = %v, want a StoreFailure naming the target", err)
	}
}
