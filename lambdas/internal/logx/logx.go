// Package logx builds the handlers' structured loggers: JSON lines on stdout,
// each carrying the run, wave, account and region it is about, so one
// CloudWatch Logs Insights query follows a target across every function.
package logx

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"strings"

	"github.com/aws/aws-lambda-go/lambdacontext"
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
}

// For returns l with the scope's fields, and the Lambda request ID when ctx
// carries one. Every field is present on every line, empty when a function
// works above that level (a run-level function has no account).
func For(ctx context.Context, l *slog.Logger, s Scope) *slog.Logger {
	l = l.With("runId", s.RunID, "waveId", s.WaveID, "account", s.Account, "region", s.Region)
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
