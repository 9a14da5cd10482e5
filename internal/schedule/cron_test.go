package schedule_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2patch/ec2patch/internal/schedule"
)

func TestParseCronAcceptsTheSchedulerGrammar(t *testing.T) {
	for _, expr := range []string{
		"cron(0 3 ? * WED *)",
		"cron(0 3 ? * 4 *)",
		"cron(15 10 ? * 6L 2026-2030)",
		"cron(0/15 8-17 ? * MON-FRI *)",
		"cron(0 18 ? * 2#2 *)",
		"cron(0 0 L * ? *)",
		"cron(0 9 15W 1,4,7,10 ? *)",
		"cron(30 2 1 JAN-MAR ? 2027)",
		"cron(0 12 ? * L *)",
		"cron(59 23 31 DEC ? 2099)",
		"cron(*/5 * ? * sun *)",
	} {
		_, err := schedule.ParseCron(expr)
		assert.NoError(t, err, expr)
	}
}

func TestParseCronNamesTheWrongField(t *testing.T) {
	cases := []struct{ expr, want string }{
		{"0 3 ? * WED *", "must have the form cron("},
		{"cron(0 3 ? * WED)", "has 5 fields; want 6"},
		{"cron(0 0 3 ? * WED *)", "has 7 fields; want 6"},
		{"cron(0 3 * * WED *)", "exactly one of day-of-month"},
		{"cron(0 3 ? * ? *)", "exactly one of day-of-month"},
		{"cron(60 3 ? * WED *)", "minute: 60 must be from 0 to 59"},
		{"cron(0 24 ? * WED *)", "hour: 24 must be from 0 to 23"},
		{"cron(0 3 32 * ? *)", "day-of-month: 32 must be from 1 to 31"},
		{"cron(0 3 0 * ? *)", "day-of-month: 0 must be from 1 to 31"},
		{"cron(0 3 1 13 ? *)", "month: 13 must be from 1 to 12"},
		{"cron(0 3 1 JUNE ? *)", `month: "JUNE" must be a number from 1 to 12 or a name such as JAN-DEC`},
		{"cron(0 3 ? * 0 *)", "day-of-week: 0 must be from 1 to 7"},
		{"cron(0 3 ? * 8 *)", "day-of-week: 8 must be from 1 to 7"},
		{"cron(0 3 ? * FUN *)", `day-of-week: "FUN" must be a number from 1 to 7 or a name such as SUN-SAT`},
		{"cron(0 3 ? * 2#6 *)", "day-of-week: \"2#6\": the week after # must be from 1 to 5"},
		{"cron(0 3 ? * WED 1969)", "year: 1969 must be from 1970 to 2199"},
		{"cron(0 3 ? * WED 2200)", "year: 2200 must be from 1970 to 2199"},
		{"cron(0 3 ? * FRI-MON *)", `day-of-week: range "FRI-MON" runs backwards`},
		{"cron(0/0 3 ? * WED *)", "minute: \"0/0\": the increment after / must be from 1 to 59"},
		{"cron(0 ? ? * WED *)", "hour: ? is allowed only in day-of-month and day-of-week"},
		{"cron(0 3 L ? ? *)", "month: ? is allowed only in day-of-month and day-of-week"},
		{"cron(0 3 ? * 3W *)", `day-of-week: "3W" must be a number`},
		{"cron(0 3 5L * ? *)", `day-of-month: "5L" must be a number`},
		{"cron(0 3 1, * ? *)", "day-of-month: empty entry"},
	}
	for _, tc := range cases {
		_, err := schedule.ParseCron(tc.expr)
		if assert.Error(t, err, tc.expr) {
			assert.Contains(t, err.Error(), tc.want, tc.expr)
		}
	}
}

func formatRuns(runs []schedule.Run) []string {
	var out []string
	for _, r := range runs {
		out = append(out, r.Local.Format("2006-01-02 15:04 MST")+" = "+r.UTC.Format("01-02 15:04Z"))
	}
	return out
}

func cronIn(t *testing.T, expr, zoneName string) schedule.CronSchedule {
	t.Helper()
	c, err := schedule.ParseCron(expr)
	require.NoError(t, err)
	return c.In(zone(t, zoneName))
}

func TestCronNextAcrossDaylightSavingInNewYork(t *testing.T) {
	// Daily at 02:30: New York skips 02:00-03:00 on 14 March 2027, so
	// Scheduler skips that day's firing; the UTC time moves by an hour.
	s := cronIn(t, "cron(30 2 * * ? *)", "America/New_York")
	got := formatRuns(s.Next(3, time.Date(2027, 3, 13, 0, 0, 0, 0, time.UTC)))
	assert.Equal(t, []string{"2027-03-13 02:30 EST = 03-13 07:30Z", "2027-03-15 02:30 EDT = 03-15 06:30Z",
		"2027-03-16 02:30 EDT = 03-16 06:30Z"}, got)

	// Daily at 01:30: on 7 November 2027 01:30 happens twice and the
	// firing runs once, at the first (EDT).
	s = cronIn(t, "cron(30 1 * * ? *)", "America/New_York")
	got = formatRuns(s.Next(3, time.Date(2027, 11, 6, 12, 0, 0, 0, time.UTC)))
	assert.Equal(t, []string{"2027-11-07 01:30 EDT = 11-07 05:30Z", "2027-11-08 01:30 EST = 11-08 06:30Z",
		"2027-11-09 01:30 EST = 11-09 06:30Z"}, got)

	// Starting inside the repeated hour, after its first 01:30, the
	// second 01:30 is not another run.
	inRepeat := time.Date(2027, 11, 7, 5, 45, 0, 0, time.UTC) // 01:45 EDT
	got = formatRuns(s.Next(1, inRepeat))
	assert.Equal(t, []string{"2027-11-08 01:30 EST = 11-08 06:30Z"}, got)
}

func TestCronNextAcrossDaylightSavingInBerlin(t *testing.T) {
	// Sundays at 04:00: Berlin changes on the last Sundays of March and
	// October; the local time stays, the UTC time moves.
	s := cronIn(t, "cron(0 4 ? * SUN *)", "Europe/Berlin")
	got := formatRuns(s.Next(3, time.Date(2027, 3, 20, 0, 0, 0, 0, time.UTC)))
	assert.Equal(t, []string{"2027-03-21 04:00 CET = 03-21 03:00Z", "2027-03-28 04:00 CEST = 03-28 02:00Z",
		"2027-04-04 04:00 CEST = 04-04 02:00Z"}, got)
	got = formatRuns(s.Next(2, time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC)))
	assert.Equal(t, []string{"2026-10-25 04:00 CET = 10-25 03:00Z", "2026-11-01 04:00 CET = 11-01 03:00Z"}, got)
}

func TestCronGapIsRefused(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	// The last Sunday of March at 02:30 never exists in Berlin.
	s := cronIn(t, "cron(30 2 ? * 1L *)", "Europe/Berlin")
	err := s.CheckGaps(now, schedule.GapHorizon, schedule.MaxGapFirings)
	var gap *schedule.GapError
	require.True(t, errors.As(err, &gap), "%v", err)
	assert.Equal(t, "2027-03-28 02:30 does not exist in Europe/Berlin: clocks go from 02:00 to 03:00 that day, "+
		"and EventBridge Scheduler skips the run", err.Error())

	// Every Sunday at 02:30 in New York meets the gap on 14 March 2027.
	s = cronIn(t, "cron(30 2 ? * SUN *)", "America/New_York")
	assert.ErrorContains(t, s.CheckGaps(now, schedule.GapHorizon, schedule.MaxGapFirings), "2027-03-14 02:30 does not exist")

	// Every minute reaches the firing limit before the first gap, and
	// 03:30 never meets one.
	s = cronIn(t, "cron(* * * * ? *)", "America/New_York")
	assert.NoError(t, s.CheckGaps(now, schedule.GapHorizon, schedule.MaxGapFirings))
	s = cronIn(t, "cron(30 3 * * ? *)", "America/New_York")
	assert.NoError(t, s.CheckGaps(now, schedule.GapHorizon, schedule.MaxGapFirings))
}

func TestPatchTuesdayGapIsRefused(t *testing.T) {
	// Patch Tuesday + 5 in March 2027 is Sunday the 14th, when New York
	// skips 02:00-03:00: Scheduler would skip that month's patch run.
	rule, err := schedule.NewPatchTuesdayRule(5, "02:30", "America/New_York")
	require.NoError(t, err)
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	err = rule.CheckGaps(now, schedule.GapHorizon)
	assert.EqualError(t, err, "2027-03-14 02:30 does not exist in America/New_York: clocks go from 02:00 to 03:00 "+
		"that day, and EventBridge Scheduler skips the run")
	_, err = rule.In(2027, time.March)
	assert.ErrorAs(t, err, new(*schedule.GapError))
	// The month is missing from the next runs, as it would be on AWS.
	for _, r := range rule.Next(6, now) {
		assert.NotEqual(t, time.March, r.Local.Month())
	}

	// The same rule at 03:30 has no gap.
	rule, err = schedule.NewPatchTuesdayRule(5, "03:30", "America/New_York")
	require.NoError(t, err)
	assert.NoError(t, rule.CheckGaps(now, schedule.GapHorizon))
}

func TestPatchTuesdayCronExpressions(t *testing.T) {
	days := []string{"TUE", "WED", "THU", "FRI", "SAT", "SUN", "MON"}
	loc := zone(t, "Australia/Sydney")
	for n := 0; n <= schedule.MaxOffsetDays; n++ {
		rule, err := schedule.NewPatchTuesdayRule(n, "03:05", "Australia/Sydney")
		require.NoError(t, err)
		want := fmt.Sprintf("cron(5 3 ? * %s *)", days[n%7])
		require.Equal(t, want, rule.CronExpression(), "offset %d", n)

		// Every run of the rule in the next 24 months is a firing of the
		// weekly expression, and the gate lets exactly that firing start it.
		c, err := schedule.ParseCron(rule.CronExpression())
		require.NoError(t, err)
		after := time.Date(2026, 11, 1, 0, 0, 0, 0, loc)
		runs := rule.Next(40, after)
		firings := c.In(loc).Next(24*5+6, after)
		matched := 0
		for _, f := range firings {
			ok, this := rule.IsRunDay(f.UTC)
			if ok {
				require.Less(t, matched, len(runs), "offset %d", n)
				assert.True(t, runs[matched].Local.Equal(f.Local), "offset %d: firing %v, run %v", n, f.Local, runs[matched].Local)
				matched++
			} else {
				assert.True(t, this.After(f.Local), "offset %d: %v", n, f.Local)
			}
		}
		assert.GreaterOrEqual(t, matched, 24, "offset %d", n)
	}
}

func TestIsRunDayOver24Months(t *testing.T) {
	rule, err := schedule.NewPatchTuesdayRule(1, "03:00", "America/New_York")
	require.NoError(t, err)
	loc := rule.Location
	for year, tuesdays := range patchTuesdays {
		for i, pt := range tuesdays {
			month := time.Month(i + 1)
			runDay := time.Date(year, month, pt+1, 3, 0, 0, 0, loc)
			ok, run := rule.IsRunDay(runDay.UTC())
			assert.True(t, ok, "%v", runDay)
			assert.True(t, run.Equal(runDay), "%v: %v", runDay, run)

			// The Wednesday before (one week early) is not the run day; its
			// cycle's run is the one a week later.
			early := runDay.AddDate(0, 0, -7)
			ok, run = rule.IsRunDay(early)
			assert.False(t, ok, "%v", early)
			assert.True(t, run.Equal(runDay), "%v: %v", early, run)
		}
	}
	// The Wednesday after December 2026's run points at January's.
	ok, run := rule.IsRunDay(time.Date(2026, 12, 16, 3, 0, 0, 0, loc))
	assert.False(t, ok)
	assert.Equal(t, "2027-01-13 03:00 EST", run.Format("2006-01-02 15:04 MST"))

	// A run spilling into the next month: December 2026's Patch Tuesday
	// (the 8th) + 27 is 4 January 2027.
	late, err := schedule.NewPatchTuesdayRule(27, "22:00", "Europe/Berlin")
	require.NoError(t, err)
	ok, run = late.IsRunDay(time.Date(2027, 1, 4, 21, 0, 0, 0, time.UTC))
	assert.True(t, ok)
	assert.Equal(t, "2027-01-04 22:00 CET", run.Format("2006-01-02 15:04 MST"))
	ok, _ = late.IsRunDay(time.Date(2027, 1, 11, 21, 0, 0, 0, time.UTC))
	assert.False(t, ok)
}

func TestDescriptions(t *testing.T) {
	rule, err := schedule.NewPatchTuesdayRule(2, "03:00", "America/New_York")
	require.NoError(t, err)
	assert.Equal(t, "Patch Tuesday + 2 at 03:00 America/New_York", rule.String())
	assert.Equal(t, "cron(0 4 ? * SUN *) Europe/Berlin", cronIn(t, "cron(0 4 ? * SUN *)", "Europe/Berlin").String())
}
