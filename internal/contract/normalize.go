package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// MaxTargetsPerRun bounds the account-regions one run may touch.
const MaxTargetsPerRun = 20000

// DecodeStrict decodes one JSON object into v, rejecting unknown fields and
// trailing data, and turns decoder errors into a message naming the field.
func DecodeStrict(data []byte, v any) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		return errors.New("input is empty: want a JSON object")
	}
	if data[0] != '{' {
		return errors.New("input must be a JSON object")
	}
	if err := checkUTF8(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			if paths := unknownFieldPaths(data, reflect.TypeOf(v)); len(paths) > 0 {
				return fmt.Errorf("%s: unknown field", strings.Join(paths, ", "))
			}
		}
		return describeDecodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("input has data after the JSON object")
	}
	if probs := keyProblems(data, reflect.TypeOf(v)); len(probs) > 0 {
		return errors.New(strings.Join(probs, "; "))
	}
	return nil
}

func describeDecodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "input"
		}
		return fmt.Errorf("%s: got a JSON %s, want %s", field, typeErr.Value, typeName(typeErr.Type.String()))
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("input is not valid JSON at byte %d: %w", syntaxErr.Offset, syntaxErr)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Errorf("%s: unknown field", strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`))
	}
	return fmt.Errorf("input: %w", err)
}

func typeName(goType string) string {
	switch strings.TrimPrefix(goType, "*") {
	case "string":
		return "a string"
	case "int":
		return "an integer"
	case "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "[]string":
		return "a list of strings"
	case "map[string]string":
		return "an object of strings"
	}
	if strings.HasPrefix(goType, "[]") {
		return "a list"
	}
	return "an object"
}

var unsafeRunIDChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// Normalize turns a raw run input into a Run: it decodes strictly, applies
// the hub's defaults and the configured plan, and validates everything. The
// error, if any, lists every problem with its field.
func Normalize(raw []byte, d RunDefaults, plan []WaveInput, executionName, startTime string) (Run, error) {
	if len(raw) > MaxRunInputBytes {
		return Run{}, &ValidationError{Context: "run input", Problems: []string{
			fmt.Sprintf("input: is %d bytes; at most %d (the Step Functions input limit)", len(raw), MaxRunInputBytes)}}
	}
	var in RunInput
	if err := DecodeStrict(raw, &in); err != nil {
		return Run{}, &ValidationError{Context: "run input", Problems: []string{err.Error()}}
	}
	var p Problems
	run := Run{StartedAt: startTime}

	run.RunID = in.RunID
	if run.RunID == "" {
		run.RunID = in.ScheduledRunID()
	}
	if run.RunID == "" {
		run.RunID = strings.Trim(unsafeRunIDChars.ReplaceAllString(executionName, "-"), "-")
		if len(run.RunID) > 64 {
			run.RunID = run.RunID[:64]
		}
	}
	if !runIDRe.MatchString(run.RunID) {
		p.Addf("runId", "%q must be 1-64 letters, digits, '-' or '_'", run.RunID)
	}
	run.Campaign, run.ScheduledTime = validateCampaignRun(&p, in)

	run.Operation = OperationInstall
	if in.DryRun != nil && *in.DryRun {
		run.Operation = OperationScan
	}
	switch in.Operation {
	case "":
	case OperationScan:
		run.Operation = OperationScan
	case OperationInstall:
		if in.DryRun != nil && *in.DryRun {
			p.Addf("operation", "Install contradicts dryRun: true (a dry run only scans)")
		}
	default:
		p.Addf("operation", "%q must be Install or Scan", in.Operation)
	}
	run.DryRun = run.Operation == OperationScan

	run.RebootOption = RebootIfNeeded
	switch in.RebootOption {
	case "", RebootIfNeeded:
	case NoReboot:
		run.RebootOption = NoReboot
	default:
		p.Addf("rebootOption", "%q must be RebootIfNeeded or NoReboot", in.RebootOption)
	}
	if run.DryRun {
		run.RebootOption = NoReboot // a dry run never reboots
	}

	run.AbortOnIssues = d.AbortOnIssues
	if in.AbortOnIssues != nil {
		run.AbortOnIssues = *in.AbortOnIssues
	}
	run.WavePauseSeconds = d.WavePauseSeconds
	if in.WavePauseSeconds != nil {
		run.WavePauseSeconds = *in.WavePauseSeconds
		if run.WavePauseSeconds < 0 || run.WavePauseSeconds > MaxWavePause {
			p.Addf("wavePauseSeconds", "%d must be from 0 to %d", run.WavePauseSeconds, MaxWavePause)
		}
	}
	run.PollIntervalSeconds = d.PollIntervalSeconds
	if in.PollIntervalSeconds != nil {
		run.PollIntervalSeconds = *in.PollIntervalSeconds
		if run.PollIntervalSeconds < 1 || run.PollIntervalSeconds > MaxPollInterval {
			p.Addf("pollIntervalSeconds", "%d must be from 1 to %d", run.PollIntervalSeconds, MaxPollInterval)
		}
	}
	run.ApprovalTimeoutSeconds = d.ApprovalTimeoutSeconds
	if in.ApprovalTimeoutSeconds != nil {
		run.ApprovalTimeoutSeconds = *in.ApprovalTimeoutSeconds
		if run.ApprovalTimeoutSeconds < 1 || run.ApprovalTimeoutSeconds > MaxApprovalTimeout {
			p.Addf("approvalTimeoutSeconds", "%d must be from 1 to %d", run.ApprovalTimeoutSeconds, MaxApprovalTimeout)
		}
	}
	run.CommandTimeoutSeconds = d.CommandTimeoutSeconds
	run.AwaitTimeoutSeconds = d.CommandTimeoutSeconds + 2*d.ReconcileIntervalSeconds
	if run.PollIntervalSeconds >= 1 {
		run.MaxPollAttempts = (d.CommandTimeoutSeconds+run.PollIntervalSeconds-1)/run.PollIntervalSeconds + 2
	}

	waves, field := selectWaves(&p, in, plan)
	if field == "" {
		ValidateWaveInput(&p, "", waves[0])
	} else {
		ValidateWaves(&p, field, waves)
	}
	total := 0
	for i, w := range waves {
		nw := applyWaveDefaults(i, w, d)
		// Checked on the effective filters (a wave without its own takes
		// the defaults), with the field where the wave's filters belong.
		RequireTagKey(&p, waveTagFiltersField(field, i), nw.TagFilters, d.RequiredTagKey)
		requireSpokeAccounts(&p, waveTagFiltersField(field, i), nw.Accounts, d.SpokeAccounts)
		nw.TargetsKey = TargetsKey(run.RunID, w.WaveID)
		total += nw.TargetCount
		run.Waves = append(run.Waves, nw)
	}
	if total > MaxTargetsPerRun {
		p.Addf("waves", "target %d account-regions; at most %d per run", total, MaxTargetsPerRun)
	}
	run.WaveCount = len(run.Waves)
	if err := p.Err("run input"); err != nil {
		return Run{}, err
	}
	return run, nil
}

// waveTagFiltersField names wave i's tagFilters under field, the name
// selectWaves returned ("" for the top-level shorthand wave).
// requireSpokeAccounts refuses accounts the hub may not assume a role in.
// tagFiltersField is the wave's tagFilters field, whose parent names the wave.
func requireSpokeAccounts(p *Problems, tagFiltersField string, accounts, allowed []string) {
	if len(allowed) == 0 {
		return
	}
	field := strings.TrimSuffix(tagFiltersField, "tagFilters") + "accounts"
	for j, a := range accounts {
		if ValidAccount(a) && !slices.Contains(allowed, a) {
			p.Addf(fmt.Sprintf("%s[%d]", field, j), "%q is not a spoke account of this hub (the plan's accounts and hub.extra_spoke_accounts in the params)", a)
		}
	}
}

func waveTagFiltersField(field string, i int) string {
	if field == "" {
		return "tagFilters"
	}
	return fmt.Sprintf("%s[%d].tagFilters", field, i)
}

// selectWaves picks the waves a run input asks for and the field name to
// report their problems under ("" for the top-level shorthand wave).
func selectWaves(p *Problems, in RunInput, plan []WaveInput) ([]WaveInput, string) {
	// A field given as an empty list or object counts as given: "waves": []
	// or "accounts": [] is a mistake to report, not a request for the plan.
	shorthand := in.WaveID != "" || in.Accounts != nil || in.Regions != nil || in.TagFilters != nil
	switch {
	case in.PlanWaveIDs != nil && (in.Waves != nil || shorthand):
		p.Addf("planWaveIds", "give either planWaveIds or waves or the one-wave shorthand (waveId, accounts, regions, tagFilters)")
		return selectPlanWaves(p, in.PlanWaveIDs, plan), "plan"
	case in.PlanWaveIDs != nil:
		return selectPlanWaves(p, in.PlanWaveIDs, plan), "plan"
	case in.Waves != nil && shorthand:
		p.Addf("waves", "give either waves or the one-wave shorthand (waveId, accounts, regions, tagFilters), not both")
		return in.Waves, "waves"
	case in.Waves != nil:
		return in.Waves, "waves"
	case in.WaveID != "" && in.Accounts == nil && in.Regions == nil && in.TagFilters == nil:
		for _, w := range plan {
			if w.WaveID == in.WaveID {
				return []WaveInput{w}, "plan"
			}
		}
		p.Addf("waveId", "%q is not a wave of the configured plan and the input gives no accounts", in.WaveID)
		return nil, "waveId"
	case shorthand:
		id := in.WaveID
		if id == "" {
			id = "adhoc"
		}
		w := WaveInput{WaveID: id, Accounts: in.Accounts, Regions: in.Regions, TagFilters: in.TagFilters}
		// A shorthand wave that names a planned wave keeps that wave's settings.
		for _, pw := range plan {
			if pw.WaveID == in.WaveID {
				w.Approval, w.MaxConcurrency = pw.Approval, pw.MaxConcurrency
				w.SSMMaxConcurrency, w.SSMMaxErrors = pw.SSMMaxConcurrency, pw.SSMMaxErrors
				w.FailureThresholdPercent = pw.FailureThresholdPercent
				w.HaltAlarms = pw.HaltAlarms
				if w.TagFilters == nil {
					w.TagFilters = pw.TagFilters
				}
				if len(w.Regions) == 0 {
					w.Regions = pw.Regions
				}
			}
		}
		return []WaveInput{w}, ""
	}
	return plan, "plan"
}

func applyWaveDefaults(i int, w WaveInput, d RunDefaults) Wave {
	nw := Wave{
		Index: i, WaveID: w.WaveID, Accounts: w.Accounts, Regions: w.Regions,
		TagFilters: w.TagFilters, MaxConcurrency: d.MaxWaveConcurrency,
		SSMMaxConcurrency: d.SSMMaxConcurrency, SSMMaxErrors: d.SSMMaxErrors,
		FailureThresholdPercent: d.FailureThresholdPercent,
		TargetCount:             len(w.Accounts) * len(w.Regions),
		HaltAlarms:              append([]string{}, w.HaltAlarms...),
	}
	if nw.TagFilters == nil {
		nw.TagFilters = d.TagFilters
	}
	if w.Approval != nil {
		nw.Approval = *w.Approval
	}
	if w.MaxConcurrency != nil {
		nw.MaxConcurrency = *w.MaxConcurrency
	}
	if w.SSMMaxConcurrency != "" {
		nw.SSMMaxConcurrency = w.SSMMaxConcurrency
	}
	if w.SSMMaxErrors != "" {
		nw.SSMMaxErrors = w.SSMMaxErrors
	}
	if w.FailureThresholdPercent != nil {
		nw.FailureThresholdPercent = *w.FailureThresholdPercent
	}
	return nw
}

// Targets expands a wave into its manifest: every account x region, in the
// wave's order.
func (w Wave) Targets() []TargetRef {
	out := make([]TargetRef, 0, len(w.Accounts)*len(w.Regions))
	for _, a := range w.Accounts {
		for _, r := range w.Regions {
			out = append(out, TargetRef{Account: a, Region: r})
		}
	}
	return out
}
