package spoke

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
)

// fakeAWS answers STS AssumeRole and EC2 DescribeInstances on one endpoint
// and records what it was asked.
type fakeAWS struct {
	deny bool

	mu      sync.Mutex
	assumes []map[string]string // form of each AssumeRole
	ec2Keys []string            // access key that signed each EC2 call
}

func (f *fakeAWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Form.Get("Action") {
	case "AssumeRole":
		f.assumes = append(f.assumes, map[string]string{"RoleArn": r.Form.Get("RoleArn"),
			"ExternalId": r.Form.Get("ExternalId"), "RoleSessionName": r.Form.Get("RoleSessionName")})
		if f.deny {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>`+
				`<Code>AccessDenied</Code><Message>not authorized to perform: sts:AssumeRole</Message></Error><RequestId>1</RequestId></ErrorResponse>`)
			return
		}
		fmt.Fprint(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>`+
			`<AccessKeyId>ASIASPOKE</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken>`+
			`<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>id:s</AssumedRoleId>`+
			`<Arn>arn:aws:sts::222222222222:assumed-role/PatchExecRole/s</Arn></AssumedRoleUser></AssumeRoleResult></AssumeRoleResponse>`)
	case "DescribeInstances":
		_, cred, _ := strings.Cut(r.Header.Get("Authorization"), "Credential=")
		key, _, _ := strings.Cut(cred, "/")
		f.ec2Keys = append(f.ec2Keys, key)
		fmt.Fprint(w, `<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><reservationSet/></DescribeInstancesResponse>`)
	default:
		http.Error(w, "unexpected action "+r.Form.Get("Action"), http.StatusBadRequest)
	}
}

func newSession(t *testing.T, f *fakeAWS) *Session {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	base := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("HUBKEY", "secret", ""),
		BaseEndpoint: aws.String(srv.URL),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
	}
	return NewSession(base, sts.NewFromConfig(base), contract.DefaultSpokeRoleName, "ext-123")
}

func TestAssumesOncePerAccountWithExternalID(t *testing.T) {
	f := &fakeAWS{}
	s := newSession(t, f)
	ctx := context.Background()
	for _, region := range []string{"us-east-1", "eu-west-1", "us-east-1"} {
		if _, err := s.EC2(Target{RunID: "run-1", Account: "222222222222", Region: region}).
			DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
			t.Fatalf("DescribeInstances in %s: %v", region, err)
		}
	}
	want := []map[string]string{{"RoleArn": "arn:aws:iam::222222222222:role/PatchExecRole",
		"ExternalId": "ext-123", "RoleSessionName": "ec2patch-run-1"}}
	if !reflect.DeepEqual(f.assumes, want) {
		t.Errorf("AssumeRole calls %v, want %v", f.assumes, want)
	}
	if !reflect.DeepEqual(f.ec2Keys, []string{"ASIASPOKE", "ASIASPOKE", "ASIASPOKE"}) {
		t.Errorf("EC2 calls signed with %v, want the assumed keys", f.ec2Keys)
	}
}

func TestAssumeDeniedSurfacesFromFirstSpokeCall(t *testing.T) {
	s := newSession(t, &fakeAWS{deny: true})
	_, err := s.EC2(Target{RunID: "run-1", Account: "222222222222", Region: "us-east-1"}).
		DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{})
	got := fault.Boundary(err)
	// The type itself, not a wrapper: aws-lambda-go reports the %T name as
	// errorType, which the state machine's Catch matches.
	denied, ok := got.(*fault.AccessDenied) //nolint:errorlint // the unwrapped type is what is under test
	if !ok {
		t.Fatalf("Boundary(%v) = %T, want *fault.AccessDenied", err, got)
	}
	want := "cannot assume arn:aws:iam::222222222222:role/PatchExecRole with the configured ExternalId: AccessDenied: not authorized to perform: sts:AssumeRole"
	if denied.Message != want {
		t.Errorf("message %q, want %q", denied.Message, want)
	}
}

func TestSessionName(t *testing.T) {
	cases := map[string]string{
		"2026-12-patch":         "ec2patch-2026-12-patch",
		"a b/c":                 "ec2patch-a-b-c",
		strings.Repeat("x", 70): "ec2patch-" + strings.Repeat("x", 55),
	}
	for in, want := range cases {
		if got := SessionName(in); got != want {
			t.Errorf("SessionName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPartitionFromRegion(t *testing.T) {
	s := NewSession(aws.Config{}, nil, "R", "x")
	if got := s.RoleARN("111111111111", "cn-north-1"); got != "arn:aws-cn:iam::111111111111:role/R" {
		t.Errorf("RoleARN = %s", got)
	}
}
