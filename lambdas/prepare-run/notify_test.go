package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/wiretest"
)

type topic struct {
	published []*sns.PublishInput
	err       error
}

func (p *topic) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	p.published = append(p.published, in)
	return &sns.PublishOutput{}, p.err
}

func TestPrepareAnnouncesTheStartedRun(t *testing.T) {
	tp := &topic{}
	h := newHandler(&bucket{objects: map[string]string{}}, &runs{})
	h.Announce = &Announcer{SNS: tp, TopicARN: "arn:aws:sns:eu-central-1:123456789012:t", Environment: "ec2patch-dev", Bucket: "hub-bucket"}
	wiretest.Golden(t, h.Handle, "prepare")
	if len(tp.published) != 1 {
		t.Fatalf("%d notifications, want 1", len(tp.published))
	}
	n := tp.published[0]
	if !strings.HasPrefix(*n.Subject, "ec2patch ec2patch-dev run 2026-12-patch: started (") || len(*n.Subject) > maxSubject {
		t.Errorf("subject %q", *n.Subject)
	}
	for _, part := range []string{"canary: 4 target(s) (2 account(s) x 2 region(s))", "s3://hub-bucket/reports/2026-12-patch/report.json",
		"s3://hub-bucket/reports/2026-12-patch/report.csv"} {
		if !strings.Contains(*n.Message, part) {
			t.Errorf("message does not say %q:\n%s", part, *n.Message)
		}
	}
}

func TestPrepareGoesOnWhenTheStartPublishFails(t *testing.T) {
	var logs bytes.Buffer
	r := &runs{}
	h := newHandler(&bucket{objects: map[string]string{}}, r)
	h.Log = logx.New(&logs)
	h.Announce = &Announcer{SNS: &topic{err: errors.New("topic gone")}}
	wiretest.Golden(t, h.Handle, "prepare")
	if len(r.started) != 1 || !strings.Contains(logs.String(), "topic gone") {
		t.Errorf("runs started %d, logs %s: want the run started and the error logged", len(r.started), logs.String())
	}
}

func TestStartSubjectIsCut(t *testing.T) {
	run := contract.Run{RunID: strings.Repeat("r", 120), DryRun: true}
	if s, _ := StartNotification("ec2patch-dev", "b", run); len(s) != maxSubject {
		t.Errorf("subject of %d chars", len(s))
	}
}
