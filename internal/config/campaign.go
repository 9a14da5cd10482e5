package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/internal/schedule"
)

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
func (p Params) validateCampaigns(pr *contract.Problems) {
	p.validateCampaignsAt(pr, time.Now())
}

// validateCampaignsAt validates as of now: a schedule's daylight-saving
// gaps are looked for in the next 24 months.
func (p Params) validateCampaignsAt(pr *contract.Problems, now time.Time) {
	planned := map[string]bool{}
	for _, w := range p.Waves {
		planned[w.WaveID] = true
	}
	names := map[string]int{}
	for i, c := range p.Campaigns {
		field := fmt.Sprintf("campaigns[%d]", i)
		if !contract.CampaignNameRe.MatchString(c.Name) {
			pr.Addf(field+".name", "%q must be 1-32 lowercase letters, digits or '-', starting with a letter", c.Name)
		} else if j, dup := names[c.Name]; dup {
			pr.Addf(field+".name", "%q is also the name of campaigns[%d]", c.Name, j)
		} else {
			names[c.Name] = i
		}
		seen := map[string]bool{}
		for j, id := range c.Waves {
			wf := fmt.Sprintf("%s.waves[%d]", field, j)
			switch {
			case !planned[id]:
				pr.Addf(wf, "%q is not a wave of the plan (waves)", id)
			case seen[id]:
				pr.Addf(wf, "%q is listed twice", id)
			}
			seen[id] = true
		}
		switch c.Operation {
		case "", contract.OperationInstall, contract.OperationScan:
		default:
			pr.Addf(field+".operation", "%q must be Install or Scan", c.Operation)
		}
		switch c.RebootOption {
		case "", contract.RebootIfNeeded, contract.NoReboot:
		default:
			pr.Addf(field+".reboot_option", "%q must be RebootIfNeeded or NoReboot", c.RebootOption)
		}
		if c.Schedule != nil {
			c.Schedule.validate(pr, field+".schedule", now)
		}
	}
}

// validate checks one schedule: its form, its zone, its expression or
// rule, and that none of its runs in the next 24 months falls in an hour
// the clocks skip (EventBridge Scheduler would silently skip that run).
func (s Schedule) validate(pr *contract.Problems, field string, now time.Time) {
	loc, err := schedule.LoadZone(s.Timezone)
	if err != nil {
		pr.Addf(field+".timezone", "%s", strings.TrimPrefix(err.Error(), "time zone "))
	}
	switch {
	case s.Cron != "" && s.PatchTuesday != nil:
		pr.Addf(field, "give either cron or patch_tuesday, not both")
	case s.Cron != "":
		c, err := schedule.ParseCron(s.Cron)
		if err != nil {
			pr.Addf(field+".cron", "%v", err)
			return
		}
		if loc != nil {
			if err := c.In(loc).CheckGaps(now, schedule.GapHorizon, schedule.MaxGapFirings); err != nil {
				pr.Addf(field+".cron", "%s: %v", s.Cron, err)
			} else if len(c.In(loc).Next(1, now)) == 0 {
				// A deployed schedule that never fires looks like a
				// working campaign that silently never patches.
				pr.Addf(field+".cron", "%s never fires after %s", s.Cron, now.UTC().Format("2006-01-02"))
			}
		}
	case s.PatchTuesday != nil:
		pt := s.PatchTuesday
		if pt.OffsetDays < 0 || pt.OffsetDays > schedule.MaxOffsetDays {
			pr.Addf(field+".patch_tuesday.offset_days", "%d must be from 0 to %d", pt.OffsetDays, schedule.MaxOffsetDays)
		}
		if _, err := time.Parse("15:04", pt.Time); err != nil || len(pt.Time) != len("15:04") {
			pr.Addf(field+".patch_tuesday.time", "%q must be HH:MM (24-hour)", pt.Time)
		}
		if loc == nil {
			return
		}
		if rule, err := pt.Rule(s.Timezone); err == nil {
			if err := rule.CheckGaps(now, schedule.GapHorizon); err != nil {
				pr.Addf(field+".patch_tuesday", "%s: %v", rule, err)
			}
		}
	default:
		pr.Addf(field, "give cron or patch_tuesday")
	}
}

// Rule is the schedule's "Patch Tuesday + N days" rule in zone.
func (pt PatchTuesdaySchedule) Rule(zone string) (schedule.PatchTuesdayRule, error) {
	return schedule.NewPatchTuesdayRule(pt.OffsetDays, pt.Time, zone)
}

// Expression is the EventBridge Scheduler expression the schedule is
// deployed as: its cron, or the weekly cron of its Patch Tuesday rule.
func (s Schedule) Expression() (string, error) {
	if s.PatchTuesday == nil {
		return s.Cron, nil
	}
	rule, err := s.PatchTuesday.Rule(s.Timezone)
	if err != nil {
		return "", err
	}
	return rule.CronExpression(), nil
}

// Next returns the schedule's next n runs after after, local and UTC.
func (s Schedule) Next(n int, after time.Time) ([]schedule.Run, error) {
	if s.PatchTuesday != nil {
		rule, err := s.PatchTuesday.Rule(s.Timezone)
		if err != nil {
			return nil, err
		}
		return rule.Next(n, after), nil
	}
	c, err := schedule.ParseCron(s.Cron)
	if err != nil {
		return nil, err
	}
	loc, err := schedule.LoadZone(s.Timezone)
	if err != nil {
		return nil, err
	}
	return c.In(loc).Next(n, after), nil
}

// String describes the schedule for an operator.
func (s Schedule) String() string {
	if s.PatchTuesday != nil {
		return fmt.Sprintf("Patch Tuesday + %d at %s %s", s.PatchTuesday.OffsetDays, s.PatchTuesday.Time, s.Timezone)
	}
	return s.Cron + " " + s.Timezone
}
