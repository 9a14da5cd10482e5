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

	"github.com/ec2patch/ec2patch/internal/contract"
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

type objectPutter interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Handler writes the run report.
type Handler struct {
	Records runReader
	Runs    runFinisher
	S3      objectPutter
	Bucket  string
	Log     *slog.Logger
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
	log.Info("run reported", "status", sum.Status, "totals", sum.Totals, "reportUri", sum.ReportURI)
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
	if err := h.put(ctx, jsonKey, "application/json", append(js, '\n')); err != nil {
		return contract.ReportSummary{}, err
	}
	if err := h.put(ctx, csvKey, "text/csv", csvBytes); err != nil {
		return contract.ReportSummary{}, err
	}
	sum := contract.ReportSummary{RunID: rep.RunID, Status: rep.Status, Totals: rep.Totals,
		ReportURI: "s3://" + h.Bucket + "/" + jsonKey, CSVURI: "s3://" + h.Bucket + "/" + csvKey}
	if err := h.Runs.FinishRun(ctx, sum, rep.FinishedAt); err != nil {
		return contract.ReportSummary{}, err
	}
	return sum, nil
}

func (h *Handler) put(ctx context.Context, key, contentType string, body []byte) error {
	_, err := h.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(h.Bucket), Key: aws.String(key),
		Body: bytes.NewReader(body), ContentType: aws.String(contentType)})
	if err != nil {
		return &fault.StoreFailure{Op: "write s3://" + h.Bucket + "/" + key, Err: err}
	}
	return nil
}

// Assemble builds the report: every wave of the run in order, a wave
// without a record NOT_STARTED (or with the verdict the orchestrator passed,
// such as a rejected approval, when it is the current wave).
func Assemble(req contract.ReportRequest, rr store.RunRecords, finishedAt string) contract.Report {
	run := req.Run
	rep := contract.Report{RunID: run.RunID, DryRun: run.DryRun, Operation: run.Operation,
		StartedAt: run.StartedAt, FinishedAt: finishedAt, Waves: []contract.WaveReport{}}
	var statuses []string
	for _, w := range run.Waves {
		wr := contract.WaveReport{WaveID: w.WaveID, Status: contract.StatusNotStarted, Targets: []contract.TargetResult{}}
		if rec, ok := rr.Waves[w.WaveID]; ok {
			wr.Status, wr.Reason, wr.Counts = rec.Verdict.Status, rec.Verdict.Reason, rec.Verdict.Counts
			wr.Targets = rec.Targets
			if wr.Targets == nil {
				// The record had no room for them: judge again from the
				// target records, as EvaluateWave did.
				_, wr.Targets = contract.JudgeWave(w, rr.Targets[w.WaveID])
			}
		} else if v := req.Verdict; v != nil && v.WaveID == w.WaveID && w.Index == req.Cursor.Index {
			wr.Status, wr.Reason, wr.Counts = v.Status, v.Reason, v.Counts
		}
		rep.Totals = rep.Totals.Add(wr.Counts)
		statuses = append(statuses, wr.Status)
		rep.Waves = append(rep.Waves, wr)
	}
	rep.Status = runStatus(statuses, run.AbortOnIssues)
	return rep
}

// runStatus is ABORTED when a FAILED wave stopped the run (abortOnIssues and
// later waves NOT_STARTED), else the contract's rule.
func runStatus(statuses []string, abortOnIssues bool) string {
	if abortOnIssues {
		failed := false
		for _, s := range statuses {
			switch {
			case s == contract.StatusFailed:
				failed = true
			case s == contract.StatusNotStarted && failed:
				return contract.StatusAborted
			}
		}
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
