package contract

// TargetInput is the input of one PatchTarget (one account-region of one
// wave). The orchestrator's distributed map builds it with its ItemSelector
// from the run, the wave and the manifest item; TargetInputFields lists the
// JSON paths it uses, and a test holds both sides to this struct.
type TargetInput struct {
	RunID               string            `json:"runId"`
	WaveID              string            `json:"waveId"`
	Account             string            `json:"account"`
	Region              string            `json:"region"`
	TagFilters          map[string]string `json:"tagFilters"`
	DryRun              bool              `json:"dryRun"`
	Operation           string            `json:"operation"`
	RebootOption        string            `json:"rebootOption"`
	SSMMaxConcurrency   string            `json:"ssmMaxConcurrency"`
	SSMMaxErrors        string            `json:"ssmMaxErrors"`
	PollIntervalSeconds int               `json:"pollIntervalSeconds"`
	MaxPollAttempts     int               `json:"maxPollAttempts"`
	// CommandTimeoutSeconds and AwaitTimeoutSeconds bound the wait for the
	// target's commands (see Run).
	CommandTimeoutSeconds int `json:"commandTimeoutSeconds"`
	AwaitTimeoutSeconds   int `json:"awaitTimeoutSeconds"`
	// ExecutionID is the orchestrator execution that owns this target's
	// send; a concurrent start of the same runId cannot send as well.
	ExecutionID string `json:"executionId"`
	// Preview asks PreEC2Inventory only to count and record what would be
	// patched (a PREVIEW record), for an approval request. The patch map
	// never sets it.
	Preview bool `json:"preview,omitempty"`
}

// ItemSource tells where the ItemSelector takes a TargetInput field from.
type ItemSource struct {
	Field string // JSON name in TargetInput
	Path  string // JSONPath in the orchestrator state, or in $$.Map.Item.Value
}

// TargetInputFields maps every TargetInput field to the path the
// orchestrator's ItemSelector reads it from.
func TargetInputFields() []ItemSource {
	return []ItemSource{
		{"runId", "$.run.runId"},
		{"waveId", "$.wave.waveId"},
		{"account", "$$.Map.Item.Value.account"},
		{"region", "$$.Map.Item.Value.region"},
		{"tagFilters", "$.wave.tagFilters"},
		{"dryRun", "$.run.dryRun"},
		{"operation", "$.run.operation"},
		{"rebootOption", "$.run.rebootOption"},
		{"ssmMaxConcurrency", "$.wave.ssmMaxConcurrency"},
		{"ssmMaxErrors", "$.wave.ssmMaxErrors"},
		{"pollIntervalSeconds", "$.run.pollIntervalSeconds"},
		{"maxPollAttempts", "$.run.maxPollAttempts"},
		{"commandTimeoutSeconds", "$.run.commandTimeoutSeconds"},
		{"awaitTimeoutSeconds", "$.run.awaitTimeoutSeconds"},
		{"executionId", "$$.Execution.Id"},
	}
}

// Paths in the PatchTarget state where each step puts its result.
const (
	PathInventory = "$.inventory"
	PathCommand   = "$.command"
	PathPoll      = "$.poll"
	PathError     = "$.error"
)

// InventoryResult is PreEC2Inventory's output, kept at PathInventory.
// Instances that match the tag filters but cannot be patched (stopped, not
// managed by SSM) are in Skipped, so they never silently disappear.
type InventoryResult struct {
	Matched     int              `json:"matched"`
	InstanceIDs []string         `json:"instanceIds"`
	TargetCount int              `json:"targetCount"`
	Skipped     []InstanceResult `json:"skipped"`
	// AlreadyRecorded is true on a re-run when this target already has a
	// final result (SUCCEEDED or SKIPPED): nothing more is done to it.
	AlreadyRecorded bool `json:"alreadyRecorded,omitempty"`
}

// SendResult is SendSsmCommand's output, kept at PathCommand. One command per
// batch of at most MaxInstancesPerCommand instances.
type SendResult struct {
	CommandIDs []string `json:"commandIds"`
	// Reused is true when the commands were found already recorded for this
	// target (a retry or a re-run) and nothing was sent.
	Reused bool `json:"reused"`
}

// PollRequest is PollSsmCommand's payload.
type PollRequest struct {
	Account         string   `json:"account"`
	Region          string   `json:"region"`
	RunID           string   `json:"runId"`
	WaveID          string   `json:"waveId"`
	CommandIDs      []string `json:"commandIds"`
	Attempts        int      `json:"attempts"`
	MaxPollAttempts int      `json:"maxPollAttempts"`
}

// Poll phases. The state machine loops while the phase is PhaseInProgress.
const (
	PhaseInProgress = "IN_PROGRESS"
	PhaseComplete   = "COMPLETE"
	PhaseTimedOut   = "TIMED_OUT"
)

// PollResult is PollSsmCommand's output, kept at PathPoll.
type PollResult struct {
	Phase     string `json:"phase"`
	Attempts  int    `json:"attempts"`
	Completed int    `json:"completed"`
	Targets   int    `json:"targets"`
}

// PollStart is the poll state before the first poll.
func PollStart() PollResult { return PollResult{Phase: PhaseInProgress} }

// TargetState is the whole PatchTarget state as PostEC2Verify and
// RecordTargetFailure receive it.
type TargetState struct {
	TargetInput
	Inventory *InventoryResult `json:"inventory,omitempty"`
	Command   *SendResult      `json:"command,omitempty"`
	Poll      *PollResult      `json:"poll,omitempty"`
	Error     *TaskError       `json:"error,omitempty"`
}

// TaskError is what a Catch puts at PathError.
type TaskError struct {
	Error string `json:"Error"`
	Cause string `json:"Cause"`
}

// TargetSummary is a PatchTarget's output: small on purpose, since the full
// result with every instance is in DynamoDB.
type TargetSummary struct {
	Account string `json:"account"`
	Region  string `json:"region"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Counts  Counts `json:"counts"`
}
