// Package logx builds the handlers' structured loggers: JSON lines on stdout,
// each carrying the run, wave, account, region and command it is about, so
// one CloudWatch Logs Insights query follows a target (or a command) across
// every function.
package logx

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"strings"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ec2patch/ec2patch/internal/emf"
)

// New returns a JSON logger writing to w.
func New(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, nil))
}

// Scope is what a log line is about.
type Scope struct {
	RunID   string
	WaveID  string
	Account string
	Region  string
	// CommandID is the SSM command the line is about; a target's several
	// commands (one per batch of instances) are joined by Commands.
	CommandID string
}

// Commands joins a target's command IDs for Scope.CommandID.
func Commands(ids []string) string { return strings.Join(ids, ",") }

// For returns l with the scope's fields, and the Lambda request ID when ctx
// carries one. Every field is present on every line, empty when a function
// works above that level (a run-level function has no account, a target
// before its send has no command).
func For(ctx context.Context, l *slog.Logger, s Scope) *slog.Logger {
	l = l.With("runId", s.RunID, "waveId", s.WaveID, "account", s.Account, "region", s.Region,
		"commandId", s.CommandID)
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		l = l.With("requestId", lc.AwsRequestID)
	}
	return l
}

// Failed logs a handler's error with the errorType Step Functions will see
// (the Go type name, as aws-lambda-go reports it).
func Failed(l *slog.Logger, err error) {
	name := reflect.TypeOf(err).String()
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	l.Error("handler failed", "errorType", name, "errorMessage", err.Error())
}

// Keys are the scope keys every line carries.
func Keys() []string { return []string{"runId", "waveId", "account", "region", "commandId"} }

// Metrics writes one EMF line (an *emf.Writer).
type Metrics interface {
	Put(dims emf.Dimensions, coarse []string, metrics ...emf.Metric) error
}

// Emit writes metrics, logging a failure instead of returning it: a
// metric is never worth failing a handler (or retrying a patch) for. A
// nil m writes nothing.
func Emit(l *slog.Logger, m Metrics, dims emf.Dimensions, coarse []string, metrics ...emf.Metric) {
	if m == nil {
		return
	}
	if err := m.Put(dims, coarse, metrics...); err != nil {
		l.Warn("metrics not written", "error", err.Error())
	}
}
