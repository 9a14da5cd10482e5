package iamcheck

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/ec2patch/ec2patch/test/proxy"
)

// Role is an IAM role and its identity policies.
type Role struct {
	ARN     string
	Account string
	// Label names the role across accounts and emulator runs: its logical
	// ID in its stack without the CDK's hash ("PrepareRunRole"), or its
	// name for a role no stack declares.
	Label      string
	Statements []Statement
}

// InterpreterKey is the access key moto's Step Functions interpreter signs
// every integration call with (a constant in moto). Its calls carry no
// execution or state machine, so Run.InterpreterRole says whose they are.
const InterpreterKey = "ak"

// Run is what one emulator harness saw: the roles deployed in every account
// and the calls recorded.
type Run struct {
	Roles []Role
	Calls []proxy.Call
	// InterpreterRole is the role ARN the state machine interpreter's calls
	// are attributed to: the orchestrator's role. The harness creates every
	// executable state machine with that role, and on AWS a distributed
	// map's child executions run with their parent's role, so every call
	// the interpreter makes (Lambda Invoke, the ItemReader's GetObject of a
	// manifest, DynamoDB and SNS integrations, a child's StartExecution) is
	// one the orchestrator's role must allow.
	InterpreterRole string
}

// Finding is one call the policies do not allow.
type Finding struct {
	Call    proxy.Call
	Role    string // label
	Request Request
	Why     string
	// Expected is set when AWS would refuse the call whatever the policy
	// says (it assumes a role that does not exist), so a scenario that
	// makes it expects the failure.
	Expected string
}

// Refused reports whether the emulator refused the call as AWS would
// (an assumption of a missing role or with a wrong ExternalId), or AWS
// would refuse it anyway: a scenario that expects the denial, which IAM
// gives too.
func (f Finding) Refused() bool {
	return f.Expected != "" || f.Call.Refused == "role missing" || f.Call.Refused == "wrong ExternalId"
}

func (f Finding) String() string {
	res := f.Request.Resource
	if res == "" {
		res = "*"
	}
	s := fmt.Sprintf("%s may not %s on %s (call #%d in %s/%s: %s)", f.Role, f.Request.Action, res,
		f.Call.Seq, f.Call.Account, f.Call.Region, f.Why)
	if f.Call.Refused != "" {
		s += "; the emulator answered it: " + f.Call.Refused
	}
	return s
}

// Usage is what one role (by label) was granted and used across runs.
type Usage struct {
	Label string
	ARNs  []string
	// Granted are the action patterns of the role's Allow statements
	// ("NotAction:a,b" for a NotAction statement).
	Granted []string
	// Used counts the calls that a granted pattern allowed.
	Used  map[string]int
	Calls int
	// Conditional are the statements whose conditions were not evaluated,
	// as "Sid(conditions)".
	Conditional []string
}

// Result is the outcome of a check.
type Result struct {
	Denied []Finding
	Usage  map[string]*Usage
	// Skipped counts the calls not attributed to any role, by reason.
	Skipped map[string]int
	// Underived lists "service:Action" of calls whose resource could not be
	// derived: only their action was checked.
	Underived []string
	Evaluated int
}

// Check evaluates every call of every run against its principal's policies.
func Check(runs []Run) *Result {
	res := &Result{Usage: map[string]*Usage{}, Skipped: map[string]int{}}
	underived := map[string]bool{}
	for _, run := range runs {
		byARN := map[string]Role{}
		for _, r := range run.Roles {
			byARN[r.ARN] = r
			res.usage(r)
		}
		for _, c := range run.Calls {
			arn, skip := attribute(c, run.InterpreterRole)
			if skip != "" {
				res.Skipped[skip]++
				continue
			}
			role, ok := byARN[arn]
			if !ok {
				res.Denied = append(res.Denied, Finding{Call: c, Role: arn,
					Request: Request{Action: c.Service + ":" + c.Action}, Why: "no such role in the account"})
				continue
			}
			res.Evaluated++
			u := res.Usage[role.Label]
			u.Calls++
			reqs, derived := Requests(c)
			if !derived {
				underived[reqs[0].Action] = true
			}
			for _, req := range reqs {
				used, why := evaluate(role.Statements, req)
				if why != "" {
					f := Finding{Call: c, Role: role.Label, Request: req, Why: why}
					if _, exists := byARN[c.RoleARN]; c.Action == "AssumeRole" && !exists {
						f.Expected = "the role does not exist"
					}
					res.Denied = append(res.Denied, f)
					continue
				}
				for _, p := range used {
					u.Used[p]++
				}
			}
		}
	}
	for a := range underived {
		res.Underived = append(res.Underived, a)
	}
	sort.Strings(res.Underived)
	return res
}

func (res *Result) usage(r Role) {
	u, ok := res.Usage[r.Label]
	if !ok {
		u = &Usage{Label: r.Label, Used: map[string]int{}}
		res.Usage[r.Label] = u
	}
	if !slices.Contains(u.ARNs, r.ARN) {
		u.ARNs = append(u.ARNs, r.ARN)
		sort.Strings(u.ARNs)
	}
	for _, s := range r.Statements {
		if s.Effect != "Allow" {
			continue
		}
		patterns := s.Action
		if len(s.NotAction) > 0 {
			patterns = []string{notActionPattern(s)}
		}
		for _, p := range patterns {
			if !slices.Contains(u.Granted, p) {
				u.Granted = append(u.Granted, p)
			}
		}
		if len(s.Conditions) > 0 {
			c := first(s.Sid, s.Policy) + "(" + strings.Join(s.Conditions, ", ") + ")"
			if !slices.Contains(u.Conditional, c) {
				u.Conditional = append(u.Conditional, c)
			}
		}
	}
	sort.Strings(u.Granted)
	sort.Strings(u.Conditional)
}

// evaluate returns the granted patterns that allow req, or why it is not
// allowed: an explicit Deny wins, then any Allow.
func evaluate(stmts []Statement, req Request) (used []string, why string) {
	for _, s := range stmts {
		if s.Effect == "Deny" && s.matchesAction(req.Action) && s.matchesResource(req.Resource) {
			return nil, "denied by " + first(s.Sid, s.Policy)
		}
	}
	actionOnly := false
	for _, s := range stmts {
		if s.Effect != "Allow" || !s.matchesAction(req.Action) {
			continue
		}
		if !s.matchesResource(req.Resource) {
			actionOnly = true
			continue
		}
		if len(s.NotAction) > 0 {
			used = append(used, notActionPattern(s))
			continue
		}
		for _, a := range s.Action {
			if Wildcard(a, req.Action, true) {
				used = append(used, a)
			}
		}
	}
	switch {
	case len(used) > 0:
		return used, ""
	case actionOnly:
		return nil, "the action is granted on other resources only"
	}
	return nil, "no statement allows the action"
}

// notActionPattern is how a NotAction statement appears among the granted
// patterns: everything but its list.
func notActionPattern(s Statement) string { return "NotAction:" + strings.Join(s.NotAction, ",") }

var assumedRole = regexp.MustCompile(`^arn:([^:]+):sts::(\d{12}):assumed-role/([^/]+)/`)

// attribute names the role ARN whose policies govern c, or why c is
// not evaluated.
func attribute(c proxy.Call, interpreterRole string) (arn, skip string) {
	switch {
	case c.Service == "execute-api":
		return "", "public approval API request (authorized by its signed link)"
	case c.Principal == proxy.EventPrincipal:
		return "", "invocation by a service principal (the function's resource policy)"
	case strings.Contains(c.Principal, ":role/"):
		return c.Principal, ""
	case c.Principal != "":
		if m := assumedRole.FindStringSubmatch(c.Principal); m != nil {
			return "arn:" + m[1] + ":iam::" + m[2] + ":role/" + m[3], ""
		}
		return "", "principal " + c.Principal
	case c.AccessKey == InterpreterKey && interpreterRole != "":
		return interpreterRole, ""
	}
	return "", "made by the test itself, not by ec2patch"
}
