package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/internal/emf"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
)

type runReader interface {
	Run(ctx context.Context, runID string) (store.RunRecords, error)
}

type runFinisher interface {
	FinishRun(ctx context.Context, sum contract.ReportSummary, finishedAt string) error
}

type publisher interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

type objectPutter interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Handler writes the run report.
type Handler struct {
	Records runReader
	Runs    runFinisher
	S3      objectPutter
	Bucket  string
	// SNS publishes the run's notification to TopicARN.
	SNS      publisher
	TopicARN string
	// Environment (the hub's name prefix) names the run's hub in the
	// notification.
	Environment string
	Log         *slog.Logger
	// Metrics receives RunsCompleted; nil writes none.
	Metrics logx.Metrics
	// Now is time.Now when nil.
	Now func() time.Time
}

// Handle is the Lambda entry point.
func (h *Handler) Handle(ctx context.Context, req contract.ReportRequest) (contract.ReportSummary, error) {
	log := logx.For(ctx, h.Log, logx.Scope{RunID: req.Run.RunID})
	sum, err := h.write(ctx, req)
	if err != nil {
		err = fault.Boundary(err)
		logx.Failed(log, err)
		return contract.ReportSummary{}, err
	}
	log.Info("run reported", "status", sum.Status, "totals", sum.Totals, "reportUri", sum.ReportURI, "csvUri", sum.CSVURI)
	logx.Emit(log, h.Metrics, emf.Dimensions{contract.DimStatus: sum.Status}, []string{contract.DimStatus},
		emf.Metric{Name: contract.MetricRunsCompleted, Value: 1, Unit: emf.Count})
	return sum, nil
}

func (h *Handler) write(ctx context.Context, req contract.ReportRequest) (contract.ReportSummary, error) {
	rr, err := h.Records.Run(ctx, req.Run.RunID)
	if err != nil {
		return contract.ReportSummary{}, err
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	rep := Assemble(req, rr, now().UTC().Format(time.RFC3339))
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return contract.ReportSummary{}, fmt.Errorf("encode report: %w", err)
	}
	csvBytes, err := CSV(rep)
	if err != nil {
		return contract.ReportSummary{}, fmt.Errorf("encode report CSV: %w", err)
	}
	jsonKey, csvKey := contract.ReportJSONKey(rep.RunID), contract.ReportCSVKey(rep.RunID)
	sum := contract.ReportSummary{RunID: rep.RunID, Status: rep.Status, Totals: rep.Totals,
		ReportURI: "s3://" + h.Bucket + "/" + jsonKey, CSVURI: "s3://" + h.Bucket + "/" + csvKey}
	// The run's result goes to DynamoDB before the report goes to S3: an
	// S3 outage then delays the report (the task is retried, and a retry
	// rewrites both) but never loses how the run ended.
	if err := h.Runs.FinishRun(ctx, sum, rep.FinishedAt); err != nil {
		return contract.ReportSummary{}, err
	}
	if err := h.put(ctx, jsonKey, "application/json", append(js, '\n')); err != nil {
		return contract.ReportSummary{}, err
	}
	if err := h.put(ctx, csvKey, "text/csv", csvBytes); err != nil {
		return contract.ReportSummary{}, err
	}
	// Last, so a retry after a failed publish rewrites the same report
	// rather than announcing one that was not written.
	subject, body := Notification(h.Environment, rep, sum)
	if _, err := h.SNS.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(h.TopicARN),
		Subject: aws.String(subject), Message: aws.String(body)}); err != nil {
		return contract.ReportSummary{}, fmt.Errorf("publish the run notification: %w", err)
	}
	return sum, nil
}

// maxSubject is SNS's limit on an e-mail subject.
const maxSubject = 100

// Notification is the short message that tells operators how the run ended
// and why, with its totals and where the report is. The subject reads like
// the wave notifications': "ec2patch ec2patch-dev run 2026-12-patch:
// FAILED (14 patched, 1 failed)".
func Notification(environment string, rep contract.Report, sum contract.ReportSummary) (subject, body string) {
	done, verb := rep.Totals.Patched, "patched"
	if rep.Totals.Scanned > 0 && rep.Totals.Patched == 0 {
		done, verb = rep.Totals.Scanned, "scanned"
	}
	subject = fmt.Sprintf("ec2patch %s run %s: %s (%d %s, %d failed)", environment, rep.RunID, rep.Status,
		done, verb, rep.Totals.Failed+rep.Totals.TimedOut)
	if len(subject) > maxSubject {
		subject = subject[:maxSubject]
	}
	var b strings.Builder
	mode := "patch install"
	if rep.DryRun {
		mode = "dry run, scan only"
	}
	fmt.Fprintf(&b, "ec2patch run %s finished %s (%s, operation %s).\n\n", rep.RunID, rep.Status, mode, rep.Operation)
	fmt.Fprintf(&b, "Why: %s\n\n", Why(rep))
	b.WriteString("Waves:\n")
	for _, w := range rep.Waves {
		fmt.Fprintf(&b, "  %s: %s", w.WaveID, w.Status)
		if w.Reason != "" {
			fmt.Fprintf(&b, " (%s)", w.Reason)
		}
		b.WriteString("\n")
		// A rejection is already the wave's reason; an approval is said here.
		if d := w.Approval; d != nil && d.Decision == contract.DecisionApprove {
			fmt.Fprintf(&b, "    approved by %s at %s from %s\n", d.Approver, d.DecidedAt, d.SourceIP)
		}
	}
	t := rep.Totals
	fmt.Fprintf(&b, "\nTotals: %d patched, %d scanned, %d failed, %d timed out, %d skipped.\n\n",
		t.Patched, t.Scanned, t.Failed, t.TimedOut, t.Skipped)
	fmt.Fprintf(&b, "Report: %s\nCSV:    %s\n", sum.ReportURI, sum.CSVURI)
	return subject, b.String()
}

// Why says in one line why the run ended as it did: which wave, why.
func Why(rep contract.Report) string {
	var bad, notStarted []string
	for _, w := range rep.Waves {
		switch w.Status {
		case contract.StatusSucceeded:
		case contract.StatusNotStarted:
			notStarted = append(notStarted, w.WaveID)
		default:
			line := "wave " + w.WaveID + " " + w.Status
			if w.Reason != "" {
				line += ": " + w.Reason
			}
			bad = append(bad, line)
		}
	}
	if len(bad) == 0 && len(notStarted) == 0 {
		return "every wave succeeded"
	}
	why := strings.Join(bad, "; ")
	if len(notStarted) > 0 {
		if why != "" {
			why += "; "
		}
		why += "not started: " + strings.Join(notStarted, ", ")
	}
	return why
}

func (h *Handler) put(ctx context.Context, key, contentType string, body []byte) error {
	_, err := h.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(h.Bucket), Key: aws.String(key),
		Body: bytes.NewReader(body), ContentType: aws.String(contentType)})
	if err != nil {
		return &fault.StoreFailure{Op: "write s3://" + h.Bucket + "/" + key, Err: err}
	}
	return nil
}

// Assemble builds the report: every wave of the run in order. A wave after
// the one the run stopped at (the cursor) is NOT_STARTED, even if an
// earlier execution of the run left a record for it. The wave at the cursor
// takes the verdict the orchestrator passed when it has no record of this
// execution: a rejected approval (REJECTED) or a halt alarm before the wave
// (ABORTED), which the state machine decides without EvaluateWave. A wave
// that had an approval gate carries its decision.
func Assemble(req contract.ReportRequest, rr store.RunRecords, finishedAt string) contract.Report {
	run := req.Run
	rep := contract.Report{RunID: run.RunID, DryRun: run.DryRun, Operation: run.Operation,
		StartedAt: run.StartedAt, FinishedAt: finishedAt, Waves: []contract.WaveReport{}}
	var statuses []string
	halted := false
	for _, w := range run.Waves {
		wr := contract.WaveReport{WaveID: w.WaveID, Status: contract.StatusNotStarted, Targets: []contract.TargetResult{}}
		v := req.Verdict
		current := v != nil && v.WaveID == w.WaveID && w.Index == req.Cursor.Index
		rec, recorded := rr.Waves[w.WaveID]
		switch {
		case w.Index > req.Cursor.Index:
			// The run stopped before this wave.
		case current && (!recorded || v.Status == contract.StatusRejected || v.Status == contract.StatusAborted):
			wr.Status, wr.Reason, wr.Counts = v.Status, v.Reason, v.Counts
			halted = halted || (v.Halt && v.Status != contract.StatusRejected)
		case recorded:
			wr.Status, wr.Reason, wr.Counts = rec.Verdict.Status, rec.Verdict.Reason, rec.Verdict.Counts
			halted = halted || rec.Verdict.Halt
			wr.Targets = rec.Targets
			if wr.Targets == nil {
				// The record had no room for them: judge again from the
				// target records, as EvaluateWave did.
				_, wr.Targets = contract.JudgeWave(w, rr.Targets[w.WaveID])
			}
		}
		if d, ok := rr.Decisions[w.WaveID]; ok && w.Approval && wr.Status != contract.StatusNotStarted &&
			decidedSince(d, run.StartedAt) {
			wr.Approval = &d
		}
		if wr.Status == contract.StatusRejected {
			wr.Reason = rejectionReason(wr.Reason, wr.Approval, run.ApprovalTimeoutSeconds)
		}
		rep.Totals = rep.Totals.Add(wr.Counts)
		statuses = append(statuses, wr.Status)
		rep.Waves = append(rep.Waves, wr)
	}
	rep.Status = runStatus(statuses, halted, run.AbortOnIssues)
	return rep
}

// rejectionReason says why a gate stopped its wave in an operator's words:
// who rejected it, or that nobody decided in time. The state machine's own
// reason (error and cause of the approval task) is kept for anything else,
// such as an approval request that could not be sent.
func rejectionReason(reason string, d *contract.ApprovalDecision, timeoutSeconds int) string {
	switch {
	case d != nil && d.Decision == contract.DecisionReject:
		return fmt.Sprintf("rejected by %s at %s from %s", d.Approver, d.DecidedAt, d.SourceIP)
	case strings.HasPrefix(reason, "States.Timeout"):
		return fmt.Sprintf("no decision within the approval timeout (%d s): a timeout is a rejection", timeoutSeconds)
	}
	return reason
}

// decidedSince tells a decision of this execution from one an earlier
// execution of the same run left behind.
func decidedSince(d contract.ApprovalDecision, startedAt string) bool {
	decided, err1 := time.Parse(time.RFC3339, d.DecidedAt)
	started, err2 := time.Parse(time.RFC3339, startedAt)
	if err1 != nil || err2 != nil {
		return true
	}
	return !decided.Before(started.Truncate(time.Second))
}

// runStatus is REJECTED when a wave was rejected; ABORTED when a halt alarm
// stopped the run (halted), or a FAILED wave did with abortOnIssues (later
// waves NOT_STARTED); else the contract's rule.
func runStatus(statuses []string, halted, abortOnIssues bool) string {
	failed := false
	for _, s := range statuses {
		switch {
		case s == contract.StatusRejected:
			return contract.StatusRejected
		case s == contract.StatusFailed:
			failed = true
		case s == contract.StatusNotStarted && failed && abortOnIssues:
			halted = true
		}
	}
	if halted {
		return contract.StatusAborted
	}
	return contract.RunStatus(statuses)
}

// csvHeader is the report CSV's header: one row per instance, one row for
// a target without instances, one row for a wave without targets.
var csvHeader = []string{"runId", "waveId", "waveStatus", "account", "region", "targetStatus", "targetReason",
	"commandId", "instanceId", "instanceStatus", "instanceReason"}

// CSV renders the report as CSV.
func CSV(rep contract.Report) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(csvHeader); err != nil {
		return nil, err
	}
	for _, wave := range rep.Waves {
		if len(wave.Targets) == 0 {
			if err := w.Write([]string{rep.RunID, wave.WaveID, wave.Status, "", "", "", "", "", "", "", ""}); err != nil {
				return nil, err
			}
		}
		for _, t := range wave.Targets {
			cmd := t.CommandID
			if len(t.CommandIDs) > 0 {
				cmd = strings.Join(t.CommandIDs, " ")
			}
			row := []string{rep.RunID, wave.WaveID, wave.Status, t.Account, t.Region, t.Status, t.Reason, cmd}
			if len(t.Instances) == 0 {
				if err := w.Write(append(row, "", "", "")); err != nil {
					return nil, err
				}
			}
			for _, in := range t.Instances {
				if err := w.Write(append(row[:8:8], in.InstanceID, in.Status, in.Reason)); err != nil {
					return nil, err
				}
			}
		}
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}
