package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/cronexpr"
)

// Cron is a parsed EventBridge Scheduler cron expression. It has no zone:
// In gives it one.
type Cron struct {
	// Expr is the expression as written, "cron(m h dom mon dow y)".
	Expr string
	expr *cronexpr.Expression
}

// cronField describes one field of an EventBridge Scheduler cron
// expression: its range, its names and which special characters it takes.
type cronField struct {
	name     string
	min, max int
	names    map[string]int
	question bool // "?" allowed (day-of-month, day-of-week)
}

var (
	monthNames = map[string]int{"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6,
		"JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}
	// EventBridge numbers the days of the week from 1 (Sunday) to 7.
	dayNames = map[string]int{"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}

	cronFields = [6]cronField{
		{name: "minute", min: 0, max: 59},
		{name: "hour", min: 0, max: 23},
		{name: "day-of-month", min: 1, max: 31, question: true},
		{name: "month", min: 1, max: 12, names: monthNames},
		{name: "day-of-week", min: 1, max: 7, names: dayNames, question: true},
		{name: "year", min: 1970, max: 2199},
	}
)

const (
	fieldDOM = 2
	fieldDOW = 4
	// lastEvaluableYear is the last year the cron evaluator knows;
	// EventBridge accepts years up to 2199.
	lastEvaluableYear = 2099
)

// ParseCron parses and validates an EventBridge Scheduler cron expression,
// "cron(minute hour day-of-month month day-of-week year)", field by field
// against the service's grammar. An error names the field that is wrong.
func ParseCron(expr string) (Cron, error) {
	body, ok := strings.CutPrefix(strings.TrimSpace(expr), "cron(")
	if !ok || !strings.HasSuffix(body, ")") {
		return Cron{}, fmt.Errorf("%q must have the form cron(minute hour day-of-month month day-of-week year)", expr)
	}
	fields := strings.Fields(strings.TrimSuffix(body, ")"))
	if len(fields) != 6 {
		return Cron{}, fmt.Errorf("%q has %d fields; want 6: minute hour day-of-month month day-of-week year", expr, len(fields))
	}
	if (fields[fieldDOM] == "?") == (fields[fieldDOW] == "?") {
		return Cron{}, fmt.Errorf("%q: exactly one of day-of-month (%q) and day-of-week (%q) must be ?",
			expr, fields[fieldDOM], fields[fieldDOW])
	}
	translated := make([]string, len(fields))
	for i, f := range fields {
		out, err := cronFields[i].parse(i, f)
		if err != nil {
			return Cron{}, fmt.Errorf("%q %s: %w", expr, cronFields[i].name, err)
		}
		translated[i] = out
	}
	e, err := cronexpr.Parse(strings.Join(translated, " "))
	if err != nil {
		return Cron{}, fmt.Errorf("%q: %w", expr, err)
	}
	return Cron{Expr: expr, expr: e}, nil
}

// parse validates one field and returns it in the evaluator's dialect:
// the same, except that day-of-week numbers count from 0 (Sunday).
func (f cronField) parse(index int, s string) (string, error) {
	var out []string
	for _, entry := range strings.Split(s, ",") {
		t, err := f.entry(index, entry)
		if err != nil {
			return "", err
		}
		out = append(out, t)
	}
	return strings.Join(out, ","), nil
}

func (f cronField) entry(index int, e string) (string, error) {
	u := strings.ToUpper(e)
	switch {
	case u == "":
		return "", fmt.Errorf("empty entry in %q", e)
	case u == "*":
		return u, nil
	case u == "?":
		if !f.question {
			return "", fmt.Errorf("? is allowed only in day-of-month and day-of-week")
		}
		return u, nil
	case u == "L" && index == fieldDOM:
		return u, nil
	case u == "L" && index == fieldDOW:
		return "6", nil // the last day of the week, Saturday
	case index == fieldDOM && strings.HasSuffix(u, "W"):
		if u == "LW" {
			return u, nil
		}
		v, err := f.value(strings.TrimSuffix(u, "W"))
		if err != nil {
			return "", err
		}
		return strconv.Itoa(v) + "W", nil
	case index == fieldDOW && strings.HasSuffix(u, "L"):
		v, err := f.value(strings.TrimSuffix(u, "L"))
		if err != nil {
			return "", err
		}
		return strconv.Itoa(v-1) + "L", nil
	case index == fieldDOW && strings.Contains(u, "#"):
		day, nth, _ := strings.Cut(u, "#")
		v, err := f.value(day)
		if err != nil {
			return "", err
		}
		if n, err := strconv.Atoi(nth); err != nil || n < 1 || n > 5 {
			return "", fmt.Errorf("%q: the week after # must be from 1 to 5", e)
		}
		return strconv.Itoa(v-1) + "#" + nth, nil
	}
	base, step, hasStep := strings.Cut(u, "/")
	if hasStep {
		n, err := strconv.Atoi(step)
		if err != nil || n < 1 || n > f.max {
			return "", fmt.Errorf("%q: the increment after / must be from 1 to %d", e, f.max)
		}
		step = "/" + step
	}
	if base == "*" && hasStep {
		return base + step, nil
	}
	lo, hi, isRange := strings.Cut(base, "-")
	first, err := f.value(lo)
	if err != nil {
		return "", err
	}
	last := first
	if isRange {
		if last, err = f.value(hi); err != nil {
			return "", err
		}
		if last < first {
			return "", fmt.Errorf("range %q runs backwards", e)
		}
	}
	if index == len(cronFields)-1 && last > lastEvaluableYear {
		return "", fmt.Errorf("%d is beyond %d, the last year ec2patch can evaluate", last, lastEvaluableYear)
	}
	shift := 0
	if index == fieldDOW {
		shift = 1
	}
	out := strconv.Itoa(first - shift)
	if isRange {
		out += "-" + strconv.Itoa(last-shift)
	}
	return out + step, nil
}

// value is one number or name of the field, within its range.
func (f cronField) value(s string) (int, error) {
	if v, ok := f.names[s]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		if f.names != nil {
			return 0, fmt.Errorf("%q must be a number from %d to %d or a name such as %s", s, f.min, f.max, f.exampleName())
		}
		return 0, fmt.Errorf("%q must be a number from %d to %d", s, f.min, f.max)
	}
	if v < f.min || v > f.max {
		return 0, fmt.Errorf("%d must be from %d to %d", v, f.min, f.max)
	}
	return v, nil
}

func (f cronField) exampleName() string {
	if f.max == 7 {
		return "SUN-SAT"
	}
	return "JAN-DEC"
}

// In evaluates the expression in loc, as EventBridge Scheduler does with
// the schedule's ScheduleExpressionTimezone.
func (c Cron) In(loc *time.Location) CronSchedule { return CronSchedule{Cron: c, Location: loc} }

// CronSchedule is a cron expression evaluated in a time zone.
type CronSchedule struct {
	Cron     Cron
	Location *time.Location
}

// wallTimes calls yield with each wall-clock time (a date and time of day,
// carried in UTC) the expression matches after the wall time of after, in
// order, until yield returns false or the expression has no more.
func (s CronSchedule) wallTimes(after time.Time, yield func(wall time.Time) bool) {
	w := wallOf(after.In(s.Location))
	// Start a day early: after's wall time may sit in a repeated hour whose
	// first instance is still ahead of it. Callers drop runs not after it.
	w = w.Add(-24 * time.Hour)
	for {
		w = s.Cron.expr.Next(w)
		if w.IsZero() || !yield(w) {
			return
		}
	}
}

// Next returns the next n runs strictly after after. A firing whose local
// time does not exist (the hour skipped when daylight saving starts) is
// skipped, as EventBridge Scheduler skips it; one in the repeated hour runs
// once, at its first instance.
func (s CronSchedule) Next(n int, after time.Time) []Run {
	out := make([]Run, 0, n)
	s.wallTimes(after, func(wall time.Time) bool {
		if t, ok := instantOf(wall, s.Location); ok && t.After(after) {
			out = append(out, newRun(t))
		}
		return len(out) < n
	})
	return out
}

// CheckGaps returns a *GapError for the first firing within horizon of
// after (looking at most at maxFirings firings) whose local time does not
// exist: EventBridge Scheduler would silently skip that patch run.
func (s CronSchedule) CheckGaps(after time.Time, horizon time.Duration, maxFirings int) error {
	start, end := wallOf(after.In(s.Location)), after.Add(horizon)
	var gap error
	seen := 0
	s.wallTimes(after, func(wall time.Time) bool {
		if !wall.After(start) {
			return true
		}
		seen++
		if _, ok := instantOf(wall, s.Location); !ok {
			gap = newGapError(wall, s.Location)
			return false
		}
		// The wall time in the later of the zone's offsets is no earlier
		// than its instant, so passing end in wall terms is past end.
		return seen < maxFirings && wall.Before(wallOf(end.In(s.Location)).Add(24*time.Hour))
	})
	return gap
}

// String describes the schedule for an operator.
func (s CronSchedule) String() string { return s.Cron.Expr + " " + s.Location.String() }
