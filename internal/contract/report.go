package contract

// Run, wave and target statuses in the run report.
const (
	StatusSucceeded  = "SUCCEEDED"
	StatusFailed     = "FAILED"
	StatusAborted    = "ABORTED"
	StatusRejected   = "REJECTED"
	StatusNotStarted = "NOT_STARTED"
	StatusSkipped    = "SKIPPED"
	StatusRunning    = "RUNNING"
)

// Instance statuses in the run report.
const (
	InstancePatched  = "PATCHED"
	InstanceScanned  = "SCANNED"
	InstanceFailed   = "FAILED"
	InstanceTimedOut = "TIMED_OUT"
	InstanceSkipped  = "SKIPPED"
)

// Reasons an instance is skipped.
const (
	ReasonStopped    = "instance is not running"
	ReasonUnmanaged  = "instance is not managed by SSM"
	ReasonNoInstance = "no instance matches the tag filters"
)

// Counts tallies instances by outcome.
type Counts struct {
	Patched  int `json:"patched"`
	Scanned  int `json:"scanned"`
	Failed   int `json:"failed"`
	TimedOut int `json:"timedOut"`
	Skipped  int `json:"skipped"`
}

// Add returns the sum of two counts.
func (c Counts) Add(o Counts) Counts {
	return Counts{c.Patched + o.Patched, c.Scanned + o.Scanned, c.Failed + o.Failed,
		c.TimedOut + o.TimedOut, c.Skipped + o.Skipped}
}

// Targeted is the number of instances a command was sent to.
func (c Counts) Targeted() int { return c.Patched + c.Scanned + c.Failed + c.TimedOut }

// Count tallies a list of instance results.
func Count(instances []InstanceResult) Counts {
	var c Counts
	for _, in := range instances {
		switch in.Status {
		case InstancePatched:
			c.Patched++
		case InstanceScanned:
			c.Scanned++
		case InstanceFailed:
			c.Failed++
		case InstanceTimedOut:
			c.TimedOut++
		case InstanceSkipped:
			c.Skipped++
		}
	}
	return c
}

// InstanceResult is one instance's outcome.
type InstanceResult struct {
	InstanceID string `json:"instanceId"`
	Status     string `json:"status"`
	Reason     string `json:"reason,omitempty"`
	// CommandID is the command this instance ran, when known (a target
	// sends one command per batch of instances).
	CommandID string `json:"commandId,omitempty"`
}

// TargetResult is one account-region's outcome, as recorded in DynamoDB and
// printed in the report.
type TargetResult struct {
	Account    string           `json:"account"`
	Region     string           `json:"region"`
	Status     string           `json:"status"`
	Reason     string           `json:"reason,omitempty"`
	CommandID  string           `json:"commandId,omitempty"`
	CommandIDs []string         `json:"commandIds,omitempty"`
	Counts     Counts           `json:"counts"`
	Instances  []InstanceResult `json:"instances"`
	// StartedAt and FinishedAt (RFC 3339, UTC) are set by the store when it
	// records the result: when the target's send was claimed (else when it
	// was recorded) and when it was recorded. Writing the same result again
	// keeps both, so its ledger rows keep their keys.
	StartedAt  string `json:"startedAt,omitempty"`
	FinishedAt string `json:"finishedAt,omitempty"`
}

// WaveReport is one wave of the run report.
type WaveReport struct {
	WaveID   string            `json:"waveId"`
	Status   string            `json:"status"`
	Reason   string            `json:"reason,omitempty"`
	Counts   Counts            `json:"counts"`
	Approval *ApprovalDecision `json:"approval,omitempty"`
	Targets  []TargetResult    `json:"targets"`
}

// Report is the run report: the product's record of a run, written to S3 as
// JSON and CSV and kept in DynamoDB.
type Report struct {
	RunID      string       `json:"runId"`
	Status     string       `json:"status"`
	DryRun     bool         `json:"dryRun"`
	Operation  string       `json:"operation"`
	StartedAt  string       `json:"startedAt"`
	FinishedAt string       `json:"finishedAt"`
	Totals     Counts       `json:"totals"`
	Waves      []WaveReport `json:"waves"`
}

// EvaluateRequest is EvaluateWave's payload.
type EvaluateRequest struct {
	RunID string `json:"runId"`
	Wave  Wave   `json:"wave"`
	// Alarms is the after-wave halt alarm check, when the wave has alarms.
	Alarms *AlarmCheck `json:"alarms,omitempty"`
}

// WaveVerdict is EvaluateWave's output, kept at PathVerdict.
type WaveVerdict struct {
	WaveID string `json:"waveId"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	Counts Counts `json:"counts"`
	// Halt stops the run whatever abortOnIssues says: a halt alarm fired,
	// or the wave's approval was rejected or timed out.
	Halt bool `json:"halt"`
}

// PathVerdict is where the orchestrator keeps the last wave's verdict.
const PathVerdict = "$.verdict"

// ReportRequest is WriteRunReport's payload.
type ReportRequest struct {
	Run     Run          `json:"run"`
	Cursor  Cursor       `json:"cursor"`
	Verdict *WaveVerdict `json:"verdict,omitempty"`
}

// ReportSummary is WriteRunReport's output and the execution's output.
type ReportSummary struct {
	RunID     string `json:"runId"`
	Status    string `json:"status"`
	Totals    Counts `json:"totals"`
	ReportURI string `json:"reportUri"`
	CSVURI    string `json:"csvUri"`
}
