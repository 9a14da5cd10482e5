package contract

import "fmt"

// The state table has a string partition key and sort key and a TTL
// attribute. One run's records share a partition.
const (
	AttrPK  = "pk"
	AttrSK  = "sk"
	AttrTTL = "expiresAt"
)

// RunPK is the partition key of every record of a run.
func RunPK(runID string) string { return "RUN#" + runID }

// Sort keys of a run's records.
const SKRun = "RUN"

// WaveSK is the sort key of a wave verdict; the index keeps waves in order.
func WaveSK(index int, waveID string) string { return fmt.Sprintf("WAVE#%03d#%s", index, waveID) }

// TargetSKPrefix selects every target record of one wave.
func TargetSKPrefix(waveID string) string { return "TARGET#" + waveID + "#" }

// TargetSK is the sort key of one target's record.
func TargetSK(waveID, account, region string) string {
	return TargetSKPrefix(waveID) + account + "#" + region
}

// PreviewSKPrefix selects every preview record of one wave.
func PreviewSKPrefix(waveID string) string { return "PREVIEW#" + waveID + "#" }

// PreviewSK is the sort key of one account-region's preview.
func PreviewSK(waveID, account, region string) string {
	return PreviewSKPrefix(waveID) + account + "#" + region
}

// RunApprovalSK is the sort key of a wave's approval decision in the run's
// partition, read by the report.
func RunApprovalSK(waveID string) string { return "APPROVAL#" + waveID }

// ApprovalPK is the partition of one pending approval: its task token and
// state, looked up by the opaque approval ID a link carries.
func ApprovalPK(approvalID string) string { return "APPROVAL#" + approvalID }

// SKApproval is the sort key of an approval record.
const SKApproval = "APPROVAL"

// WaitingPK is the partition of every target waiting for its commands; the
// reconciler reads it, and completing a wait deletes the target's record.
const WaitingPK = "WAITING"

// WaitingSK is the sort key of one execution's wait for one target. Two
// executions of one run (a re-run racing the first) may wait on the same
// commands: each has its own record and task token.
func WaitingSK(runID, waveID, account, region, executionID string) string {
	return runID + "#" + waveID + "#" + account + "#" + region + "#" + executionID
}

// CommandPK is the partition of a command's lookup records, which lead an
// event about the command to every execution waiting on it.
func CommandPK(commandID string) string { return "COMMAND#" + commandID }

// CommandSK is the sort key of one execution's lookup record of a command.
func CommandSK(executionID string) string { return "WAITER#" + executionID }

// S3 layout of the hub bucket.
func TargetsKey(runID, waveID string) string { return "runs/" + runID + "/targets/" + waveID + ".json" }
func ReportJSONKey(runID string) string      { return "reports/" + runID + "/report.json" }
func ReportCSVKey(runID string) string       { return "reports/" + runID + "/report.csv" }
func CommandOutputPrefix(runID, account, region string) string {
	return "ssm-output/" + runID + "/" + account + "/" + region
}

// The instance ledger: one row per instance per target outcome, in the
// instance's own partition, newest last. "When was this instance last
// patched, and with what result" is one Query on LedgerPK with
// ScanIndexForward=false and Limit=1; the last successful patch is the same
// Query filtered on status PATCHED (an instance has about a dozen rows a
// year, kept for the record retention).
func LedgerPK(account, region, instanceID string) string {
	return "INSTANCE#" + account + "#" + region + "#" + instanceID
}

// LedgerSKPrefix selects every ledger row of an instance; rows sort by time.
const LedgerSKPrefix = "LEDGER#"

// LedgerSK is the sort key of one ledger row: the time (RFC 3339, UTC) and
// the run, so two runs in one second stay apart.
func LedgerSK(at, runID string) string { return LedgerSKPrefix + at + "#" + runID }

// LedgerEntry is one ledger row.
type LedgerEntry struct {
	Account    string `json:"account"`
	Region     string `json:"region"`
	InstanceID string `json:"instanceId"`
	RunID      string `json:"runId"`
	WaveID     string `json:"waveId"`
	Status     string `json:"status"`
	Reason     string `json:"reason,omitempty"`
	CommandID  string `json:"commandId,omitempty"`
	Operation  string `json:"operation"`
	At         string `json:"at"`
}

// PendingApprovalPK is the partition listing every approval gate waiting
// for a decision, so the reconciler can publish their count and age with
// one Query. Deciding or expiring a gate deletes its row.
const PendingApprovalPK = "PENDING_APPROVAL"
