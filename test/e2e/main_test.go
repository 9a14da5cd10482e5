package e2e

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ec2patch/ec2patch/constructs/hub"
	"github.com/ec2patch/ec2patch/test/emulator"
	"github.com/ec2patch/ec2patch/test/iamcheck"
)

// envIAMCheck, when set, runs the least-privilege check after a partial run
// (-run or -short) too: denied calls then fail the package, unused grants
// are only reported (a partial run cannot use them all).
const envIAMCheck = "EC2PATCH_IAM_CHECK"

// usageFile is where the granted-versus-used table goes, from the module
// root.
var usageFile = filepath.Join("..", "..", "build", "iam-usage.md")

// TestMain measures least privilege across the whole package: every harness
// keeps its recorded calls and the roles moto deployed, and after the tests
// every call must be allowed by the policies of the role that made it, and
// every granted action must be used by some scenario or carry a written
// reason next to its grant (hub.UnusedGrantReasons).
func TestMain(m *testing.M) {
	flag.Parse()
	whole := flag.Lookup("test.run").Value.String() == "" && !testing.Short()
	check := whole || os.Getenv(envIAMCheck) != ""
	if check {
		emulator.CollectIAM()
	}
	code := m.Run()
	if check {
		if err := checkIAM(whole); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL least privilege: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

func checkIAM(whole bool) error {
	runs, errs := emulator.CollectedIAM()
	if len(errs) > 0 {
		return fmt.Errorf("reading the deployed roles: %v", errs)
	}
	if len(runs) == 0 {
		fmt.Println("least privilege: no emulator harness ran, nothing measured")
		return nil
	}
	res := iamcheck.Check(runs)
	review := res.Review(iamcheck.Reasons(hub.UnusedGrantReasons()))
	var b strings.Builder
	fmt.Fprintf(&b, "# IAM: granted vs used actions\n\nMeasured over %d emulator harnesses; counts are calls allowed by the grant.\n\n", len(runs))
	b.WriteString(review.Table)
	b.WriteString("\n## Not evaluated\n\n")
	b.WriteString(res.Notes())
	report := b.String()
	fmt.Println(report)
	if whole { // a partial run's table would understate what is used
		writeUsage(report)
	}
	for _, s := range review.Stale {
		fmt.Fprintf(os.Stderr, "least privilege: stale reason: %s\n", s)
	}

	// A call IAM denies and the emulator refused too (an assumption of a
	// role outside the plan) is a scenario's expected failure.
	var unexpected, expected []iamcheck.Finding
	for _, f := range res.Denied {
		if f.Refused() {
			expected = append(expected, f)
		} else {
			unexpected = append(unexpected, f)
		}
	}
	if len(expected) > 0 {
		fmt.Printf("least privilege: %d calls denied as the scenarios expect (refused by the emulator too):\n%s\n",
			len(expected), denied(expected))
	}
	var problems []string
	if len(unexpected) > 0 {
		problems = append(problems, fmt.Sprintf("%d calls not allowed:\n%s", len(unexpected), denied(unexpected)))
	}
	if whole && len(review.Unexplained) > 0 {
		problems = append(problems, fmt.Sprintf("%d granted actions no scenario used and no reason explains "+
			"(add a reason next to the grant, or remove it):\n  %s", len(review.Unexplained), strings.Join(review.Unexplained, "\n  ")))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return nil
}

// writeUsage writes the table to usageFile; failing to is not a test
// failure.
func writeUsage(report string) {
	if err := os.MkdirAll(filepath.Dir(usageFile), 0o750); err != nil {
		fmt.Fprintf(os.Stderr, "least privilege: %v\n", err)
		return
	}
	if err := os.WriteFile(usageFile, []byte(report), 0o600); err != nil {
		fmt.Fprintf(os.Stderr, "least privilege: %v\n", err)
	}
}

// denied groups the findings by role, action and reason, with one example
// each.
func denied(findings []iamcheck.Finding) string {
	type key struct{ role, action, why string }
	count := map[key]int{}
	example := map[key]string{}
	for _, f := range findings {
		k := key{f.Role, f.Request.Action, f.Why}
		if count[k] == 0 {
			example[k] = f.String()
		}
		count[k]++
	}
	lines := make([]string, 0, len(count))
	for k, n := range count {
		lines = append(lines, fmt.Sprintf("  %dx %s", n, example[k]))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
