package main

import (
	"context"
	"log/slog"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
)

type targetLister interface {
	WaveTargets(ctx context.Context, runID, waveID string) ([]contract.TargetResult, error)
}

type waveWriter interface {
	PutWave(ctx context.Context, runID string, w contract.Wave, v contract.WaveVerdict, targets []contract.TargetResult) error
}

// Handler judges one wave.
type Handler struct {
	Targets targetLister
	Waves   waveWriter
	Log     *slog.Logger
}

// Handle is the Lambda entry point.
func (h *Handler) Handle(ctx context.Context, req contract.EvaluateRequest) (contract.WaveVerdict, error) {
	log := logx.For(ctx, h.Log, logx.Scope{RunID: req.RunID, WaveID: req.Wave.WaveID})
	v, err := h.evaluate(ctx, req)
	if err != nil {
		err = fault.Boundary(err)
		logx.Failed(log, err)
		return contract.WaveVerdict{}, err
	}
	log.Info("wave judged", "status", v.Status, "reason", v.Reason, "halt", v.Halt, "counts", v.Counts)
	return v, nil
}

func (h *Handler) evaluate(ctx context.Context, req contract.EvaluateRequest) (contract.WaveVerdict, error) {
	recorded, err := h.Targets.WaveTargets(ctx, req.RunID, req.Wave.WaveID)
	if err != nil {
		return contract.WaveVerdict{}, err
	}
	v, judged := contract.JudgeWave(req.Wave, recorded)
	// A halt alarm in ALARM after the wave fails it and halts the run,
	// whatever its targets did.
	v = contract.ApplyAlarms(v, req.Alarms)
	if err := h.Waves.PutWave(ctx, req.RunID, req.Wave, v, judged); err != nil {
		return contract.WaveVerdict{}, err
	}
	return v, nil
}
