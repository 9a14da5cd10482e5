package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
)

// Record kinds of the gates.
const (
	KindPreview  = "PREVIEW"  // RUN#<runId> / PREVIEW#<waveId>#<account>#<region>
	KindDecision = "DECISION" // RUN#<runId> / APPROVAL#<waveId>: the decision the report shows
	KindApproval = "APPROVAL" // APPROVAL#<approvalId> / APPROVAL: token and state of one gate
	// KindPending is PENDING_APPROVAL / <approvalId>: runId, waveId,
	// createdAt, linkExpiresAt; present while the gate waits.
	KindPending = "PENDING_APPROVAL"
)

// States of an approval record. A decision moves it from PENDING exactly
// once; EXPIRED marks a decision that came after the task had timed out.
const (
	ApprovalPending  = "PENDING"
	ApprovalApproved = "APPROVED"
	ApprovalRejected = "REJECTED"
	ApprovalExpired  = "EXPIRED"
)

// ClaimTimeout is how long a claim on a target keeps another execution from
// sending to it. An execution that died after claiming and before recording
// a command leaves a claim that expires after this.
const ClaimTimeout = 15 * time.Minute

// ClaimTarget makes owner (an execution ID) the only sender of a target. It
// wins when the target has no command yet and is unclaimed, already claimed
// by owner, or claimed longer than ClaimTimeout ago. won is false when the
// condition failed: re-read the target to learn why.
func (s *Store) ClaimTarget(ctx context.Context, k TargetKey, owner string) (won bool, err error) {
	now := s.now().UTC()
	_, exp := s.stamp()
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table),
		Key:       key(contract.RunPK(k.RunID), contract.TargetSK(k.WaveID, k.Account, k.Region)),
		UpdateExpression: aws.String("SET #owner = :me, #claimedAt = :now, #kind = :kind, #waveId = :waveId, " +
			"#account = :account, #region = :region, #updatedAt = :updatedAt, #ttl = :ttl"),
		ConditionExpression: aws.String("attribute_not_exists(#commandIds) AND " +
			"(attribute_not_exists(#owner) OR #owner = :me OR #claimedAt < :stale)"),
		ExpressionAttributeNames: map[string]string{"#owner": "owner", "#claimedAt": "claimedAt", "#kind": "kind",
			"#waveId": "waveId", "#account": "account", "#region": "region", "#updatedAt": "updatedAt",
			"#ttl": contract.AttrTTL, "#commandIds": "commandIds"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": str(owner),
			":now": num(strconv.FormatInt(now.Unix(), 10)), ":stale": num(strconv.FormatInt(now.Add(-ClaimTimeout).Unix(), 10)),
			":kind": str(KindTarget), ":waveId": str(k.WaveID), ":account": str(k.Account), ":region": str(k.Region),
			":updatedAt": str(now.Format(time.RFC3339)), ":ttl": num(exp)},
	})
	if conditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, &fault.StoreFailure{Op: fmt.Sprintf("claim target %s/%s", k.Account, k.Region), Err: err}
	}
	return true, nil
}

// PutTargetUnlessOwned records a target's result like PutTarget, unless the
// record holds commands that another execution sent (or that an earlier,
// finished execution sent and verified): those are that execution's to
// record. written is false when the record was left alone.
func (s *Store) PutTargetUnlessOwned(ctx context.Context, k TargetKey, r contract.TargetResult, owner string) (written bool, err error) {
	item, err := s.targetItem(k, r)
	if err != nil {
		return false, err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(s.table),
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(#commandIds) OR #owner = :me"),
		ExpressionAttributeNames:  map[string]string{"#commandIds": "commandIds", "#owner": "owner"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": str(owner)},
	})
	if conditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, &fault.StoreFailure{Op: fmt.Sprintf("write target record %s/%s", k.Account, k.Region), Err: err}
	}
	return true, nil
}

// PutPreview records what the preview of an approval wave found in one
// account-region.
func (s *Store) PutPreview(ctx context.Context, runID, waveID string, p contract.PreviewSummary) error {
	now, exp := s.stamp()
	summary, err := jsonAttr(p)
	if err != nil {
		return fmt.Errorf("encode preview: %w", err)
	}
	item := key(contract.RunPK(runID), contract.PreviewSK(waveID, p.Account, p.Region))
	item["kind"], item["waveId"], item["account"], item["region"] = str(KindPreview), str(waveID), str(p.Account), str(p.Region)
	item["preview"], item["updatedAt"], item[contract.AttrTTL] = summary, str(now), num(exp)
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return &fault.StoreFailure{Op: fmt.Sprintf("write preview record %s/%s", p.Account, p.Region), Err: err}
	}
	return nil
}

// Previews returns every preview recorded for a wave.
func (s *Store) Previews(ctx context.Context, runID, waveID string) ([]contract.PreviewSummary, error) {
	out := []contract.PreviewSummary{}
	err := s.query(ctx, runID, contract.PreviewSKPrefix(waveID), func(item map[string]types.AttributeValue) error {
		var p contract.PreviewSummary
		if err := json.Unmarshal([]byte(getS(item, "preview")), &p); err != nil {
			return &fault.StoreFailure{Op: "decode preview record " + getS(item, contract.AttrSK), Err: err}
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// Approval is one approval gate's record. The task token stays in the
// hub's table: a link carries only the opaque ID.
type Approval struct {
	ID        string
	TaskToken string
	RunID     string
	WaveID    string
	Status    string
	// LinkExpiresAt is when the links stop working (the task's timeout).
	LinkExpiresAt time.Time
	// CreatedAt is when the gate was requested; set by Approval.
	CreatedAt time.Time
	// Decision is set once the gate was decided (or a late decision came).
	Decision *contract.ApprovalDecision
}

// ApprovalDB is the part of the DynamoDB API the approval gates use: the
// run records' calls, plus DeleteItem for the pending-approval rows.
type ApprovalDB interface {
	DB
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

var _ ApprovalDB = (*dynamodb.Client)(nil)

// Approvals reads and writes the approval gates' records and keeps the
// pending-approval partition (contract.PendingApprovalPK) in step with
// them: a row per gate waiting for a decision, so the reconciler counts
// the gates and their age with one Query. It is apart from Store because
// it needs DeleteItem; the run records' methods come with it.
type Approvals struct {
	*Store
	db ApprovalDB
}

// NewApprovals returns Approvals on table, like New.
func NewApprovals(db ApprovalDB, table string, ttlDays int, now func() time.Time) *Approvals {
	return &Approvals{Store: New(db, table, ttlDays, now), db: db}
}

// PendingApproval is one gate waiting for a decision.
type PendingApproval struct {
	ApprovalID    string
	RunID         string
	WaveID        string
	CreatedAt     time.Time
	LinkExpiresAt time.Time
}

// pendingGrace is how long after its links expire a pending row is kept
// by DynamoDB's TTL, should no reconciler delete it first.
const pendingGrace = 24 * time.Hour

// PutApproval records a new PENDING gate, then its pending-approval row.
// The gate is kept for the record retention after its links expire.
func (s *Approvals) PutApproval(ctx context.Context, a Approval) error {
	now := s.now().UTC()
	item := key(contract.ApprovalPK(a.ID), contract.SKApproval)
	item["kind"], item["approvalId"], item["taskToken"] = str(KindApproval), str(a.ID), str(a.TaskToken)
	item["runId"], item["waveId"], item["status"] = str(a.RunID), str(a.WaveID), str(ApprovalPending)
	item["linkExpiresAt"] = num(strconv.FormatInt(a.LinkExpiresAt.Unix(), 10))
	item["createdAt"], item["updatedAt"] = str(now.Format(time.RFC3339)), str(now.Format(time.RFC3339))
	item[contract.AttrTTL] = num(strconv.FormatInt(a.LinkExpiresAt.Add(s.ttl).Unix(), 10))
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(s.table),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": contract.AttrPK},
	})
	if err != nil {
		return &fault.StoreFailure{Op: "write approval record of wave " + a.WaveID, Err: err}
	}
	return s.putPending(ctx, PendingApproval{ApprovalID: a.ID, RunID: a.RunID, WaveID: a.WaveID,
		CreatedAt: now, LinkExpiresAt: a.LinkExpiresAt})
}

func (s *Approvals) putPending(ctx context.Context, p PendingApproval) error {
	item := key(contract.PendingApprovalPK, p.ApprovalID)
	item["kind"], item["approvalId"] = str(KindPending), str(p.ApprovalID)
	item["runId"], item["waveId"] = str(p.RunID), str(p.WaveID)
	item["createdAt"] = str(p.CreatedAt.UTC().Format(time.RFC3339))
	item["linkExpiresAt"] = num(strconv.FormatInt(p.LinkExpiresAt.Unix(), 10))
	item["updatedAt"] = str(s.now().UTC().Format(time.RFC3339))
	item[contract.AttrTTL] = num(strconv.FormatInt(p.LinkExpiresAt.Add(pendingGrace).Unix(), 10))
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return &fault.StoreFailure{Op: "write pending-approval row of wave " + p.WaveID, Err: err}
	}
	return nil
}

// PendingApprovals lists every gate waiting for a decision, in approval ID
// order (callers compare CreatedAt for the oldest).
func (s *Approvals) PendingApprovals(ctx context.Context) ([]PendingApproval, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": contract.AttrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(contract.PendingApprovalPK)},
	}
	out := []PendingApproval{}
	for {
		page, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, &fault.StoreFailure{Op: "query pending approvals", Err: err}
		}
		for _, item := range page.Items {
			p := PendingApproval{ApprovalID: getS(item, "approvalId"), RunID: getS(item, "runId"), WaveID: getS(item, "waveId")}
			if p.CreatedAt, err = time.Parse(time.RFC3339, getS(item, "createdAt")); err != nil {
				return nil, &fault.StoreFailure{Op: "decode pending-approval row " + getS(item, contract.AttrSK), Err: err}
			}
			p.LinkExpiresAt = epoch(item, "linkExpiresAt")
			out = append(out, p)
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// ForgetPending deletes a gate's pending-approval row. Deleting a row that
// is gone is not an error.
func (s *Approvals) ForgetPending(ctx context.Context, approvalID string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.table),
		Key:       key(contract.PendingApprovalPK, approvalID),
	})
	if err != nil {
		return &fault.StoreFailure{Op: "delete pending-approval row " + approvalID, Err: err}
	}
	return nil
}

func epoch(item map[string]types.AttributeValue, name string) time.Time {
	if n, ok := item[name].(*types.AttributeValueMemberN); ok {
		sec, _ := strconv.ParseInt(n.Value, 10, 64)
		return time.Unix(sec, 0).UTC()
	}
	return time.Time{}
}

// Approval reads one gate's record, strongly consistent. ok is false when
// there is none.
func (s *Approvals) Approval(ctx context.Context, id string) (a Approval, ok bool, err error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            key(contract.ApprovalPK(id), contract.SKApproval),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Approval{}, false, &fault.StoreFailure{Op: "read approval record", Err: err}
	}
	if len(out.Item) == 0 {
		return Approval{}, false, nil
	}
	item := out.Item
	a = Approval{ID: id, TaskToken: getS(item, "taskToken"), RunID: getS(item, "runId"),
		WaveID: getS(item, "waveId"), Status: getS(item, "status")}
	a.LinkExpiresAt = epoch(item, "linkExpiresAt")
	a.CreatedAt, _ = time.Parse(time.RFC3339, getS(item, "createdAt"))
	if d := getS(item, "decision"); d != "" {
		a.Decision = &contract.ApprovalDecision{ApprovalID: id, WaveID: a.WaveID, Decision: d,
			Approver: getS(item, "decidedBy"), SourceIP: getS(item, "sourceIp"), DecidedAt: getS(item, "decidedAt")}
	}
	return a, true, nil
}

// DecideApproval moves a PENDING gate to APPROVED or REJECTED with who
// decided, when and from where. decided is false when the gate was not
// PENDING any more (a replayed or concurrent decision): nothing changed.
// A decided gate leaves the pending-approval partition; if that delete
// fails the decision still stands (it is what the orchestrator is told),
// and the reconciler drops the row when its links expire, so the gauge
// over-counts for a while rather than the approver seeing an error.
func (s *Approvals) DecideApproval(ctx context.Context, d contract.ApprovalDecision) (decided bool, err error) {
	status := ApprovalRejected
	if d.Decision == contract.DecisionApprove {
		status = ApprovalApproved
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table),
		Key:       key(contract.ApprovalPK(d.ApprovalID), contract.SKApproval),
		UpdateExpression: aws.String("SET #status = :status, #decision = :decision, #decidedBy = :by, " +
			"#decidedAt = :at, #sourceIp = :ip, #updatedAt = :at"),
		ConditionExpression: aws.String("#status = :pending"),
		ExpressionAttributeNames: map[string]string{"#status": "status", "#decision": "decision",
			"#decidedBy": "decidedBy", "#decidedAt": "decidedAt", "#sourceIp": "sourceIp", "#updatedAt": "updatedAt"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":status": str(status), ":decision": str(d.Decision),
			":by": str(d.Approver), ":at": str(d.DecidedAt), ":ip": str(d.SourceIP), ":pending": str(ApprovalPending)},
	})
	if conditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, &fault.StoreFailure{Op: "record approval decision", Err: err}
	}
	_ = s.ForgetPending(ctx, d.ApprovalID)
	return true, nil
}

// UndoDecision moves a gate that DecideApproval moved to from back: to
// PENDING, forgetting the decision, when Step Functions could not be told
// (the approver may try again); to EXPIRED, keeping who tried, when the
// task had already timed out. Back to PENDING, the gate is listed as
// pending again.
func (s *Approvals) UndoDecision(ctx context.Context, id, from, to string) error {
	update := "SET #status = :to, #updatedAt = :now"
	names := map[string]string{"#status": "status", "#updatedAt": "updatedAt"}
	if to == ApprovalPending {
		update += " REMOVE #decision, #decidedBy, #decidedAt, #sourceIp"
		names["#decision"], names["#decidedBy"], names["#decidedAt"], names["#sourceIp"] = "decision", "decidedBy", "decidedAt", "sourceIp"
	}
	now, _ := s.stamp()
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(contract.ApprovalPK(id), contract.SKApproval),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("#status = :from"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: map[string]types.AttributeValue{":to": str(to), ":from": str(from), ":now": str(now)},
	})
	if conditionFailed(err) || (err == nil && to != ApprovalPending) {
		return nil
	}
	if err != nil {
		return &fault.StoreFailure{Op: "reset approval record to " + to, Err: err}
	}
	a, ok, err := s.Approval(ctx, id)
	if err != nil || !ok {
		return err
	}
	return s.putPending(ctx, PendingApproval{ApprovalID: id, RunID: a.RunID, WaveID: a.WaveID,
		CreatedAt: a.CreatedAt, LinkExpiresAt: a.LinkExpiresAt})
}

// PutRunDecision records a gate's decision in the run's partition, where
// the run report reads it.
func (s *Store) PutRunDecision(ctx context.Context, runID string, d contract.ApprovalDecision) error {
	now, exp := s.stamp()
	decision, err := jsonAttr(d)
	if err != nil {
		return fmt.Errorf("encode decision: %w", err)
	}
	item := key(contract.RunPK(runID), contract.RunApprovalSK(d.WaveID))
	item["kind"], item["waveId"], item["decision"] = str(KindDecision), str(d.WaveID), decision
	item["updatedAt"], item[contract.AttrTTL] = str(now), num(exp)
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return &fault.StoreFailure{Op: "write decision of wave " + d.WaveID, Err: err}
	}
	return nil
}

func decodeDecision(item map[string]types.AttributeValue) (contract.ApprovalDecision, error) {
	var d contract.ApprovalDecision
	if err := json.Unmarshal([]byte(getS(item, "decision")), &d); err != nil {
		return d, &fault.StoreFailure{Op: "decode decision record " + getS(item, contract.AttrSK), Err: err}
	}
	return d, nil
}

func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}
