package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/approval"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
)

type keySource interface {
	Key(ctx context.Context) ([]byte, error)
}

type approvalWriter interface {
	PutApproval(ctx context.Context, a store.Approval) error
}

type previewLister interface {
	Previews(ctx context.Context, runID, waveID string) ([]contract.PreviewSummary, error)
}

type publisher interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

var _ publisher = (*sns.Client)(nil)

// Handler asks for the approval of one wave.
type Handler struct {
	Keys      keySource
	Approvals approvalWriter
	Previews  previewLister
	SNS       publisher
	TopicARN  string
	// ApprovalURL is the approval API's base URL; a link is
	// <ApprovalURL>/<approvalId>?decision=...&expires=...&signature=...
	ApprovalURL string
	Log         *slog.Logger
	// NewID is approval.NewID and Now is time.Now when nil.
	NewID func() (string, error)
	Now   func() time.Time
}

// Sent is what the handler returns. The orchestrator does not read it: the
// task's result is the approver's decision, sent with the task token.
type Sent struct {
	ApprovalID    string `json:"approvalId"`
	LinkExpiresAt string `json:"linkExpiresAt"`
}

// Handle is the Lambda entry point.
func (h *Handler) Handle(ctx context.Context, req contract.ApprovalRequest) (Sent, error) {
	log := logx.For(ctx, h.Log, logx.Scope{RunID: req.RunID, WaveID: req.Wave.WaveID})
	out, err := h.send(ctx, req)
	if err != nil {
		err = fault.Boundary(err)
		logx.Failed(log, err)
		return Sent{}, err
	}
	log.Info("approval requested", "approvalId", out.ApprovalID, "linkExpiresAt", out.LinkExpiresAt)
	return out, nil
}

func (h *Handler) send(ctx context.Context, req contract.ApprovalRequest) (Sent, error) {
	if req.TaskToken == "" || req.TimeoutSeconds < 1 || req.RunID == "" || req.Wave.WaveID == "" {
		return Sent{}, errors.New("approval request needs taskToken, runId, wave.waveId and a positive timeoutSeconds")
	}
	key, err := h.Keys.Key(ctx)
	if err != nil {
		return Sent{}, err
	}
	newID := approval.NewID
	if h.NewID != nil {
		newID = h.NewID
	}
	id, err := newID()
	if err != nil {
		return Sent{}, err
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	// The links die with the task: the state machine's wait has the same
	// timeout, and a timeout is a rejection.
	expires := now().UTC().Add(time.Duration(req.TimeoutSeconds) * time.Second).Truncate(time.Second)
	// Record first, so the links work as soon as the message arrives.
	if err := h.Approvals.PutApproval(ctx, store.Approval{ID: id, TaskToken: req.TaskToken, RunID: req.RunID,
		WaveID: req.Wave.WaveID, LinkExpiresAt: expires}); err != nil {
		return Sent{}, err
	}
	previews, err := h.Previews.Previews(ctx, req.RunID, req.Wave.WaveID)
	if err != nil {
		return Sent{}, err
	}
	links := Links{
		Approve: approval.Link(h.ApprovalURL, key, id, contract.DecisionApprove, expires.Unix()),
		Reject:  approval.Link(h.ApprovalURL, key, id, contract.DecisionReject, expires.Unix()),
	}
	subject, body := Message(req, previews, links, expires)
	if _, err := h.SNS.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(h.TopicARN),
		Subject: aws.String(subject), Message: aws.String(body)}); err != nil {
		return Sent{}, fmt.Errorf("publish the approval request: %w", err)
	}
	return Sent{ApprovalID: id, LinkExpiresAt: expires.Format(time.RFC3339)}, nil
}

// Links are the two signed links of a request.
type Links struct{ Approve, Reject string }

const (
	maxSubject = 100 // SNS's limit on an e-mail subject
	maxListed  = 50  // account-regions listed by name before "and N more"
)

// Message is the approval request: what the wave will patch, from the
// preview's records, and the links.
func Message(req contract.ApprovalRequest, previews []contract.PreviewSummary, links Links, expires time.Time) (subject, body string) {
	w := req.Wave
	subject = fmt.Sprintf("ec2patch approval needed: run %s, wave %s", req.RunID, w.WaveID)
	if len(subject) > maxSubject {
		subject = subject[:maxSubject]
	}
	byTarget := map[contract.TargetRef]contract.PreviewSummary{}
	for _, p := range previews {
		byTarget[contract.TargetRef{Account: p.Account, Region: p.Region}] = p
	}
	var matched, patchable, skipped, inventoried int
	var problems []string
	for _, ref := range w.Targets() {
		p, ok := byTarget[ref]
		switch {
		case !ok:
			problems = append(problems, ref.Account+"/"+ref.Region+": no preview was recorded")
		case p.Error != "":
			problems = append(problems, ref.Account+"/"+ref.Region+": "+oneLine(p.Error))
		default:
			inventoried++
			matched += p.Matched
			patchable += p.TargetCount
			skipped += p.Skipped
		}
	}
	sort.Strings(problems)

	var b strings.Builder
	fmt.Fprintf(&b, "Approval needed: ec2patch run %s, wave %s (wave %d of the run).\n\n", req.RunID, w.WaveID, w.Index+1)
	if req.DryRun {
		fmt.Fprintf(&b, "Operation: %s (dry run): nothing is installed and nothing reboots.\n", req.Operation)
	} else {
		fmt.Fprintf(&b, "Operation: %s: patches are installed and instances may reboot.\n", req.Operation)
	}
	fmt.Fprintf(&b, "Accounts (%d): %s\n", len(w.Accounts), strings.Join(w.Accounts, ", "))
	fmt.Fprintf(&b, "Regions (%d): %s\n", len(w.Regions), strings.Join(w.Regions, ", "))
	fmt.Fprintf(&b, "Tag filters: %s\n\n", tags(w.TagFilters))
	fmt.Fprintf(&b, "Instances to patch: %d\n", patchable)
	fmt.Fprintf(&b, "Instances skipped (stopped or not managed by SSM): %d\n", skipped)
	fmt.Fprintf(&b, "Instances matching the tag filters: %d\n", matched)
	fmt.Fprintf(&b, "Account-regions inventoried: %d of %d\n", inventoried, len(w.Targets()))
	if len(problems) > 0 {
		fmt.Fprintf(&b, "Account-regions that could not be inventoried (%d); they will be tried and may fail the wave:\n", len(problems))
		for i, p := range problems {
			if i == maxListed {
				fmt.Fprintf(&b, "  and %d more\n", len(problems)-maxListed)
				break
			}
			fmt.Fprintf(&b, "  %s\n", p)
		}
	}
	fmt.Fprintf(&b, "\nDecide before %s. Without a decision by then the wave is rejected and the run stops.\n\n",
		expires.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Approve: %s\n\nReject:  %s\n\n", links.Approve, links.Reject)
	b.WriteString("Each link opens a page where you confirm with your name or e-mail address; " +
		"the first decision counts and the links then stop working.\n")
	return subject, b.String()
}

func tags(filters map[string]string) string {
	if len(filters) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range filters {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// oneLine keeps an error readable in a plain-text message.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:297] + "..."
	}
	return s
}
