package fleet

import "github.com/ec2patch/ec2patch/internal/contract"

// ReasonAccessDenied is the text a target's reason must contain when its
// spoke role cannot be assumed.
const ReasonAccessDenied = contract.ErrAccessDenied

// Expectation is what a run over a fleet must report.
type Expectation struct {
	Status string
	Totals contract.Counts
	Waves  []WaveExpectation
}

// WaveExpectation is one wave's expected verdict and targets.
type WaveExpectation struct {
	WaveID  string
	Status  string
	Counts  contract.Counts
	Targets []TargetExpectation
}

// TargetExpectation is one account-region's expected outcome.
type TargetExpectation struct {
	Account string
	Region  string
	Status  string
	// ReasonContains is a substring the reported reason must contain ("" when
	// any reason will do).
	ReasonContains string
	Counts         contract.Counts
}

// Expected computes what a normalized run over the fleet must report: per
// target, the instances that match the wave's tag filters, by outcome; per
// wave, the verdict of contract.JudgeWave; waves after a failed one are
// NOT_STARTED when the run aborts on issues, and the run is then ABORTED
// (FAILED when the failed wave was the last). Approval gates are not
// modelled yet: every wave runs as if approved.
func Expected(f *Fleet, run contract.Run) Expectation {
	exp := Expectation{Status: contract.StatusSucceeded}
	aborted := false
	for _, w := range run.Waves {
		we := WaveExpectation{WaveID: w.WaveID}
		if aborted {
			we.Status = contract.StatusNotStarted
			exp.Status = contract.StatusAborted
			exp.Waves = append(exp.Waves, we)
			continue
		}
		var results []contract.TargetResult
		for _, ref := range w.Targets() {
			te := ExpectedTarget(f, ref.Account, ref.Region, w.TagFilters, run.DryRun)
			we.Targets = append(we.Targets, te)
			results = append(results, contract.TargetResult{Account: te.Account, Region: te.Region,
				Status: te.Status, Counts: te.Counts})
		}
		verdict, _ := contract.JudgeWave(w, results)
		we.Status, we.Counts = verdict.Status, verdict.Counts
		exp.Totals = exp.Totals.Add(we.Counts)
		if we.Status == contract.StatusFailed {
			exp.Status = contract.StatusFailed
			aborted = run.AbortOnIssues
		}
		exp.Waves = append(exp.Waves, we)
	}
	return exp
}

// ExpectedTarget is the outcome of one account-region under the tag filters.
func ExpectedTarget(f *Fleet, account, region string, filters map[string]string, dryRun bool) TargetExpectation {
	te := TargetExpectation{Account: account, Region: region, Status: contract.StatusSucceeded}
	if f.RoleMissing(account) {
		te.Status, te.ReasonContains = contract.StatusFailed, ReasonAccessDenied
		return te
	}
	for _, g := range f.Groups(account, region) {
		if !Matches(g.Tags, filters) {
			continue
		}
		n := g.Count
		switch InstanceStatus(g, dryRun) {
		case contract.InstanceSkipped:
			te.Counts.Skipped += n
		case contract.InstanceFailed:
			te.Counts.Failed += n
		case contract.InstanceTimedOut:
			te.Counts.TimedOut += n
		case contract.InstanceScanned:
			te.Counts.Scanned += n
		default:
			te.Counts.Patched += n
		}
	}
	return te
}

// InstanceStatus is the report status an instance of the group must have
// when it matches the filters.
func InstanceStatus(g Group, dryRun bool) string {
	switch {
	case g.State != StateRunning || g.Outcome == OutcomeUnmanaged:
		return contract.InstanceSkipped
	case g.Outcome == OutcomeFailed:
		return contract.InstanceFailed
	case g.Outcome == OutcomeTimeout:
		return contract.InstanceTimedOut
	case dryRun:
		return contract.InstanceScanned
	}
	return contract.InstancePatched
}
