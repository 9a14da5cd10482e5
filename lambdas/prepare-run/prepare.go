package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
)

type objectPutter interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

type runStarter interface {
	StartRun(ctx context.Context, run contract.Run) error
}

// Handler prepares a run.
type Handler struct {
	Defaults contract.RunDefaults
	Plan     []contract.WaveInput
	Bucket   string
	S3       objectPutter
	Runs     runStarter
	Log      *slog.Logger
	// Announce tells the notification topic that the run started; nil
	// tells nobody (see notify.go).
	Announce *Announcer
}

// Handle is the Lambda entry point.
func (h *Handler) Handle(ctx context.Context, req contract.PrepareRequest) (contract.PrepareResult, error) {
	out, err := h.prepare(ctx, req)
	log := logx.For(ctx, h.Log, logx.Scope{RunID: out.Run.RunID})
	if err != nil {
		err = fault.Boundary(err)
		logx.Failed(log.With("executionName", req.ExecutionName), err)
		return contract.PrepareResult{}, err
	}
	log.Info("run prepared", "waves", out.Run.WaveCount, "dryRun", out.Run.DryRun)
	return out, nil
}

func (h *Handler) prepare(ctx context.Context, req contract.PrepareRequest) (contract.PrepareResult, error) {
	if out, skip := notPatchDay(req.Input); skip {
		return out, nil // before any write: this firing is not a run
	}
	run, err := contract.Normalize(req.Input, h.Defaults, h.Plan, req.ExecutionName, req.StartTime)
	if err != nil {
		var invalid *contract.ValidationError
		if errors.As(err, &invalid) {
			return contract.PrepareResult{}, &fault.InvalidRunInput{Message: err.Error()}
		}
		return contract.PrepareResult{}, fmt.Errorf("normalize run input: %w", err)
	}
	for _, w := range run.Waves {
		body, err := json.Marshal(w.Targets())
		if err != nil {
			return contract.PrepareResult{}, fmt.Errorf("encode manifest of wave %s: %w", w.WaveID, err)
		}
		_, err = h.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(h.Bucket), Key: aws.String(w.TargetsKey),
			Body: bytes.NewReader(body), ContentType: aws.String("application/json")})
		if err != nil {
			return contract.PrepareResult{}, &fault.StoreFailure{Op: "write manifest s3://" + h.Bucket + "/" + w.TargetsKey, Err: err}
		}
	}
	if err := h.Runs.StartRun(ctx, run); err != nil {
		return contract.PrepareResult{}, err
	}
	h.announce(ctx, run)
	return contract.PrepareResult{Run: run, Cursor: contract.Cursor{Index: 0}}, nil
}
