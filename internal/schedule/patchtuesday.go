// Package schedule computes when a campaign runs: the "Patch Tuesday + N
// days" rule (the second Tuesday of each month plus an offset, at a local
// time in an IANA time zone) and EventBridge Scheduler cron expressions,
// with Scheduler's daylight-saving behaviour. It embeds the time zone
// database, so a result never depends on the machine.
package schedule

import (
	"errors"
	"fmt"
	"time"
	_ "time/tzdata" // the same zones on every machine and in every Lambda

	"github.com/ec2patch/ec2patch/internal/contract"
)

// MaxOffsetDays is the largest offset from Patch Tuesday: four weeks less a
// day, so one month's run never passes the next month's Patch Tuesday.
const MaxOffsetDays = contract.MaxPatchTuesdayOffsetDays

// PatchTuesday is the second Tuesday of the month, at midnight in loc.
func PatchTuesday(year int, month time.Month, loc *time.Location) time.Time {
	first := time.Date(year, month, 1, 0, 0, 0, 0, loc)
	// Days from the 1st to the first Tuesday, then one week more.
	toTuesday := (int(time.Tuesday) - int(first.Weekday()) + 7) % 7
	return first.AddDate(0, 0, toTuesday+7)
}

// PatchTuesdayRule is "Patch Tuesday + OffsetDays, at Hour:Minute local
// time in Location".
type PatchTuesdayRule struct {
	OffsetDays int
	Hour       int
	Minute     int
	Location   *time.Location
}

// NewPatchTuesdayRule validates a rule given as an offset, a local time
// "HH:MM" and an IANA time zone name, and reports every problem at once.
func NewPatchTuesdayRule(offsetDays int, localTime, zone string) (PatchTuesdayRule, error) {
	var errs []error
	r := PatchTuesdayRule{OffsetDays: offsetDays}
	if offsetDays < 0 || offsetDays > MaxOffsetDays {
		errs = append(errs, fmt.Errorf("offset %d days must be from 0 to %d", offsetDays, MaxOffsetDays))
	}
	t, err := time.Parse("15:04", localTime)
	if err != nil {
		errs = append(errs, fmt.Errorf("local time %q must be HH:MM (24-hour)", localTime))
	} else {
		r.Hour, r.Minute = t.Hour(), t.Minute()
	}
	if loc, err := LoadZone(zone); err != nil {
		errs = append(errs, err)
	} else {
		r.Location = loc
	}
	return r, errors.Join(errs...)
}

// LoadZone loads an IANA time zone by name. "Local" and the empty name are
// refused: a schedule must say where its local time is.
func LoadZone(name string) (*time.Location, error) { return contract.LoadZone(name) }

// In returns the run of the month's rule: Patch Tuesday of year/month plus
// the offset, at the local time. A local time that exists twice that day
// (the hour repeated when daylight saving ends) runs the first time. One
// that does not exist (the hour skipped when it starts) is a *GapError:
// EventBridge Scheduler skips such a firing, so there is no run.
func (r PatchTuesdayRule) In(year int, month time.Month) (time.Time, error) {
	pt := PatchTuesday(year, month, r.Location)
	wall := time.Date(pt.Year(), pt.Month(), pt.Day()+r.OffsetDays, r.Hour, r.Minute, 0, 0, time.UTC)
	t, ok := instantOf(wall, r.Location)
	if !ok {
		return time.Time{}, newGapError(wall, r.Location)
	}
	return t, nil
}

// Next returns the next n runs strictly after after. A month whose run
// falls in a skipped hour has none (see In); validation refuses such rules.
func (r PatchTuesdayRule) Next(n int, after time.Time) []Run {
	out := make([]Run, 0, n)
	local := after.In(r.Location)
	// Start a month early: an offset can carry last month's run into this one.
	year, month := local.Year(), local.Month()-1
	for len(out) < n {
		if month < time.January {
			year, month = year-1, time.December
		}
		if run, err := r.In(year, month); err == nil && run.After(after) {
			out = append(out, newRun(run))
		}
		month++
		if month > time.December {
			year, month = year+1, time.January
		}
	}
	return out
}

// days are EventBridge's day-of-week names, indexed by time.Weekday.
var days = [7]string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}

// CronExpression is the weekly EventBridge Scheduler expression the rule is
// deployed as: the weekday OffsetDays after Tuesday, at the local time.
// Scheduler has no "second Tuesday plus N days" (its "#" cannot cross a
// month end), so the schedule fires every week and PrepareRun lets only the
// firing on the run day start a run (IsRunDay).
func (r PatchTuesdayRule) CronExpression() string {
	day := days[(int(time.Tuesday)+r.OffsetDays)%7]
	return fmt.Sprintf("cron(%d %d ? * %s *)", r.Minute, r.Hour, day)
}

// IsRunDay reports whether a firing at t falls on the rule's run day (its
// local date in r.Location is Patch Tuesday + OffsetDays of that month or
// of the previous month, since the offset can carry a run into the next
// month). It also returns the rule's run of this cycle: the first run whose
// local date is t's or later.
func (r PatchTuesdayRule) IsRunDay(t time.Time) (bool, time.Time) {
	local := t.In(r.Location)
	today := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, time.UTC)
	year, month := local.Year(), local.Month()-1
	for range 3 {
		if month < time.January {
			year, month = year-1, time.December
		}
		pt := PatchTuesday(year, month, r.Location)
		day := time.Date(pt.Year(), pt.Month(), pt.Day()+r.OffsetDays, 0, 0, 0, 0, time.UTC)
		if !day.Before(today) {
			run := time.Date(day.Year(), day.Month(), day.Day(), r.Hour, r.Minute, 0, 0, time.UTC)
			at, ok := instantOf(run, r.Location)
			if !ok {
				at = time.Date(day.Year(), day.Month(), day.Day(), r.Hour, r.Minute, 0, 0, r.Location)
			}
			return day.Equal(today), at
		}
		month++
		if month > time.December {
			year, month = year+1, time.January
		}
	}
	// Unreachable: next month's run is always on a later date.
	return false, time.Time{}
}

// CheckGaps returns a *GapError for the first run within horizon of after
// whose local time does not exist: EventBridge Scheduler would skip it.
func (r PatchTuesdayRule) CheckGaps(after time.Time, horizon time.Duration) error {
	end := after.Add(horizon)
	local := after.In(r.Location)
	year, month := local.Year(), local.Month()-1
	for {
		if month < time.January {
			year, month = year-1, time.December
		}
		run, err := r.In(year, month)
		if err != nil {
			var gap *GapError
			if errors.As(err, &gap) && gap.Wall.After(wallOf(local)) && gap.Wall.Before(wallOf(end.In(r.Location))) {
				return err
			}
		}
		if err == nil && run.After(end) {
			return nil
		}
		month++
		if month > time.December {
			year, month = year+1, time.January
		}
	}
}

// String describes the rule for an operator.
func (r PatchTuesdayRule) String() string {
	return fmt.Sprintf("Patch Tuesday + %d at %02d:%02d %s", r.OffsetDays, r.Hour, r.Minute, r.Location)
}
