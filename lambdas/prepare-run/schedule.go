package main

import (
	"encoding/json"
	"fmt"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/internal/schedule"
)

// notPatchDay gates a "Patch Tuesday + N days" schedule. Scheduler fires it
// every week on the run's weekday; only the firing whose local date is the
// run day starts a run. For the others it returns the result that ends the
// execution in NotPatchDay, with the reason and the next run.
//
// It decodes only what it needs and leaves every problem of the input to
// Normalize: an input it cannot read is not skipped.
func notPatchDay(raw []byte) (contract.PrepareResult, bool) {
	var in contract.RunInput
	if err := json.Unmarshal(raw, &in); err != nil || in.Schedule == nil || in.Schedule.PatchTuesdayOffsetDays == nil {
		return contract.PrepareResult{}, false
	}
	s := in.Schedule
	local, err := s.ScheduledLocalTime()
	if err != nil {
		return contract.PrepareResult{}, false
	}
	// The schedule fires at the rule's local time, so the firing's time of
	// day is the rule's.
	rule, err := schedule.NewPatchTuesdayRule(*s.PatchTuesdayOffsetDays, local.Format("15:04"), s.Timezone)
	if err != nil {
		return contract.PrepareResult{}, false
	}
	ok, next := rule.IsRunDay(local)
	if ok {
		return contract.PrepareResult{}, false
	}
	runID := in.RunID
	if runID == "" {
		runID = in.ScheduledRunID()
	}
	return contract.PrepareResult{
		Run: contract.Run{RunID: runID, Campaign: in.Campaign, ScheduledTime: s.ScheduledTime},
		NotPatchDay: fmt.Sprintf("%s is not Patch Tuesday + %d (next: %s %s)", local.Format("2006-01-02"),
			rule.OffsetDays, next.Format("2006-01-02 15:04"), s.Timezone),
	}, true
}
