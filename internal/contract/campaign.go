package contract

import (
	"fmt"
	"regexp"
	"time"
)

// PathNotPatchDay is PrepareResult.NotPatchDay in the orchestrator's state,
// which StateIsPatchDay tests.
const PathNotPatchDay = "$.notPatchDay"

// MaxPatchTuesdayOffsetDays is the largest offset of a "Patch Tuesday + N
// days" schedule: four weeks less a day, so one month's run never passes the
// next month's Patch Tuesday.
const MaxPatchTuesdayOffsetDays = 27

// CampaignNameRe is what a campaign's name must match; it becomes part of
// run IDs and schedule names.
var CampaignNameRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// ScheduledRunIDLayout formats a scheduled run's local time in its run ID:
// <campaign>-20261211T0300.
const ScheduledRunIDLayout = "20060102T1504"

// LoadZone loads an IANA time zone by name. "Local" and the empty name are
// refused: a schedule must say where its local time is.
func LoadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("time zone %q: name an IANA time zone such as Europe/Berlin", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q is not an IANA time zone", name)
	}
	return loc, nil
}

// ScheduledLocalTime is the scheduled time of a scheduled run on its zone's
// clock.
func (s ScheduledRun) ScheduledLocalTime() (time.Time, error) {
	loc, err := LoadZone(s.Timezone)
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339, s.ScheduledTime)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", s.ScheduledTime)
	}
	return t.In(loc), nil
}

// ScheduledRunID is a campaign run's default run ID: the campaign and the
// scheduled local time, so a firing retried by Scheduler (or started again
// by hand with the same input) is the same run. It is "" unless the input
// names a campaign and a valid schedule.
func (in RunInput) ScheduledRunID() string {
	if in.Campaign == "" || in.Schedule == nil {
		return ""
	}
	t, err := in.Schedule.ScheduledLocalTime()
	if err != nil {
		return ""
	}
	return in.Campaign + "-" + t.Format(ScheduledRunIDLayout)
}

// validateCampaignRun checks a campaign run's campaign and schedule fields
// and returns the run's Campaign and ScheduledTime.
func validateCampaignRun(p *Problems, in RunInput) (campaign, scheduledTime string) {
	if in.Campaign != "" && !CampaignNameRe.MatchString(in.Campaign) {
		p.Addf("campaign", "%q must be 1-32 lowercase letters, digits or '-', starting with a letter", in.Campaign)
	}
	s := in.Schedule
	if s == nil {
		return in.Campaign, ""
	}
	if in.Campaign == "" {
		p.Addf("schedule", "a scheduled run must name its campaign")
	}
	if _, err := LoadZone(s.Timezone); err != nil {
		p.Addf("schedule.timezone", "%v", err)
	}
	if _, err := time.Parse(time.RFC3339, s.ScheduledTime); err != nil {
		p.Addf("schedule.scheduledTime", "%q is not an RFC 3339 time", s.ScheduledTime)
	}
	if n := s.PatchTuesdayOffsetDays; n != nil && (*n < 0 || *n > MaxPatchTuesdayOffsetDays) {
		p.Addf("schedule.patchTuesdayOffsetDays", "%d must be from 0 to %d", *n, MaxPatchTuesdayOffsetDays)
	}
	return in.Campaign, s.ScheduledTime
}

// selectPlanWaves picks the plan's waves named by ids, in plan order.
func selectPlanWaves(p *Problems, ids []string, plan []WaveInput) []WaveInput {
	want := map[string]bool{}
	for i, id := range ids {
		known := false
		for _, w := range plan {
			known = known || w.WaveID == id
		}
		switch {
		case !known:
			p.Addf(fmt.Sprintf("planWaveIds[%d]", i), "%q is not a wave of the configured plan", id)
		case want[id]:
			p.Addf(fmt.Sprintf("planWaveIds[%d]", i), "%q is listed twice", id)
		}
		want[id] = true
	}
	var out []WaveInput
	for _, w := range plan {
		if want[w.WaveID] {
			out = append(out, w)
		}
	}
	return out
}
