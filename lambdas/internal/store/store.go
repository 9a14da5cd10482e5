// Package store keeps a run's state in the hub's DynamoDB table. It is the
// only package that knows the record layout; every handler goes through it.
//
// One table, string partition key pk and sort key sk, TTL on expiresAt. All
// records of a run share the partition RUN#<runId>:
//
//	sk                                 kind    attributes
//	RUN                                RUN     runId, status (RUNNING, then the run status), run (JSON
//	                                           contract.Run), startedAt, starts (count of starts),
//	                                           and once reported: totals (JSON contract.Counts),
//	                                           reportUri, csvUri, finishedAt
//	WAVE#<index>#<waveId>              WAVE    waveId, index, status, reason, counts, verdict (JSON
//	                                           contract.WaveVerdict), targets (JSON
//	                                           []contract.TargetResult, left out with targetsOmitted
//	                                           when too large for one item)
//	TARGET#<waveId>#<account>#<region> TARGET  waveId, account, region, status (SENDING while
//	                                           commands go out, then SUCCEEDED, FAILED or SKIPPED),
//	                                           reason, counts, commandIds (list, appended one
//	                                           command at a time), result (JSON
//	                                           contract.TargetResult, once verified or failed),
//	                                           owner and claimedAt (epoch seconds): the execution
//	                                           that claimed the send
//	PREVIEW#<waveId>#<account>#<region> PREVIEW waveId, account, region, preview (JSON
//	                                           contract.PreviewSummary)
//	APPROVAL#<waveId>                  DECISION waveId, decision (JSON contract.ApprovalDecision)
//
// An approval gate has a partition of its own, APPROVAL#<approvalId>, so
// the callback finds it by the ID a link carries:
//
//	APPROVAL                           APPROVAL approvalId, taskToken, runId, waveId, status
//	                                           (PENDING, then APPROVED, REJECTED or EXPIRED),
//	                                           linkExpiresAt (epoch seconds), createdAt, and once
//	                                           decided: decision, decidedBy, decidedAt, sourceIp
//
// Targets waiting for their commands have the partition WAITING, and each
// of their commands a lookup record of its own (see Waits in waits.go).
//
// The instance ledger keeps one row per instance per recorded target
// result, in the instance's own partition (see FinishTarget):
//
//	pk INSTANCE#<account>#<region>#<instanceId>, sk LEDGER#<at>#<runId>
//	                                   LEDGER  the fields of contract.LedgerEntry
//
// Every record also has updatedAt (RFC 3339) and expiresAt (epoch seconds).
// The JSON attributes hold exactly the contract's types, so readers decode
// what writers encoded without a second schema.
package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
)

// Record kinds.
const (
	KindRun    = "RUN"
	KindWave   = "WAVE"
	KindTarget = "TARGET"
)

// StatusSending is a target's status while its commands are being sent.
const StatusSending = "SENDING"

// maxTargetsJSON keeps a wave record under DynamoDB's 400 KB item limit; a
// larger wave's targets are rebuilt from its target records.
const maxTargetsJSON = 300 * 1024

// DB is the part of the DynamoDB API the store uses.
type DB interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// Store reads and writes one run's records.
type Store struct {
	db    DB
	table string
	ttl   time.Duration
	now   func() time.Time
	// sleep waits between retries of unprocessed ledger rows; tests
	// replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// New returns a Store on table whose records expire ttlDays after their
// last write. now is time.Now when nil.
func New(db DB, table string, ttlDays int, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, table: table, ttl: time.Duration(ttlDays) * 24 * time.Hour, now: now, sleep: sleepCtx}
}

// TargetKey names one target's record.
type TargetKey struct {
	RunID   string
	WaveID  string
	Account string
	Region  string
}

// Target is what a target record holds.
type Target struct {
	Status     string
	Reason     string
	CommandIDs []string
	// Owner is the execution that claimed the send ("" if none did).
	Owner string
	// Result is the recorded outcome; nil while the target is in progress.
	Result *contract.TargetResult
}

// WaveRecord is what a wave record holds.
type WaveRecord struct {
	Index   int
	Verdict contract.WaveVerdict
	// Targets are the judged target results; nil when they were too large
	// for the record (rebuild them from the target records).
	Targets []contract.TargetResult
}

// RunRecords are every record of a run, by kind.
type RunRecords struct {
	Run     map[string]types.AttributeValue
	Waves   map[string]WaveRecord              // by wave ID
	Targets map[string][]contract.TargetResult // recorded results, by wave ID
	// Decisions are the approval gates' decisions, by wave ID.
	Decisions map[string]contract.ApprovalDecision
}

func (s *Store) stamp() (string, string) {
	now := s.now().UTC()
	return now.Format(time.RFC3339), strconv.FormatInt(now.Add(s.ttl).Unix(), 10)
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		contract.AttrPK: &types.AttributeValueMemberS{Value: pk},
		contract.AttrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func num(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }

func jsonAttr(v any) (types.AttributeValue, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return str(string(b)), nil
}

func countsAttr(c contract.Counts) (types.AttributeValue, error) {
	return attributevalue.MarshalWithOptions(c, func(o *attributevalue.EncoderOptions) { o.TagKey = "json" })
}

// StartRun writes the RUN record as RUNNING. A second start of the same run
// updates it (and counts the start); the run's other records stay, so the
// targets it already patched are reused.
func (s *Store) StartRun(ctx context.Context, run contract.Run) error {
	now, exp := s.stamp()
	runJSON, err := jsonAttr(run)
	if err != nil {
		return fmt.Errorf("encode run: %w", err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table),
		Key:       key(contract.RunPK(run.RunID), contract.SKRun),
		UpdateExpression: aws.String("SET #kind = :kind, #runId = :runId, #status = :status, #run = :run, " +
			"#startedAt = :startedAt, #updatedAt = :now, #ttl = :ttl ADD #starts :one REMOVE #finishedAt"),
		ExpressionAttributeNames: map[string]string{"#kind": "kind", "#runId": "runId", "#status": "status",
			"#run": "run", "#startedAt": "startedAt", "#updatedAt": "updatedAt", "#ttl": contract.AttrTTL,
			"#starts": "starts", "#finishedAt": "finishedAt"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":kind": str(KindRun), ":runId": str(run.RunID),
			":status": str(contract.StatusRunning), ":run": runJSON, ":startedAt": str(run.StartedAt),
			":now": str(now), ":ttl": num(exp), ":one": num("1")},
	})
	if err != nil {
		return &fault.StoreFailure{Op: "write RUN record of " + run.RunID, Err: err}
	}
	return nil
}

// FinishRun records the run's final status, totals and report locations.
func (s *Store) FinishRun(ctx context.Context, sum contract.ReportSummary, finishedAt string) error {
	now, exp := s.stamp()
	totals, err := jsonAttr(sum.Totals)
	if err != nil {
		return fmt.Errorf("encode totals: %w", err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table),
		Key:       key(contract.RunPK(sum.RunID), contract.SKRun),
		UpdateExpression: aws.String("SET #kind = :kind, #runId = :runId, #status = :status, #totals = :totals, " +
			"#reportUri = :reportUri, #csvUri = :csvUri, #finishedAt = :finishedAt, #updatedAt = :now, #ttl = :ttl"),
		ExpressionAttributeNames: map[string]string{"#kind": "kind", "#runId": "runId", "#status": "status",
			"#totals": "totals", "#reportUri": "reportUri", "#csvUri": "csvUri", "#finishedAt": "finishedAt",
			"#updatedAt": "updatedAt", "#ttl": contract.AttrTTL},
		ExpressionAttributeValues: map[string]types.AttributeValue{":kind": str(KindRun), ":runId": str(sum.RunID),
			":status": str(sum.Status), ":totals": totals, ":reportUri": str(sum.ReportURI), ":csvUri": str(sum.CSVURI),
			":finishedAt": str(finishedAt), ":now": str(now), ":ttl": num(exp)},
	})
	if err != nil {
		return &fault.StoreFailure{Op: "update RUN record of " + sum.RunID, Err: err}
	}
	return nil
}

// Target reads one target's record, strongly consistent, so a retry sees
// the commands its first attempt recorded. ok is false when there is none.
func (s *Store) Target(ctx context.Context, k TargetKey) (t Target, ok bool, err error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            key(contract.RunPK(k.RunID), contract.TargetSK(k.WaveID, k.Account, k.Region)),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Target{}, false, &fault.StoreFailure{Op: "read target record " + k.Account + "/" + k.Region, Err: err}
	}
	if len(out.Item) == 0 {
		return Target{}, false, nil
	}
	t, err = decodeTarget(out.Item)
	if err != nil {
		return Target{}, false, err
	}
	return t, true, nil
}

// AppendCommand records one sent command on a target before the next batch
// goes out, so a retry after a crash never sends a batch twice.
func (s *Store) AppendCommand(ctx context.Context, k TargetKey, commandID string) error {
	now, exp := s.stamp()
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table),
		Key:       key(contract.RunPK(k.RunID), contract.TargetSK(k.WaveID, k.Account, k.Region)),
		UpdateExpression: aws.String("SET #commandIds = list_append(if_not_exists(#commandIds, :empty), :ids), " +
			"#status = :status, #kind = :kind, #waveId = :waveId, #account = :account, #region = :region, " +
			"#updatedAt = :now, #ttl = :ttl"),
		ExpressionAttributeNames: map[string]string{"#commandIds": "commandIds", "#status": "status", "#kind": "kind",
			"#waveId": "waveId", "#account": "account", "#region": "region", "#updatedAt": "updatedAt",
			"#ttl": contract.AttrTTL},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":empty":  &types.AttributeValueMemberL{Value: []types.AttributeValue{}},
			":ids":    &types.AttributeValueMemberL{Value: []types.AttributeValue{str(commandID)}},
			":status": str(StatusSending), ":kind": str(KindTarget), ":waveId": str(k.WaveID),
			":account": str(k.Account), ":region": str(k.Region), ":now": str(now), ":ttl": num(exp)},
	})
	if err != nil {
		return &fault.StoreFailure{Op: fmt.Sprintf("record command %s on target %s/%s", commandID, k.Account, k.Region), Err: err}
	}
	return nil
}

// PutTarget records a target's full result, replacing the record.
func (s *Store) PutTarget(ctx context.Context, k TargetKey, r contract.TargetResult) error {
	item, err := s.targetItem(k, r)
	if err != nil {
		return err
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return &fault.StoreFailure{Op: fmt.Sprintf("write target record %s/%s", k.Account, k.Region), Err: err}
	}
	return nil
}

// targetItem is the whole target record of a result.
func (s *Store) targetItem(k TargetKey, r contract.TargetResult) (map[string]types.AttributeValue, error) {
	now, exp := s.stamp()
	item := key(contract.RunPK(k.RunID), contract.TargetSK(k.WaveID, k.Account, k.Region))
	result, err := jsonAttr(r)
	if err != nil {
		return nil, fmt.Errorf("encode target result: %w", err)
	}
	counts, err := countsAttr(r.Counts)
	if err != nil {
		return nil, fmt.Errorf("encode counts: %w", err)
	}
	item["kind"], item["waveId"], item["account"], item["region"] = str(KindTarget), str(k.WaveID), str(k.Account), str(k.Region)
	item["status"], item["counts"], item["result"] = str(r.Status), counts, result
	if r.Reason != "" {
		item["reason"] = str(r.Reason)
	}
	if len(r.CommandIDs) > 0 {
		ids := make([]types.AttributeValue, len(r.CommandIDs))
		for i, id := range r.CommandIDs {
			ids[i] = str(id)
		}
		item["commandIds"] = &types.AttributeValueMemberL{Value: ids}
	}
	item["updatedAt"], item[contract.AttrTTL] = str(now), num(exp)
	return item, nil
}

// WaveTargets returns the recorded results of a wave's targets. Targets
// still in progress (no result yet) are left out: the wave's judge counts
// them as targets without a result.
func (s *Store) WaveTargets(ctx context.Context, runID, waveID string) ([]contract.TargetResult, error) {
	var out []contract.TargetResult
	err := s.query(ctx, runID, contract.TargetSKPrefix(waveID), func(item map[string]types.AttributeValue) error {
		t, err := decodeTarget(item)
		if err != nil {
			return err
		}
		if t.Result != nil {
			out = append(out, *t.Result)
		}
		return nil
	})
	return out, err
}

// PutWave records a wave's verdict and its judged targets.
func (s *Store) PutWave(ctx context.Context, runID string, w contract.Wave, v contract.WaveVerdict, targets []contract.TargetResult) error {
	now, exp := s.stamp()
	item := key(contract.RunPK(runID), contract.WaveSK(w.Index, w.WaveID))
	verdict, err := jsonAttr(v)
	if err != nil {
		return fmt.Errorf("encode verdict: %w", err)
	}
	counts, err := countsAttr(v.Counts)
	if err != nil {
		return fmt.Errorf("encode counts: %w", err)
	}
	item["kind"], item["waveId"], item["index"] = str(KindWave), str(w.WaveID), num(strconv.Itoa(w.Index))
	item["status"], item["counts"], item["verdict"] = str(v.Status), counts, verdict
	if v.Reason != "" {
		item["reason"] = str(v.Reason)
	}
	b, err := json.Marshal(targets)
	if err != nil {
		return fmt.Errorf("encode targets: %w", err)
	}
	if len(b) <= maxTargetsJSON {
		item["targets"] = str(string(b))
	} else {
		item["targetsOmitted"] = &types.AttributeValueMemberBOOL{Value: true}
	}
	item["updatedAt"], item[contract.AttrTTL] = str(now), num(exp)
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return &fault.StoreFailure{Op: "write wave record " + w.WaveID, Err: err}
	}
	return nil
}

// Run reads every record of a run.
func (s *Store) Run(ctx context.Context, runID string) (RunRecords, error) {
	rr := RunRecords{Waves: map[string]WaveRecord{}, Targets: map[string][]contract.TargetResult{},
		Decisions: map[string]contract.ApprovalDecision{}}
	err := s.query(ctx, runID, "", func(item map[string]types.AttributeValue) error {
		switch getS(item, "kind") {
		case KindRun:
			rr.Run = item
		case KindWave:
			w, err := decodeWave(item)
			if err != nil {
				return err
			}
			rr.Waves[w.Verdict.WaveID] = w
		case KindTarget:
			t, err := decodeTarget(item)
			if err != nil {
				return err
			}
			if t.Result != nil {
				wave := getS(item, "waveId")
				rr.Targets[wave] = append(rr.Targets[wave], *t.Result)
			}
		case KindDecision:
			d, err := decodeDecision(item)
			if err != nil {
				return err
			}
			rr.Decisions[d.WaveID] = d
		}
		return nil
	})
	return rr, err
}

// query reads every record of a run whose sort key begins with prefix (all
// of them when prefix is empty), page by page.
func (s *Store) query(ctx context.Context, runID, prefix string, each func(map[string]types.AttributeValue) error) error {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": contract.AttrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(contract.RunPK(runID))},
		ConsistentRead:            aws.Bool(true),
	}
	if prefix != "" {
		in.KeyConditionExpression = aws.String("#pk = :pk AND begins_with(#sk, :prefix)")
		in.ExpressionAttributeNames["#sk"] = contract.AttrSK
		in.ExpressionAttributeValues[":prefix"] = str(prefix)
	}
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return &fault.StoreFailure{Op: "query records of run " + runID, Err: err}
		}
		for _, item := range out.Items {
			if err := each(item); err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

func getS(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func decodeTarget(item map[string]types.AttributeValue) (Target, error) {
	t := Target{Status: getS(item, "status"), Reason: getS(item, "reason"), Owner: getS(item, "owner")}
	if l, ok := item["commandIds"].(*types.AttributeValueMemberL); ok {
		for _, v := range l.Value {
			if s, ok := v.(*types.AttributeValueMemberS); ok {
				t.CommandIDs = append(t.CommandIDs, s.Value)
			}
		}
	}
	if r := getS(item, "result"); r != "" {
		var res contract.TargetResult
		if err := json.Unmarshal([]byte(r), &res); err != nil {
			return Target{}, &fault.StoreFailure{Op: "decode target record " + getS(item, contract.AttrSK), Err: err}
		}
		t.Result = &res
	}
	return t, nil
}

func decodeWave(item map[string]types.AttributeValue) (WaveRecord, error) {
	var w WaveRecord
	sk := getS(item, contract.AttrSK)
	if err := json.Unmarshal([]byte(getS(item, "verdict")), &w.Verdict); err != nil {
		return WaveRecord{}, &fault.StoreFailure{Op: "decode wave record " + sk, Err: err}
	}
	if n, ok := item["index"].(*types.AttributeValueMemberN); ok {
		w.Index, _ = strconv.Atoi(n.Value)
	}
	if t := getS(item, "targets"); t != "" {
		if err := json.Unmarshal([]byte(t), &w.Targets); err != nil {
			return WaveRecord{}, &fault.StoreFailure{Op: "decode wave record " + sk, Err: err}
		}
	}
	return w, nil
}

// KindLedger is an instance ledger row.
const KindLedger = "LEDGER"

// maxBatchWrite is BatchWriteItem's limit on items per call.
const maxBatchWrite = 25

// ledgerAttempts bounds the BatchWriteItem calls for one chunk of ledger
// rows: DynamoDB returns the items it could not write (throttled) as
// unprocessed, to be sent again after a pause.
const ledgerAttempts = 8

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// FinishTarget records a target's final result, replacing its record, and
// writes one ledger row per instance. It returns the result as recorded,
// with its StartedAt and FinishedAt.
func (s *Store) FinishTarget(ctx context.Context, k TargetKey, r contract.TargetResult, operation string) (contract.TargetResult, error) {
	r, err := s.stampResult(ctx, k, r)
	if err != nil {
		return r, err
	}
	if err := s.PutTarget(ctx, k, r); err != nil {
		return r, err
	}
	return r, s.PutLedger(ctx, k.RunID, k.WaveID, r, operation)
}

// FinishTargetUnlessOwned is FinishTarget with PutTargetUnlessOwned's
// condition: when the record belongs to another execution, neither the
// record nor the ledger is written, and written is false.
func (s *Store) FinishTargetUnlessOwned(ctx context.Context, k TargetKey, r contract.TargetResult, operation, owner string) (contract.TargetResult, bool, error) {
	r, err := s.stampResult(ctx, k, r)
	if err != nil {
		return r, false, err
	}
	written, err := s.PutTargetUnlessOwned(ctx, k, r, owner)
	if err != nil || !written {
		return r, written, err
	}
	return r, true, s.PutLedger(ctx, k.RunID, k.WaveID, r, operation)
}

// stampResult sets the result's times. A record that already holds the
// same result (a retry, or a re-run that failed the same way) keeps its
// times, so the ledger rows written again land on the same keys instead of
// duplicating. Otherwise the target started when its send was claimed (or,
// with no send, now) and finished now.
func (s *Store) stampResult(ctx context.Context, k TargetKey, r contract.TargetResult) (contract.TargetResult, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            key(contract.RunPK(k.RunID), contract.TargetSK(k.WaveID, k.Account, k.Region)),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return r, &fault.StoreFailure{Op: "read target record " + k.Account + "/" + k.Region, Err: err}
	}
	if old, err := decodeTarget(out.Item); err == nil && old.Result != nil && old.Result.FinishedAt != "" && sameResult(*old.Result, r) {
		r.StartedAt, r.FinishedAt = old.Result.StartedAt, old.Result.FinishedAt
		return r, nil
	}
	now := s.now().UTC()
	r.FinishedAt, r.StartedAt = now.Format(time.RFC3339), now.Format(time.RFC3339)
	if n, ok := out.Item["claimedAt"].(*types.AttributeValueMemberN); ok {
		if sec, err := strconv.ParseInt(n.Value, 10, 64); err == nil && sec <= now.Unix() {
			r.StartedAt = time.Unix(sec, 0).UTC().Format(time.RFC3339)
		}
	}
	return r, nil
}

// sameResult compares two results without their times.
func sameResult(a, b contract.TargetResult) bool {
	a.StartedAt, a.FinishedAt, b.StartedAt, b.FinishedAt = "", "", "", ""
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// LedgerEntries are the ledger rows of a recorded result: one per instance,
// at the result's FinishedAt. An instance without its own command ID takes
// the target's (all of them when the target sent several).
func LedgerEntries(runID, waveID string, r contract.TargetResult, operation string) []contract.LedgerEntry {
	targetCommand := r.CommandID
	if len(r.CommandIDs) > 1 {
		targetCommand = strings.Join(r.CommandIDs, " ")
	}
	out := make([]contract.LedgerEntry, 0, len(r.Instances))
	for _, in := range r.Instances {
		if in.InstanceID == "" {
			continue
		}
		e := contract.LedgerEntry{Account: r.Account, Region: r.Region, InstanceID: in.InstanceID, RunID: runID,
			WaveID: waveID, Status: in.Status, Reason: in.Reason, CommandID: in.CommandID, Operation: operation,
			At: r.FinishedAt}
		if e.CommandID == "" && in.Status != contract.InstanceSkipped {
			e.CommandID = targetCommand
		}
		out = append(out, e)
	}
	return out
}

// PutLedger writes the ledger rows of a recorded result with
// BatchWriteItem, 25 at a time, sending unprocessed rows again with
// backoff. Rows that still cannot be written fail the call: the handler
// is retried, and rewriting a row is harmless (same key, same content).
func (s *Store) PutLedger(ctx context.Context, runID, waveID string, r contract.TargetResult, operation string) error {
	if r.FinishedAt == "" {
		return fmt.Errorf("ledger of %s/%s: the result has no FinishedAt", r.Account, r.Region)
	}
	now, exp := s.stamp()
	var requests []types.WriteRequest
	for _, e := range LedgerEntries(runID, waveID, r, operation) {
		item, err := attributevalue.MarshalMapWithOptions(e, func(o *attributevalue.EncoderOptions) { o.TagKey = "json" })
		if err != nil {
			return fmt.Errorf("encode ledger row of %s: %w", e.InstanceID, err)
		}
		for k, v := range key(contract.LedgerPK(e.Account, e.Region, e.InstanceID), contract.LedgerSK(e.At, runID)) {
			item[k] = v
		}
		item["kind"], item["updatedAt"], item[contract.AttrTTL] = str(KindLedger), str(now), num(exp)
		requests = append(requests, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
	}
	for chunk := range slices.Chunk(requests, maxBatchWrite) {
		if err := s.batchWrite(ctx, chunk); err != nil {
			return &fault.StoreFailure{Op: fmt.Sprintf("write ledger rows of %s/%s", r.Account, r.Region), Err: err}
		}
	}
	return nil
}

func (s *Store) batchWrite(ctx context.Context, requests []types.WriteRequest) error {
	pending := requests
	for attempt := 0; ; attempt++ {
		out, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
			RequestItems: map[string][]types.WriteRequest{s.table: pending}})
		if err != nil {
			return err
		}
		pending = out.UnprocessedItems[s.table]
		if len(pending) == 0 {
			return nil
		}
		if attempt+1 == ledgerAttempts {
			return fmt.Errorf("%d of %d rows still unprocessed after %d attempts", len(pending), len(requests), ledgerAttempts)
		}
		backoff := min(50*time.Millisecond<<attempt, 2*time.Second)
		if err := s.sleep(ctx, backoff); err != nil {
			return err
		}
	}
}

// InstanceHistory answers "when was this instance last patched, and with
// what result": its newest ledger rows first, at most limit of them (every
// row when limit is 0), with one Query.
func (s *Store) InstanceHistory(ctx context.Context, account, region, instanceID string, limit int) ([]contract.LedgerEntry, error) {
	in := &dynamodb.QueryInput{
		TableName:                aws.String(s.table),
		KeyConditionExpression:   aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		ExpressionAttributeNames: map[string]string{"#pk": contract.AttrPK, "#sk": contract.AttrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(contract.LedgerPK(account, region, instanceID)), ":prefix": str(contract.LedgerSKPrefix)},
		ScanIndexForward: aws.Bool(false),
	}
	if limit > 0 {
		in.Limit = aws.Int32(int32(min(limit, 1000)))
	}
	out, err := s.db.Query(ctx, in)
	if err != nil {
		return nil, &fault.StoreFailure{Op: "query ledger of " + instanceID, Err: err}
	}
	entries := make([]contract.LedgerEntry, 0, len(out.Items))
	for _, item := range out.Items {
		var e contract.LedgerEntry
		if err := attributevalue.UnmarshalMapWithOptions(item, &e, func(o *attributevalue.DecoderOptions) { o.TagKey = "json" }); err != nil {
			return nil, &fault.StoreFailure{Op: "decode ledger row " + getS(item, contract.AttrSK), Err: err}
		}
		entries = append(entries, e)
	}
	return entries, nil
}
