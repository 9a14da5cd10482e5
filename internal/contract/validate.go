package contract

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Problems collects every validation failure, each naming its field, so a
// caller can report all of them at once.
type Problems []string

// Addf records one problem at field. Long strings among args, and a long
// field, are shortened: a problem quotes what the input said, and an input
// can hold a 300 KB value that no error message should repeat.
func (p *Problems) Addf(field, format string, args ...any) {
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = clip(s)
		}
	}
	*p = append(*p, clip(field)+": "+fmt.Sprintf(format, args...))
}

// maxQuoted is how much of an input's string a problem repeats.
const maxQuoted = 80

// clip shortens s to maxQuoted bytes (on a rune boundary), saying how long
// it was.
func clip(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s...(%d bytes)", s[:cut], len(s))
}

// Err returns nil when there are no problems, or one error listing them all.
func (p Problems) Err(context string) error {
	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Context: context, Problems: p}
}

// ValidationError lists every problem found in one input.
type ValidationError struct {
	Context  string
	Problems []string
}

// Error lists the first maxListed problems: the message becomes the
// execution's cause, which Step Functions bounds.
func (e *ValidationError) Error() string {
	listed := e.Problems
	more := ""
	if len(listed) > maxListed {
		listed, more = listed[:maxListed], fmt.Sprintf("; and %d more", len(e.Problems)-maxListed)
	}
	return fmt.Sprintf("%s: %d problem(s): %s%s", e.Context, len(e.Problems), strings.Join(listed, "; "), more)
}

// maxListed is how many problems a ValidationError's message lists.
const maxListed = 25

// Limits on what one run may ask for.
const (
	MaxWaves           = 50
	MaxAccountsPerWave = 2000
	MaxRegionsPerWave  = 40
	MaxTagFilters      = 10
	MaxPollInterval    = 3600
	MaxWavePause       = 7 * 24 * 3600
	MaxMapConcurrency  = 1000
	MaxHaltAlarms      = 10
	MaxApprovalTimeout = 7 * 24 * 3600
	// MaxRunInputBytes is Step Functions' limit on an execution's input.
	MaxRunInputBytes = 256 * 1024
)

var (
	accountRe = regexp.MustCompile(`^[0-9]{12}$`)
	runIDRe   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	waveIDRe  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	// SSM MaxConcurrency and MaxErrors: an integer of up to 7 digits, or a
	// percentage 0-100, without leading zeros (SSM's own patterns).
	ssmRateRe = regexp.MustCompile(`^(0|[1-9][0-9]{0,6}|(0|[1-9][0-9]?|100)%)$`)
	tagKeyRe  = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$`)
	tagValRe  = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@*]{1,256}$`)
)

// ValidAccount reports whether s is a 12-digit AWS account ID.
func ValidAccount(s string) bool { return accountRe.MatchString(s) }

// ValidRegion reports whether s is a known AWS region name.
func ValidRegion(s string) bool { return slices.Contains(regions, s) }

// ValidSSMRate reports whether s is a valid SSM MaxConcurrency or MaxErrors
// value: a non-negative integer or a percentage from 0% to 100%.
func ValidSSMRate(s string) bool {
	if !ssmRateRe.MatchString(s) {
		return false
	}
	if n, ok := strings.CutSuffix(s, "%"); ok {
		v, _ := strconv.Atoi(n)
		return v <= 100
	}
	return true
}

// ValidSSMMaxConcurrency reports whether s is a valid SSM MaxConcurrency: a
// rate as ValidSSMRate, but never zero, which SSM refuses (so a run would
// fail only after reaching the spokes).
func ValidSSMMaxConcurrency(s string) bool {
	return ValidSSMRate(s) && s != "0" && s != "0%"
}

// ValidateTagFilters checks a tag filter map: at least one entry, keys and
// values non-empty and within EC2's tag rules.
func ValidateTagFilters(p *Problems, field string, tags map[string]string) {
	if len(tags) == 0 {
		p.Addf(field, "must have at least one tag filter, so a run never targets every instance")
		return
	}
	if len(tags) > MaxTagFilters {
		p.Addf(field, "has %d tag filters; at most %d", len(tags), MaxTagFilters)
	}
	for _, k := range sortedKeys(tags) {
		v := tags[k]
		switch {
		case strings.TrimSpace(k) == "":
			p.Addf(field, "has an empty tag key")
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			p.Addf(field+"."+k, "tag keys starting with aws: are reserved")
		case !tagKeyRe.MatchString(k):
			p.Addf(field+"."+k, "is not a valid tag key")
		}
		if strings.TrimSpace(v) == "" {
			p.Addf(field+"."+k, "tag value must not be empty")
		} else if !tagValRe.MatchString(v) {
			p.Addf(field+"."+k, "value %q is not a valid tag value", v)
		}
	}
}

// DefaultPatchTagKey is the spoke's default patch tag key: the tag an
// instance must carry for the spoke role to send it a command.
const DefaultPatchTagKey = "PatchGroup"

// ValidTagKey reports whether k is a tag key EC2 accepts and IAM can name
// in an ssm:resourceTag/<key> condition (not reserved, no wildcard).
func ValidTagKey(k string) bool {
	return tagKeyRe.MatchString(k) && strings.TrimSpace(k) != "" && !strings.HasPrefix(strings.ToLower(k), "aws:")
}

// RequireTagKey checks that tags, a wave's effective tag filters, include
// key, the spoke's patch tag key. Without it the wave could select
// instances the spoke role may not send commands to. An empty key requires
// nothing.
func RequireTagKey(p *Problems, field string, tags map[string]string, key string) {
	if key == "" {
		return
	}
	if _, ok := tags[key]; !ok {
		p.Addf(field, "must include the patch tag key %q: the spoke role may send commands only to instances carrying it", key)
	}
}

// ValidateAccounts checks a list of account IDs: non-empty, 12 digits each,
// no duplicates.
func ValidateAccounts(p *Problems, field string, accounts []string, limit int) {
	if len(accounts) == 0 {
		p.Addf(field, "must list at least one account")
	}
	if len(accounts) > limit {
		p.Addf(field, "lists %d accounts; at most %d per wave", len(accounts), limit)
		return
	}
	seen := map[string]bool{}
	for i, a := range accounts {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !ValidAccount(a):
			p.Addf(f, "%q is not a 12-digit AWS account ID", a)
		case seen[a]:
			p.Addf(f, "account %s is listed twice", a)
		}
		seen[a] = true
	}
}

// ValidateRegions checks a list of region names: non-empty, known, unique.
func ValidateRegions(p *Problems, field string, regionNames []string) {
	if len(regionNames) == 0 {
		p.Addf(field, "must list at least one region")
	}
	if len(regionNames) > MaxRegionsPerWave {
		p.Addf(field, "lists %d regions; at most %d", len(regionNames), MaxRegionsPerWave)
		return
	}
	seen := map[string]bool{}
	for i, r := range regionNames {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !ValidRegion(r):
			p.Addf(f, "%q is not an AWS region", r)
		case seen[r]:
			p.Addf(f, "region %s is listed twice", r)
		}
		seen[r] = true
	}
}

// ValidateWaveInput checks one wave as written in a plan or a run input.
// Optional fields are checked only when set. An empty field validates a
// wave given at the top level (the seed's shorthand).
func ValidateWaveInput(p *Problems, field string, w WaveInput) {
	at := func(name string) string {
		if field == "" {
			return name
		}
		return field + "." + name
	}
	if !waveIDRe.MatchString(w.WaveID) {
		p.Addf(at("waveId"), "%q must be 1-64 letters, digits, '-' or '_'", w.WaveID)
	}
	ValidateAccounts(p, at("accounts"), w.Accounts, MaxAccountsPerWave)
	ValidateRegions(p, at("regions"), w.Regions)
	if w.TagFilters != nil {
		ValidateTagFilters(p, at("tagFilters"), w.TagFilters)
	}
	if w.MaxConcurrency != nil && (*w.MaxConcurrency < 1 || *w.MaxConcurrency > MaxMapConcurrency) {
		p.Addf(at("maxConcurrency"), "%d must be from 1 to %d", *w.MaxConcurrency, MaxMapConcurrency)
	}
	if w.SSMMaxConcurrency != "" && !ValidSSMMaxConcurrency(w.SSMMaxConcurrency) {
		p.Addf(at("ssmMaxConcurrency"), "%q must be an integer from 1 or a percentage from 1%% to 100%%", w.SSMMaxConcurrency)
	}
	if w.SSMMaxErrors != "" && !ValidSSMRate(w.SSMMaxErrors) {
		p.Addf(at("ssmMaxErrors"), "%q must be an integer or a percentage from 0%% to 100%%", w.SSMMaxErrors)
	}
	if t := w.FailureThresholdPercent; t != nil && (*t < 0 || *t > 100) {
		p.Addf(at("failureThresholdPercent"), "%v must be from 0 to 100", *t)
	}
	if len(w.HaltAlarms) > MaxHaltAlarms {
		p.Addf(at("haltAlarms"), "lists %d alarms; at most %d", len(w.HaltAlarms), MaxHaltAlarms)
	}
	seen := map[string]bool{}
	for i, name := range w.HaltAlarms {
		f := fmt.Sprintf("%s[%d]", at("haltAlarms"), i)
		switch {
		case strings.TrimSpace(name) == "" || len(name) > 255:
			p.Addf(f, "%q must be a CloudWatch alarm name of 1-255 characters", name)
		case seen[name]:
			p.Addf(f, "alarm %q is listed twice", name)
		}
		seen[name] = true
	}
}

// ValidateWaves checks a wave list: non-empty, bounded, unique wave IDs.
func ValidateWaves(p *Problems, field string, waves []WaveInput) {
	if len(waves) == 0 {
		p.Addf(field, "must list at least one wave")
	}
	if len(waves) > MaxWaves {
		p.Addf(field, "lists %d waves; at most %d", len(waves), MaxWaves)
	}
	seen := map[string]int{}
	owner := map[TargetRef]int{} // which wave patches each account-region
	for i, w := range waves {
		f := fmt.Sprintf("%s[%d]", field, i)
		ValidateWaveInput(p, f, w)
		if j, dup := seen[w.WaveID]; dup && w.WaveID != "" {
			p.Addf(f+".waveId", "%q is also the ID of %s[%d]", w.WaveID, field, j)
		}
		seen[w.WaveID] = i
		reported := map[string]bool{}
		for _, a := range w.Accounts {
			for _, r := range w.Regions {
				ref := TargetRef{a, r}
				if j, dup := owner[ref]; dup && j != i && !reported[a] {
					p.Addf(f+".accounts", "account %s in %s is already patched by %s[%d]; a run patches each account-region once", a, r, field, j)
					reported[a] = true
				}
				owner[ref] = i
			}
		}
	}
}

// ValidateDefaults checks the hub's run defaults.
func ValidateDefaults(d RunDefaults) error {
	var p Problems
	if d.PollIntervalSeconds < 1 || d.PollIntervalSeconds > MaxPollInterval {
		p.Addf("pollIntervalSeconds", "%d must be from 1 to %d", d.PollIntervalSeconds, MaxPollInterval)
	}
	if d.WavePauseSeconds < 0 || d.WavePauseSeconds > MaxWavePause {
		p.Addf("wavePauseSeconds", "%d must be from 0 to %d", d.WavePauseSeconds, MaxWavePause)
	}
	if d.MaxWaveConcurrency < 1 || d.MaxWaveConcurrency > MaxMapConcurrency {
		p.Addf("maxWaveConcurrency", "%d must be from 1 to %d", d.MaxWaveConcurrency, MaxMapConcurrency)
	}
	if !ValidSSMMaxConcurrency(d.SSMMaxConcurrency) {
		p.Addf("ssmMaxConcurrency", "%q must be an integer or a percentage", d.SSMMaxConcurrency)
	}
	if !ValidSSMRate(d.SSMMaxErrors) {
		p.Addf("ssmMaxErrors", "%q must be an integer or a percentage", d.SSMMaxErrors)
	}
	if d.CommandTimeoutSeconds < 60 || d.CommandTimeoutSeconds > 172800 {
		p.Addf("commandTimeoutSeconds", "%d must be from 60 to 172800", d.CommandTimeoutSeconds)
	}
	if d.FailureThresholdPercent < 0 || d.FailureThresholdPercent > 100 {
		p.Addf("failureThresholdPercent", "%v must be from 0 to 100", d.FailureThresholdPercent)
	}
	ValidateTagFilters(&p, "tagFilters", d.TagFilters)
	if d.RequiredTagKey != "" && !ValidTagKey(d.RequiredTagKey) {
		p.Addf("requiredTagKey", "%q is not a valid tag key", d.RequiredTagKey)
	}
	RequireTagKey(&p, "tagFilters", d.TagFilters, d.RequiredTagKey)
	if d.ReconcileIntervalSeconds < 60 || d.ReconcileIntervalSeconds > 3600 {
		p.Addf("reconcileIntervalSeconds", "%d must be from 60 to 3600", d.ReconcileIntervalSeconds)
	}
	if d.ApprovalTimeoutSeconds < 1 || d.ApprovalTimeoutSeconds > MaxApprovalTimeout {
		p.Addf("approvalTimeoutSeconds", "%d must be from 1 to %d", d.ApprovalTimeoutSeconds, MaxApprovalTimeout)
	}
	return p.Err("run defaults")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
