package contract

// RunInput is what `aws stepfunctions start-execution` receives. It accepts
// the seed's shorthand (one wave given by waveId, accounts, regions and
// tagFilters at the top level) and the full form with a list of waves. Fields
// left out take the hub's configured defaults (RunDefaults); with neither
// waves nor a shorthand wave, the configured wave plan runs.
type RunInput struct {
	RunID               string `json:"runId,omitempty"`
	DryRun              *bool  `json:"dryRun,omitempty"`
	Operation           string `json:"operation,omitempty"`
	RebootOption        string `json:"rebootOption,omitempty"`
	AbortOnIssues       *bool  `json:"abortOnIssues,omitempty"`
	WavePauseSeconds    *int   `json:"wavePauseSeconds,omitempty"`
	PollIntervalSeconds *int   `json:"pollIntervalSeconds,omitempty"`
	// ApprovalTimeoutSeconds is how long an approval gate waits; a timeout
	// is a rejection.
	ApprovalTimeoutSeconds *int              `json:"approvalTimeoutSeconds,omitempty"`
	Waves                  []WaveInput       `json:"waves,omitempty"`
	WaveID                 string            `json:"waveId,omitempty"`
	Accounts               []string          `json:"accounts,omitempty"`
	Regions                []string          `json:"regions,omitempty"`
	TagFilters             map[string]string `json:"tagFilters,omitempty"`
	// Campaign names the params campaign a run belongs to. A scheduled run
	// always carries it; the run ID defaults to the campaign and the
	// scheduled local time.
	Campaign string `json:"campaign,omitempty"`
	// PlanWaveIDs selects waves of the configured plan by ID (a campaign's
	// waves), kept in plan order. It excludes waves and the shorthand.
	PlanWaveIDs []string `json:"planWaveIds,omitempty"`
	// Schedule is written by EventBridge Scheduler into a scheduled run's
	// input; see ScheduledRun.
	Schedule *ScheduledRun `json:"schedule,omitempty"`
}

// ScheduledRun is what a campaign's schedule adds to the run input.
// EventBridge Scheduler replaces ScheduledTime's placeholder with the
// invocation's scheduled time. A "Patch Tuesday + N days" schedule fires
// weekly on the weekday N days after Tuesday, and PrepareRun lets only the
// firing on Patch Tuesday + N (local date in Timezone) start a run: the
// other firings end at once in NotPatchDay without touching any spoke.
type ScheduledRun struct {
	ScheduledTime string `json:"scheduledTime"`
	Timezone      string `json:"timezone"`
	// PatchTuesdayOffsetDays is set for a "Patch Tuesday + N days" schedule.
	PatchTuesdayOffsetDays *int `json:"patchTuesdayOffsetDays,omitempty"`
}

// SchedulerTimePlaceholder is EventBridge Scheduler's context attribute for
// the scheduled time of an invocation, replaced in a target's input.
const SchedulerTimePlaceholder = "<aws.scheduler.scheduled-time>"

// WaveInput is one wave as written in a run input or in the params' plan.
type WaveInput struct {
	WaveID                  string            `json:"waveId"`
	Accounts                []string          `json:"accounts"`
	Regions                 []string          `json:"regions"`
	TagFilters              map[string]string `json:"tagFilters,omitempty"`
	Approval                *bool             `json:"approval,omitempty"`
	MaxConcurrency          *int              `json:"maxConcurrency,omitempty"`
	SSMMaxConcurrency       string            `json:"ssmMaxConcurrency,omitempty"`
	SSMMaxErrors            string            `json:"ssmMaxErrors,omitempty"`
	FailureThresholdPercent *float64          `json:"failureThresholdPercent,omitempty"`
	// HaltAlarms are CloudWatch alarm names in the hub's region. Any of them
	// in ALARM before the wave starts or after it ends halts the run.
	HaltAlarms []string `json:"haltAlarms,omitempty"`
}

// RunDefaults are the hub's configured values for fields a run input omits.
// The hub stack passes them to PrepareRun as JSON in EnvRunDefaults.
type RunDefaults struct {
	PollIntervalSeconds     int               `json:"pollIntervalSeconds"`
	WavePauseSeconds        int               `json:"wavePauseSeconds"`
	AbortOnIssues           bool              `json:"abortOnIssues"`
	MaxWaveConcurrency      int               `json:"maxWaveConcurrency"`
	SSMMaxConcurrency       string            `json:"ssmMaxConcurrency"`
	SSMMaxErrors            string            `json:"ssmMaxErrors"`
	CommandTimeoutSeconds   int               `json:"commandTimeoutSeconds"`
	FailureThresholdPercent float64           `json:"failureThresholdPercent"`
	TagFilters              map[string]string `json:"tagFilters"`
	ApprovalTimeoutSeconds  int               `json:"approvalTimeoutSeconds"`
	// ReconcileIntervalSeconds is how often the reconciler runs; a waiting
	// target's own timeout allows two of them past the command timeout.
	ReconcileIntervalSeconds int `json:"reconcileIntervalSeconds"`
	// RequiredTagKey is the spoke's patch tag key: the spoke role may send
	// commands only to instances carrying it, so every wave's tag filters
	// must include it or the run would select instances IAM refuses. Empty
	// requires nothing.
	RequiredTagKey string `json:"requiredTagKey,omitempty"`
	// SpokeAccounts are the accounts whose spoke role the hub may assume
	// (the plan's and hub.extra_spoke_accounts). A run naming another
	// account is refused before any spoke is touched, instead of failing
	// that target on AccessDenied. Empty allows any account.
	SpokeAccounts []string `json:"spokeAccounts,omitempty"`
}

// Operations of AWS-RunPatchBaseline.
const (
	OperationInstall = "Install"
	OperationScan    = "Scan"
)

// Reboot options of AWS-RunPatchBaseline.
const (
	RebootIfNeeded = "RebootIfNeeded"
	NoReboot       = "NoReboot"
)

// PrepareRequest is PrepareRun's payload: the execution input as given and
// the execution's name, which becomes the runId when the input has none.
type PrepareRequest struct {
	Input         RawJSON `json:"input"`
	ExecutionName string  `json:"executionName"`
	StartTime     string  `json:"startTime"`
}

// RawJSON is a JSON value carried through undecoded, so PrepareRun can decode
// it strictly and report every problem with its field.
type RawJSON []byte

// MarshalJSON returns the raw bytes, or null when empty.
func (r RawJSON) MarshalJSON() ([]byte, error) {
	if len(r) == 0 {
		return []byte("null"), nil
	}
	return r, nil
}

// UnmarshalJSON keeps a copy of the raw bytes.
func (r *RawJSON) UnmarshalJSON(b []byte) error {
	*r = append((*r)[0:0], b...)
	return nil
}

// Run is the normalized run: every default applied, every field validated.
// PrepareRun returns it as the orchestrator's state under "run".
type Run struct {
	RunID               string `json:"runId"`
	DryRun              bool   `json:"dryRun"`
	Operation           string `json:"operation"`
	RebootOption        string `json:"rebootOption"`
	AbortOnIssues       bool   `json:"abortOnIssues"`
	WavePauseSeconds    int    `json:"wavePauseSeconds"`
	PollIntervalSeconds int    `json:"pollIntervalSeconds"`
	// MaxPollAttempts bounds the poll loop of every target: the command's
	// timeout divided by the poll interval, plus one.
	MaxPollAttempts        int `json:"maxPollAttempts"`
	ApprovalTimeoutSeconds int `json:"approvalTimeoutSeconds"`
	// CommandTimeoutSeconds is how long a target's commands may run before
	// the reconciler resumes it as timed out.
	CommandTimeoutSeconds int `json:"commandTimeoutSeconds"`
	// AwaitTimeoutSeconds bounds the await task itself: the command timeout
	// plus two reconcile intervals, a last resort if nothing resumes it.
	AwaitTimeoutSeconds int    `json:"awaitTimeoutSeconds"`
	WaveCount           int    `json:"waveCount"`
	Waves               []Wave `json:"waves"`
	StartedAt           string `json:"startedAt"`
	// Campaign and ScheduledTime are set on a run started by a schedule.
	Campaign      string `json:"campaign,omitempty"`
	ScheduledTime string `json:"scheduledTime,omitempty"`
}

// Wave is one normalized wave. Its targets (account x region) are written to
// S3 at TargetsKey, the distributed map's item source, so no state payload
// grows with the number of targets.
type Wave struct {
	Index                   int               `json:"index"`
	WaveID                  string            `json:"waveId"`
	Accounts                []string          `json:"accounts"`
	Regions                 []string          `json:"regions"`
	TagFilters              map[string]string `json:"tagFilters"`
	Approval                bool              `json:"approval"`
	MaxConcurrency          int               `json:"maxConcurrency"`
	SSMMaxConcurrency       string            `json:"ssmMaxConcurrency"`
	SSMMaxErrors            string            `json:"ssmMaxErrors"`
	FailureThresholdPercent float64           `json:"failureThresholdPercent"`
	TargetCount             int               `json:"targetCount"`
	TargetsKey              string            `json:"targetsKey"`
	HaltAlarms              []string          `json:"haltAlarms"`
}

// TargetRef is one item of a wave's target manifest.
type TargetRef struct {
	Account string `json:"account"`
	Region  string `json:"region"`
}

// PrepareResult is PrepareRun's output, which replaces the orchestrator's
// state.
type PrepareResult struct {
	Run    Run    `json:"run"`
	Cursor Cursor `json:"cursor"`
	// NotPatchDay is set, with the reason, when a Patch Tuesday schedule
	// fired on a day that is not its run day; the orchestrator then ends
	// in StateNotPatchDay and Run holds only the run ID.
	NotPatchDay string `json:"notPatchDay,omitempty"`
}

// Cursor is the orchestrator's position in the wave list.
type Cursor struct {
	Index int `json:"index"`
}
