package contract

import (
	"fmt"
	"sort"
)

// ReasonNoResult is the reason of a target that left no recorded result.
const ReasonNoResult = "no result was recorded for this target"

// JudgeWave is the wave verdict as a pure function. A wave FAILED when a
// target failed, or when failed plus timed-out instances exceed its
// failureThresholdPercent of the instances it targeted. Targets of the
// manifest without a recorded result count as failed targets.
func JudgeWave(w Wave, recorded []TargetResult) (WaveVerdict, []TargetResult) {
	byKey := map[TargetRef]TargetResult{}
	for _, r := range recorded {
		byKey[TargetRef{r.Account, r.Region}] = r
	}
	var results []TargetResult
	for _, ref := range w.Targets() {
		r, ok := byKey[ref]
		if !ok {
			r = TargetResult{Account: ref.Account, Region: ref.Region, Status: StatusFailed,
				Reason: ReasonNoResult, Instances: []InstanceResult{}}
		}
		results = append(results, r)
	}
	v := WaveVerdict{WaveID: w.WaveID, Status: StatusSucceeded}
	var failedTargets []string
	for _, r := range results {
		v.Counts = v.Counts.Add(r.Counts)
		if r.Status == StatusFailed {
			failedTargets = append(failedTargets, r.Account+"/"+r.Region)
		}
	}
	sort.Strings(failedTargets)
	bad := v.Counts.Failed + v.Counts.TimedOut
	targeted := v.Counts.Targeted()
	switch {
	case len(failedTargets) > 0:
		v.Status = StatusFailed
		v.Reason = fmt.Sprintf("%d target(s) failed: %s", len(failedTargets), joinFirst(failedTargets, 5))
	case targeted > 0 && float64(bad)*100 > w.FailureThresholdPercent*float64(targeted):
		v.Status = StatusFailed
		v.Reason = fmt.Sprintf("%d of %d instances failed or timed out (%.1f%%), over the %.1f%% threshold",
			bad, targeted, float64(bad)*100/float64(targeted), w.FailureThresholdPercent)
	}
	return v, results
}

// RunStatus is the run's status from its wave statuses, in order.
func RunStatus(waveStatuses []string) string {
	status := StatusSucceeded
	for _, s := range waveStatuses {
		switch s {
		case StatusRejected:
			return StatusRejected
		case StatusAborted:
			return StatusAborted
		case StatusFailed:
			status = StatusFailed
		}
	}
	return status
}

func joinFirst(items []string, n int) string {
	s := ""
	for i, it := range items {
		if i == n {
			return s + fmt.Sprintf(" and %d more", len(items)-n)
		}
		if i > 0 {
			s += ", "
		}
		s += it
	}
	return s
}
