package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/smithy-go"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/approval"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
)

type keySource interface {
	Key(ctx context.Context) ([]byte, error)
}

type approvalReader interface {
	Approval(ctx context.Context, id string) (store.Approval, bool, error)
}

type decisionRecorder interface {
	DecideApproval(ctx context.Context, d contract.ApprovalDecision) (bool, error)
}

type decisionUndoer interface {
	UndoDecision(ctx context.Context, id, from, to string) error
}

type runDecisionWriter interface {
	PutRunDecision(ctx context.Context, runID string, d contract.ApprovalDecision) error
}

type taskSucceeder interface {
	SendTaskSuccess(ctx context.Context, in *sfn.SendTaskSuccessInput, optFns ...func(*sfn.Options)) (*sfn.SendTaskSuccessOutput, error)
}

type taskFailer interface {
	SendTaskFailure(ctx context.Context, in *sfn.SendTaskFailureInput, optFns ...func(*sfn.Options)) (*sfn.SendTaskFailureOutput, error)
}

var (
	_ taskSucceeder = (*sfn.Client)(nil)
	_ taskFailer    = (*sfn.Client)(nil)
	_ keySource     = (*approval.Keys)(nil)
)

// Handler answers approval links.
type Handler struct {
	Keys         keySource
	Approvals    approvalReader
	Decisions    decisionRecorder
	Undo         decisionUndoer
	RunDecisions runDecisionWriter
	Succeed      taskSucceeder
	Fail         taskFailer
	Log          *slog.Logger
	// Now is time.Now when nil.
	Now func() time.Time
}

// Form field of the approver's name or e-mail address.
const fieldApprover = "approver"

// maxApprover bounds what an approver may type; it ends up in the report
// and in a Step Functions cause.
const maxApprover = 200

// link is what a request carries: the approval ID from the path and the
// signed fields from the query (GET) or the form (POST).
type link struct {
	id, decision, expires, signature string
}

// Handle is the Lambda entry point. It never returns an error: API Gateway
// would show a bare 502, and every outcome deserves a page that says why.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	log := logx.For(ctx, h.Log, logx.Scope{}).With("method", req.HTTPMethod,
		"approvalId", req.PathParameters["approvalId"], "sourceIp", req.RequestContext.Identity.SourceIP)
	var p page
	switch req.HTTPMethod {
	case http.MethodGet:
		q := req.QueryStringParameters
		p = h.show(ctx, log, link{req.PathParameters["approvalId"], q[approval.ParamDecision], q[approval.ParamExpires], q[approval.ParamSignature]})
	case http.MethodPost:
		form, err := formOf(req)
		if err != nil {
			p = refusal(http.StatusBadRequest, "The form could not be read.")
			break
		}
		l := link{req.PathParameters["approvalId"], form.Get(approval.ParamDecision), form.Get(approval.ParamExpires), form.Get(approval.ParamSignature)}
		p = h.decide(ctx, log, l, form.Get(fieldApprover), req.RequestContext.Identity.SourceIP)
	default:
		p = refusal(http.StatusMethodNotAllowed, "Only GET and POST are answered here.")
	}
	log.Info("approval request answered", "status", p.Status, "title", p.Title)
	return p.response(), nil
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// verify checks the link and reads the gate. It changes nothing. A page is
// returned when the request must be refused.
func (h *Handler) verify(ctx context.Context, log *slog.Logger, l link) (store.Approval, *page) {
	key, err := h.Keys.Key(ctx)
	if err != nil {
		log.Error("signing key unavailable", "error", err.Error())
		return store.Approval{}, ptr(refusal(http.StatusServiceUnavailable, "The approval service cannot check links right now. Try again in a minute."))
	}
	if _, err := approval.Verify(key, l.id, l.decision, l.expires, l.signature, h.now()); err != nil {
		log.Warn("approval link refused", "reason", err.Error())
		if errors.Is(err, approval.ErrExpired) {
			return store.Approval{}, ptr(refusal(http.StatusForbidden, "This approval link has expired: the wave was not approved in time, which counts as a rejection."))
		}
		return store.Approval{}, ptr(refusal(http.StatusForbidden, "This approval link is not valid: it was changed or is incomplete. Use the link from the approval message as it is."))
	}
	a, ok, err := h.Approvals.Approval(ctx, l.id)
	if err != nil {
		log.Error("approval record unreadable", "error", err.Error())
		return store.Approval{}, ptr(refusal(http.StatusServiceUnavailable, "The approval service cannot read this approval right now. Try again in a minute."))
	}
	if !ok {
		return store.Approval{}, ptr(refusal(http.StatusForbidden, "This approval is unknown or no longer kept."))
	}
	if a.Status != store.ApprovalPending {
		return store.Approval{}, ptr(alreadyDecided(a))
	}
	return a, nil
}

// show answers a GET: the page that confirms the decision. It never
// changes anything, because mail scanners and previews fetch links.
func (h *Handler) show(ctx context.Context, log *slog.Logger, l link) page {
	a, refused := h.verify(ctx, log, l)
	if refused != nil {
		return *refused
	}
	return confirm(a, l, "", "")
}

// decide answers a POST: verify again, record the decision once, then tell
// the orchestrator.
func (h *Handler) decide(ctx context.Context, log *slog.Logger, l link, approver, sourceIP string) page {
	a, refused := h.verify(ctx, log, l)
	if refused != nil {
		return *refused
	}
	approver = strings.TrimSpace(approver)
	if problem := checkApprover(approver); problem != "" {
		return confirm(a, l, approver, problem)
	}
	log = log.With("runId", a.RunID, "waveId", a.WaveID)
	d := contract.ApprovalDecision{ApprovalID: a.ID, WaveID: a.WaveID, Decision: l.decision, Approver: approver,
		SourceIP: sourceIP, DecidedAt: h.now().UTC().Format(time.RFC3339)}
	decided, err := h.Decisions.DecideApproval(ctx, d)
	if err != nil {
		log.Error("decision not recorded", "error", err.Error())
		return refusal(http.StatusServiceUnavailable, "The decision could not be recorded. Nothing changed; try again in a minute.")
	}
	if !decided {
		// Another request decided between the read and the write.
		return refusal(http.StatusForbidden, "This approval was already decided. Each link works once.")
	}
	recorded := store.ApprovalRejected
	if d.Decision == contract.DecisionApprove {
		recorded = store.ApprovalApproved
	}
	if err := h.tell(ctx, a, d); err != nil {
		if expired(err) {
			log.Warn("decision came after the task ended", "error", err.Error())
			if uerr := h.Undo.UndoDecision(ctx, a.ID, recorded, store.ApprovalExpired); uerr != nil {
				log.Error("late decision not marked expired", "error", uerr.Error())
			}
			return refusal(http.StatusForbidden, "This approval has expired: the orchestrator stopped waiting, which counts as a rejection. Your decision was not applied.")
		}
		log.Error("orchestrator not told", "error", err.Error())
		if uerr := h.Undo.UndoDecision(ctx, a.ID, recorded, store.ApprovalPending); uerr != nil {
			log.Error("decision not reopened", "error", uerr.Error())
		}
		return refusal(http.StatusServiceUnavailable, "The orchestrator could not be told. Nothing changed; try the link again in a minute.")
	}
	if err := h.RunDecisions.PutRunDecision(ctx, a.RunID, d); err != nil {
		// The orchestrator has the decision and the approval record keeps
		// it; only the report will lack it.
		log.Error("decision not copied to the run for its report", "error", err.Error())
	}
	log.Info("approval decided", "decision", d.Decision, "approver", d.Approver)
	verb := "rejected"
	if d.Decision == contract.DecisionApprove {
		verb = "approved"
	}
	return page{Status: http.StatusOK, Title: "Wave " + verb,
		Message: fmt.Sprintf("You %s wave %s of run %s. The decision is recorded as made by %s at %s from %s.",
			verb, a.WaveID, a.RunID, d.Approver, d.DecidedAt, d.SourceIP)}
}

// tell answers the orchestrator's waiting task.
func (h *Handler) tell(ctx context.Context, a store.Approval, d contract.ApprovalDecision) error {
	if d.Decision == contract.DecisionApprove {
		out, err := json.Marshal(d)
		if err != nil {
			return err
		}
		_, err = h.Succeed.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(a.TaskToken), Output: aws.String(string(out))})
		return err
	}
	_, err := h.Fail.SendTaskFailure(ctx, &sfn.SendTaskFailureInput{TaskToken: aws.String(a.TaskToken),
		Error: aws.String(contract.ErrApprovalRejected), Cause: aws.String(RejectionCause(d))})
	return err
}

// RejectionCause is the Cause of a rejection, which the report shows.
func RejectionCause(d contract.ApprovalDecision) string {
	return fmt.Sprintf("rejected by %s at %s from %s", d.Approver, d.DecidedAt, d.SourceIP)
}

// expired tells Step Functions' answers for a task that no longer waits.
func expired(err error) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode() {
	case "TaskTimedOut", "TaskDoesNotExist", "InvalidToken":
		return true
	}
	return false
}

func checkApprover(s string) string {
	switch {
	case s == "":
		return "Enter your name or e-mail address: the decision is recorded with it."
	case len(s) > maxApprover:
		return fmt.Sprintf("Your name or e-mail address may have at most %d characters.", maxApprover)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "Your name or e-mail address must be on one line."
	}
	return ""
}

// formOf reads a POST's form-encoded body.
func formOf(req events.APIGatewayProxyRequest) (url.Values, error) {
	body := req.Body
	if req.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return nil, err
		}
		body = string(b)
	}
	return url.ParseQuery(body)
}

func alreadyDecided(a store.Approval) page {
	msg := "This approval was already decided. Each link works once."
	if d := a.Decision; d != nil {
		switch a.Status {
		case store.ApprovalExpired:
			msg = fmt.Sprintf("This approval has expired: a decision by %s at %s came after the orchestrator stopped waiting.", d.Approver, d.DecidedAt)
		default:
			msg = fmt.Sprintf("This approval was already decided: %s by %s at %s. Each link works once.", d.Decision, d.Approver, d.DecidedAt)
		}
	}
	return refusal(http.StatusForbidden, msg)
}

func ptr[T any](v T) *T { return &v }
