// Package awsx holds what every handler's main does the same way: read its
// environment once and load the SDK configuration once.
package awsx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/internal/emf"
)

// Env reads environment variables and collects every problem, so a
// misconfigured function names all of them in one cold start.
type Env struct {
	// Lookup reads one variable; os.LookupEnv when nil.
	Lookup   func(string) (string, bool)
	problems []string
}

func (e *Env) lookup(name string) (string, bool) {
	if e.Lookup == nil {
		return os.LookupEnv(name)
	}
	return e.Lookup(name)
}

// String returns a required, non-empty variable.
func (e *Env) String(name string) string {
	v, ok := e.lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		e.problems = append(e.problems, "missing environment variable "+name)
		return ""
	}
	return v
}

// StringOr returns a variable, or def when it is unset or empty.
func (e *Env) StringOr(name, def string) string {
	if v, ok := e.lookup(name); ok && strings.TrimSpace(v) != "" {
		return v
	}
	return def
}

// PositiveInt returns a required variable holding an integer above zero.
func (e *Env) PositiveInt(name string) int {
	v := e.String(name)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		e.problems = append(e.problems, fmt.Sprintf("environment variable %s=%q must be a positive integer", name, v))
	}
	return n
}

// JSON decodes a required variable holding JSON into v, rejecting unknown
// fields so a construct and a handler that disagree fail at cold start.
func (e *Env) JSON(name string, v any) {
	s := e.String(name)
	if s == "" {
		return
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		e.problems = append(e.problems, fmt.Sprintf("environment variable %s is not valid JSON for %T: %v", name, v, err))
	}
}

// Err lists every problem found, or returns nil.
func (e *Env) Err() error {
	if len(e.problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(e.problems, "; "))
}

// Metrics returns the handler's metric writer: EMF lines on stdout, which
// the function's log group turns into metrics, with the Environment
// dimension from contract.EnvEnvironment (a required variable, so a
// function deployed without it fails at cold start rather than publishing
// metrics no alarm reads).
func (e *Env) Metrics() *emf.Writer {
	return emf.New(os.Stdout, e.String(contract.EnvEnvironment), nil)
}

// Exit reports a configuration error on stderr and exits 1. Only a main
// calls it, before the handler starts.
func Exit(function string, err error) {
	fmt.Fprintf(os.Stderr, "%s: configuration error: %v\n", function, err)
	os.Exit(1)
}

// Setup ends a main's configuration: it exits with every problem the
// environment had, else loads the SDK configuration (exiting if it cannot).
func Setup(function string, env *Env) aws.Config {
	if err := env.Err(); err != nil {
		Exit(function, err)
	}
	cfg, err := LoadConfig(context.Background())
	if err != nil {
		Exit(function, err)
	}
	return cfg
}

// LoadConfig loads the function's own SDK configuration with adaptive
// retries (client-side rate limiting when AWS throttles). The endpoint comes
// from the standard environment (AWS_ENDPOINT_URL), which is how the
// emulator points every client at its proxy.
func LoadConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRetryMode(aws.RetryModeAdaptive))
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	return cfg, nil
}

// NewS3 builds an S3 client from cfg. With a custom endpoint (the emulator
// serves S3 at a plain host:port) it addresses buckets by path.
func NewS3(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if cfg.BaseEndpoint != nil {
			o.UsePathStyle = true
		}
	})
}
