package contract

// The handlers publish metrics in CloudWatch embedded metric format (EMF):
// JSON log lines that CloudWatch Logs turns into metrics, with no
// PutMetricData call and no extra permission. The dashboard and the alarms
// read the same names, so a renamed metric breaks a test, not an alarm.
const MetricNamespace = "EC2Patch"

// Metric names.
const (
	// MetricPatchSuccess counts instances patched (or scanned, in a dry run)
	// by one target.
	MetricPatchSuccess = "PatchSuccess"
	// MetricPatchFailures counts instances whose command failed or timed
	// out, plus every instance of a target that failed as a whole.
	MetricPatchFailures = "PatchFailures"
	// MetricInstancesUnhealthy counts instances that failed the post-patch
	// verification (status checks or SSM ping).
	MetricInstancesUnhealthy = "InstancesUnhealthy"
	// MetricInstancesSkipped counts instances skipped, with the Reason
	// dimension: the compliance drift view.
	MetricInstancesSkipped = "InstancesSkipped"
	// MetricInstancesTargeted counts instances running and managed before
	// the patch (the "before" of instance availability).
	MetricInstancesTargeted = "InstancesTargeted"
	// MetricInstancesHealthy counts instances that passed the post-patch
	// verification (the "after").
	MetricInstancesHealthy = "InstancesHealthy"
	// MetricPendingApprovals is the number of approval gates waiting for a
	// decision, published by the reconciler on every pass.
	MetricPendingApprovals = "PendingApprovals"
	// MetricOldestPendingApprovalMinutes is the age of the oldest pending
	// approval gate (0 when none), published with MetricPendingApprovals.
	MetricOldestPendingApprovalMinutes = "OldestPendingApprovalMinutes"
	// MetricWaveDurationSeconds is a wave's time from its first target
	// starting to its verdict.
	MetricWaveDurationSeconds = "WaveDurationSeconds"
	// MetricRunsCompleted counts finished runs, with the Status dimension.
	MetricRunsCompleted = "RunsCompleted"
)

// Metric dimensions. Every metric carries DimEnvironment (the hub's name
// prefix) so the alarms read one series per environment; the finer sets
// add the wave, then the run, wave and account.
const (
	DimEnvironment = "Environment"
	DimRunID       = "RunId"
	DimWaveID      = "WaveId"
	DimAccount     = "Account"
	DimReason      = "Reason"
	DimStatus      = "Status"
)

// Skip reasons as a metric dimension: short, stable values (the report's
// Reason strings are sentences).
const (
	SkipReasonStopped    = "Stopped"
	SkipReasonUnmanaged  = "NotManagedBySSM"
	SkipReasonNoInstance = "NoMatchingInstance"
)

// SkipReasonDimension maps a report reason to its metric dimension value.
func SkipReasonDimension(reason string) string {
	switch reason {
	case ReasonStopped:
		return SkipReasonStopped
	case ReasonUnmanaged:
		return SkipReasonUnmanaged
	case ReasonNoInstance:
		return SkipReasonNoInstance
	}
	return "Other"
}
