package iamcheck

import (
	"fmt"
	"sort"
	"strings"
)

// Reasons gives, per role label and granted action pattern, the written
// reason a grant that no scenario uses is kept.
type Reasons map[string]map[string]string

// Merge adds other's reasons to r.
func (r Reasons) Merge(other Reasons) Reasons {
	for role, m := range other {
		if r[role] == nil {
			r[role] = map[string]string{}
		}
		for a, why := range m {
			r[role][a] = why
		}
	}
	return r
}

// Review is the granted-versus-used verdict.
type Review struct {
	// Table is the markdown table "role | granted actions | used | unused
	// (reason)".
	Table string
	// Unexplained are the unused grants without a reason, as "role action".
	Unexplained []string
	// Stale are reasons for grants that are used or no longer granted.
	Stale []string
}

// Review compares granted with used actions and looks up the reasons of
// the unused ones.
func (res *Result) Review(reasons Reasons) Review {
	var rv Review
	var b strings.Builder
	b.WriteString("| role | granted actions | used | unused (reason) |\n|---|---|---|---|\n")
	labels := make([]string, 0, len(res.Usage))
	for l := range res.Usage {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for _, l := range labels {
		u := res.Usage[l]
		var used, unused []string
		for _, g := range u.Granted {
			if n := u.Used[g]; n > 0 {
				used = append(used, fmt.Sprintf("%s (%d)", g, n))
				continue
			}
			why := reasons[l][g]
			if why == "" {
				rv.Unexplained = append(rv.Unexplained, l+" "+g)
				why = "NO REASON"
			}
			unused = append(unused, g+" ("+why+")")
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s |\n", l, len(u.Granted), cell(used), cell(unused))
	}
	for _, l := range sortedKeys(reasons) {
		u := res.Usage[l]
		for _, a := range sortedKeys(reasons[l]) {
			switch {
			case u == nil:
				rv.Stale = append(rv.Stale, l+" "+a+": no such role")
			case !contains(u.Granted, a):
				rv.Stale = append(rv.Stale, l+" "+a+": not granted")
			case u.Used[a] > 0:
				rv.Stale = append(rv.Stale, l+" "+a+": used")
			}
		}
	}
	rv.Table = b.String()
	return rv
}

// Notes lists what the check did not evaluate.
func (res *Result) Notes() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d calls evaluated against their role's policies.\n", res.Evaluated)
	for _, why := range sortedKeys(res.Skipped) {
		fmt.Fprintf(&b, "- not evaluated, %s: %d calls\n", why, res.Skipped[why])
	}
	if len(res.Underived) > 0 {
		fmt.Fprintf(&b, "- resource not derived (action checked only): %s\n", strings.Join(res.Underived, ", "))
	}
	for _, l := range sortedKeys(res.Usage) {
		if c := res.Usage[l].Conditional; len(c) > 0 {
			fmt.Fprintf(&b, "- conditions not evaluated, %s: %s\n", l, strings.Join(c, "; "))
		}
	}
	return b.String()
}

func cell(items []string) string {
	if len(items) == 0 {
		return "-"
	}
	return strings.ReplaceAll(strings.Join(items, "<br>"), "|", "\\|")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
