package fault

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ec2patch/ec2patch/internal/contract"
)

// The state machines match errorType, which aws-lambda-go takes from the Go
// type name: each type must be named exactly like its contract constant.
func TestTypeNamesMatchContract(t *testing.T) {
	cases := map[string]error{
		contract.ErrThrottled:       &Throttled{},
		contract.ErrTransient:       &Transient{},
		contract.ErrAccessDenied:    &AccessDenied{},
		contract.ErrInvalidRunInput: &InvalidRunInput{},
		contract.ErrTargetFailed:    &TargetFailed{},
		contract.ErrStateStore:      &StateStoreError{},
		contract.ErrTargetBusy:      &TargetBusy{},
	}
	for want, err := range cases {
		if got := reflect.TypeOf(err).Elem().Name(); got != want {
			t.Errorf("type %s, want %s", got, want)
		}
	}
}

func apiErr(code string) error {
	return &smithy.OperationError{ServiceID: "EC2", OperationName: "DescribeInstances",
		Err: fmt.Errorf("https response error: %w", &smithy.GenericAPIError{Code: code, Message: "msg of " + code})}
}

func httpErr(status int) error {
	return &smithy.OperationError{ServiceID: "SSM", OperationName: "ListCommands",
		Err: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err: errors.New("boom")}}
}

func TestBoundary(t *testing.T) {
	assumeDenied := &AssumeRoleError{RoleARN: "arn:aws:iam::222222222222:role/PatchExecRole", Account: "222222222222",
		Err: &smithy.OperationError{ServiceID: "STS", OperationName: "AssumeRole",
			Err: &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized to perform sts:AssumeRole"}}}
	cases := []struct {
		name     string
		err      error
		wantType string
		wantMsg  string // substring of the message
	}{
		{"ec2 throttling", apiErr("RequestLimitExceeded"), contract.ErrThrottled, "RequestLimitExceeded"},
		{"ssm throttling", apiErr("ThrottlingException"), contract.ErrThrottled, ""},
		{"dynamodb throughput", apiErr("ProvisionedThroughputExceededException"), contract.ErrThrottled, ""},
		{"too many requests", apiErr("TooManyRequestsException"), contract.ErrThrottled, ""},
		{"http 429", httpErr(429), contract.ErrThrottled, ""},
		{"http 503", httpErr(503), contract.ErrTransient, ""},
		{"internal error code", apiErr("InternalServerError"), contract.ErrTransient, ""},
		{"network", fmt.Errorf("list commands: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), contract.ErrTransient, "list commands"},
		{"ec2 unauthorized", apiErr("UnauthorizedOperation"), contract.ErrAccessDenied, "UnauthorizedOperation"},
		{"ssm access denied", apiErr("AccessDeniedException"), contract.ErrAccessDenied, ""},
		{"assume denied, lazily from the first spoke call",
			&smithy.OperationError{ServiceID: "EC2", OperationName: "DescribeInstances",
				Err: fmt.Errorf("failed to retrieve credentials: %w", assumeDenied)},
			contract.ErrAccessDenied, "cannot assume arn:aws:iam::222222222222:role/PatchExecRole with the configured ExternalId: AccessDenied: not authorized"},
		{"assume with a bad token", &AssumeRoleError{RoleARN: "arn:aws:iam::1:role/R", Err: apiErr("InvalidClientTokenId")},
			contract.ErrAccessDenied, "cannot assume arn:aws:iam::1:role/R"},
		{"store write denied is the hub's problem", &StoreFailure{Op: "put RUN record", Err: apiErr("AccessDeniedException")},
			contract.ErrStateStore, "put RUN record"},
		{"store write conditional failure", &StoreFailure{Op: "put wave record", Err: apiErr("ValidationException")},
			contract.ErrStateStore, ""},
		{"store write throttled is retried", &StoreFailure{Op: "put", Err: apiErr("ProvisionedThroughputExceededException")},
			contract.ErrThrottled, ""},
		{"wrapped fault keeps its type and context", fmt.Errorf("prepare: %w", &InvalidRunInput{Message: "runId: bad"}),
			contract.ErrInvalidRunInput, "prepare: runId: bad"},
		{"busy target stays busy", fmt.Errorf("send: %w", &TargetBusy{Message: "claimed by exec-a"}),
			contract.ErrTargetBusy, "send: claimed by exec-a"},
		{"anything else", errors.New("instance vanished"), contract.ErrTargetFailed, "instance vanished"},
		{"unknown api error", apiErr("InvalidInstanceID.Malformed"), contract.ErrTargetFailed, "InvalidInstanceID.Malformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Boundary(c.err)
			if name := reflect.TypeOf(got).Elem().Name(); name != c.wantType {
				t.Fatalf("type %s (%v), want %s", name, got, c.wantType)
			}
			if !strings.Contains(got.Error(), c.wantMsg) {
				t.Errorf("message %q, want it to contain %q", got.Error(), c.wantMsg)
			}
		})
	}
	if Boundary(nil) != nil {
		t.Error("Boundary(nil) is not nil")
	}
}
