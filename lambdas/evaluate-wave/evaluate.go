package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/internal/emf"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
)

type targetLister interface {
	WaveTargets(ctx context.Context, runID, waveID string) ([]contract.TargetResult, error)
}

type waveWriter interface {
	PutWave(ctx context.Context, runID string, w contract.Wave, v contract.WaveVerdict, targets []contract.TargetResult) error
}

type publisher interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Handler judges one wave.
type Handler struct {
	Targets targetLister
	Waves   waveWriter
	Log     *slog.Logger
	// Metrics receives WaveDurationSeconds; nil writes none.
	Metrics logx.Metrics
	// SNS tells TopicARN each wave's verdict; nil publishes nothing.
	SNS      publisher
	TopicARN string
	// Environment (the hub's name prefix) and Bucket name the run in the
	// notification and say where its report will be.
	Environment string
	Bucket      string
	// Now is time.Now when nil.
	Now func() time.Time
}

// Handle is the Lambda entry point.
func (h *Handler) Handle(ctx context.Context, req contract.EvaluateRequest) (contract.WaveVerdict, error) {
	log := logx.For(ctx, h.Log, logx.Scope{RunID: req.RunID, WaveID: req.Wave.WaveID})
	v, judged, err := h.evaluate(ctx, req)
	if err != nil {
		err = fault.Boundary(err)
		logx.Failed(log, err)
		return contract.WaveVerdict{}, err
	}
	log.Info("wave judged", "status", v.Status, "reason", v.Reason, "halt", v.Halt, "counts", v.Counts)
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	if start, ok := WaveStart(judged); ok {
		logx.Emit(log, h.Metrics, emf.Dimensions{contract.DimRunID: req.RunID, contract.DimWaveID: req.Wave.WaveID},
			[]string{contract.DimWaveID},
			emf.Metric{Name: contract.MetricWaveDurationSeconds, Value: max(0, now().Sub(start).Seconds()), Unit: emf.Seconds})
	}
	h.notify(ctx, log, req, v, judged)
	return v, nil
}

func (h *Handler) evaluate(ctx context.Context, req contract.EvaluateRequest) (contract.WaveVerdict, []contract.TargetResult, error) {
	recorded, err := h.Targets.WaveTargets(ctx, req.RunID, req.Wave.WaveID)
	if err != nil {
		return contract.WaveVerdict{}, nil, err
	}
	v, judged := contract.JudgeWave(req.Wave, recorded)
	// A halt alarm in ALARM after the wave fails it and halts the run,
	// whatever its targets did.
	v = contract.ApplyAlarms(v, req.Alarms)
	if err := h.Waves.PutWave(ctx, req.RunID, req.Wave, v, judged); err != nil {
		return contract.WaveVerdict{}, nil, err
	}
	return v, judged, nil
}

// WaveStart is when the wave's first target started: the earliest
// StartedAt the store kept on the recorded results. ok is false when no
// result has one (nothing was recorded).
func WaveStart(results []contract.TargetResult) (start time.Time, ok bool) {
	for _, r := range results {
		t, err := time.Parse(time.RFC3339, r.StartedAt)
		if err != nil {
			continue
		}
		if !ok || t.Before(start) {
			start, ok = t, true
		}
	}
	return start, ok
}

// notify publishes the wave's verdict. A failed publish is logged, not
// returned: the verdict is recorded, and the run must go on.
func (h *Handler) notify(ctx context.Context, log *slog.Logger, req contract.EvaluateRequest, v contract.WaveVerdict, judged []contract.TargetResult) {
	if h.SNS == nil {
		return
	}
	subject, body := Notification(h.Environment, h.Bucket, req.RunID, v, judged)
	if _, err := h.SNS.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(h.TopicARN),
		Subject: aws.String(subject), Message: aws.String(body)}); err != nil {
		log.Warn("wave notification not published", "error", err.Error())
	}
}

// maxSubject is SNS's limit on an e-mail subject.
const maxSubject = 100

// maxListed bounds the failed targets a notification lists.
const maxListed = 10

// Subject is a wave notification's subject, e.g. "ec2patch ec2patch-dev
// run 2026-12-patch: wave wave2 FAILED (14 patched, 1 failed)".
func Subject(environment, runID string, v contract.WaveVerdict) string {
	done, verb := v.Counts.Patched, "patched"
	if v.Counts.Scanned > 0 && v.Counts.Patched == 0 {
		done, verb = v.Counts.Scanned, "scanned"
	}
	s := fmt.Sprintf("ec2patch %s run %s: wave %s %s (%d %s, %d failed)", environment, runID, v.WaveID, v.Status,
		done, verb, v.Counts.Failed+v.Counts.TimedOut)
	if len(s) > maxSubject {
		s = s[:maxSubject]
	}
	return s
}

// Notification is the wave's subject and a short body: the verdict and
// why, the counts, the failed targets, and where the run's report will be.
func Notification(environment, bucket, runID string, v contract.WaveVerdict, judged []contract.TargetResult) (subject, body string) {
	var b strings.Builder
	fmt.Fprintf(&b, "ec2patch %s run %s: wave %s %s.\n", environment, runID, v.WaveID, v.Status)
	if v.Reason != "" {
		fmt.Fprintf(&b, "Why: %s\n", v.Reason)
	}
	if v.Halt {
		b.WriteString("The run stops after this wave.\n")
	}
	c := v.Counts
	fmt.Fprintf(&b, "\nInstances: %d patched, %d scanned, %d failed, %d timed out, %d skipped, in %d target(s).\n",
		c.Patched, c.Scanned, c.Failed, c.TimedOut, c.Skipped, len(judged))
	var failed []string
	for _, r := range judged {
		if r.Status == contract.StatusFailed {
			failed = append(failed, fmt.Sprintf("  %s/%s: %s", r.Account, r.Region, r.Reason))
		}
	}
	if len(failed) > 0 {
		b.WriteString("\nFailed targets:\n")
		for i, f := range failed {
			if i == maxListed {
				fmt.Fprintf(&b, "  and %d more\n", len(failed)-maxListed)
				break
			}
			b.WriteString(f + "\n")
		}
	}
	fmt.Fprintf(&b, "\nThe run report is written at the end of the run to:\n  s3://%s/%s\n  s3://%s/%s\n",
		bucket, contract.ReportJSONKey(runID), bucket, contract.ReportCSVKey(runID))
	return Subject(environment, runID, v), b.String()
}
