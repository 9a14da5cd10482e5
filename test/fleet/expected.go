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
// wave, the verdict of contract.JudgeWave, after its gates:
//   - a halt alarm in ALARM before the wave (or one the fleet does not
//     create: it fails closed) makes the wave ABORTED and the run ABORTED;
//   - an approval gate answered reject, or not answered (timeout), makes the
//     wave REJECTED and the run REJECTED;
//   - a FAILED wave stops the run when it aborts on issues: the run is then
//     ABORTED (FAILED when the failed wave was the last).
//
// Waves after a stop are NOT_STARTED. Gates stop a wave before it sends
// anything, so a stopped wave has no targets and zero counts. Alarms that
// change while a wave runs are not modelled.
func Expected(f *Fleet, run contract.Run) Expectation {
	exp := Expectation{Status: contract.StatusSucceeded}
	stopped := false
	for _, w := range run.Waves {
		we := WaveExpectation{WaveID: w.WaveID}
		switch {
		case stopped:
			we.Status = contract.StatusNotStarted
			if exp.Status == contract.StatusFailed {
				exp.Status = contract.StatusAborted
			}
		case len(f.FiringAlarms(w.HaltAlarms)) > 0:
			we.Status, exp.Status, stopped = contract.StatusAborted, contract.StatusAborted, true
		case w.Approval && f.Approvals[w.WaveID] != ApprovalApprove:
			we.Status, exp.Status, stopped = contract.StatusRejected, contract.StatusRejected, true
		default:
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
				stopped = run.AbortOnIssues
			}
		}
		exp.Waves = append(exp.Waves, we)
	}
	return exp
}

// FiringAlarms returns the names, of those given, that halt a wave: in
// ALARM, or not created by the fleet (a halt alarm that does not exist
// fails closed).
func (f *Fleet) FiringAlarms(names []string) []string {
	var firing []string
	for _, n := range names {
		if state, ok := f.Alarms[n]; !ok || state == AlarmFiring {
			firing = append(firing, n)
		}
	}
	return firing
}

// NotStarted lists the waves the expectation does not run at all (gated or
// after a stop): no command may reach their accounts.
func (e Expectation) NotStarted() []string {
	var ids []string
	for _, w := range e.Waves {
		switch w.Status {
		case contract.StatusNotStarted, contract.StatusRejected, contract.StatusAborted:
			if len(w.Targets) == 0 {
				ids = append(ids, w.WaveID)
			}
		}
	}
	return ids
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
	if te.Counts.Targeted() == 0 {
		// Nothing patchable (no match, or every match skipped): no command
		// is sent and the target is SKIPPED.
		te.Status = contract.StatusSkipped
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
