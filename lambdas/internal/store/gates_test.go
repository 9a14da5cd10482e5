package store

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/ec2patch/ec2patch/internal/contract"
)

func conditionalFailure() error {
	return &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "UpdateItem",
		Err: &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}}
}

func TestClaimTarget(t *testing.T) {
	db := newMemDB()
	s := newStore(db)
	k := TargetKey{"run", "w1", "222222222222", "us-east-1"}
	won, err := s.ClaimTarget(context.Background(), k, "exec-a")
	if err != nil || !won {
		t.Fatalf("ClaimTarget = %v, %v", won, err)
	}
	in := db.updates[0]
	if got := *in.ConditionExpression; got != "attribute_not_exists(#commandIds) AND (attribute_not_exists(#owner) OR #owner = :me OR #claimedAt < :stale)" {
		t.Errorf("condition %q", got)
	}
	if !strings.Contains(*in.UpdateExpression, "#owner = :me, #claimedAt = :now") {
		t.Errorf("update %q", *in.UpdateExpression)
	}
	vals := in.ExpressionAttributeValues
	if vals[":me"].(*types.AttributeValueMemberS).Value != "exec-a" ||
		vals[":now"].(*types.AttributeValueMemberN).Value != "1796119200" ||
		vals[":stale"].(*types.AttributeValueMemberN).Value != "1796118300" {
		t.Errorf("values %v: want the owner, now and now - 15 min in epoch seconds", vals)
	}
	db.fail = conditionalFailure()
	if won, err := s.ClaimTarget(context.Background(), k, "exec-b"); err != nil || won {
		t.Errorf("a failed condition: ClaimTarget = %v, %v, want lost without error", won, err)
	}
}

func TestPutTargetUnlessOwned(t *testing.T) {
	db := newMemDB()
	s := newStore(db)
	k := TargetKey{"run", "w1", "222222222222", "us-east-1"}
	r := contract.TargetResult{Account: k.Account, Region: k.Region, Status: contract.StatusFailed, Instances: []contract.InstanceResult{}}
	written, err := s.PutTargetUnlessOwned(context.Background(), k, r, "exec-a")
	if err != nil || !written {
		t.Fatalf("PutTargetUnlessOwned = %v, %v", written, err)
	}
	got, ok, _ := s.Target(context.Background(), k)
	if !ok || got.Status != contract.StatusFailed {
		t.Errorf("record %+v", got)
	}
	db.fail = conditionalFailure()
	if written, err := s.PutTargetUnlessOwned(context.Background(), k, r, "exec-b"); err != nil || written {
		t.Errorf("a failed condition: %v, %v, want not written without error", written, err)
	}
}

func TestPreviewsRoundTrip(t *testing.T) {
	s := newStore(newMemDB())
	ctx := context.Background()
	want := []contract.PreviewSummary{
		{Account: "222222222222", Region: "us-east-1", Matched: 3, TargetCount: 2, Skipped: 1},
		{Account: "222222222222", Region: "us-west-2", Error: "AccessDenied: no"},
		{Account: "333333333333", Region: "us-east-1"},
	}
	for _, p := range want {
		if err := s.PutPreview(ctx, "run", "w1", p); err != nil {
			t.Fatal(err)
		}
	}
	// Another wave's preview and a target record of the same wave are not read.
	if err := s.PutPreview(ctx, "run", "w10", contract.PreviewSummary{Account: "444444444444", Region: "us-east-1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutTarget(ctx, TargetKey{"run", "w1", "222222222222", "us-east-1"}, contract.TargetResult{Status: contract.StatusSucceeded}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Previews(ctx, "run", "w1")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Previews = %+v, %v\nwant %+v", got, err, want)
	}
}

// approvalDB adds DeleteItem to memDB, and records the deletes.
type approvalDB struct {
	*memDB
	deletes []string
	// deleteFail fails every DeleteItem.
	deleteFail error
}

func (m *approvalDB) DeleteItem(_ context.Context, in *dynamodb.DeleteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if m.deleteFail != nil {
		return nil, m.deleteFail
	}
	k := keyOf(in.Key)
	m.deletes = append(m.deletes, k[0]+"/"+k[1])
	delete(m.items, k)
	return &dynamodb.DeleteItemOutput{}, nil
}

func newApprovals(db *approvalDB) *Approvals {
	return NewApprovals(db, "state", 90, func() time.Time { return fixed })
}

func pendingIDs(t *testing.T, s *Approvals) []string {
	t.Helper()
	list, err := s.PendingApprovals(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, p := range list {
		ids = append(ids, p.ApprovalID)
	}
	return ids
}

func TestPendingApprovalRows(t *testing.T) {
	db := &approvalDB{memDB: newMemDB()}
	s := newApprovals(db)
	ctx := context.Background()
	// Three gates: more than one page of the fake's Query.
	for i, id := range []string{"a1", "a2", "a3"} {
		a := Approval{ID: id, TaskToken: "token-" + id, RunID: "run", WaveID: "w" + id, LinkExpiresAt: fixed.Add(time.Duration(i+1) * time.Hour)}
		if err := s.PutApproval(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.PendingApprovals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := PendingApproval{ApprovalID: "a2", RunID: "run", WaveID: "wa2", CreatedAt: fixed, LinkExpiresAt: fixed.Add(2 * time.Hour)}
	if len(list) != 3 || !reflect.DeepEqual(list[1], want) {
		t.Errorf("PendingApprovals = %+v, want three with %+v second", list, want)
	}
	row := db.items[[2]string{contract.PendingApprovalPK, "a1"}]
	// DynamoDB's TTL removes a row a day after its links expire, should no
	// reconciler delete it first.
	if exp := row[contract.AttrTTL].(*types.AttributeValueMemberN).Value; exp != "1796209200" {
		t.Errorf("pending row expiresAt = %s, want link expiry + 1 day", exp)
	}

	d := contract.ApprovalDecision{ApprovalID: "a1", WaveID: "wa1", Decision: contract.DecisionReject,
		Approver: "bob", SourceIP: "203.0.113.9", DecidedAt: "2026-12-01T10:30:00Z"}
	if decided, err := s.DecideApproval(ctx, d); err != nil || !decided {
		t.Fatalf("DecideApproval = %v, %v", decided, err)
	}
	if got := pendingIDs(t, s); !reflect.DeepEqual(got, []string{"a2", "a3"}) {
		t.Errorf("after deciding a1: pending %v", got)
	}
	// The orchestrator could not be told: the gate is pending again, with
	// its first request time (its age goes on).
	if err := s.UndoDecision(ctx, "a1", ApprovalRejected, ApprovalPending); err != nil {
		t.Fatal(err)
	}
	list, _ = s.PendingApprovals(ctx)
	if len(list) != 3 || list[0].ApprovalID != "a1" || !list[0].CreatedAt.Equal(fixed) || !list[0].LinkExpiresAt.Equal(fixed.Add(time.Hour)) {
		t.Errorf("after reopening a1: %+v", list)
	}
	// A late decision marked expired does not come back.
	if _, err := s.DecideApproval(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.UndoDecision(ctx, "a1", ApprovalRejected, ApprovalExpired); err != nil {
		t.Fatal(err)
	}
	if got := pendingIDs(t, s); !reflect.DeepEqual(got, []string{"a2", "a3"}) {
		t.Errorf("after expiring a1: pending %v", got)
	}
	if err := s.ForgetPending(ctx, "a3"); err != nil {
		t.Fatal(err)
	}
	if got := pendingIDs(t, s); !reflect.DeepEqual(got, []string{"a2"}) {
		t.Errorf("after forgetting a3: pending %v", got)
	}

	// A replayed decision deletes nothing.
	n := len(db.deletes)
	db.fail = conditionalFailure()
	if decided, _ := s.DecideApproval(ctx, contract.ApprovalDecision{ApprovalID: "a2", Decision: contract.DecisionApprove}); decided || len(db.deletes) != n {
		t.Errorf("replayed decision: decided %v, deletes %v", decided, db.deletes[n:])
	}
	db.fail = nil
	// A failed delete leaves the decision standing.
	db.deleteFail = errors.New("throttled")
	if decided, err := s.DecideApproval(ctx, contract.ApprovalDecision{ApprovalID: "a2", Decision: contract.DecisionApprove}); err != nil || !decided {
		t.Errorf("DecideApproval with a failing delete = %v, %v, want decided", decided, err)
	}
	if err := s.ForgetPending(ctx, "a2"); err == nil {
		t.Error("ForgetPending hid a failed delete")
	}
}

func TestApprovalRecords(t *testing.T) {
	db := &approvalDB{memDB: newMemDB()}
	s := newApprovals(db)
	ctx := context.Background()
	a := Approval{ID: "abc", TaskToken: "token", RunID: "run", WaveID: "w2", LinkExpiresAt: fixed.Add(time.Hour)}
	if err := s.PutApproval(ctx, a); err != nil {
		t.Fatal(err)
	}
	a.CreatedAt = fixed
	item := db.items[[2]string{"APPROVAL#abc", "APPROVAL"}]
	// Kept for the record retention (90 days) after the links expire.
	if exp := item[contract.AttrTTL].(*types.AttributeValueMemberN).Value; exp != "1803898800" {
		t.Errorf("expiresAt = %s, want link expiry + 90 days", exp)
	}
	got, ok, err := s.Approval(ctx, "abc")
	a.Status = ApprovalPending
	if err != nil || !ok || !reflect.DeepEqual(got, a) {
		t.Errorf("Approval = %+v, %v, %v\nwant %+v", got, ok, err, a)
	}
	if _, ok, _ := s.Approval(ctx, "other"); ok {
		t.Error("an unknown approval was found")
	}

	d := contract.ApprovalDecision{ApprovalID: "abc", WaveID: "w2", Decision: contract.DecisionApprove,
		Approver: "alice", SourceIP: "198.51.100.7", DecidedAt: "2026-12-01T10:30:00Z"}
	if decided, err := s.DecideApproval(ctx, d); err != nil || !decided {
		t.Fatalf("DecideApproval = %v, %v", decided, err)
	}
	in := db.updates[len(db.updates)-1]
	if *in.ConditionExpression != "#status = :pending" ||
		in.ExpressionAttributeValues[":status"].(*types.AttributeValueMemberS).Value != ApprovalApproved {
		t.Errorf("decision update %q with %v", *in.ConditionExpression, in.ExpressionAttributeValues)
	}
	if err := s.UndoDecision(ctx, "abc", ApprovalApproved, ApprovalPending); err != nil {
		t.Fatal(err)
	}
	in = db.updates[len(db.updates)-1]
	if !strings.Contains(*in.UpdateExpression, "REMOVE #decision, #decidedBy, #decidedAt, #sourceIp") {
		t.Errorf("reopening keeps the decision: %q", *in.UpdateExpression)
	}
	if err := s.UndoDecision(ctx, "abc", ApprovalApproved, ApprovalExpired); err != nil {
		t.Fatal(err)
	}
	if in = db.updates[len(db.updates)-1]; strings.Contains(*in.UpdateExpression, "REMOVE") {
		t.Errorf("expiring forgets who tried: %q", *in.UpdateExpression)
	}

	db.fail = conditionalFailure()
	if decided, err := s.DecideApproval(ctx, d); err != nil || decided {
		t.Errorf("replayed decision: %v, %v, want not decided without error", decided, err)
	}
	if err := s.UndoDecision(ctx, "abc", ApprovalApproved, ApprovalPending); err != nil {
		t.Errorf("undo of a gate in another state: %v", err)
	}
}

func TestRunReadsDecisions(t *testing.T) {
	s := newStore(newMemDB())
	ctx := context.Background()
	d := contract.ApprovalDecision{ApprovalID: "abc", WaveID: "w2", Decision: contract.DecisionReject,
		Approver: "bob", SourceIP: "203.0.113.9", DecidedAt: "2026-12-01T10:30:00Z"}
	if err := s.PutRunDecision(ctx, "run", d); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPreview(ctx, "run", "w2", contract.PreviewSummary{Account: "222222222222", Region: "us-east-1"}); err != nil {
		t.Fatal(err)
	}
	rr, err := s.Run(ctx, "run")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rr.Decisions, map[string]contract.ApprovalDecision{"w2": d}) {
		t.Errorf("decisions %+v", rr.Decisions)
	}
}
