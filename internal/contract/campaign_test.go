package contract_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2patch/ec2patch/internal/contract"
)

func TestNormalizeScheduledCampaignRun(t *testing.T) {
	raw := `{"campaign": "monthly", "planWaveIds": ["wave2", "wave1-critical"], "operation": "Install",
	  "schedule": {"scheduledTime": "2026-12-11T08:00:00Z", "timezone": "America/New_York", "patchTuesdayOffsetDays": 3}}`
	run, err := contract.Normalize([]byte(raw), defaults(), plan(), "a1b2c3-scheduler-name", "2026-12-11T08:00:05Z")
	require.NoError(t, err)
	// The run ID is the campaign and the scheduled local time, so a retried
	// firing is the same run.
	assert.Equal(t, "monthly-20261211T0300", run.RunID)
	assert.Equal(t, "monthly", run.Campaign)
	assert.Equal(t, "2026-12-11T08:00:00Z", run.ScheduledTime)
	// Plan waves come in plan order, whatever the order of the IDs.
	require.Len(t, run.Waves, 2)
	assert.Equal(t, "wave1-critical", run.Waves[0].WaveID)
	assert.Equal(t, "wave2", run.Waves[1].WaveID)
	assert.True(t, run.Waves[1].Approval, "a plan wave keeps its settings")
	assert.Equal(t, "runs/monthly-20261211T0300/targets/wave2.json", run.Waves[1].TargetsKey)
}

func TestNormalizeCampaignRunIDs(t *testing.T) {
	// A given run ID wins.
	run, err := contract.Normalize([]byte(`{"campaign": "monthly", "runId": "by-hand",
	  "schedule": {"scheduledTime": "2026-12-11T08:00:00Z", "timezone": "UTC"}}`), defaults(), plan(), "x", "t0")
	require.NoError(t, err)
	assert.Equal(t, "by-hand", run.RunID)
	// A campaign started by hand, without a schedule, takes the execution name.
	run, err = contract.Normalize([]byte(`{"campaign": "monthly", "planWaveIds": ["wave2"]}`), defaults(), plan(), "manual-1", "t0")
	require.NoError(t, err)
	assert.Equal(t, "manual-1", run.RunID)
	assert.Equal(t, "monthly", run.Campaign)
	assert.Empty(t, run.ScheduledTime)
	require.Len(t, run.Waves, 1)
	// Berlin's local time, in winter an hour ahead of UTC.
	run, err = contract.Normalize([]byte(`{"campaign": "weekly-scan",
	  "schedule": {"scheduledTime": "2027-01-03T03:00:00Z", "timezone": "Europe/Berlin"}}`), defaults(), plan(), "x", "t0")
	require.NoError(t, err)
	assert.Equal(t, "weekly-scan-20270103T0400", run.RunID)
}

func TestNormalizeCampaignProblems(t *testing.T) {
	cases := []struct{ name, input, want string }{
		{"unknown plan wave", `{"planWaveIds": ["wave2", "wave9"]}`, `planWaveIds[1]: "wave9" is not a wave of the configured plan`},
		{"repeated plan wave", `{"planWaveIds": ["wave2", "wave2"]}`, `planWaveIds[1]: "wave2" is listed twice`},
		{"plan waves and waves", `{"planWaveIds": ["wave2"], "waves": [{"waveId": "w", "accounts": ["111111111111"], "regions": ["us-east-1"]}]}`,
			"planWaveIds: give either planWaveIds or waves"},
		{"plan waves and shorthand", `{"planWaveIds": ["wave2"], "accounts": ["111111111111"]}`, "planWaveIds: give either"},
		{"bad campaign", `{"campaign": "Monthly"}`, `campaign: "Monthly" must be 1-32 lowercase letters`},
		{"schedule without campaign", `{"schedule": {"scheduledTime": "2026-12-11T08:00:00Z", "timezone": "UTC"}}`,
			"schedule: a scheduled run must name its campaign"},
		{"bad zone", `{"campaign": "m", "schedule": {"scheduledTime": "2026-12-11T08:00:00Z", "timezone": "Mars/Olympus"}}`,
			`schedule.timezone: time zone "Mars/Olympus" is not an IANA time zone`},
		{"bad time", `{"campaign": "m", "schedule": {"scheduledTime": "<aws.scheduler.scheduled-time>", "timezone": "UTC"}}`,
			`schedule.scheduledTime: "<aws.scheduler.scheduled-time>" is not an RFC 3339 time`},
		{"bad offset", `{"campaign": "m", "schedule": {"scheduledTime": "2026-12-11T08:00:00Z", "timezone": "UTC", "patchTuesdayOffsetDays": 28}}`,
			"schedule.patchTuesdayOffsetDays: 28 must be from 0 to 27"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			probs := problems(t, tc.input)
			assert.True(t, containsSubstring(probs, tc.want), "%q lacks %q", probs, tc.want)
		})
	}
}
