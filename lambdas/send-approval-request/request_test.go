package main

import (
	"context"
	"errors"
	"io"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/approval"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
	"github.com/ec2patch/ec2patch/lambdas/internal/wiretest"
)

const testKey = "test-signing-key-0123456789abcdef0123456789abcdef"

var now = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

type fixedKey struct{}

func (fixedKey) Key(context.Context) ([]byte, error) { return []byte(testKey), nil }

// table keeps the approval records and serves the wave's previews.
type table struct {
	approvals []store.Approval
	previews  []contract.PreviewSummary
	asked     []string
	err       error
}

func (t *table) PutApproval(_ context.Context, a store.Approval) error {
	if t.err != nil {
		return &fault.StoreFailure{Op: "write approval record", Err: t.err}
	}
	t.approvals = append(t.approvals, a)
	return nil
}

func (t *table) Previews(_ context.Context, runID, waveID string) ([]contract.PreviewSummary, error) {
	t.asked = append(t.asked, runID+"/"+waveID)
	return t.previews, nil
}

type topic struct{ published []*sns.PublishInput }

func (tp *topic) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	tp.published = append(tp.published, in)
	return &sns.PublishOutput{}, nil
}

func newHandler(t *table, tp *topic) *Handler {
	return &Handler{Keys: fixedKey{}, Approvals: t, Previews: t, SNS: tp,
		TopicARN:    "arn:aws:sns:eu-central-1:123456789012:ec2patch-dev-notifications",
		ApprovalURL: "https://abc123.execute-api.eu-central-1.amazonaws.com/prod/approvals",
		Log:         logx.New(io.Discard),
		NewID:       func() (string, error) { return "Zm9yLWEtY2FuYXJ5LXdhdmU", nil },
		Now:         func() time.Time { return now }}
}

// Three of the four account-regions previewed: one with an error, one not
// at all (its preview task failed).
func previews() []contract.PreviewSummary {
	return []contract.PreviewSummary{
		{Account: "222222222222", Region: "us-east-1", Matched: 5, TargetCount: 4, Skipped: 1},
		{Account: "222222222222", Region: "us-west-2", Matched: 3, TargetCount: 3},
		{Account: "333333333333", Region: "us-east-1", Error: "AccessDenied: cannot assume arn:aws:iam::333333333333:role/PatchExecRole with the configured ExternalId:\n AccessDenied: not authorized"},
	}
}

func TestRequestWire(t *testing.T) {
	tb, tp := &table{previews: previews()}, &topic{}
	wiretest.Golden(t, newHandler(tb, tp).Handle, "request")

	want := store.Approval{ID: "Zm9yLWEtY2FuYXJ5LXdhdmU", TaskToken: "AQCEAAAAKgAAAAMAAAAAAAAAAdummytoken",
		RunID: "2026-12-patch", WaveID: "wave2", LinkExpiresAt: now.Add(time.Hour)}
	if len(tb.approvals) != 1 || tb.approvals[0] != want {
		t.Errorf("approval records %+v, want %+v", tb.approvals, want)
	}
	if len(tb.asked) != 1 || tb.asked[0] != "2026-12-patch/wave2" {
		t.Errorf("previews read for %v", tb.asked)
	}
	if len(tp.published) != 1 {
		t.Fatalf("%d messages published", len(tp.published))
	}
	msg := tp.published[0]
	if aws.ToString(msg.TopicArn) != "arn:aws:sns:eu-central-1:123456789012:ec2patch-dev-notifications" {
		t.Errorf("published to %s", aws.ToString(msg.TopicArn))
	}
	if strings.Contains(aws.ToString(msg.Message), "dummytoken") {
		t.Error("the task token left the hub in the message")
	}
	wiretest.MatchFile(t, "request.message.txt", []byte("Subject: "+aws.ToString(msg.Subject)+"\n\n"+aws.ToString(msg.Message)))
}

// Both links in the message verify with the key, each with its decision,
// and stop working at the deadline.
func TestLinksVerify(t *testing.T) {
	tb, tp := &table{previews: previews()}, &topic{}
	if _, err := newHandler(tb, tp).Handle(context.Background(), contract.ApprovalRequest{TaskToken: "t", RunID: "r",
		Operation: contract.OperationScan, DryRun: true, TimeoutSeconds: 3,
		Wave: contract.Wave{WaveID: "w", Accounts: []string{"222222222222"}, Regions: []string{"us-east-1"}}}); err != nil {
		t.Fatal(err)
	}
	found := regexp.MustCompile(`(?m)^(Approve|Reject): +(\S+)$`).FindAllStringSubmatch(aws.ToString(tp.published[0].Message), -1)
	if len(found) != 2 {
		t.Fatalf("links %v, want two", found)
	}
	for _, f := range found {
		u, err := url.Parse(f[2])
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(f[2], "https://abc123.execute-api.eu-central-1.amazonaws.com/prod/approvals/Zm9yLWEtY2FuYXJ5LXdhdmU?") {
			t.Errorf("link %s is not <approval URL>/<id>?...", f[2])
		}
		q := u.Query()
		if want := strings.ToLower(f[1]); q.Get(approval.ParamDecision) != want {
			t.Errorf("%s link has decision %q", f[1], q.Get(approval.ParamDecision))
		}
		exp, err := approval.Verify([]byte(testKey), "Zm9yLWEtY2FuYXJ5LXdhdmU", q.Get(approval.ParamDecision),
			q.Get(approval.ParamExpires), q.Get(approval.ParamSignature), now)
		if err != nil || exp != now.Add(3*time.Second).Unix() {
			t.Errorf("%s link: Verify = %d, %v", f[1], exp, err)
		}
		if _, err := approval.Verify([]byte(testKey), "Zm9yLWEtY2FuYXJ5LXdhdmU", q.Get(approval.ParamDecision),
			q.Get(approval.ParamExpires), q.Get(approval.ParamSignature), now.Add(3*time.Second)); !errors.Is(err, approval.ErrExpired) {
			t.Errorf("%s link still works at its deadline: %v", f[1], err)
		}
	}
	if !strings.Contains(aws.ToString(tp.published[0].Message), "Scan (dry run): nothing is installed and nothing reboots") {
		t.Errorf("a dry run does not say so:\n%s", aws.ToString(tp.published[0].Message))
	}
}

func TestNothingPublishedWithoutARecord(t *testing.T) {
	tb, tp := &table{err: errors.New("table gone")}, &topic{}
	wiretest.WantError(t, newHandler(tb, tp).Handle, "request", contract.ErrStateStore)
	if len(tp.published) != 0 {
		t.Error("links were published for an approval that was not recorded")
	}
}

func TestRequestNeedsAToken(t *testing.T) {
	tb, tp := &table{}, &topic{}
	_, err := newHandler(tb, tp).Handle(context.Background(), contract.ApprovalRequest{RunID: "r", TimeoutSeconds: 60, Wave: contract.Wave{WaveID: "w"}})
	if wiretest.ErrorType(err) != contract.ErrTargetFailed || len(tb.approvals) != 0 {
		t.Errorf("error %v, %d records", err, len(tb.approvals))
	}
}
