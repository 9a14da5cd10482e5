package test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLambdasStayFreeOfCDK keeps jsii out of the Lambda binaries: nothing the
// handlers or the shared internal packages import may pull in the CDK.
func TestLambdasStayFreeOfCDK(t *testing.T) {
	patterns := []string{"../internal/..."}
	if out, err := exec.Command("go", "list", "../lambdas/...").CombinedOutput(); err == nil && strings.TrimSpace(string(out)) != "" {
		patterns = append(patterns, "../lambdas/...")
	} else {
		t.Log("lambdas/ has no packages yet; checking internal/ alone")
	}
	out, err := exec.Command("go", append([]string{"list", "-deps"}, patterns...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{"github.com/aws/aws-cdk-go/", "github.com/aws/jsii-runtime-go", "github.com/aws/constructs-go/"}
	for _, pkg := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, f) {
				t.Errorf("%s depends on %s", strings.Join(patterns, " "), pkg)
			}
		}
	}
}
