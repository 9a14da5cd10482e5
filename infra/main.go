// Command infra is the CDK app that `cdk synth` runs (see cdk.json): it loads
// the environment's parameters, builds HubStack, SpokeStack and
// SpokeEventsStack and synthesizes them.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/jsii-runtime-go"

	"github.com/ec2patch/ec2patch/infra/app"
	"github.com/ec2patch/ec2patch/params"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ec2patch:", err)
		os.Exit(1)
	}
}

func run() (err error) {
	defer jsii.Close()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("synthesizing: %v", r)
		}
	}()
	env, err := envFromContext()
	if err != nil {
		return err
	}
	// Parameters are loaded and validated before any construct exists, so a
	// bad file stops synth with every problem named.
	p, err := app.LoadParams(params.Files, env)
	if err != nil {
		return err
	}
	a := app.Build(app.Options{Params: p, Env: env, LambdaCodeDir: filepath.Join("build", "lambdas")})
	a.Synth(nil)
	return nil
}

// envFromContext reads the `env` context (-c env=prod), default dev. The CLI
// passes context as JSON in CDK_CONTEXT_JSON; reading it directly keeps the
// parameters loaded before any construct (even the App) exists.
func envFromContext() (string, error) {
	raw := os.Getenv("CDK_CONTEXT_JSON")
	if raw == "" {
		return "dev", nil
	}
	var ctx map[string]any
	if err := json.Unmarshal([]byte(raw), &ctx); err != nil {
		return "", fmt.Errorf("reading the CDK context: %w", err)
	}
	switch v := ctx["env"].(type) {
	case nil:
		return "dev", nil
	case string:
		return v, nil
	default:
		return "", fmt.Errorf("context env: got %v, want an environment name", v)
	}
}
