package schedule

import (
	"fmt"
	"time"
)

// Run is one run of a schedule: the same instant on the schedule's local
// clock and in UTC.
type Run struct {
	Local time.Time
	UTC   time.Time
}

func newRun(t time.Time) Run { return Run{Local: t, UTC: t.UTC()} }

// wallOf is t's wall clock (date and time of day) carried in UTC, which has
// no daylight-saving changes, so cron matching never sees one.
func wallOf(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
}

// instantOf is the instant a clock in loc shows wall, decided rather than
// left to time.Date (which does not promise which offset it picks at a
// daylight-saving change). A wall time that happens twice is its first
// instant; one that never happens (the skipped hour) is not found.
func instantOf(wall time.Time, loc *time.Location) (time.Time, bool) {
	before, after := offsetsAround(wall, loc)
	var first time.Time
	for _, offset := range []int{before, after} {
		t := wall.Add(-time.Duration(offset) * time.Second).In(loc)
		if wallOf(t).Equal(wall) && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	return first, !first.IsZero()
}

// offsetsAround are loc's UTC offsets a day before and a day after wall.
func offsetsAround(wall time.Time, loc *time.Location) (before, after int) {
	guess := time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), 0, 0, loc)
	_, before = guess.Add(-24 * time.Hour).Zone()
	_, after = guess.Add(24 * time.Hour).Zone()
	return before, after
}

// GapError is a run whose local time does not exist: the clocks skip it
// when daylight saving starts, and EventBridge Scheduler skips the run.
type GapError struct {
	// Wall is the local date and time, carried in UTC.
	Wall time.Time
	Zone string
	// From and To are the local times the clocks jump between.
	From, To time.Time
}

func (e *GapError) Error() string {
	return fmt.Sprintf("%s does not exist in %s: clocks go from %s to %s that day, and EventBridge Scheduler skips the run",
		e.Wall.Format("2006-01-02 15:04"), e.Zone, e.From.Format("15:04"), e.To.Format("15:04"))
}

func newGapError(wall time.Time, loc *time.Location) *GapError {
	before, _ := offsetsAround(wall, loc)
	// The change is the first instant, within a day of wall, at which loc's
	// offset is no longer before's.
	lo := wall.Add(-time.Duration(before)*time.Second - 24*time.Hour)
	hi := lo.Add(48 * time.Hour)
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2)
		if _, off := mid.In(loc).Zone(); off == before {
			lo = mid
		} else {
			hi = mid
		}
	}
	change := hi.Truncate(time.Second)
	return &GapError{
		Wall: wall, Zone: loc.String(),
		From: change.Add(time.Duration(before) * time.Second).UTC(),
		To:   change.In(loc),
	}
}

// Limits of the gap check: validation looks at every firing in the next
// GapHorizon, up to MaxGapFirings of them.
const (
	GapHorizon    = 24 * 31 * 24 * time.Hour // 24 months, rounded up
	MaxGapFirings = 2000
)
