package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
)

// Records of waiting targets. A target that sent its commands waits in the
// partition WAITING until its commands end; each command has a lookup
// record that leads an SSM status event to the target:
//
//	pk                  sk                                   kind     attributes
//	WAITING             <runId>#<waveId>#<account>#<region>  WAITING  taskToken, executionId,
//	                                                                  runId, waveId, account, region,
//	                                                                  commandIds (list), commandStatus
//	                                                                  (map command ID -> status,
//	                                                                  "pending" until it ended),
//	                                                                  deadline (epoch seconds)
//	COMMAND#<commandId> COMMAND                              COMMAND  waitingSk, runId, account, region
//
// Finishing a wait deletes the waiting record under a condition on its task
// token, so of an event and a reconcile racing, exactly one resumes it.
const (
	KindWaiting = "WAITING"
	KindCommand = "COMMAND"
)

// CommandPending is a command's status until an event or the reconciler
// saw it end.
const CommandPending = "pending"

// maxTransactItems is DynamoDB's limit of items in one TransactWriteItems.
const maxTransactItems = 100

// WaitDB is the part of the DynamoDB API the waits use: the run records'
// calls, plus deletes and transactions.
type WaitDB interface {
	DB
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

var _ WaitDB = (*dynamodb.Client)(nil)

// Waits reads and writes the waiting and lookup records. It is apart from
// Store because it needs more of DynamoDB than the run records do.
type Waits struct {
	db    WaitDB
	table string
	ttl   time.Duration
	now   func() time.Time
}

// NewWaits returns Waits on table; records expire ttlDays after the wait's
// deadline. now is time.Now when nil.
func NewWaits(db WaitDB, table string, ttlDays int, now func() time.Time) *Waits {
	if now == nil {
		now = time.Now
	}
	return &Waits{db: db, table: table, ttl: time.Duration(ttlDays) * 24 * time.Hour, now: now}
}

// Waiting is one target waiting for its commands.
type Waiting struct {
	RunID       string
	WaveID      string
	Account     string
	Region      string
	ExecutionID string
	TaskToken   string
	CommandIDs  []string
	// CommandStatus is each command's last known status: CommandPending,
	// or the terminal status an event or the reconciler recorded.
	CommandStatus map[string]string
	Deadline      time.Time
}

// SK is the waiting record's sort key.
func (w Waiting) SK() string {
	return contract.WaitingSK(w.RunID, w.WaveID, w.Account, w.Region, w.ExecutionID)
}

// Statuses are the commands' statuses in CommandIDs order.
func (w Waiting) Statuses() []string {
	out := make([]string, len(w.CommandIDs))
	for i, id := range w.CommandIDs {
		out[i] = w.CommandStatus[id]
	}
	return out
}

func (s *Waits) waitingItem(w Waiting) map[string]types.AttributeValue {
	now := s.now().UTC()
	ids := make([]types.AttributeValue, len(w.CommandIDs))
	for i, id := range w.CommandIDs {
		ids[i] = str(id)
	}
	status := make(map[string]types.AttributeValue, len(w.CommandIDs))
	for _, id := range w.CommandIDs {
		st := w.CommandStatus[id]
		if st == "" {
			st = CommandPending
		}
		status[id] = str(st)
	}
	item := key(contract.WaitingPK, w.SK())
	item["kind"], item["taskToken"], item["executionId"] = str(KindWaiting), str(w.TaskToken), str(w.ExecutionID)
	item["runId"], item["waveId"], item["account"], item["region"] = str(w.RunID), str(w.WaveID), str(w.Account), str(w.Region)
	item["commandIds"] = &types.AttributeValueMemberL{Value: ids}
	item["commandStatus"] = &types.AttributeValueMemberM{Value: status}
	item["deadline"] = num(strconv.FormatInt(w.Deadline.Unix(), 10))
	item["updatedAt"] = str(now.Format(time.RFC3339))
	item[contract.AttrTTL] = num(strconv.FormatInt(s.expiry(w), 10))
	return item
}

// expiry keeps the records for the retention past the deadline, so an
// orphan (a wait nobody finished) is cleaned up in the end.
func (s *Waits) expiry(w Waiting) int64 { return w.Deadline.Add(s.ttl).Unix() }

// Register writes a waiting record with every command pending and one
// lookup record per command, in one transaction. A target with more
// commands than a transaction holds gets its first lookup records in
// earlier transactions: a lookup record without its waiting record leads
// an event nowhere, which is harmless. Registering again (a retried task,
// with a new token) replaces the record.
func (s *Waits) Register(ctx context.Context, w Waiting) error {
	exp := num(strconv.FormatInt(s.expiry(w), 10))
	now := str(s.now().UTC().Format(time.RFC3339))
	w.CommandStatus = nil
	items := make([]types.TransactWriteItem, 0, len(w.CommandIDs)+1)
	for _, id := range w.CommandIDs {
		item := key(contract.CommandPK(id), contract.CommandSK(w.ExecutionID))
		item["kind"], item["waitingSk"], item["runId"] = str(KindCommand), str(w.SK()), str(w.RunID)
		item["account"], item["region"], item["updatedAt"], item[contract.AttrTTL] = str(w.Account), str(w.Region), now, exp
		items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: item}})
	}
	items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: s.waitingItem(w)}})
	for len(items) > 0 {
		// The last chunk holds the waiting record: it is written last.
		n := len(items) % maxTransactItems
		if n == 0 {
			n = maxTransactItems
		}
		_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items[:n]})
		if err != nil {
			return &fault.StoreFailure{Op: fmt.Sprintf("register the wait of %s/%s", w.Account, w.Region), Err: err}
		}
		items = items[n:]
	}
	return nil
}

// CommandRef is what a command's lookup record holds.
type CommandRef struct {
	WaitingSK string
	Account   string
	Region    string
}

// Commands reads a command's lookup records, one per execution waiting on
// it. None means the command is not ec2patch's, or every wait on it was
// finished.
func (s *Waits) Commands(ctx context.Context, commandID string) ([]CommandRef, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": contract.AttrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(contract.CommandPK(commandID))},
		ConsistentRead:            aws.Bool(true),
	}
	var refs []CommandRef
	for {
		page, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, &fault.StoreFailure{Op: "read lookup records of command " + commandID, Err: err}
		}
		for _, item := range page.Items {
			refs = append(refs, CommandRef{WaitingSK: getS(item, "waitingSk"), Account: getS(item, "account"),
				Region: getS(item, "region")})
		}
		if len(page.LastEvaluatedKey) == 0 {
			return refs, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// RecordStatus records a command's status on its waiting record and
// returns the record as it is now. ok is false when there is no such wait
// (finished already) or the command is not one of its commands.
func (s *Waits) RecordStatus(ctx context.Context, waitingSK, commandID, status string) (w Waiting, ok bool, err error) {
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.table),
		Key:                 key(contract.WaitingPK, waitingSK),
		UpdateExpression:    aws.String("SET #cs.#id = :status, #updatedAt = :now"),
		ConditionExpression: aws.String("attribute_exists(#cs.#id)"),
		ExpressionAttributeNames: map[string]string{"#cs": "commandStatus", "#id": commandID,
			"#updatedAt": "updatedAt"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":status": str(status),
			":now": str(s.now().UTC().Format(time.RFC3339))},
		ReturnValues: types.ReturnValueAllNew,
	})
	if conditionFailed(err) {
		return Waiting{}, false, nil
	}
	if err != nil {
		return Waiting{}, false, &fault.StoreFailure{Op: "record the status of command " + commandID, Err: err}
	}
	return decodeWaiting(out.Attributes), true, nil
}

// CountPass counts one more reconcile pass over a waiting record and
// returns the count. ok is false when the wait was finished meanwhile.
func (s *Waits) CountPass(ctx context.Context, waitingSK string) (passes int, ok bool, err error) {
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(contract.WaitingPK, waitingSK),
		UpdateExpression:          aws.String("ADD #passes :one"),
		ConditionExpression:       aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames:  map[string]string{"#passes": "passes", "#pk": contract.AttrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": num("1")},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if conditionFailed(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, &fault.StoreFailure{Op: "count a reconcile pass", Err: err}
	}
	if n, ok := out.Attributes["passes"].(*types.AttributeValueMemberN); ok {
		passes, _ = strconv.Atoi(n.Value)
	}
	return passes, true, nil
}

// Waitings reads every waiting record, page by page.
func (s *Waits) Waitings(ctx context.Context) ([]Waiting, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": contract.AttrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(contract.WaitingPK)},
		ConsistentRead:            aws.Bool(true),
	}
	var out []Waiting
	for {
		page, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, &fault.StoreFailure{Op: "query waiting targets", Err: err}
		}
		for _, item := range page.Items {
			out = append(out, decodeWaiting(item))
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// Finish deletes a waiting record if it still holds w's task token. won
// is false when it does not (another finisher won, or the target
// registered again with a new token): the caller must not resume it.
func (s *Waits) Finish(ctx context.Context, w Waiting) (won bool, err error) {
	_, err = s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(contract.WaitingPK, w.SK()),
		ConditionExpression:       aws.String("#taskToken = :token"),
		ExpressionAttributeNames:  map[string]string{"#taskToken": "taskToken"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":token": str(w.TaskToken)},
	})
	if conditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, &fault.StoreFailure{Op: fmt.Sprintf("finish the wait of %s/%s", w.Account, w.Region), Err: err}
	}
	return true, nil
}

// Restore puts back a waiting record that Finish deleted but whose task
// could not be told, so the next event or reconcile tries again. It leaves
// a record written since (a new registration) alone.
func (s *Waits) Restore(ctx context.Context, w Waiting) error {
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(s.table),
		Item:                     s.waitingItem(w),
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": contract.AttrPK},
	})
	if err != nil && !conditionFailed(err) {
		return &fault.StoreFailure{Op: fmt.Sprintf("restore the wait of %s/%s", w.Account, w.Region), Err: err}
	}
	return nil
}

// Forget deletes a finished wait's lookup records (its execution's only),
// so later events about its commands stop at the lookup.
func (s *Waits) Forget(ctx context.Context, w Waiting) error {
	for _, id := range w.CommandIDs {
		_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: aws.String(s.table),
			Key:       key(contract.CommandPK(id), contract.CommandSK(w.ExecutionID)),
		})
		if err != nil {
			return &fault.StoreFailure{Op: "delete lookup record of command " + id, Err: err}
		}
	}
	return nil
}

func decodeWaiting(item map[string]types.AttributeValue) Waiting {
	w := Waiting{RunID: getS(item, "runId"), WaveID: getS(item, "waveId"), Account: getS(item, "account"),
		Region: getS(item, "region"), ExecutionID: getS(item, "executionId"), TaskToken: getS(item, "taskToken"),
		CommandIDs: []string{}, CommandStatus: map[string]string{}}
	if l, ok := item["commandIds"].(*types.AttributeValueMemberL); ok {
		for _, v := range l.Value {
			if s, ok := v.(*types.AttributeValueMemberS); ok {
				w.CommandIDs = append(w.CommandIDs, s.Value)
			}
		}
	}
	if m, ok := item["commandStatus"].(*types.AttributeValueMemberM); ok {
		for id, v := range m.Value {
			if s, ok := v.(*types.AttributeValueMemberS); ok {
				w.CommandStatus[id] = s.Value
			}
		}
	}
	if n, ok := item["deadline"].(*types.AttributeValueMemberN); ok {
		sec, _ := strconv.ParseInt(n.Value, 10, 64)
		w.Deadline = time.Unix(sec, 0).UTC()
	}
	return w
}
