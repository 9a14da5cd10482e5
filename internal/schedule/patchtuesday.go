// Package schedule computes when a campaign runs: the "Patch Tuesday + N
// days" rule (the second Tuesday of each month plus an offset, at a local
// time in an IANA time zone). It imports only the standard library (and
// embeds the time zone database, so a result never depends on the machine).
package schedule

import (
	"errors"
	"fmt"
	"time"
	_ "time/tzdata" // the same zones on every machine and in every Lambda
)

// MaxOffsetDays is the largest offset from Patch Tuesday: four weeks less a
// day, so one month's run never passes the next month's Patch Tuesday.
const MaxOffsetDays = 27

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

// In returns the run of the month's rule: Patch Tuesday of year/month plus
// the offset, at the local time. A local time that does not exist that
// day (the hour skipped when daylight saving starts) runs an hour later;
// one that exists twice (the hour repeated when it ends) runs the first
// time.
func (r PatchTuesdayRule) In(year int, month time.Month) time.Time {
	pt := PatchTuesday(year, month, r.Location)
	return localTime(pt.Year(), pt.Month(), pt.Day()+r.OffsetDays, r.Hour, r.Minute, r.Location)
}

// localTime is the instant a wall clock in loc shows hour:minute on the
// given day, decided rather than left to time.Date (which does not promise
// which offset it picks at a daylight-saving change): a wall time that
// happens twice is its first instant; one that never happens (the skipped
// hour) is the instant the clock would have shown it without the change,
// which the clock shows as one hour (the gap) later.
func localTime(year int, month time.Month, day, hour, minute int, loc *time.Location) time.Time {
	wall := time.Date(year, month, day, hour, minute, 0, 0, time.UTC)
	guess := time.Date(year, month, day, hour, minute, 0, 0, loc)
	_, before := guess.Add(-24 * time.Hour).Zone()
	_, after := guess.Add(24 * time.Hour).Zone()
	var first time.Time
	for _, offset := range []int{before, after} {
		t := wall.Add(-time.Duration(offset) * time.Second).In(loc)
		if t.Hour() == hour && t.Minute() == minute && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	if !first.IsZero() {
		return first
	}
	return wall.Add(-time.Duration(before) * time.Second).In(loc)
}

// Next returns the next n runs strictly after t, in r.Location.
func (r PatchTuesdayRule) Next(after time.Time, n int) []time.Time {
	out := make([]time.Time, 0, n)
	local := after.In(r.Location)
	// Start a month early: an offset can carry last month's run into this one.
	year, month := local.Year(), local.Month()-1
	for len(out) < n {
		if month < time.January {
			year, month = year-1, time.December
		}
		if run := r.In(year, month); run.After(after) {
			out = append(out, run)
		}
		month++
		if month > time.December {
			year, month = year+1, time.January
		}
	}
	return out
}
