package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/params"
)

// campaignsNow is the fixed "now" of the gap checks in these tests.
var campaignsNow = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func campaignProblems(t *testing.T, campaigns ...Campaign) []string {
	t.Helper()
	p, err := Load(params.Files, "dev")
	require.NoError(t, err)
	p.Campaigns = campaigns
	var pr contract.Problems
	p.validateCampaignsAt(&pr, campaignsNow)
	return pr
}

func ptSchedule(offset int, at, zone string) *Schedule {
	return &Schedule{PatchTuesday: &PatchTuesdaySchedule{OffsetDays: offset, Time: at}, Timezone: zone}
}

func TestCommittedCampaigns(t *testing.T) {
	dev, err := Load(params.Files, "dev")
	require.NoError(t, err)
	require.Len(t, dev.Campaigns, 2)
	monthly, scan := dev.Campaigns[0], dev.Campaigns[1]
	assert.Equal(t, "monthly", monthly.Name)
	assert.True(t, monthly.Schedule.IsEnabled())
	expr, err := monthly.Schedule.Expression()
	require.NoError(t, err)
	assert.Equal(t, "cron(0 3 ? * THU *)", expr)
	assert.Equal(t, "Patch Tuesday + 2 at 03:00 America/New_York", monthly.Schedule.String())

	assert.Equal(t, "weekly-scan", scan.Name)
	assert.Equal(t, contract.OperationScan, scan.Operation)
	assert.False(t, scan.Schedule.IsEnabled())
	assert.Equal(t, "Europe/Berlin", scan.Schedule.Timezone)

	runs, err := monthly.Schedule.Next(3, campaignsNow)
	require.NoError(t, err)
	require.Len(t, runs, 3)
	assert.Equal(t, "2026-12-10 03:00 EST", runs[0].Local.Format("2006-01-02 15:04 MST"))
	assert.Equal(t, "2026-12-10 08:00", runs[0].UTC.Format("2006-01-02 15:04"))

	_, err = Load(params.Files, "prod")
	require.NoError(t, err)
}

func TestValidCampaignsHaveNoProblems(t *testing.T) {
	assert.Empty(t, campaignProblems(t,
		Campaign{Name: "monthly", Schedule: ptSchedule(0, "00:00", "UTC")},
		Campaign{Name: "late", Waves: []string{"wave2", "wave3"}, Operation: contract.OperationScan,
			RebootOption: contract.NoReboot, Schedule: ptSchedule(27, "23:59", "Pacific/Auckland")},
		Campaign{Name: "weekly", Schedule: &Schedule{Cron: "cron(0 4 ? * SUN *)", Timezone: "Europe/Berlin"}},
		Campaign{Name: "by-hand"},
	))
}

func TestCampaignProblemsNameTheirFields(t *testing.T) {
	probs := campaignProblems(t,
		Campaign{Name: "Monthly"},
		Campaign{Name: "dup", Waves: []string{"wave9", "wave2", "wave2"}, Operation: "Patch", RebootOption: "Always"},
		Campaign{Name: "dup", Schedule: ptSchedule(28, "3:00", "Mars/Olympus")},
		Campaign{Name: "both", Schedule: &Schedule{Cron: "cron(0 3 ? * WED *)", PatchTuesday: &PatchTuesdaySchedule{Time: "03:00"}, Timezone: "UTC"}},
		Campaign{Name: "neither", Schedule: &Schedule{Timezone: "UTC"}},
		Campaign{Name: "bad-cron", Schedule: &Schedule{Cron: "cron(0 25 ? * WED *)", Timezone: "UTC"}},
		Campaign{Name: "no-zone", Schedule: &Schedule{Cron: "cron(0 3 ? * WED *)"}},
		Campaign{Name: "cron-gap", Schedule: &Schedule{Cron: "cron(30 2 ? * SUN *)", Timezone: "America/New_York"}},
		Campaign{Name: "pt-gap", Schedule: ptSchedule(5, "02:30", "America/New_York")},
		Campaign{Name: "never", Schedule: &Schedule{Cron: "cron(0 3 31 2 ? *)", Timezone: "UTC"}},
	)
	want := []string{
		`campaigns[0].name: "Monthly" must be 1-32 lowercase letters, digits or '-', starting with a letter`,
		`campaigns[1].waves[0]: "wave9" is not a wave of the plan (waves)`,
		`campaigns[1].waves[2]: "wave2" is listed twice`,
		`campaigns[1].operation: "Patch" must be Install or Scan`,
		`campaigns[1].reboot_option: "Always" must be RebootIfNeeded or NoReboot`,
		`campaigns[2].name: "dup" is also the name of campaigns[1]`,
		`campaigns[2].schedule.timezone: "Mars/Olympus" is not an IANA time zone`,
		`campaigns[2].schedule.patch_tuesday.offset_days: 28 must be from 0 to 27`,
		`campaigns[2].schedule.patch_tuesday.time: "3:00" must be HH:MM (24-hour)`,
		`campaigns[3].schedule: give either cron or patch_tuesday, not both`,
		`campaigns[4].schedule: give cron or patch_tuesday`,
		`campaigns[5].schedule.cron: "cron(0 25 ? * WED *)" hour: 25 must be from 0 to 23`,
		`campaigns[6].schedule.timezone: "": name an IANA time zone such as Europe/Berlin`,
		`campaigns[7].schedule.cron: cron(30 2 ? * SUN *): 2027-03-14 02:30 does not exist in America/New_York: ` +
			`clocks go from 02:00 to 03:00 that day, and EventBridge Scheduler skips the run`,
		`campaigns[8].schedule.patch_tuesday: Patch Tuesday + 5 at 02:30 America/New_York: 2027-03-14 02:30 does ` +
			`not exist in America/New_York: clocks go from 02:00 to 03:00 that day, and EventBridge Scheduler skips the run`,
		`campaigns[9].schedule.cron: cron(0 3 31 2 ? *) never fires after 2026-11-29`,
	}
	assert.Equal(t, want, probs)
}
