// Package fleet describes a scenario fleet for the emulator: spoke accounts,
// their regions and instances, what SSM does on each instance, and which
// accounts have no usable spoke role. It also computes, as a pure function,
// the counts a run over the fleet must report.
package fleet

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/ec2patch/ec2patch/internal/contract"
)

// Instance states a fleet may give.
const (
	StateRunning = "running"
	StateStopped = "stopped"
)

// Outcomes of AWS-RunPatchBaseline on a running instance.
const (
	OutcomeSuccess   = "success"
	OutcomeFailed    = "failed"
	OutcomeTimeout   = "timeout"
	OutcomeUnmanaged = "unmanaged" // the SSM agent is not registered: no command is possible
)

// Approval decisions a fleet may script for a wave's approval gate.
const (
	ApprovalApprove = "approve"
	ApprovalReject  = "reject"
	ApprovalTimeout = "timeout"
)

// CloudWatch alarm states a fleet may give a hub alarm.
const (
	AlarmOK               = "OK"
	AlarmFiring           = "ALARM"
	AlarmInsufficientData = "INSUFFICIENT_DATA"
)

// Fleet is one scenario.
type Fleet struct {
	Accounts []Account `json:"accounts"`
	// Approvals maps a wave ID to the decision its approver makes. A gated
	// wave without one is never answered: its approval times out.
	Approvals map[string]string `json:"approvals,omitempty"`
	// Alarms are CloudWatch alarms the emulator creates in the hub, with
	// their state; a wave's haltAlarms name them.
	Alarms map[string]string `json:"alarms,omitempty"`
	// DropEvents loses every command status-change event: only the
	// reconciler can resume a waiting target.
	DropEvents bool `json:"dropEvents,omitempty"`
	// PatchSeconds is how long a command runs (default 1 s); the
	// reconciler runs every ReconcileSeconds of a run (default 2 s).
	PatchSeconds     float64 `json:"patchSeconds,omitempty"`
	ReconcileSeconds float64 `json:"reconcileSeconds,omitempty"`
}

// Account is one spoke account.
type Account struct {
	ID string `json:"id"`
	// RoleMissing makes every assumption of the account's spoke role fail
	// with AccessDenied, as AWS answers when the role does not exist.
	RoleMissing bool `json:"roleMissing,omitempty"`
	// DropEvents loses the command status-change events of this account.
	DropEvents bool     `json:"dropEvents,omitempty"`
	Regions    []Region `json:"regions"`
}

// Region is one account-region and its instances.
type Region struct {
	Name      string  `json:"name"`
	Instances []Group `json:"instances"`
}

// Group is Count instances that share tags, state and outcome.
type Group struct {
	Count   int               `json:"count"`
	Tags    map[string]string `json:"tags"`
	State   string            `json:"state"`
	Outcome string            `json:"outcome,omitempty"`
}

// Load reads and validates a fleet file.
func Load(path string) (*Fleet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("fleet %s: %w", path, err)
	}
	return f, nil
}

// Parse decodes a fleet strictly (unknown fields are errors) and validates
// it, reporting every problem with its field.
func Parse(data []byte) (*Fleet, error) {
	var f Fleet
	if err := contract.DecodeStrict(data, &f); err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// Validate returns an error listing every problem of the fleet.
func (f *Fleet) Validate() error {
	var p contract.Problems
	if len(f.Accounts) == 0 {
		p.Addf("accounts", "must list at least one account")
	}
	seenAccount := map[string]bool{}
	for i, a := range f.Accounts {
		af := fmt.Sprintf("accounts[%d]", i)
		switch {
		case !contract.ValidAccount(a.ID):
			p.Addf(af+".id", "%q is not a 12-digit AWS account ID", a.ID)
		case seenAccount[a.ID]:
			p.Addf(af+".id", "account %s is listed twice", a.ID)
		}
		seenAccount[a.ID] = true
		seenRegion := map[string]bool{}
		for j, r := range a.Regions {
			rf := fmt.Sprintf("%s.regions[%d]", af, j)
			switch {
			case !contract.ValidRegion(r.Name):
				p.Addf(rf+".name", "%q is not an AWS region", r.Name)
			case seenRegion[r.Name]:
				p.Addf(rf+".name", "region %s is listed twice", r.Name)
			}
			seenRegion[r.Name] = true
			for k, g := range r.Instances {
				validateGroup(&p, fmt.Sprintf("%s.instances[%d]", rf, k), g)
			}
		}
	}
	if f.PatchSeconds < 0 {
		p.Addf("patchSeconds", "%v must not be negative", f.PatchSeconds)
	}
	if f.ReconcileSeconds < 0 {
		p.Addf("reconcileSeconds", "%v must not be negative", f.ReconcileSeconds)
	}
	for _, w := range sortedKeys(f.Approvals) {
		if d := f.Approvals[w]; !slices.Contains([]string{ApprovalApprove, ApprovalReject, ApprovalTimeout}, d) {
			p.Addf("approvals."+w, "%q must be approve, reject or timeout", d)
		}
	}
	for _, name := range sortedKeys(f.Alarms) {
		switch {
		case strings.TrimSpace(name) == "" || len(name) > 255:
			p.Addf("alarms", "%q must be a CloudWatch alarm name of 1-255 characters", name)
		case !slices.Contains([]string{AlarmOK, AlarmFiring, AlarmInsufficientData}, f.Alarms[name]):
			p.Addf("alarms."+name, "%q must be OK, ALARM or INSUFFICIENT_DATA", f.Alarms[name])
		}
	}
	return p.Err("fleet")
}

func validateGroup(p *contract.Problems, field string, g Group) {
	if g.Count < 1 || g.Count > 1000 {
		p.Addf(field+".count", "%d must be from 1 to 1000", g.Count)
	}
	if len(g.Tags) == 0 {
		p.Addf(field+".tags", "must give at least one tag")
	}
	switch g.State {
	case StateRunning:
		if !slices.Contains([]string{OutcomeSuccess, OutcomeFailed, OutcomeTimeout, OutcomeUnmanaged}, g.Outcome) {
			p.Addf(field+".outcome", "%q must be success, failed, timeout or unmanaged for a running instance", g.Outcome)
		}
	case StateStopped:
		if g.Outcome != "" {
			p.Addf(field+".outcome", "a stopped instance runs no command: leave outcome out")
		}
	default:
		p.Addf(field+".state", "%q must be running or stopped", g.State)
	}
}

// Account returns the fleet's account with the given ID.
func (f *Fleet) Account(id string) (Account, bool) {
	for _, a := range f.Accounts {
		if a.ID == id {
			return a, true
		}
	}
	return Account{}, false
}

// RoleMissing reports whether the account's spoke role cannot be assumed.
func (f *Fleet) RoleMissing(account string) bool {
	a, ok := f.Account(account)
	return ok && a.RoleMissing
}

// Groups returns the instance groups of one account-region (none when the
// fleet does not have it).
func (f *Fleet) Groups(account, region string) []Group {
	a, _ := f.Account(account)
	for _, r := range a.Regions {
		if r.Name == region {
			return r.Instances
		}
	}
	return nil
}

// Matches reports whether instance tags satisfy every tag filter.
func Matches(tags, filters map[string]string) bool {
	for k, v := range filters {
		if tags[k] != v {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
