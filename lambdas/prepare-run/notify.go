package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
)

type publisher interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Announcer publishes a run's start: operators learn a run began (a
// scheduled one especially) before its first wave's verdict.
type Announcer struct {
	SNS      publisher
	TopicARN string
	// Environment (the hub's name prefix) and Bucket name the run's hub
	// and where its report will be.
	Environment string
	Bucket      string
}

// maxSubject is SNS's limit on an e-mail subject.
const maxSubject = 100

// announce publishes the start. A failed publish is logged, not returned:
// the run is recorded and must go on.
func (h *Handler) announce(ctx context.Context, run contract.Run) {
	a := h.Announce
	if a == nil || a.SNS == nil {
		return
	}
	subject, body := StartNotification(a.Environment, a.Bucket, run)
	if _, err := a.SNS.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(a.TopicARN),
		Subject: aws.String(subject), Message: aws.String(body)}); err != nil {
		logx.For(ctx, h.Log, logx.Scope{RunID: run.RunID}).Warn("start notification not published", "error", err.Error())
	}
}

// StartNotification is the run-start message: "ec2patch ec2patch-dev run
// 2026-12-patch: started (3 waves, Install)", and a body listing the waves
// and where the report will be.
func StartNotification(environment, bucket string, run contract.Run) (subject, body string) {
	op := run.Operation
	if run.DryRun {
		op = "dry run, " + contract.OperationScan
	}
	subject = fmt.Sprintf("ec2patch %s run %s: started (%d waves, %s)", environment, run.RunID, len(run.Waves), op)
	if len(subject) > maxSubject {
		subject = subject[:maxSubject]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ec2patch %s run %s started at %s (operation %s, reboot %s, abort on issues %t).\n",
		environment, run.RunID, run.StartedAt, run.Operation, run.RebootOption, run.AbortOnIssues)
	if run.Campaign != "" {
		fmt.Fprintf(&b, "Campaign %s, scheduled for %s.\n", run.Campaign, run.ScheduledTime)
	}
	b.WriteString("\nWaves:\n")
	for _, w := range run.Waves {
		gate := ""
		if w.Approval {
			gate = ", approval required"
		}
		fmt.Fprintf(&b, "  %s: %d target(s) (%d account(s) x %d region(s))%s\n", w.WaveID, w.TargetCount,
			len(w.Accounts), len(w.Regions), gate)
	}
	fmt.Fprintf(&b, "\nThe run report is written at the end of the run to:\n  s3://%s/%s\n  s3://%s/%s\n",
		bucket, contract.ReportJSONKey(run.RunID), bucket, contract.ReportCSVKey(run.RunID))
	return subject, b.String()
}
