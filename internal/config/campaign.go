package config

import "github.com/ec2patch/ec2patch/internal/contract"

// Campaign is a named wave plan: a selection of the plan's waves, run the
// same way each time, optionally on a schedule.
type Campaign struct {
	Name string `json:"name"`
	// Waves are wave IDs of the plan, run in plan order; empty means all.
	Waves     []string `json:"waves,omitempty"`
	Operation string   `json:"operation,omitempty"`
	// RebootOption is AWS-RunPatchBaseline's; empty takes RebootIfNeeded.
	RebootOption string    `json:"reboot_option,omitempty"`
	Schedule     *Schedule `json:"schedule,omitempty"`
}

// Schedule starts a campaign. Exactly one of Cron and PatchTuesday is set.
type Schedule struct {
	// Cron is an EventBridge Scheduler cron expression, "cron(m h dom mon dow y)".
	Cron         string                `json:"cron,omitempty"`
	PatchTuesday *PatchTuesdaySchedule `json:"patch_tuesday,omitempty"`
	// Timezone is the IANA zone the expression is evaluated in.
	Timezone string `json:"timezone"`
	// Enabled false deploys the schedule disabled. Omitted means enabled.
	Enabled *bool `json:"enabled,omitempty"`
}

// PatchTuesdaySchedule is "the second Tuesday of the month plus OffsetDays,
// at Time (HH:MM) local time".
type PatchTuesdaySchedule struct {
	OffsetDays int    `json:"offset_days"`
	Time       string `json:"time"`
}

// IsEnabled reports whether the schedule is deployed enabled.
func (s Schedule) IsEnabled() bool { return s.Enabled == nil || *s.Enabled }

// validateCampaigns checks names, wave references and schedules.
// TODO(issue 5): the schedules helper fills this in.
func (p Params) validateCampaigns(pr *contract.Problems) {}
