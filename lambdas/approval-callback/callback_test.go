package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/approval"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
	"github.com/ec2patch/ec2patch/lambdas/internal/wiretest"
)

const (
	testKey    = "test-signing-key-0123456789abcdef0123456789abcdef"
	approvalID = "Zm9yLWEtY2FuYXJ5LXdhdmU"
	expiresAt  = 1796122800 // 2026-12-01T11:00:00Z
)

// now is half an hour before the links expire.
var now = time.Date(2026, 12, 1, 10, 30, 0, 0, time.UTC)

type fixedKey struct{ err error }

func (k fixedKey) Key(context.Context) ([]byte, error) { return []byte(testKey), k.err }

// gates is the table: approval records by ID, with the store's
// conditions, and the decisions copied to runs.
type gates struct {
	approvals    map[string]store.Approval
	runDecisions []contract.ApprovalDecision
	writes       int
}

func newGates() *gates {
	return &gates{approvals: map[string]store.Approval{approvalID: {ID: approvalID, TaskToken: "token-of-wave2",
		RunID: "2026-12-patch", WaveID: "wave2", Status: store.ApprovalPending, LinkExpiresAt: time.Unix(expiresAt, 0).UTC()}}}
}

func (g *gates) Approval(_ context.Context, id string) (store.Approval, bool, error) {
	a, ok := g.approvals[id]
	return a, ok, nil
}

func (g *gates) DecideApproval(_ context.Context, d contract.ApprovalDecision) (bool, error) {
	a := g.approvals[d.ApprovalID]
	if a.Status != store.ApprovalPending {
		return false, nil
	}
	g.writes++
	a.Status = store.ApprovalRejected
	if d.Decision == contract.DecisionApprove {
		a.Status = store.ApprovalApproved
	}
	a.Decision = &d
	g.approvals[d.ApprovalID] = a
	return true, nil
}

func (g *gates) UndoDecision(_ context.Context, id, from, to string) error {
	a := g.approvals[id]
	if a.Status != from {
		return nil
	}
	g.writes++
	a.Status = to
	if to == store.ApprovalPending {
		a.Decision = nil
	}
	g.approvals[id] = a
	return nil
}

func (g *gates) PutRunDecision(_ context.Context, _ string, d contract.ApprovalDecision) error {
	g.writes++
	g.runDecisions = append(g.runDecisions, d)
	return nil
}

type states struct {
	successes []*sfn.SendTaskSuccessInput
	failures  []*sfn.SendTaskFailureInput
	err       error
}

func (s *states) SendTaskSuccess(_ context.Context, in *sfn.SendTaskSuccessInput, _ ...func(*sfn.Options)) (*sfn.SendTaskSuccessOutput, error) {
	if s.err != nil {
		return nil, s.err
	}
	s.successes = append(s.successes, in)
	return &sfn.SendTaskSuccessOutput{}, nil
}

func (s *states) SendTaskFailure(_ context.Context, in *sfn.SendTaskFailureInput, _ ...func(*sfn.Options)) (*sfn.SendTaskFailureOutput, error) {
	if s.err != nil {
		return nil, s.err
	}
	s.failures = append(s.failures, in)
	return &sfn.SendTaskFailureOutput{}, nil
}

func (s *states) calls() int { return len(s.successes) + len(s.failures) }

func newHandler(g *gates, s *states) *Handler {
	return &Handler{Keys: fixedKey{}, Approvals: g, Decisions: g, Undo: g, RunDecisions: g, Succeed: s, Fail: s,
		Log: logx.New(io.Discard), Now: func() time.Time { return now }}
}

func event(t *testing.T, name string) events.APIGatewayProxyRequest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var req events.APIGatewayProxyRequest
	if err := json.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	return req
}

func post(fields url.Values, sourceIP string) events.APIGatewayProxyRequest {
	return events.APIGatewayProxyRequest{HTTPMethod: http.MethodPost, PathParameters: map[string]string{"approvalId": approvalID},
		Body:           fields.Encode(),
		RequestContext: events.APIGatewayProxyRequestContext{Identity: events.APIGatewayRequestIdentity{SourceIP: sourceIP}}}
}

func signed(decision, approver string) url.Values {
	v := url.Values{}
	v.Set(approval.ParamDecision, decision)
	v.Set(approval.ParamExpires, "1796122800")
	v.Set(approval.ParamSignature, approval.Sign([]byte(testKey), approvalID, decision, expiresAt))
	if approver != "" {
		v.Set(fieldApprover, approver)
	}
	return v
}

func TestGetShowsTheFormAndChangesNothing(t *testing.T) {
	g, s := newGates(), &states{}
	before := g.approvals[approvalID]
	wiretest.Golden(t, newHandler(g, s).Handle, "get-approve")
	if g.writes != 0 || s.calls() != 0 || !reflect.DeepEqual(g.approvals[approvalID], before) {
		t.Errorf("a GET wrote %d times and called Step Functions %d times: mail scanners fetch links", g.writes, s.calls())
	}
}

func TestPostApproveTellsTheOrchestrator(t *testing.T) {
	g, s := newGates(), &states{}
	wiretest.Golden(t, newHandler(g, s).Handle, "post-approve")
	want := contract.ApprovalDecision{ApprovalID: approvalID, WaveID: "wave2", Decision: contract.DecisionApprove,
		Approver: "alice@example.com", SourceIP: "198.51.100.7", DecidedAt: "2026-12-01T10:30:00Z"}
	if len(s.successes) != 1 || len(s.failures) != 0 {
		t.Fatalf("%d SendTaskSuccess, %d SendTaskFailure calls", len(s.successes), len(s.failures))
	}
	in := s.successes[0]
	var got contract.ApprovalDecision
	if err := json.Unmarshal([]byte(aws.ToString(in.Output)), &got); err != nil || got != want || aws.ToString(in.TaskToken) != "token-of-wave2" {
		t.Errorf("SendTaskSuccess token %s output %s, want %+v", aws.ToString(in.TaskToken), aws.ToString(in.Output), want)
	}
	a := g.approvals[approvalID]
	if a.Status != store.ApprovalApproved || a.Decision == nil || *a.Decision != want {
		t.Errorf("approval record %+v", a)
	}
	if !reflect.DeepEqual(g.runDecisions, []contract.ApprovalDecision{want}) {
		t.Errorf("run decisions %+v", g.runDecisions)
	}
}

func TestPostRejectFailsTheTask(t *testing.T) {
	g, s := newGates(), &states{}
	wiretest.Golden(t, newHandler(g, s).Handle, "post-reject")
	if len(s.failures) != 1 || len(s.successes) != 0 {
		t.Fatalf("%d SendTaskFailure, %d SendTaskSuccess calls", len(s.failures), len(s.successes))
	}
	in := s.failures[0]
	if aws.ToString(in.Error) != contract.ErrApprovalRejected ||
		aws.ToString(in.Cause) != "rejected by Bob Ops at 2026-12-01T10:30:00Z from 203.0.113.9" {
		t.Errorf("SendTaskFailure error %q cause %q", aws.ToString(in.Error), aws.ToString(in.Cause))
	}
	if a := g.approvals[approvalID]; a.Status != store.ApprovalRejected || a.Decision.Approver != "Bob Ops" {
		t.Errorf("approval record %+v", a)
	}
}

// Every refusal is a 403 that says why, calls no Step Functions API and
// leaves the record as it was.
func TestRefusals(t *testing.T) {
	tamper := func(field, value string) events.APIGatewayProxyRequest {
		v := signed(contract.DecisionApprove, "mallory")
		v.Set(field, value)
		return post(v, "192.0.2.66")
	}
	otherID := post(signed(contract.DecisionApprove, "mallory"), "192.0.2.66")
	otherID.PathParameters["approvalId"] = "b3RoZXItYXBwcm92YWwtaWQ"
	cases := []struct {
		name string
		req  events.APIGatewayProxyRequest
		now  time.Time
		want string
	}{
		{"tampered id", otherID, now, "not valid"},
		{"tampered decision", tamper(approval.ParamDecision, contract.DecisionReject), now, "not valid"},
		{"tampered expiry", tamper(approval.ParamExpires, "1796209200"), now, "not valid"},
		{"tampered signature", tamper(approval.ParamSignature, strings.Repeat("ab", 32)), now, "not valid"},
		{"no signature", tamper(approval.ParamSignature, ""), now, "not valid"},
		{"expired", post(signed(contract.DecisionApprove, "alice"), "198.51.100.7"), time.Unix(expiresAt, 0), "expired"},
		{"expired GET", event(t, "get-approve"), time.Unix(expiresAt+1, 0), "expired"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, s := newGates(), &states{}
			before := g.approvals[approvalID]
			h := newHandler(g, s)
			h.Now = func() time.Time { return c.now }
			resp, err := h.Handle(context.Background(), c.req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Body, c.want) {
				t.Errorf("status %d, body %s: want 403 saying %q", resp.StatusCode, resp.Body, c.want)
			}
			if s.calls() != 0 || g.writes != 0 || !reflect.DeepEqual(g.approvals[approvalID], before) {
				t.Errorf("a refused request changed something: %d Step Functions calls, %d writes", s.calls(), g.writes)
			}
		})
	}
}

func TestReplayIsRefused(t *testing.T) {
	g, s := newGates(), &states{}
	h := newHandler(g, s)
	first, _ := h.Handle(context.Background(), event(t, "post-approve"))
	decided := g.approvals[approvalID]
	writes := g.writes
	for _, name := range []string{"post-approve", "get-approve"} {
		replay, _ := h.Handle(context.Background(), event(t, name))
		if replay.StatusCode != http.StatusForbidden || !strings.Contains(replay.Body, "already decided") {
			t.Errorf("%s replayed: status %d, body %s", name, replay.StatusCode, replay.Body)
		}
	}
	// The reject link of the same approval is refused as well.
	other, _ := h.Handle(context.Background(), post(signed(contract.DecisionReject, "mallory"), "192.0.2.66"))
	if first.StatusCode != http.StatusOK || other.StatusCode != http.StatusForbidden {
		t.Errorf("first %d, reject after approve %d", first.StatusCode, other.StatusCode)
	}
	if s.calls() != 1 || g.writes != writes || !reflect.DeepEqual(g.approvals[approvalID], decided) {
		t.Errorf("replays made %d Step Functions calls in all, %d writes after the decision", s.calls(), g.writes-writes)
	}
}

func apiErr(code string) error {
	return &smithy.OperationError{ServiceID: "SFN", OperationName: "SendTaskSuccess", Err: &smithy.GenericAPIError{Code: code, Message: code}}
}

func TestTaskNoLongerWaiting(t *testing.T) {
	for _, err := range []error{
		&smithy.OperationError{ServiceID: "SFN", OperationName: "SendTaskSuccess", Err: &sfntypes.TaskTimedOut{Message: aws.String("timed out")}},
		apiErr("TaskDoesNotExist"),
	} {
		g, s := newGates(), &states{err: err}
		resp, _ := newHandler(g, s).Handle(context.Background(), event(t, "post-approve"))
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Body, "expired") {
			t.Errorf("%v: status %d, body %s", err, resp.StatusCode, resp.Body)
		}
		if a := g.approvals[approvalID]; a.Status != store.ApprovalExpired {
			t.Errorf("%v: approval status %s, want EXPIRED (never shown as approved)", err, a.Status)
		}
		if len(g.runDecisions) != 0 {
			t.Errorf("%v: a late decision reached the run's report", err)
		}
	}
}

func TestStepFunctionsDownReopensTheGate(t *testing.T) {
	g, s := newGates(), &states{err: apiErr("ServiceUnavailable")}
	h := newHandler(g, s)
	resp, _ := h.Handle(context.Background(), event(t, "post-approve"))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", resp.StatusCode)
	}
	if a := g.approvals[approvalID]; a.Status != store.ApprovalPending || a.Decision != nil {
		t.Errorf("approval record %+v, want PENDING again", a)
	}
	s.err = nil
	if resp, _ := h.Handle(context.Background(), event(t, "post-approve")); resp.StatusCode != http.StatusOK || len(s.successes) != 1 {
		t.Errorf("retry: status %d, %d successes", resp.StatusCode, len(s.successes))
	}
}

func TestApproverIsRequired(t *testing.T) {
	for _, approver := range []string{"", "   ", "two\nlines", strings.Repeat("a", maxApprover+1)} {
		g, s := newGates(), &states{}
		v := signed(contract.DecisionApprove, "")
		v.Set(fieldApprover, approver)
		resp, _ := newHandler(g, s).Handle(context.Background(), post(v, "198.51.100.7"))
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.Body, "<form") {
			t.Errorf("approver %q: status %d, want 400 with the form again", approver, resp.StatusCode)
		}
		if g.writes != 0 || s.calls() != 0 {
			t.Errorf("approver %q: something changed", approver)
		}
	}
}

func TestHostileValuesAreEscaped(t *testing.T) {
	const evil = `"><script>alert(1)</script>`
	g, s := newGates(), &states{}
	a := g.approvals[approvalID]
	a.RunID, a.WaveID = "run"+evil, "wave"+evil
	g.approvals[approvalID] = a
	h := newHandler(g, s)
	get, _ := h.Handle(context.Background(), event(t, "get-approve"))
	tooLong := signed(contract.DecisionApprove, evil+strings.Repeat("x", maxApprover))
	retry, _ := h.Handle(context.Background(), post(tooLong, "198.51.100.7"))
	done, _ := h.Handle(context.Background(), post(signed(contract.DecisionApprove, evil), "198.51.100.7"+evil))
	for name, resp := range map[string]events.APIGatewayProxyResponse{"GET": get, "400": retry, "POST": done} {
		if strings.Contains(resp.Body, "<script") || !strings.Contains(resp.Body, "&lt;script&gt;") {
			t.Errorf("%s page does not escape: %s", name, resp.Body)
		}
		if resp.Headers["Content-Type"] != "text/html; charset=utf-8" ||
			!strings.Contains(resp.Headers["Content-Security-Policy"], "default-src 'none'") {
			t.Errorf("%s headers %v", name, resp.Headers)
		}
	}
}

// The form a GET shows, posted back as a browser would, decides.
func TestTheFormPostsTheSignedFields(t *testing.T) {
	g, s := newGates(), &states{}
	h := newHandler(g, s)
	get, _ := h.Handle(context.Background(), event(t, "get-approve"))
	action := regexp.MustCompile(`<form method="post" action="([^"]*)">`).FindStringSubmatch(get.Body)
	if action == nil || action[1] != approvalID {
		t.Fatalf("form action %v: want the approval ID, relative to the link", action)
	}
	fields := url.Values{}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([a-z]+)" value="([^"]*)">`).FindAllStringSubmatch(get.Body, -1) {
		fields.Set(m[1], m[2])
	}
	fields.Set(fieldApprover, "carol@example.com")
	resp, _ := h.Handle(context.Background(), post(fields, "198.51.100.8"))
	if resp.StatusCode != http.StatusOK || len(s.successes) != 1 {
		t.Errorf("posting the form back: status %d, body %s", resp.StatusCode, resp.Body)
	}
}

func TestOtherAnswers(t *testing.T) {
	g, s := newGates(), &states{}
	h := newHandler(g, s)
	put := event(t, "post-approve")
	put.HTTPMethod = http.MethodPut
	if resp, _ := h.Handle(context.Background(), put); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: status %d", resp.StatusCode)
	}
	h.Keys = fixedKey{err: errors.New("secrets manager throttled")}
	if resp, _ := h.Handle(context.Background(), event(t, "post-approve")); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("no key: status %d", resp.StatusCode)
	}
	delete(g.approvals, approvalID)
	h.Keys = fixedKey{}
	if resp, _ := h.Handle(context.Background(), event(t, "get-approve")); resp.StatusCode != http.StatusForbidden {
		t.Errorf("unknown approval: status %d", resp.StatusCode)
	}
	if g.writes != 0 || s.calls() != 0 {
		t.Error("something changed")
	}
}
