package emulator

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ec2patch/ec2patch/infra/app"
	"github.com/ec2patch/ec2patch/internal/config"
	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/params"
	"github.com/ec2patch/ec2patch/test/fleet"
	"github.com/ec2patch/ec2patch/test/proxy"
)

// Where the emulator puts the Lambda code the hub template points at. The
// proxy runs the host binaries, so the zips only need to exist.
const (
	artifactBucket = "ec2patch-emulator-artifacts"
	artifactKey    = "lambdas"
	emulatorAMI    = "ami-12c6146b"
)

// Options set up a harness.
type Options struct {
	// Fleet is the scenario; required.
	Fleet *fleet.Fleet
	// Env selects params/<env>.json. Default: dev.
	Env string
	// EnforceExternalID refuses AssumeRole with a wrong ExternalId. Default: true.
	EnforceExternalID *bool
	// SimulatedSecondsPerSecond compresses the scenario's clock (patch
	// duration and reconcile interval are simulated time). Default: 1.
	SimulatedSecondsPerSecond float64
	// Logf, if set, reports setup progress.
	Logf func(format string, args ...any)
	// Logs, if set, receives every handler's output as it is written.
	Logs io.Writer
}

// Harness is moto and the test proxy with ec2patch deployed into them and a
// fleet seeded.
type Harness struct {
	Moto   *Moto
	Proxy  *proxy.Proxy
	Params config.Params
	Fleet  *fleet.Fleet
	// Templates are the synthesized templates that were deployed.
	Templates app.Templates
	// Outputs are the hub stack's outputs (contract.Output* keys).
	Outputs map[string]string
	// StateMachineARN is the executable copy of the orchestrator.
	StateMachineARN string
	// Instances are the seeded instances, in fleet order.
	Instances []Instance

	hub       aws.Config
	sfn       *sfn.Client
	reconcile sync.Mutex // one reconciler run at a time
	inbox     *inbox
	s3        *s3.Client
	logf      func(string, ...any)
}

// ScenarioOf is the proxy scenario a fleet describes: missing roles,
// dropped events, and the clock (patch duration and reconcile interval in
// simulated seconds, compressed by factor when it is above 0).
func ScenarioOf(f *fleet.Fleet, factor float64) proxy.Scenario {
	s := proxy.Scenario{RoleMissing: map[string]bool{}, DropEventsFor: map[string]bool{},
		DropEvents: f.DropEvents, SimulatedSecondsPerSecond: factor,
		PatchDuration: time.Duration(f.PatchSeconds * float64(time.Second))}
	if f.ReconcileSeconds > 0 {
		s.ReconcileEvery = time.Duration(f.ReconcileSeconds * float64(time.Second))
		if factor > 0 {
			s.ReconcileEvery = time.Duration(float64(s.ReconcileEvery) / factor)
		}
	}
	for _, a := range f.Accounts {
		if a.RoleMissing {
			s.RoleMissing[a.ID] = true
		}
		if a.DropEvents {
			s.DropEventsFor[a.ID] = true
		}
	}
	return s
}

// Instance is one seeded EC2 instance.
type Instance struct {
	ID      string
	Account string
	Region  string
	Group   fleet.Group
}

// New starts moto and the proxy, deploys ec2patch and seeds the fleet. It
// returns an error wrapping ErrNoMoto when moto is not installed.
func New(ctx context.Context, opts Options) (*Harness, error) {
	if opts.Fleet == nil {
		return nil, errors.New("emulator: no fleet")
	}
	if opts.Env == "" {
		opts.Env = "dev"
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	bin, err := MotoServerPath()
	if err != nil {
		return nil, err
	}
	handlers, err := HandlersDir()
	if err != nil {
		return nil, err
	}
	if err := checkHandlers(handlers); err != nil {
		return nil, err
	}
	p, err := config.Load(params.Files, opts.Env)
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	p.Hub.ArtifactBucket, p.Hub.ArtifactKey = artifactBucket, artifactKey
	// The emulated hub serves the fleet's accounts, as an operator lists
	// theirs in hub.extra_spoke_accounts: the task role may assume their
	// spoke roles and PrepareRun accepts runs naming them.
	if opts.Fleet != nil {
		for _, a := range opts.Fleet.Accounts {
			if !slices.Contains(p.SpokeAccounts(), a.ID) {
				p.Hub.ExtraSpokeAccounts = append(p.Hub.ExtraSpokeAccounts, a.ID)
			}
		}
	}

	h := &Harness{Params: p, Fleet: opts.Fleet, logf: logf}
	if err := h.start(ctx, opts, bin, handlers); err != nil {
		if h.Moto != nil && !errors.Is(err, ErrNoHandlers) {
			err = fmt.Errorf("%w\nmoto output (last 4 KiB):\n%s", err, tail(h.Moto.Logs(), 4<<10))
		}
		h.Close()
		return nil, err
	}
	logf("emulator ready: %d instances in %d accounts", len(h.Instances), len(opts.Fleet.Accounts))
	return h, nil
}

func (h *Harness) start(ctx context.Context, opts Options, bin, handlers string) error {
	p, logf := h.Params, h.logf

	ln, err := proxy.Listen()
	if err != nil {
		return err
	}
	proxyPort := ln.Addr().(*net.TCPAddr).Port
	logf("starting moto (integration calls to the proxy on port %d)", proxyPort)
	h.Moto, err = StartMoto(ctx, bin, proxyPort)
	if err != nil {
		_ = ln.Close()
		return err
	}
	h.Proxy = proxy.New(proxy.Config{Upstream: h.Moto.URL, HandlersDir: handlers, Logs: opts.Logs,
		HubAccount: p.Account, HubRegion: p.Region})
	h.Proxy.Serve(ln)
	enforce := true
	if opts.EnforceExternalID != nil {
		enforce = *opts.EnforceExternalID
	}
	scenario := ScenarioOf(opts.Fleet, opts.SimulatedSecondsPerSecond)
	scenario.ExternalID, scenario.EnforceExternalID = p.Hub.CrossAccountExternalID, enforce
	scenario.PatchTagKey = p.Spoke.PatchTagKey
	h.Proxy.SetScenario(scenario)

	// The harness talks to moto directly, so its calls are not recorded.
	h.hub = aws.Config{Region: p.Region, BaseEndpoint: aws.String(h.Moto.URL), RetryMaxAttempts: 3,
		Credentials: credentials.NewStaticCredentialsProvider("HARNESS", "harness", "")}
	h.sfn = sfn.NewFromConfig(h.hub)
	h.s3 = s3.NewFromConfig(h.hub, func(o *s3.Options) { o.UsePathStyle = true })

	logf("synthesizing the %s templates", opts.Env)
	h.Templates, err = synth(p, opts.Env)
	if err != nil {
		return err
	}
	if err := h.deploySpokes(ctx); err != nil {
		return err
	}
	if err := h.uploadArtifacts(ctx); err != nil {
		return err
	}
	if err := h.deployHub(ctx); err != nil {
		return err
	}
	if err := h.startInbox(ctx); err != nil {
		return err
	}
	if err := h.createAlarms(ctx); err != nil {
		return err
	}
	return h.seed(ctx)
}

// checkHandlers makes sure every handler has a host binary.
func checkHandlers(dir string) error {
	var missing []string
	for _, fn := range contract.Functions() {
		if _, err := os.Stat(filepath.Join(dir, fn.Dir)); err != nil {
			missing = append(missing, fn.Dir)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w in %s: %s (run `make build-host`, or set %s)", ErrNoHandlers, dir,
			strings.Join(missing, ", "), EnvHostLambdas)
	}
	return nil
}

// Close stops the workers, the proxy and moto.
func (h *Harness) Close() {
	if h.inbox != nil {
		h.inbox.stop()
		<-h.inbox.done
	}
	h.collectIAM() // collect.go: before moto stops
	if h.Proxy != nil {
		_ = h.Proxy.Close()
	}
	if h.Moto != nil {
		h.Moto.Stop()
	}
}

type synthKey struct{ env string }

var (
	synthMu    sync.Mutex
	synthCache = map[synthKey]app.Templates{}
)

// synth synthesizes once per process and environment: it takes seconds.
func synth(p config.Params, env string) (app.Templates, error) {
	synthMu.Lock()
	defer synthMu.Unlock()
	if t, ok := synthCache[synthKey{env}]; ok {
		return t, nil
	}
	dir, err := os.MkdirTemp("", "ec2patch-synth-")
	if err != nil {
		return app.Templates{}, err
	}
	defer func() { _ = os.RemoveAll(dir) }() // a temporary directory: nothing to lose
	t, err := app.Synth(app.Options{Params: p, Env: env, Emulator: true}, dir)
	if err != nil {
		return app.Templates{}, fmt.Errorf("emulator: synth: %w", err)
	}
	synthCache[synthKey{env}] = t
	return t, nil
}

// accountConfig is an SDK config acting in account (through moto's
// AssumeRole, which does not need the role to exist).
func (h *Harness) accountConfig(ctx context.Context, account, region string) (aws.Config, error) {
	cfg := h.hub.Copy()
	cfg.Region = region
	if account == h.Params.Account {
		return cfg, nil
	}
	out, err := sts.NewFromConfig(h.hub).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String(contract.SpokeRoleARN("aws", account, "ec2patch-emulator-harness")),
		RoleSessionName: aws.String("harness"),
	})
	if err != nil {
		return aws.Config{}, fmt.Errorf("emulator: act in %s: %w", account, err)
	}
	c := out.Credentials
	cfg.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId),
		aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
	return cfg, nil
}

// deploySpokes deploys the spoke stack once in every fleet account whose
// role is not missing (the role is global, as on AWS).
func (h *Harness) deploySpokes(ctx context.Context) error {
	for _, a := range h.Fleet.Accounts {
		if a.RoleMissing {
			continue
		}
		cfg, err := h.accountConfig(ctx, a.ID, h.Params.Region)
		if err != nil {
			return err
		}
		h.logf("deploying %s in %s", h.Templates.SpokeStackName, a.ID)
		if _, err := deployStack(ctx, cloudformation.NewFromConfig(cfg), h.Templates.SpokeStackName, h.Templates.Spoke); err != nil {
			return fmt.Errorf("emulator: spoke in %s: %w", a.ID, err)
		}
		if err := h.deploySpokeEvents(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

// deploySpokeEvents deploys the events stack (the status-change forwarding
// rule) in every region of the account, as StackSets would. moto creates
// the rule but never routes events: the proxy delivers them itself.
func (h *Harness) deploySpokeEvents(ctx context.Context, a fleet.Account) error {
	if len(h.Templates.SpokeEvents) == 0 {
		return nil
	}
	for _, r := range a.Regions {
		cfg, err := h.accountConfig(ctx, a.ID, r.Name)
		if err != nil {
			return err
		}
		if _, err := deployStack(ctx, cloudformation.NewFromConfig(cfg), h.Templates.SpokeEventsStackName, h.Templates.SpokeEvents); err != nil {
			return fmt.Errorf("emulator: spoke events in %s/%s: %w", a.ID, r.Name, err)
		}
	}
	return nil
}

func (h *Harness) uploadArtifacts(ctx context.Context) error {
	if _, err := h.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(artifactBucket)}); err != nil {
		return fmt.Errorf("emulator: artifact bucket: %w", err)
	}
	zipped, err := dummyZip()
	if err != nil {
		return err
	}
	for _, fn := range contract.Functions() {
		_, err := h.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(artifactBucket),
			Key: aws.String(artifactKey + "/" + fn.Dir + ".zip"), Body: bytes.NewReader(zipped)})
		if err != nil {
			return fmt.Errorf("emulator: upload %s code: %w", fn.Dir, err)
		}
	}
	return nil
}

// dummyZip is a Lambda package with a bootstrap that is never run: the
// proxy runs the host build of the handler instead.
func dummyZip() ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("bootstrap")
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(w, "#!/bin/sh\necho 'emulator placeholder: the test proxy runs the handler' >&2\nexit 1\n"); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// deployHub deploys the hub, then recreates the orchestrator with moto's
// interpreter on: a state machine moto's CloudFormation created does not
// execute.
func (h *Harness) deployHub(ctx context.Context) error {
	h.logf("deploying %s in %s/%s", h.Templates.HubStackName, h.Params.Account, h.Params.Region)
	cfn := cloudformation.NewFromConfig(h.hub)
	template, err := h.provideSecrets(ctx, h.Templates.HubStackName, h.Templates.Hub)
	if err != nil {
		return err
	}
	if template, err = busRefsToNames(template); err != nil {
		return err
	}
	if template, err = dropGetAttsOfSkipped(template); err != nil {
		return err
	}
	outputs, err := deployStack(ctx, cfn, h.Templates.HubStackName, template)
	if err != nil {
		return fmt.Errorf("emulator: hub: %w", err)
	}
	h.Outputs = outputs
	for _, k := range []string{contract.OutputOrchestratorARN, contract.OutputBucketName, contract.OutputTableName} {
		if h.Outputs[k] == "" {
			return fmt.Errorf("emulator: hub stack has no %s output (outputs: %v)", k, h.Outputs)
		}
	}
	sm, err := h.sfn.DescribeStateMachine(ctx, &sfn.DescribeStateMachineInput{
		StateMachineArn: aws.String(h.Outputs[contract.OutputOrchestratorARN])})
	if err != nil {
		return fmt.Errorf("emulator: describe orchestrator: %w", err)
	}
	if err := h.Moto.SetConfig(ctx, `{"stepfunctions":{"execute_state_machine":true}}`); err != nil {
		return err
	}
	created, err := h.sfn.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{
		Name:       aws.String(h.Params.Hub.NamePrefix + "-PatchOrchestrator-emulated"),
		Definition: sm.Definition,
		RoleArn:    sm.RoleArn,
		Type:       sm.Type,
	})
	if err != nil {
		return fmt.Errorf("emulator: recreate orchestrator: %w", err)
	}
	h.StateMachineARN = aws.ToString(created.StateMachineArn)
	return nil
}

// Definition returns the resolved orchestrator definition.
func (h *Harness) Definition(ctx context.Context) (string, error) {
	sm, err := h.sfn.DescribeStateMachine(ctx, &sfn.DescribeStateMachineInput{StateMachineArn: aws.String(h.StateMachineARN)})
	if err != nil {
		return "", err
	}
	return aws.ToString(sm.Definition), nil
}

func deployStack(ctx context.Context, cfn *cloudformation.Client, name string, template []byte) (map[string]string, error) {
	_, err := cfn.CreateStack(ctx, &cloudformation.CreateStackInput{
		StackName:    aws.String(name),
		TemplateBody: aws.String(string(template)),
		Capabilities: []cfntypes.Capability{cfntypes.CapabilityCapabilityNamedIam, cfntypes.CapabilityCapabilityIam},
	})
	if err != nil {
		return nil, fmt.Errorf("create stack %s: %w", name, err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
		if err != nil {
			return nil, fmt.Errorf("describe stack %s: %w", name, err)
		}
		st := out.Stacks[0]
		switch s := string(st.StackStatus); {
		case s == string(cfntypes.StackStatusCreateComplete):
			outputs := map[string]string{}
			for _, o := range st.Outputs {
				outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
			}
			return outputs, nil
		case strings.HasSuffix(s, "_FAILED") || strings.Contains(s, "ROLLBACK"):
			return nil, fmt.Errorf("stack %s: %s: %s", name, s, aws.ToString(st.StackStatusReason))
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("stack %s still %s", name, st.StackStatus)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// seed runs the fleet's instances and tells the proxy what SSM does on each.
func (h *Harness) seed(ctx context.Context) error {
	for _, a := range h.Fleet.Accounts {
		for _, r := range a.Regions {
			cfg, err := h.accountConfig(ctx, a.ID, r.Name)
			if err != nil {
				return err
			}
			client := ec2.NewFromConfig(cfg)
			for _, g := range r.Instances {
				ids, err := runInstances(ctx, client, g)
				if err != nil {
					return fmt.Errorf("emulator: seed %s/%s: %w", a.ID, r.Name, err)
				}
				for _, id := range ids {
					h.Instances = append(h.Instances, Instance{ID: id, Account: a.ID, Region: r.Name, Group: g})
					h.Proxy.AddInstance(proxy.Instance{ID: id, Account: a.ID, Region: r.Name,
						Outcome: g.Outcome, Running: g.State == fleet.StateRunning, Tags: maps.Clone(g.Tags)})
				}
			}
		}
	}
	return nil
}

func runInstances(ctx context.Context, client *ec2.Client, g fleet.Group) ([]string, error) {
	var tags []ec2types.Tag
	keys := make([]string, 0, len(g.Tags))
	for k := range g.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		tags = append(tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(g.Tags[k])})
	}
	out, err := client.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(emulatorAMI), InstanceType: ec2types.InstanceTypeT3Micro,
		MinCount: aws.Int32(int32(g.Count)), MaxCount: aws.Int32(int32(g.Count)), //nolint:gosec // fleet.Load bounds Count far below 2^31
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: tags}},
	})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, in := range out.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
	}
	if g.State == fleet.StateStopped {
		if _, err := client.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: ids}); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// Result is one finished execution.
type Result struct {
	ExecutionARN string
	Name         string
	Status       string
	Output       string
	Error        string
	Cause        string
	History      []sfntypes.HistoryEvent
	// Summary is the execution output decoded; Report is the run report
	// read from S3 (nil when none was written).
	Summary *contract.ReportSummary
	Report  *contract.Report
	// Calls are the calls the proxy recorded during the execution.
	Calls []proxy.Call
	// StateTransitions counts the history's *StateEntered events: what
	// Step Functions bills a Standard execution for.
	StateTransitions int
	// Answers are the approval gates the harness answered (or let time
	// out), in wave order.
	Answers []Answer
}

// RunOptions change how Run answers approval gates.
type RunOptions struct {
	// Approvals maps a gated wave ID to approve, reject or timeout.
	// Default: the fleet's approvals.
	Approvals map[string]string
	// Manual leaves every approval to the caller.
	Manual bool
}

// Run starts an execution with input, answers its approval gates as the
// fleet says, and waits for its end.
func (h *Harness) Run(ctx context.Context, input, name string) (*Result, error) {
	return h.RunWith(ctx, input, name, RunOptions{})
}

// RunWith is Run with options.
func (h *Harness) RunWith(ctx context.Context, input, name string, o RunOptions) (*Result, error) {
	mark := h.Proxy.Mark()
	arn, err := h.Start(ctx, input, name)
	if err != nil {
		return nil, err
	}
	stop := func() []Answer { return nil }
	if !o.Manual {
		stop = h.AnswerApprovals(ctx, input, name, o.Approvals)
	}
	res, err := h.Wait(ctx, arn, nil)
	answers := stop()
	if res != nil {
		res.Calls = h.Proxy.Calls(mark)
		res.Answers = answers
	}
	return res, err
}

// Start starts an execution (always named: moto names unnamed ones None).
func (h *Harness) Start(ctx context.Context, input, name string) (string, error) {
	out, err := h.sfn.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(h.StateMachineARN), Name: aws.String(name), Input: aws.String(input)})
	if err != nil {
		return "", fmt.Errorf("emulator: start execution %s: %w", name, err)
	}
	return aws.ToString(out.ExecutionArn), nil
}

// Wait polls the execution until it ends, calling onEvent (if set) with
// every new history event as it appears, then reads the history and the
// run report. While it waits, the reconciler runs every scenario
// ReconcileEvery, as the hub's schedule would run it.
func (h *Harness) Wait(ctx context.Context, arn string, onEvent func(sfntypes.HistoryEvent)) (*Result, error) {
	stopReconciler := h.StartReconciler(ctx)
	defer stopReconciler()
	seen := 0
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var desc *sfn.DescribeExecutionOutput
	for {
		var err error
		desc, err = h.sfn.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err != nil {
			return nil, fmt.Errorf("emulator: describe execution: %w", err)
		}
		if onEvent != nil {
			events, err := h.History(ctx, arn)
			if err == nil {
				for _, e := range events[min(seen, len(events)):] {
					onEvent(e)
				}
				seen = max(seen, len(events))
			}
		}
		if desc.Status != sfntypes.ExecutionStatusRunning {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("emulator: waiting for %s: %w", arn, ctx.Err())
		case <-tick.C:
		}
	}
	res := &Result{ExecutionARN: arn, Name: aws.ToString(desc.Name), Status: string(desc.Status),
		Output: aws.ToString(desc.Output), Error: aws.ToString(desc.Error), Cause: aws.ToString(desc.Cause)}
	var err error
	if res.History, err = h.History(ctx, arn); err != nil {
		return res, err
	}
	res.StateTransitions = StateTransitions(res.History)
	if onEvent != nil {
		for _, e := range res.History[min(seen, len(res.History)):] {
			onEvent(e)
		}
	}
	var summary contract.ReportSummary
	if res.Output != "" && json.Unmarshal([]byte(res.Output), &summary) == nil && summary.RunID != "" {
		res.Summary = &summary
		res.Report, err = h.ReadReport(ctx, summary.RunID)
	}
	return res, err
}

// History reads an execution's whole history.
func (h *Harness) History(ctx context.Context, arn string) ([]sfntypes.HistoryEvent, error) {
	var events []sfntypes.HistoryEvent
	var token *string
	for {
		out, err := h.sfn.GetExecutionHistory(ctx, &sfn.GetExecutionHistoryInput{
			ExecutionArn: aws.String(arn), NextToken: token, MaxResults: 1000})
		if err != nil {
			return nil, fmt.Errorf("emulator: execution history: %w", err)
		}
		events = append(events, out.Events...)
		if aws.ToString(out.NextToken) == "" {
			return events, nil
		}
		token = out.NextToken
	}
}

// ReadReport reads a run's report JSON from the hub bucket (nil if absent).
func (h *Harness) ReadReport(ctx context.Context, runID string) (*contract.Report, error) {
	out, err := h.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(h.Outputs[contract.OutputBucketName]),
		Key: aws.String(contract.ReportJSONKey(runID))})
	if err != nil {
		if strings.Contains(err.Error(), "NoSuchKey") {
			return nil, nil
		}
		return nil, fmt.Errorf("emulator: read report %s: %w", runID, err)
	}
	defer out.Body.Close()
	var r contract.Report
	if err := json.NewDecoder(out.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("emulator: decode report %s: %w", runID, err)
	}
	return &r, nil
}

// UniqueName is an execution name unique within the process.
func UniqueName(prefix string) string {
	return prefix + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// StateTransitions counts the *StateEntered events of a history.
func StateTransitions(events []sfntypes.HistoryEvent) int {
	n := 0
	for _, e := range events {
		if strings.HasSuffix(string(e.Type), "StateEntered") {
			n++
		}
	}
	return n
}

// Reconcile runs the reconciler once: PollSsmCommand with a scheduled
// event, through the proxy, so the invocation and its calls are recorded.
func (h *Harness) Reconcile(ctx context.Context) error {
	h.reconcile.Lock()
	defer h.reconcile.Unlock()
	event, err := json.Marshal(map[string]any{
		"version": "0", "id": UniqueName("reconcile"), "detail-type": "Scheduled Event", "source": "aws.events",
		"account": h.Params.Account, "region": h.Params.Region, "time": time.Now().UTC().Format(time.RFC3339),
		"resources": []string{"arn:aws:events:" + h.Params.Region + ":" + h.Params.Account + ":rule/" + h.Params.Hub.NamePrefix + "-reconcile"},
		"detail":    map[string]any{},
	})
	if err != nil {
		return err
	}
	if _, err := h.Proxy.InvokeHandler(ctx, contract.PollSsmCommand.Dir, event); err != nil {
		return fmt.Errorf("emulator: reconcile: %w", err)
	}
	return nil
}

// StartReconciler runs the reconciler every scenario ReconcileEvery until
// stop is called (stop waits for a run in progress to end).
func (h *Harness) StartReconciler(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			every := h.Proxy.Scenario().ReconcileEvery
			if every <= 0 {
				every = proxy.DefaultReconcileEvery
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(every):
			}
			if err := h.Reconcile(ctx); err != nil && ctx.Err() == nil {
				h.logf("%v", err)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// Invocations counts the recorded invocations of the hub function that
// runs handlerDir (a contract.Function's Dir).
func (h *Harness) Invocations(ctx context.Context, calls []proxy.Call, handlerDir string) int {
	name, err := h.Proxy.FunctionName(ctx, handlerDir)
	if err != nil {
		return 0
	}
	n := 0
	for _, c := range calls {
		if c.Service == "lambda" && c.Action == "Invoke" && c.Function == name {
			n++
		}
	}
	return n
}

// CreateStateMachine creates an executable state machine from definition
// with the orchestrator's role: for a definition the templates do not hold
// (a reference design, or one part of the orchestrator run alone).
func (h *Harness) CreateStateMachine(ctx context.Context, name, definition string) (string, error) {
	sm, err := h.sfn.DescribeStateMachine(ctx, &sfn.DescribeStateMachineInput{StateMachineArn: aws.String(h.StateMachineARN)})
	if err != nil {
		return "", fmt.Errorf("emulator: describe orchestrator: %w", err)
	}
	out, err := h.sfn.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String(name),
		Definition: aws.String(definition), RoleArn: sm.RoleArn, Type: sfntypes.StateMachineTypeStandard})
	if err != nil {
		return "", fmt.Errorf("emulator: create state machine %s: %w", name, err)
	}
	return aws.ToString(out.StateMachineArn), nil
}

// StartOn starts an execution of another state machine than the
// orchestrator.
func (h *Harness) StartOn(ctx context.Context, stateMachineARN, input, name string) (string, error) {
	out, err := h.sfn.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(stateMachineARN), Name: aws.String(name), Input: aws.String(input)})
	if err != nil {
		return "", fmt.Errorf("emulator: start execution %s: %w", name, err)
	}
	return aws.ToString(out.ExecutionArn), nil
}

// FunctionARN is the ARN of the hub function that runs handlerDir.
func (h *Harness) FunctionARN(ctx context.Context, handlerDir string) (string, error) {
	name, err := h.Proxy.FunctionName(ctx, handlerDir)
	if err != nil {
		return "", err
	}
	return "arn:aws:lambda:" + h.Params.Region + ":" + h.Params.Account + ":function:" + name, nil
}

// HubConfig is an SDK config for the hub account that talks to the proxy,
// so that its calls are recorded like a handler's.
func (h *Harness) HubConfig() aws.Config {
	cfg := h.hub.Copy()
	cfg.BaseEndpoint = aws.String(h.Proxy.URL())
	return cfg
}

// busRefsToNames stands in for moto's CloudFormation, whose Ref to an
// AWS::Events::EventBus yields the bus object instead of its name (a rule on
// the bus then fails to deploy): every such Ref becomes the equivalent
// Fn::GetAtt of the bus's Name, which keeps the dependency.
func busRefsToNames(template []byte) ([]byte, error) {
	var t map[string]any
	if err := json.Unmarshal(template, &t); err != nil {
		return nil, fmt.Errorf("emulator: template: %w", err)
	}
	resources, _ := t["Resources"].(map[string]any)
	buses := map[string]bool{}
	for id, r := range resources {
		if m, ok := r.(map[string]any); ok && m["Type"] == "AWS::Events::EventBus" {
			buses[id] = true
		}
	}
	if len(buses) == 0 {
		return template, nil
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["Ref"].(string); ok && len(x) == 1 && buses[ref] {
				return map[string]any{"Fn::GetAtt": []any{ref, "Name"}}
			}
			for k, item := range x {
				x[k] = walk(item)
			}
		case []any:
			for i, item := range x {
				x[i] = walk(item)
			}
		}
		return v
	}
	return json.Marshal(walk(t))
}
