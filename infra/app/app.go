// Package app builds the ec2patch CDK app: HubStack, SpokeStack and
// SpokeEventsStack for one environment, with cdk-nag's AwsSolutions checks on every stack. The CLI's
// entry point (infra) and the tests and emulator harness share it, so they
// all synthesize the same templates.
package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/ec2patch/ec2patch/constructs/hub"
	"github.com/ec2patch/ec2patch/constructs/spoke"
	"github.com/ec2patch/ec2patch/constructs/spokeevents"
	"github.com/ec2patch/ec2patch/internal/config"
	"github.com/ec2patch/ec2patch/internal/contract"
)

// Options select what to synthesize.
type Options struct {
	// Params is the validated environment configuration.
	Params config.Params
	// Env names the environment (params/<env>.json); it tags the stacks.
	Env string
	// LambdaCodeDir holds <dir>/bootstrap for every handler.
	LambdaCodeDir string
	// Emulator omits the hub's bootstrap version rule, which reads an SSM
	// parameter the emulator does not have. Nothing else differs.
	Emulator bool
}

// Templates are the synthesized templates.
type Templates struct {
	HubStackName, SpokeStackName, SpokeEventsStackName string
	Hub, Spoke, SpokeEvents                            []byte // template JSON
}

// FeatureFlags are the CDK feature flags the app is written for. cdk.json
// carries the same values for the CLI (a test keeps the two equal); Build
// sets them too, so a library caller synthesizes what `cdk synth` does.
var FeatureFlags = map[string]any{
	"@aws-cdk/aws-iam:minimizePolicies":                          true,
	"@aws-cdk/core:checkSecretUsage":                             true,
	"@aws-cdk/core:target-partitions":                            []any{"aws", "aws-cn"},
	"@aws-cdk/aws-kms:reduceCrossAccountRegionPolicyScope":       true,
	"@aws-cdk/aws-s3:publicAccessBlockedByDefault":               true,
	"@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2": true,
	"@aws-cdk/core:validateSnapshotRemovalPolicy":                true,
}

// LoadParams loads params/<env>.json from fsys: the one place the app reads
// its configuration, before any construct exists. The error names the file
// and every bad field.
func LoadParams(fsys fs.FS, env string) (config.Params, error) {
	p, err := config.Load(fsys, env)
	if err != nil {
		return config.Params{}, fmt.Errorf("loading parameters: %w", err)
	}
	return p, nil
}

// Build creates the app with its three stacks. It panics on a construct error, as
// the CDK does; Synth recovers that into an error.
func Build(opts Options) awscdk.App {
	return build(opts, "")
}

func build(opts Options, outDir string) awscdk.App {
	ctx := map[string]any{
		// The handlers are prebuilt binaries: nothing is ever bundled.
		"aws:cdk:bundling-stacks": []any{},
	}
	for k, v := range FeatureFlags {
		ctx[k] = v
	}
	props := &awscdk.AppProps{Context: &ctx}
	if outDir != "" {
		props.Outdir = jsii.String(outDir)
	}
	a := awscdk.NewApp(props)
	p := opts.Params
	tags := &map[string]*string{"ec2patch:env": jsii.String(opts.Env)}

	hubProps := awscdk.StackProps{
		StackName: jsii.String(contract.HubStackName(p.Hub.NamePrefix)),
		Env:       &awscdk.Environment{Account: jsii.String(p.Account), Region: jsii.String(p.Region)},
		Tags:      tags,
		// No AWS::CDK::Metadata: its region Condition is the only one the
		// templates would have.
		AnalyticsReporting: jsii.Bool(false),
	}
	if opts.Emulator {
		hubProps.Synthesizer = awscdk.NewDefaultStackSynthesizer(&awscdk.DefaultStackSynthesizerProps{
			GenerateBootstrapVersionRule: jsii.Bool(false),
		})
	}
	// The stacks' construct IDs are their stack names, so cdk.out holds
	// <stack name>.template.json and `cdk deploy <stack name>` works for
	// every environment.
	hub.NewStack(a, contract.HubStackName(p.Hub.NamePrefix), &hub.StackProps{
		StackProps:    hubProps,
		Params:        p,
		LambdaCodeDir: opts.LambdaCodeDir,
	})
	// The spoke is environment-agnostic: StackSets deploy it to every spoke
	// account and region.
	spoke.NewStack(a, contract.SpokeStackName(p.Hub.NamePrefix), &spoke.StackProps{
		StackProps: awscdk.StackProps{
			StackName:          jsii.String(contract.SpokeStackName(p.Hub.NamePrefix)),
			Tags:               tags,
			AnalyticsReporting: jsii.Bool(false),
		},
		HubAccountID:   p.Spoke.HubAccountID,
		HubNamePrefix:  p.Hub.NamePrefix,
		ExternalID:     p.Spoke.ExternalID,
		RoleName:       p.Spoke.RoleName,
		PrincipalOrgID: p.Spoke.PrincipalOrgID,
		PatchTagKey:    p.Spoke.PatchTagKey,
	})
	// The events stack is environment-agnostic too, but StackSets deploy it
	// to every region a plan patches, not once per account: EventBridge
	// rules are regional.
	spokeevents.NewStack(a, contract.SpokeEventsStackName(p.Hub.NamePrefix), &spokeevents.StackProps{
		StackProps: awscdk.StackProps{
			StackName:          jsii.String(contract.SpokeEventsStackName(p.Hub.NamePrefix)),
			Tags:               tags,
			AnalyticsReporting: jsii.Bool(false),
		},
		HubAccountID:  p.Spoke.HubAccountID,
		HubRegion:     p.Region,
		HubNamePrefix: p.Hub.NamePrefix,
	})
	awscdk.Aspects_Of(a).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	return a
}

// Synth builds the app, synthesizes it into outDir and returns its
// templates.
func Synth(opts Options, outDir string) (t Templates, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("synthesizing %s: %v", opts.Env, r)
		}
	}()
	if outDir == "" {
		return Templates{}, errors.New("synthesizing: no output directory")
	}
	a := build(opts, outDir)
	asm := a.Synth(nil)
	t.HubStackName = contract.HubStackName(opts.Params.Hub.NamePrefix)
	t.SpokeStackName = contract.SpokeStackName(opts.Params.Hub.NamePrefix)
	if t.Hub, err = readTemplate(*asm.Directory(), t.HubStackName); err != nil {
		return Templates{}, err
	}
	if t.Spoke, err = readTemplate(*asm.Directory(), t.SpokeStackName); err != nil {
		return Templates{}, err
	}
	t.SpokeEventsStackName = contract.SpokeEventsStackName(opts.Params.Hub.NamePrefix)
	if t.SpokeEvents, err = readTemplate(*asm.Directory(), t.SpokeEventsStackName); err != nil {
		return Templates{}, err
	}
	return t, nil
}

func readTemplate(dir, stackName string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(dir, stackName+".template.json"))
	if err != nil {
		return nil, fmt.Errorf("reading the %s template: %w", stackName, err)
	}
	return data, nil
}
