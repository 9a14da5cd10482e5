package schedule_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2patch/ec2patch/internal/schedule"
)

// The second Tuesdays of 2026 and 2027, from a calendar computed apart from
// this package.
var patchTuesdays = map[int][12]int{
	2026: {13, 10, 10, 14, 12, 9, 14, 11, 8, 13, 10, 8},
	2027: {12, 9, 9, 13, 11, 8, 13, 10, 14, 12, 9, 14},
}

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := schedule.LoadZone(name)
	require.NoError(t, err)
	return loc
}

func TestPatchTuesdayOver24Months(t *testing.T) {
	for _, name := range []string{"UTC", "America/New_York", "Asia/Tokyo", "Pacific/Auckland"} {
		loc := zone(t, name)
		for year, days := range patchTuesdays {
			for i, day := range days {
				pt := schedule.PatchTuesday(year, time.Month(i+1), loc)
				assert.Equal(t, time.Tuesday, pt.Weekday(), "%s %d-%02d", name, year, i+1)
				assert.Equal(t, day, pt.Day(), "%s %d-%02d", name, year, i+1)
				assert.Equal(t, loc, pt.Location())
			}
		}
	}
}

func TestOffsetsCrossMonthEnds(t *testing.T) {
	rule, err := schedule.NewPatchTuesdayRule(27, "22:00", "Europe/Berlin")
	require.NoError(t, err)
	// December 2026: Patch Tuesday the 8th + 27 days = 4 January 2027.
	run, err := rule.In(2026, time.December)
	require.NoError(t, err)
	assert.Equal(t, "2027-01-04 22:00 CET", run.Format("2006-01-02 15:04 MST"))
	assert.Equal(t, time.Monday, run.Weekday())
	// February 2027: the 9th + 27 = 8 March, past a 28-day month.
	run, err = rule.In(2027, time.February)
	require.NoError(t, err)
	assert.Equal(t, "2027-03-08 22:00 CET", run.Format("2006-01-02 15:04 MST"))
}

func TestRunsAcrossDaylightSavingChanges(t *testing.T) {
	cases := []struct {
		name, zone, local  string
		offset             int
		year               int
		month              time.Month
		wantLocal, wantUTC string
	}{
		// New York springs forward on 14 March 2027 at 02:00; 01:59 is
		// the last minute before the gap and 03:00 the first after it.
		{"just before the gap", "America/New_York", "01:59", 5, 2027, time.March, "2027-03-14 01:59 EST", "2027-03-14 06:59 UTC"},
		{"just after the gap", "America/New_York", "03:00", 5, 2027, time.March, "2027-03-14 03:00 EDT", "2027-03-14 07:00 UTC"},
		// New York falls back on 1 November 2026: 01:30 happens twice and
		// the run is at the first, 01:30 EDT.
		{"repeated hour", "America/New_York", "01:30", 19, 2026, time.October, "2026-11-01 01:30 EDT", "2026-11-01 05:30 UTC"},
		// London leaves summer time on 25 October 2026: the same local time
		// is an hour later in UTC after the change than before it.
		{"before the change", "Europe/London", "03:00", 0, 2026, time.October, "2026-10-13 03:00 BST", "2026-10-13 02:00 UTC"},
		{"after the change", "Europe/London", "03:00", 0, 2026, time.November, "2026-11-10 03:00 GMT", "2026-11-10 03:00 UTC"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rule, err := schedule.NewPatchTuesdayRule(tc.offset, tc.local, tc.zone)
			require.NoError(t, err)
			run, err := rule.In(tc.year, tc.month)
			require.NoError(t, err)
			assert.Equal(t, tc.wantLocal, run.Format("2006-01-02 15:04 MST"))
			assert.Equal(t, tc.wantUTC, run.UTC().Format("2006-01-02 15:04 MST"))
		})
	}
}

func TestNextRuns(t *testing.T) {
	rule, err := schedule.NewPatchTuesdayRule(3, "21:00", "America/Chicago")
	require.NoError(t, err)
	// 29 November 2026: November's run (the 13th) has passed.
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	var got []string
	for _, run := range rule.Next(3, now) {
		got = append(got, run.Local.Format("2006-01-02 15:04 MST")+" = "+run.UTC.Format("15:04 MST"))
	}
	assert.Equal(t, []string{"2026-12-11 21:00 CST = 03:00 UTC", "2027-01-15 21:00 CST = 03:00 UTC",
		"2027-02-12 21:00 CST = 03:00 UTC"}, got)

	// An offset that carries the previous month's run into this month is
	// found: December's 8th + 27 = 4 January.
	late, err := schedule.NewPatchTuesdayRule(27, "06:00", "UTC")
	require.NoError(t, err)
	first := late.Next(1, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	assert.Equal(t, "2027-01-04 06:00", first[0].Local.Format("2006-01-02 15:04"))
}

func TestRuleValidation(t *testing.T) {
	_, err := schedule.NewPatchTuesdayRule(28, "25:00", "Mars/Olympus_Mons")
	require.Error(t, err)
	for _, want := range []string{"offset 28 days", `local time "25:00"`, `"Mars/Olympus_Mons" is not an IANA time zone`} {
		assert.True(t, strings.Contains(err.Error(), want), "%q lacks %q", err, want)
	}
	_, err = schedule.NewPatchTuesdayRule(-1, "10:00", "UTC")
	assert.ErrorContains(t, err, "offset -1 days")
	_, err = schedule.NewPatchTuesdayRule(0, "10:00", "Local")
	assert.ErrorContains(t, err, "name an IANA time zone")
}
