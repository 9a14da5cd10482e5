// Package iamcheck measures least privilege: it evaluates the AWS calls the
// emulator recorded against the IAM policies of the roles that made them,
// and reports, per role, the actions granted, used and unused.
//
// The evaluation is a subset of IAM's: identity policies only, Allow and
// Deny statements with Action/NotAction and Resource/NotResource wildcards.
// Conditions are not evaluated: a statement with a Condition is taken as
// allowing, and the report lists it so a reader knows which grants rest on
// an unchecked condition. Resource-based policies (bucket, key, topic,
// function permissions) and service principals are out of scope.
package iamcheck

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Statement is one statement of a policy document.
type Statement struct {
	Sid         string
	Effect      string
	Action      []string
	NotAction   []string
	Resource    []string
	NotResource []string
	// Conditions are the condition keys of the statement, as
	// "Operator:key" (for example "ArnEquals:lambda:SourceFunctionArn").
	Conditions []string
	// Policy is the name of the policy the statement came from.
	Policy string
}

// strings accepts IAM's "one string or a list of strings".
type stringList []string

func (l *stringList) UnmarshalJSON(data []byte) error {
	var one string
	if json.Unmarshal(data, &one) == nil {
		*l = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(data, &many); err != nil {
		return fmt.Errorf("want a string or a list of strings: %w", err)
	}
	*l = many
	return nil
}

type rawStatement struct {
	Sid         string                     `json:"Sid"`
	Effect      string                     `json:"Effect"`
	Action      stringList                 `json:"Action"`
	NotAction   stringList                 `json:"NotAction"`
	Resource    stringList                 `json:"Resource"`
	NotResource stringList                 `json:"NotResource"`
	Condition   map[string]json.RawMessage `json:"Condition"`
}

// ParseDocument reads a policy document's statements; policy names them.
func ParseDocument(policy string, doc []byte) ([]Statement, error) {
	var raw struct {
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("policy %s: %w", policy, err)
	}
	var list []rawStatement
	if len(raw.Statement) > 0 && raw.Statement[0] == '{' {
		var one rawStatement
		if err := json.Unmarshal(raw.Statement, &one); err != nil {
			return nil, fmt.Errorf("policy %s: %w", policy, err)
		}
		list = []rawStatement{one}
	} else if err := json.Unmarshal(raw.Statement, &list); err != nil {
		return nil, fmt.Errorf("policy %s: %w", policy, err)
	}
	out := make([]Statement, 0, len(list))
	for _, r := range list {
		s := Statement{Sid: r.Sid, Effect: r.Effect, Action: r.Action, NotAction: r.NotAction,
			Resource: r.Resource, NotResource: r.NotResource, Policy: policy}
		for op, body := range r.Condition {
			var keys map[string]json.RawMessage
			if json.Unmarshal(body, &keys) != nil {
				s.Conditions = append(s.Conditions, op)
				continue
			}
			for k := range keys {
				s.Conditions = append(s.Conditions, op+":"+k)
			}
		}
		sort.Strings(s.Conditions)
		out = append(out, s)
	}
	return out, nil
}

// matchesAction reports whether the statement names action (service:Name).
func (s Statement) matchesAction(action string) bool {
	if len(s.NotAction) > 0 {
		return !anyMatch(s.NotAction, action, true)
	}
	return anyMatch(s.Action, action, true)
}

// matchesResource reports whether the statement covers resource; "" is a
// resource the call does not name (or the checker cannot derive), which
// every statement covers.
func (s Statement) matchesResource(resource string) bool {
	if resource == "" {
		return true
	}
	if len(s.NotResource) > 0 {
		return !anyMatch(s.NotResource, resource, false)
	}
	return anyMatch(s.Resource, resource, false)
}

func anyMatch(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if Wildcard(p, s, fold) {
			return true
		}
	}
	return false
}

// Wildcard matches s against an IAM pattern where * is any run of
// characters and ? any one character; fold ignores case, as IAM does for
// actions (resources are case-sensitive).
func Wildcard(pattern, s string, fold bool) bool {
	if fold {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	// Iterative glob match with backtracking to the last star.
	p, i, star, mark := 0, 0, -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
