// Package config loads and validates the per-environment parameters in
// params/: the seed's hub and spoke parameters and the wave plan. It reports
// every problem at once, each naming the file and the field, so synth stops
// before any construct exists.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/mail"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/ec2patch/ec2patch/internal/contract"
)

// Params is one environment's configuration.
type Params struct {
	// Account and Region are where the hub is deployed.
	Account string      `json:"account"`
	Region  string      `json:"region"`
	Hub     HubParams   `json:"hub"`
	Spoke   SpokeParams `json:"spoke"`
	// Waves is the configured wave plan: what a run without waves patches.
	// It uses the run contract's names so a plan can be pasted into
	// start-execution.
	Waves []contract.WaveInput `json:"waves"`
	// Campaigns are named selections of the plan's waves, each with an
	// optional schedule. They are optional: a hub without campaigns is
	// started by hand.
	Campaigns []Campaign `json:"campaigns,omitempty"`
}

// HubParams are the seed's hub stack parameters, with their seed names.
type HubParams struct {
	NamePrefix             string `json:"name_prefix"`
	ArtifactBucket         string `json:"artifact_bucket"`
	ArtifactKey            string `json:"artifact_key"`
	CrossAccountExternalID string `json:"cross_account_external_id"`
	PollIntervalSeconds    int    `json:"poll_interval_seconds"`
	MaxWaveConcurrency     int    `json:"max_wave_concurrency"`
	SSMMaxConcurrency      string `json:"ssm_max_concurrency"`
	SSMMaxErrors           string `json:"ssm_max_errors"`
	NotificationEmail      string `json:"notification_email"`
	LogRetentionDays       int    `json:"log_retention_days"`
	// Beyond the seed.
	CommandTimeoutSeconds   int               `json:"command_timeout_seconds"`
	WavePauseSeconds        int               `json:"wave_pause_seconds"`
	AbortOnIssues           bool              `json:"abort_on_issues"`
	FailureThresholdPercent float64           `json:"failure_threshold_percent"`
	DefaultTagFilters       map[string]string `json:"default_tag_filters"`
	ReportRetentionDays     int               `json:"report_retention_days"`
	RecordRetentionDays     int               `json:"record_retention_days"`
	ApprovalTimeoutMinutes  int               `json:"approval_timeout_minutes"`
	// ReconcileIntervalMinutes is how often the reconciler reads the
	// progress of every waiting target, in case a command's status event
	// was lost.
	ReconcileIntervalMinutes int `json:"reconcile_interval_minutes"`
	// ExtraSpokeAccounts are accounts a run may target beyond the plan's
	// waves (for ad-hoc runs): the hub may assume their spoke role too.
	ExtraSpokeAccounts []string `json:"extra_spoke_accounts,omitempty"`
	// Alarms are the seed's alarm thresholds.
	Alarms AlarmParams `json:"alarms"`
}

// AlarmParams are the thresholds of the hub's alarms. Every alarm notifies
// the hub's SNS topic.
type AlarmParams struct {
	// PatchFailures alarms (PatchFailureRate) when more instances than this
	// fail to patch within the period.
	PatchFailures int `json:"patch_failures"`
	// InstancesUnhealthy alarms (InstanceDowntime) when more instances than
	// this fail the post-patch verification within the period.
	InstancesUnhealthy int `json:"instances_unhealthy"`
	// ApprovalAgeMinutes alarms (ApprovalTimeout) when an approval gate has
	// waited longer than this.
	ApprovalAgeMinutes int `json:"approval_age_minutes"`
	// PeriodMinutes is the evaluation period of the failure alarms.
	PeriodMinutes int `json:"period_minutes"`
}

// SpokeParams are the seed's spoke stack parameters.
type SpokeParams struct {
	HubAccountID string `json:"hub_account_id"`
	ExternalID   string `json:"external_id"`
	RoleName     string `json:"role_name"`
	// PrincipalOrgID, when set, is the AWS Organizations ID the hub's task
	// role must belong to (aws:PrincipalOrgID in the trust policy): a
	// second condition beside the role ARN and the ExternalId.
	PrincipalOrgID string `json:"principal_org_id"`
	// PatchTagKey is the tag key an instance must carry for the spoke role
	// to send it a command (ssm:resourceTag/<key>). Every wave's tag filters
	// must include it.
	PatchTagKey string `json:"patch_tag_key"`
}

// RunDefaults are the values a run input's omitted fields take.
func (p Params) RunDefaults() contract.RunDefaults {
	return contract.RunDefaults{
		PollIntervalSeconds:      p.Hub.PollIntervalSeconds,
		WavePauseSeconds:         p.Hub.WavePauseSeconds,
		AbortOnIssues:            p.Hub.AbortOnIssues,
		MaxWaveConcurrency:       p.Hub.MaxWaveConcurrency,
		SSMMaxConcurrency:        p.Hub.SSMMaxConcurrency,
		SSMMaxErrors:             p.Hub.SSMMaxErrors,
		CommandTimeoutSeconds:    p.Hub.CommandTimeoutSeconds,
		FailureThresholdPercent:  p.Hub.FailureThresholdPercent,
		TagFilters:               p.Hub.DefaultTagFilters,
		ApprovalTimeoutSeconds:   p.Hub.ApprovalTimeoutMinutes * 60,
		ReconcileIntervalSeconds: p.Hub.ReconcileIntervalMinutes * 60,
		RequiredTagKey:           p.Spoke.PatchTagKey,
		SpokeAccounts:            p.SpokeAccounts(),
	}
}

// SpokeAccounts lists every account the plan targets and the extra spoke
// accounts, sorted, without duplicates: the accounts whose spoke role the
// hub may assume.
func (p Params) SpokeAccounts() []string {
	out := slices.Clone(p.Hub.ExtraSpokeAccounts)
	for _, w := range p.Waves {
		out = append(out, w.Accounts...)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// SpokeRegions lists every region the plan targets, sorted.
func (p Params) SpokeRegions() []string {
	var out []string
	for _, w := range p.Waves {
		out = append(out, w.Regions...)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// Error is a params file that could not be loaded: every problem, each with
// the file and the field.
type Error struct {
	File     string
	Problems []string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s):", e.File, len(e.Problems))
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  %s: %s", e.File, p)
	}
	return b.String()
}

var envNameRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// Load reads params/<env>.json from fsys, decodes it strictly and validates
// it.
func Load(fsys fs.FS, env string) (Params, error) {
	if !envNameRe.MatchString(env) {
		return Params{}, fmt.Errorf("environment %q: want lowercase letters, digits and '-'", env)
	}
	file := env + ".json"
	data, err := fs.ReadFile(fsys, file)
	if errors.Is(err, fs.ErrNotExist) {
		return Params{}, fmt.Errorf("environment %q: no params/%s (known: %s)", env, file, strings.Join(Envs(fsys), ", "))
	}
	if err != nil {
		return Params{}, fmt.Errorf("params/%s: %w", file, err)
	}
	return Parse("params/"+file, data)
}

// Envs lists the environments that have a params file.
func Envs(fsys fs.FS) []string {
	matches, _ := fs.Glob(fsys, "*.json")
	var envs []string
	for _, m := range matches {
		envs = append(envs, strings.TrimSuffix(m, ".json"))
	}
	return envs
}

// Parse decodes and validates one params document; file names it in errors.
func Parse(file string, data []byte) (Params, error) {
	var p Params
	if err := contract.DecodeStrict(data, &p); err != nil {
		return Params{}, &Error{File: file, Problems: []string{err.Error()}}
	}
	if probs := p.Validate(); len(probs) > 0 {
		return Params{}, &Error{File: file, Problems: probs}
	}
	return p, nil
}

var (
	namePrefixRe = regexp.MustCompile(`^[a-z][a-z0-9-]{1,23}$`)
	externalIDRe = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
	roleNameRe   = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	bucketRe     = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	orgIDRe      = regexp.MustCompile(`^o-[a-z0-9]{10,32}$`)
)

// logRetentionDays are the values CloudWatch Logs accepts.
var logRetentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
	1096, 1827, 2192, 2557, 2922, 3288, 3653}

// Validate returns every problem in p, each naming its field.
func (p Params) Validate() []string {
	var pr contract.Problems
	if !contract.ValidAccount(p.Account) {
		pr.Addf("account", "%q is not a 12-digit AWS account ID", p.Account)
	}
	if !contract.ValidRegion(p.Region) {
		pr.Addf("region", "%q is not an AWS region", p.Region)
	}

	h := p.Hub
	if !namePrefixRe.MatchString(h.NamePrefix) {
		pr.Addf("hub.name_prefix", "%q must be 2-24 lowercase letters, digits or '-', starting with a letter", h.NamePrefix)
	}
	if (h.ArtifactBucket == "") != (h.ArtifactKey == "") {
		pr.Addf("hub.artifact_key", "artifact_bucket and artifact_key must be set together (both empty builds the handlers from lambdas/)")
	}
	if h.ArtifactBucket != "" && !bucketRe.MatchString(h.ArtifactBucket) {
		pr.Addf("hub.artifact_bucket", "%q is not a valid S3 bucket name", h.ArtifactBucket)
	}
	if n := len(h.CrossAccountExternalID); n < 2 || n > 1224 || !externalIDRe.MatchString(h.CrossAccountExternalID) {
		pr.Addf("hub.cross_account_external_id", "must be 2-1224 characters of letters, digits and +=,.@:/-")
	}
	if h.PollIntervalSeconds < 1 || h.PollIntervalSeconds > contract.MaxPollInterval {
		pr.Addf("hub.poll_interval_seconds", "%d must be from 1 to %d", h.PollIntervalSeconds, contract.MaxPollInterval)
	}
	if h.MaxWaveConcurrency < 1 || h.MaxWaveConcurrency > contract.MaxMapConcurrency {
		pr.Addf("hub.max_wave_concurrency", "%d must be from 1 to %d", h.MaxWaveConcurrency, contract.MaxMapConcurrency)
	}
	if !contract.ValidSSMMaxConcurrency(h.SSMMaxConcurrency) {
		pr.Addf("hub.ssm_max_concurrency", "%q must be a positive integer or a percentage from 1%% to 100%%", h.SSMMaxConcurrency)
	}
	if !contract.ValidSSMRate(h.SSMMaxErrors) {
		pr.Addf("hub.ssm_max_errors", "%q must be an integer or a percentage from 0%% to 100%%", h.SSMMaxErrors)
	}
	if h.NotificationEmail != "" {
		if a, err := mail.ParseAddress(h.NotificationEmail); err != nil || a.Address != h.NotificationEmail {
			pr.Addf("hub.notification_email", "%q is not a valid e-mail address", h.NotificationEmail)
		}
	}
	if !slices.Contains(logRetentionDays, h.LogRetentionDays) {
		pr.Addf("hub.log_retention_days", "%d is not a CloudWatch Logs retention (one of %v)", h.LogRetentionDays, logRetentionDays)
	}
	if h.CommandTimeoutSeconds < 60 || h.CommandTimeoutSeconds > 172800 {
		pr.Addf("hub.command_timeout_seconds", "%d must be from 60 to 172800", h.CommandTimeoutSeconds)
	}
	if h.WavePauseSeconds < 0 || h.WavePauseSeconds > contract.MaxWavePause {
		pr.Addf("hub.wave_pause_seconds", "%d must be from 0 to %d", h.WavePauseSeconds, contract.MaxWavePause)
	}
	if h.FailureThresholdPercent < 0 || h.FailureThresholdPercent > 100 {
		pr.Addf("hub.failure_threshold_percent", "%v must be from 0 to 100", h.FailureThresholdPercent)
	}
	contract.ValidateTagFilters(&pr, "hub.default_tag_filters", h.DefaultTagFilters)
	if h.ReportRetentionDays < 1 {
		pr.Addf("hub.report_retention_days", "%d must be at least 1", h.ReportRetentionDays)
	}
	if h.ApprovalTimeoutMinutes < 1 || h.ApprovalTimeoutMinutes > contract.MaxApprovalTimeout/60 {
		pr.Addf("hub.approval_timeout_minutes", "%d must be from 1 to %d", h.ApprovalTimeoutMinutes, contract.MaxApprovalTimeout/60)
	}
	if h.ReconcileIntervalMinutes < 1 || h.ReconcileIntervalMinutes > 60 {
		pr.Addf("hub.reconcile_interval_minutes", "%d must be from 1 to 60", h.ReconcileIntervalMinutes)
	}
	if h.RecordRetentionDays < 1 {
		pr.Addf("hub.record_retention_days", "%d must be at least 1", h.RecordRetentionDays)
	}
	for i, acct := range h.ExtraSpokeAccounts {
		if !contract.ValidAccount(acct) {
			pr.Addf(fmt.Sprintf("hub.extra_spoke_accounts[%d]", i), "%q is not a 12-digit AWS account ID", acct)
		}
	}
	a := h.Alarms
	if a.PatchFailures < 0 {
		pr.Addf("hub.alarms.patch_failures", "%d must be 0 or more", a.PatchFailures)
	}
	if a.InstancesUnhealthy < 0 {
		pr.Addf("hub.alarms.instances_unhealthy", "%d must be 0 or more", a.InstancesUnhealthy)
	}
	if a.ApprovalAgeMinutes < 1 || a.ApprovalAgeMinutes > contract.MaxApprovalTimeout/60 {
		pr.Addf("hub.alarms.approval_age_minutes", "%d must be from 1 to %d", a.ApprovalAgeMinutes, contract.MaxApprovalTimeout/60)
	}
	if !slices.Contains([]int{1, 5, 10, 15, 30, 60}, a.PeriodMinutes) {
		pr.Addf("hub.alarms.period_minutes", "%d must be one of 1, 5, 10, 15, 30 or 60", a.PeriodMinutes)
	}

	s := p.Spoke
	if !contract.ValidAccount(s.HubAccountID) {
		pr.Addf("spoke.hub_account_id", "%q is not a 12-digit AWS account ID", s.HubAccountID)
	} else if s.HubAccountID != p.Account {
		pr.Addf("spoke.hub_account_id", "%s differs from account %s, where the hub is deployed", s.HubAccountID, p.Account)
	}
	if s.ExternalID != h.CrossAccountExternalID {
		pr.Addf("spoke.external_id", "must equal hub.cross_account_external_id, or every assumption fails")
	}
	if !roleNameRe.MatchString(s.RoleName) {
		pr.Addf("spoke.role_name", "%q is not a valid IAM role name", s.RoleName)
	}
	if s.PrincipalOrgID != "" && !orgIDRe.MatchString(s.PrincipalOrgID) {
		pr.Addf("spoke.principal_org_id", "%q is not an AWS Organizations ID (o- and 10-32 lowercase letters or digits; empty for none)", s.PrincipalOrgID)
	}
	if !contract.ValidTagKey(s.PatchTagKey) {
		pr.Addf("spoke.patch_tag_key", "%q is not a valid EC2 tag key (1-128 characters, not starting with aws:)", s.PatchTagKey)
	} else {
		// A wave without tagFilters takes the defaults, so both must carry
		// the key or a run could select instances the spoke role refuses.
		contract.RequireTagKey(&pr, "hub.default_tag_filters", h.DefaultTagFilters, s.PatchTagKey)
		for i, w := range p.Waves {
			if w.TagFilters != nil {
				contract.RequireTagKey(&pr, fmt.Sprintf("waves[%d].tagFilters", i), w.TagFilters, s.PatchTagKey)
			}
		}
	}

	contract.ValidateWaves(&pr, "waves", p.Waves)
	p.validateCampaigns(&pr)
	p.validateSize(&pr)
	return pr
}

// Limits the hub's configuration must fit (see docs/scale.md).
const (
	// MaxSpokeAccounts keeps the task role's sts:AssumeRole statement,
	// one role ARN per account, inside IAM's 10,240-character inline
	// policy limit with room for the role's other statements.
	MaxSpokeAccounts = 150
	// maxPrepareEnvBytes is what PrepareRun's plan and run defaults may
	// take of Lambda's 4 KB environment; the rest is the other variables.
	maxPrepareEnvBytes = 3300
)

// validateSize refuses a configuration that would synthesize but fail to
// deploy: too many spoke accounts for the AssumeRole grant, or a plan and
// run defaults too large for PrepareRun's environment.
func (p Params) validateSize(pr *contract.Problems) {
	if n := len(p.SpokeAccounts()); n > MaxSpokeAccounts {
		pr.Addf("waves", "the plan and hub.extra_spoke_accounts name %d accounts; the hub task role's "+
			"AssumeRole grant holds at most %d", n, MaxSpokeAccounts)
	}
	plan, _ := json.Marshal(p.Waves)
	defaults, _ := json.Marshal(p.RunDefaults())
	if n := len(plan) + len(defaults); n > maxPrepareEnvBytes {
		pr.Addf("waves", "the plan and run defaults take %d bytes of PrepareRun's environment; at most %d "+
			"(Lambda allows 4 KB in all): shorten the plan or move accounts to fewer waves", n, maxPrepareEnvBytes)
	}
}
