package emulator

import (
	"net/url"
	"testing"

	"github.com/ec2patch/ec2patch/internal/contract"
)

const sampleApproval = `Run r-2026-12 wave wave2 needs approval (dry run: false).
Approve: https://abc.execute-api.us-east-1.amazonaws.com/prod/approvals/QUJD_ZA?decision=approve&expires=1767225600&signature=0a1b.
Reject:  https://abc.execute-api.us-east-1.amazonaws.com/prod/approvals/QUJD_ZA?decision=reject&expires=1767225600&signature=ff00
`

func TestParseApprovalLinks(t *testing.T) {
	l, ok := ParseApprovalLinks(sampleApproval)
	if !ok {
		t.Fatal("no links found")
	}
	want := ApprovalLinks{ApprovalID: "QUJD_ZA",
		Approve: "https://abc.execute-api.us-east-1.amazonaws.com/prod/approvals/QUJD_ZA?decision=approve&expires=1767225600&signature=0a1b",
		Reject:  "https://abc.execute-api.us-east-1.amazonaws.com/prod/approvals/QUJD_ZA?decision=reject&expires=1767225600&signature=ff00"}
	if l != want {
		t.Errorf("ParseApprovalLinks() = %+v, want %+v", l, want)
	}
	if _, ok := ParseApprovalLinks("ec2patch r1: SUCCEEDED, report s3://b/reports/r1/report.json"); ok {
		t.Error("a run notification was taken for an approval")
	}
}

func TestFindApprovalMatchesRunAndWaveAsWords(t *testing.T) {
	msgs := []Message{
		{Subject: "ec2patch r-2026-12: SUCCEEDED", Body: "done"},
		{Subject: "approve wave2x of r-2026-12", Body: sampleApproval[len("Run r-2026-12 wave wave2"):]},
		{Subject: "approval", Body: sampleApproval},
	}
	run := contract.Run{RunID: "r-2026-12"}
	m, ok := findApproval(msgs, run, "wave2")
	if !ok || m.Subject != "approval" || m.Links.ApprovalID != "QUJD_ZA" {
		t.Errorf("findApproval() = %+v, %v; want the third message", m, ok)
	}
	if _, ok := findApproval(msgs, contract.Run{RunID: "r-2026"}, "wave2"); ok {
		t.Error("a run ID that only prefixes another matched")
	}
	if _, ok := findApproval(msgs, run, "wave3"); ok {
		t.Error("wave3 matched a message about wave2")
	}
}

func TestFormFields(t *testing.T) {
	page := `<form method="post" action="/prod/approvals/x"><input type="hidden" name="decision" value="approve">
	<input type='hidden' name='expires' value='17'><input type="hidden" name="signature" value="a&amp;b">
	<label>Your name <input type="text" name="approver" required></label><input type="submit" value="Approve"></form>`
	fields, approver := FormFields(page)
	want := url.Values{"decision": {"approve"}, "expires": {"17"}, "signature": {"a&b"}}
	if fields.Encode() != want.Encode() || approver != "approver" {
		t.Errorf("FormFields() = %v, %q; want %v, approver", fields, approver, want)
	}
}

func TestDecodeNotification(t *testing.T) {
	m := decodeNotification(`{"Type": "Notification", "Subject": "ec2patch r1: REJECTED", "Message": "wave2 rejected"}`)
	if m.Subject != "ec2patch r1: REJECTED" || m.Body != "wave2 rejected" {
		t.Errorf("envelope: %+v", m)
	}
	if m := decodeNotification("raw text"); m.Subject != "" || m.Body != "raw text" {
		t.Errorf("raw: %+v", m)
	}
}

func TestLinkForm(t *testing.T) {
	f := LinkForm("https://a.execute-api.us-east-1.amazonaws.com/prod/approvals/x?decision=reject&expires=9&signature=ab", "ann")
	if f.Get("decision") != "reject" || f.Get("expires") != "9" || f.Get("signature") != "ab" || f.Get("approver") != "ann" {
		t.Errorf("LinkForm() = %v", f)
	}
}
