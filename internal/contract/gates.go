package contract

// Approval decisions.
const (
	DecisionApprove = "approve"
	DecisionReject  = "reject"
)

// Paths in the orchestrator state used by the gates.
const (
	PathApproval      = "$.approval"      // the approver's ApprovalDecision
	PathApprovalError = "$.approvalError" // a rejection, a timeout or a failed request
	PathAlarms        = "$.alarms"        // the last AlarmCheck
)

// ApprovalRequest is SendApprovalRequest's payload. The task waits for its
// token: ApprovalCallback answers with SendTaskSuccess (an ApprovalDecision)
// or SendTaskFailure (ErrApprovalRejected); the task's timeout is a rejection.
type ApprovalRequest struct {
	TaskToken      string `json:"taskToken"`
	RunID          string `json:"runId"`
	DryRun         bool   `json:"dryRun"`
	Operation      string `json:"operation"`
	TimeoutSeconds int    `json:"timeoutSeconds"`
	Wave           Wave   `json:"wave"`
}

// ApprovalDecision records who decided a gate, how, when and from where.
type ApprovalDecision struct {
	ApprovalID string `json:"approvalId"`
	WaveID     string `json:"waveId"`
	Decision   string `json:"decision"`
	Approver   string `json:"approver"`
	SourceIP   string `json:"sourceIp"`
	DecidedAt  string `json:"decidedAt"`
}

// Alarm check phases.
const (
	PhaseBeforeWave = "before"
	PhaseAfterWave  = "after"
)

// AlarmCheckRequest is CheckHaltAlarms' payload.
type AlarmCheckRequest struct {
	RunID      string   `json:"runId"`
	WaveID     string   `json:"waveId"`
	AlarmNames []string `json:"alarmNames"`
	Phase      string   `json:"phase"`
}

// AlarmCheck is CheckHaltAlarms' output, kept at PathAlarms.
type AlarmCheck struct {
	Firing bool     `json:"firing"`
	Alarms []string `json:"alarms"` // the names in ALARM, sorted
	Reason string   `json:"reason,omitempty"`
}

// ApplyAlarms folds an after-wave alarm check into a wave verdict: any halt
// alarm in ALARM fails the wave, names the alarm and halts the run.
func ApplyAlarms(v WaveVerdict, a *AlarmCheck) WaveVerdict {
	if a == nil || !a.Firing {
		return v
	}
	v.Status = StatusFailed
	v.Halt = true
	if v.Reason != "" {
		v.Reason = a.Reason + "; " + v.Reason
	} else {
		v.Reason = a.Reason
	}
	return v
}

// PreviewSummary is what the preview of an approval wave records per
// account-region, so the approval request can say what will be patched.
type PreviewSummary struct {
	Account     string `json:"account"`
	Region      string `json:"region"`
	Matched     int    `json:"matched"`
	TargetCount int    `json:"targetCount"`
	Skipped     int    `json:"skipped"`
	Error       string `json:"error,omitempty"`
}
