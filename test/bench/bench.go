// Package bench measures ec2patch against a reference definition of the
// seed's design on the emulator: the same generated fleet through both, on
// a compressed clock, counting executions, history events, state
// transitions, Lambda invocations and API calls. The counts are the result;
// wall time on the emulator is compressed and only indicative.
package bench

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/test/emulator"
	"github.com/ec2patch/ec2patch/test/fleet"
	"github.com/ec2patch/ec2patch/test/proxy"
)

// seedDefinition is the seed's design: one execution, an inline Map over
// account-regions, a Wait / poll / Choice loop per account-region. It is
// kept for comparison only.
//
//go:embed seed.asl.json
var seedDefinition string

// Designs.
const (
	DesignEC2Patch = "ec2patch"
	DesignSeed     = "seed"
)

// seedPollInterval is the seed's poll interval in simulated seconds.
const seedPollInterval = 15

// seedMapConcurrency is the inline Map's limit in the seed's design.
const seedMapConcurrency = 40

// seedPollFunction is the seed's poll Lambda, served by the proxy.
const seedPollFunction = "bench-seed-poll"

// Config is one benchmark.
type Config struct {
	// Sizes are fleet sizes in account-regions; Minutes are simulated
	// patch durations.
	Sizes   []int
	Minutes []int
	// Factor is simulated seconds per real second.
	Factor float64
	// Instances per account-region.
	Instances int
	// MaxSeedSeconds skips a seed run whose estimated real time is longer.
	MaxSeedSeconds float64
	Logf           func(format string, args ...any)
}

// Result is one design at one size and duration.
type Result struct {
	Design            string             `json:"design"`
	AccountRegions    int                `json:"accountRegions"`
	PatchMinutes      int                `json:"patchMinutes"`
	Executions        int                `json:"executions"`
	MaxHistoryEvents  int                `json:"maxHistoryEvents"`
	StateTransitions  int                `json:"stateTransitions"`
	LambdaInvocations int                `json:"lambdaInvocations"`
	APICalls          map[string]float64 `json:"apiCalls"`
	WallSeconds       float64            `json:"wallSeconds"`
	Status            string             `json:"status"`
	Skipped           bool               `json:"skipped,omitempty"`
	Note              string             `json:"note,omitempty"`
	// Ratios, on an ec2patch row, divide its counts by the seed's at the
	// same size and duration.
	Ratios map[string]float64 `json:"ratios,omitempty"`
}

// Fleet is n account-regions with instances running instances each: two
// regions per account when n is even, else one.
func Fleet(n, instances int) *fleet.Fleet {
	regions := []string{"us-east-1", "us-west-2"}
	if n%2 != 0 {
		regions = regions[:1]
	}
	f := &fleet.Fleet{}
	for i := range n / len(regions) {
		a := fleet.Account{ID: fmt.Sprintf("3%011d", i+1)}
		for _, r := range regions {
			a.Regions = append(a.Regions, fleet.Region{Name: r, Instances: []fleet.Group{{
				Count: instances, Tags: map[string]string{"PatchGroup": "default"},
				State: fleet.StateRunning, Outcome: fleet.OutcomeSuccess}}})
		}
		f.Accounts = append(f.Accounts, a)
	}
	return f
}

// targets are the first n account-regions of f, as whole accounts.
func targets(f *fleet.Fleet, n int) (accounts, regions []string, err error) {
	perAccount := len(f.Accounts[0].Regions)
	if n%perAccount != 0 || n/perAccount > len(f.Accounts) {
		return nil, nil, fmt.Errorf("bench: %d account-regions do not fit the fleet of %d accounts x %d regions", n, len(f.Accounts), perAccount)
	}
	for _, a := range f.Accounts[:n/perAccount] {
		accounts = append(accounts, a.ID)
	}
	for _, r := range f.Accounts[0].Regions {
		regions = append(regions, r.Name)
	}
	return accounts, regions, nil
}

// Runner runs the designs on one harness.
type Runner struct {
	H   *emulator.Harness
	Cfg Config

	seedARN, targetARN string
}

func (r *Runner) logf(format string, args ...any) {
	if r.Cfg.Logf != nil {
		r.Cfg.Logf(format, args...)
	}
}

// setClock sets the patch duration and the reconcile interval (the
// params' value, simulated) on the compressed clock; events can be dropped
// for a design that has no event path.
func (r *Runner) setClock(minutes int, events bool) {
	s := r.H.Proxy.Scenario()
	s.PatchDuration = time.Duration(minutes) * time.Minute
	s.SimulatedSecondsPerSecond = r.Cfg.Factor
	s.DropEvents = !events
	s.ReconcileEvery = time.Duration(float64(r.H.Params.Hub.ReconcileIntervalMinutes) * float64(time.Minute) / r.Cfg.Factor)
	if !events {
		s.ReconcileEvery = 24 * time.Hour // the seed design has no reconciler
	}
	r.H.Proxy.SetScenario(s)
}

// EC2Patch runs the synthesized orchestrator over n account-regions, and
// one PatchTarget alone for its history.
func (r *Runner) EC2Patch(ctx context.Context, n, minutes int) (Result, error) {
	res := Result{Design: DesignEC2Patch, AccountRegions: n, PatchMinutes: minutes}
	accounts, regions, err := targets(r.H.Fleet, n)
	if err != nil {
		return res, err
	}
	r.setClock(minutes, true)
	runID := emulator.UniqueName("bench")
	input, err := json.Marshal(map[string]any{
		"runId": runID, "pollIntervalSeconds": 1, "wavePauseSeconds": 0, "abortOnIssues": false,
		"waves": []map[string]any{{"waveId": "bench", "accounts": accounts, "regions": regions,
			"tagFilters": map[string]string{"PatchGroup": "default"}, "maxConcurrency": min(n, contract.MaxMapConcurrency)}},
	})
	if err != nil {
		return res, err
	}
	start := time.Now()
	run, err := r.H.Run(ctx, string(input), runID)
	if err != nil {
		return res, err
	}
	res.WallSeconds = time.Since(start).Seconds()
	res.Status = run.Status
	if run.Report != nil {
		res.Status = run.Report.Status
	}

	// Distributed Map children have no history in moto: run the item
	// processor alone for one target with the same duration.
	child, err := r.patchTarget(ctx, string(input), accounts[0], regions[0])
	if err != nil {
		return res, err
	}
	res.Executions = 1 + n
	res.MaxHistoryEvents = max(len(run.History), len(child.History))
	res.StateTransitions = run.StateTransitions + n*child.StateTransitions
	res.LambdaInvocations, res.APICalls = count(run.Calls, n)
	res.Note = fmt.Sprintf("transitions = parent %d + %d x one PatchTarget run alone %d (%s); executions = parent + one child per account-region",
		run.StateTransitions, n, child.StateTransitions, child.Status)
	return res, nil
}

// patchTarget runs the orchestrator's item processor as a state machine of
// its own for one target of a run input.
func (r *Runner) patchTarget(ctx context.Context, input, account, region string) (*emulator.Result, error) {
	if r.targetARN == "" {
		def, err := r.H.Definition(ctx)
		if err != nil {
			return nil, err
		}
		processor, err := ItemProcessor(def)
		if err != nil {
			return nil, err
		}
		if r.targetARN, err = r.H.CreateStateMachine(ctx, emulator.UniqueName("bench-PatchTarget"), processor); err != nil {
			return nil, err
		}
	}
	runID := emulator.UniqueName("bench-target")
	var raw map[string]any
	if err := json.Unmarshal([]byte(input), &raw); err != nil {
		return nil, err
	}
	raw["runId"] = runID
	in, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	target, err := r.targetInput(string(in), runID, account, region)
	if err != nil {
		return nil, err
	}
	arn, err := r.H.StartOn(ctx, r.targetARN, target, runID)
	if err != nil {
		return nil, err
	}
	return r.H.Wait(ctx, arn, nil)
}

// targetInput is the item a PatchTarget receives for account/region of a
// run input, as the Map's ItemSelector builds it.
func (r *Runner) targetInput(input, executionID, account, region string) (string, error) {
	run, err := contract.Normalize([]byte(input), r.H.Params.RunDefaults(), r.H.Params.Waves, executionID, "")
	if err != nil {
		return "", err
	}
	w := run.Waves[0]
	ti := contract.TargetInput{RunID: run.RunID, WaveID: w.WaveID, Account: account, Region: region,
		TagFilters: w.TagFilters, DryRun: run.DryRun, Operation: run.Operation, RebootOption: run.RebootOption,
		SSMMaxConcurrency: w.SSMMaxConcurrency, SSMMaxErrors: w.SSMMaxErrors,
		PollIntervalSeconds: run.PollIntervalSeconds, MaxPollAttempts: run.MaxPollAttempts,
		CommandTimeoutSeconds: run.CommandTimeoutSeconds, AwaitTimeoutSeconds: run.AwaitTimeoutSeconds,
		ExecutionID: executionID}
	b, err := json.Marshal(ti)
	return string(b), err
}

// ItemProcessor returns the definition of the orchestrator's PatchTarget:
// the item processor of the Map that patches (it sends commands), as a
// state machine of its own.
func ItemProcessor(definition string) (string, error) {
	var def struct {
		States map[string]json.RawMessage
	}
	if err := json.Unmarshal([]byte(definition), &def); err != nil {
		return "", fmt.Errorf("bench: orchestrator definition: %w", err)
	}
	var found []byte
	var walk func(states map[string]json.RawMessage) error
	walk = func(states map[string]json.RawMessage) error {
		for _, raw := range states {
			var st struct {
				Type          string
				ItemProcessor *struct {
					StartAt string
					States  map[string]json.RawMessage
				}
				Branches []struct{ States map[string]json.RawMessage }
			}
			if err := json.Unmarshal(raw, &st); err != nil {
				return err
			}
			if st.ItemProcessor != nil {
				if _, sends := st.ItemProcessor.States[contract.SendSsmCommand.Name]; sends && found == nil {
					b, err := json.Marshal(map[string]any{"StartAt": st.ItemProcessor.StartAt, "States": st.ItemProcessor.States})
					if err != nil {
						return err
					}
					found = b
				}
				if err := walk(st.ItemProcessor.States); err != nil {
					return err
				}
			}
			for _, b := range st.Branches {
				if err := walk(b.States); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(def.States); err != nil {
		return "", fmt.Errorf("bench: orchestrator definition: %w", err)
	}
	if found == nil {
		return "", errors.New("bench: the orchestrator has no Map whose items send commands")
	}
	return string(found), nil
}

// SeedWaitSeconds is the seed's poll Wait in real seconds: moto waits in
// whole seconds, so at least 1 (the simulated interval grows when the
// factor is above 15).
func SeedWaitSeconds(factor float64) int {
	return max(1, int(math.Round(seedPollInterval/factor)))
}

// SeedEstimate is the seed design's estimated real run time: the Map runs
// 40 account-regions at a time, each for the patch duration.
func SeedEstimate(n, minutes int, factor float64) float64 {
	batches := (n + seedMapConcurrency - 1) / seedMapConcurrency
	return float64(batches) * (float64(minutes)*60/factor + float64(SeedWaitSeconds(factor)))
}

// Seed runs the reference definition of the seed's design over n
// account-regions.
func (r *Runner) Seed(ctx context.Context, n, minutes int) (Result, error) {
	res := Result{Design: DesignSeed, AccountRegions: n, PatchMinutes: minutes}
	accounts, regions, err := targets(r.H.Fleet, n)
	if err != nil {
		return res, err
	}
	if est := SeedEstimate(n, minutes, r.Cfg.Factor); r.Cfg.MaxSeedSeconds > 0 && est > r.Cfg.MaxSeedSeconds {
		res.Skipped, res.Status = true, "SKIPPED"
		res.Note = fmt.Sprintf("skipped: estimated %.0f s of real time (over %.0f s); its history grows with targets x polls", est, r.Cfg.MaxSeedSeconds)
		return res, nil
	}
	if err := r.ensureSeed(ctx); err != nil {
		return res, err
	}
	r.setClock(minutes, false)
	runID := emulator.UniqueName("bench-seed")
	wait := SeedWaitSeconds(r.Cfg.Factor)
	var items []contract.TargetInput
	for _, a := range accounts {
		for _, reg := range regions {
			items = append(items, contract.TargetInput{RunID: runID, WaveID: "bench", Account: a, Region: reg,
				TagFilters: map[string]string{"PatchGroup": "default"}, Operation: contract.OperationInstall,
				RebootOption: contract.RebootIfNeeded, SSMMaxConcurrency: "100%", SSMMaxErrors: "100%",
				PollIntervalSeconds: wait, MaxPollAttempts: math.MaxInt32, CommandTimeoutSeconds: 3600,
				AwaitTimeoutSeconds: 3600, ExecutionID: runID})
		}
	}
	input, err := json.Marshal(map[string]any{"targets": items})
	if err != nil {
		return res, err
	}
	mark := r.H.Proxy.Mark()
	start := time.Now()
	arn, err := r.H.StartOn(ctx, r.seedARN, string(input), runID)
	if err != nil {
		return res, err
	}
	run, err := r.H.Wait(ctx, arn, nil)
	if err != nil {
		return res, err
	}
	res.WallSeconds = time.Since(start).Seconds()
	res.Status = run.Status
	res.Executions = 1
	res.MaxHistoryEvents = len(run.History)
	res.StateTransitions = run.StateTransitions
	res.LambdaInvocations, res.APICalls = count(r.H.Proxy.Calls(mark), n)
	res.Note = fmt.Sprintf("reference definition (test/bench/seed.asl.json): real PreEC2Inventory and SendSsmCommand, a proxy-served poll (AssumeRole + ListCommands per command); polls every %d simulated s", int(float64(wait)*r.Cfg.Factor))
	return res, nil
}

// ensureSeed creates the seed's state machine and its poll function once.
func (r *Runner) ensureSeed(ctx context.Context) error {
	if r.seedARN != "" {
		return nil
	}
	def := seedDefinition
	for _, fn := range []contract.Function{contract.PreEC2Inventory, contract.SendSsmCommand} {
		arn, err := r.H.FunctionARN(ctx, fn.Dir)
		if err != nil {
			return err
		}
		def = strings.ReplaceAll(def, "${"+fn.Name+"}", arn)
	}
	def = strings.ReplaceAll(def, "${PollSsmCommand}",
		"arn:aws:lambda:"+r.H.Params.Region+":"+r.H.Params.Account+":function:"+seedPollFunction)
	r.H.Proxy.RegisterFunction(seedPollFunction, r.seedPoll)
	arn, err := r.H.CreateStateMachine(ctx, emulator.UniqueName("bench-seed"), def)
	if err != nil {
		return err
	}
	r.seedARN = arn
	return nil
}

// seedPoll is the seed's poll Lambda: it assumes the spoke role (no
// credential cache) and reads each command with ListCommands, through the
// proxy, so every call is recorded as the seed would make it.
func (r *Runner) seedPoll(ctx context.Context, payload []byte) ([]byte, error) {
	var in contract.TargetState
	if err := json.Unmarshal(payload, &in); err != nil {
		return nil, fmt.Errorf("seed poll: %w", err)
	}
	if in.Command == nil {
		return nil, errors.New("seed poll: no commands")
	}
	cfg := r.H.HubConfig()
	creds, err := sts.NewFromConfig(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String(contract.SpokeRoleARN("aws", in.Account, r.H.Params.Spoke.RoleName)),
		RoleSessionName: aws.String("seed-poll"), ExternalId: aws.String(r.H.Params.Hub.CrossAccountExternalID)})
	if err != nil {
		return nil, fmt.Errorf("seed poll: %w", err)
	}
	c := creds.Credentials
	cfg.Region = in.Region
	cfg.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
	client := ssm.NewFromConfig(cfg)
	out := contract.PollResult{Phase: contract.PhaseComplete, Targets: len(in.Command.CommandIDs)}
	for _, id := range in.Command.CommandIDs {
		lc, err := client.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(id)})
		if err != nil {
			return nil, fmt.Errorf("seed poll: %w", err)
		}
		if len(lc.Commands) != 1 || !slices.Contains(contract.TerminalCommandStatuses(), string(lc.Commands[0].Status)) {
			out.Phase = contract.PhaseInProgress
			continue
		}
		out.Completed++
	}
	return json.Marshal(out)
}

// count is the Lambda invocations and, per service, the other API calls
// per account-region among calls.
func count(calls []proxy.Call, n int) (invocations int, perService map[string]float64) {
	perService = map[string]float64{}
	for _, c := range calls {
		if c.Service == "lambda" && c.Action == "Invoke" {
			invocations++
			continue
		}
		perService[c.Service]++
	}
	for k, v := range perService {
		perService[k] = math.Round(v/float64(n)*100) / 100
	}
	return invocations, perService
}

// Run runs every design at every size and duration, the seed's after
// ec2patch's, and fills in the ratios.
func (r *Runner) Run(ctx context.Context) ([]Result, error) {
	var out []Result
	for _, n := range r.Cfg.Sizes {
		for _, m := range r.Cfg.Minutes {
			r.logf("ec2patch: %d account-regions, %d simulated minutes", n, m)
			a, err := r.EC2Patch(ctx, n, m)
			if err != nil {
				return out, fmt.Errorf("ec2patch %dx%d: %w", n, m, err)
			}
			r.logf("seed: %d account-regions, %d simulated minutes", n, m)
			b, err := r.Seed(ctx, n, m)
			if err != nil {
				return out, fmt.Errorf("seed %dx%d: %w", n, m, err)
			}
			if !b.Skipped {
				a.Ratios = ratios(a, b)
			}
			out = append(out, a, b)
		}
	}
	return out, nil
}

func ratios(a, b Result) map[string]float64 {
	div := func(x, y float64) float64 {
		if y == 0 {
			return 0
		}
		return math.Round(x/y*1000) / 1000
	}
	return map[string]float64{
		"stateTransitions":  div(float64(a.StateTransitions), float64(b.StateTransitions)),
		"maxHistoryEvents":  div(float64(a.MaxHistoryEvents), float64(b.MaxHistoryEvents)),
		"lambdaInvocations": div(float64(a.LambdaInvocations), float64(b.LambdaInvocations)),
		"ssmCalls":          div(a.APICalls["ssm"], b.APICalls["ssm"]),
	}
}

// PrintTable writes the results as a table, then the notes.
func PrintTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "design\tacct-regions\tpatch min\tstatus\texecutions\tmax history\ttransitions\tlambda\tssm/AR\tsts/AR\twall s\ttransitions ratio\t")
	for _, r := range results {
		ratio := ""
		if r.Ratios != nil {
			ratio = fmt.Sprintf("%.3f", r.Ratios["stateTransitions"])
		}
		if r.Skipped {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t-\t-\t-\t-\t-\t-\t-\t\t\n", r.Design, r.AccountRegions, r.PatchMinutes, r.Status)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%.2f\t%.2f\t%.1f\t%s\t\n", r.Design, r.AccountRegions, r.PatchMinutes,
			r.Status, r.Executions, r.MaxHistoryEvents, r.StateTransitions, r.LambdaInvocations,
			r.APICalls["ssm"], r.APICalls["sts"], r.WallSeconds, ratio)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		if r.Note != "" {
			fmt.Fprintf(w, "- %s %dx%d min: %s\n", r.Design, r.AccountRegions, r.PatchMinutes, r.Note)
		}
	}
	return nil
}
