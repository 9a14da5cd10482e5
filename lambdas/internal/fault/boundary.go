package fault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// AssumeRoleError marks a failure to assume a spoke role. The spoke package
// returns it from its credentials provider, so it surfaces from the first
// spoke call of a handler (assume-role is lazy) and Boundary can name the
// role in the message.
type AssumeRoleError struct {
	RoleARN string
	Account string
	Err     error
}

func (e *AssumeRoleError) Error() string {
	return fmt.Sprintf("cannot assume %s with the configured ExternalId: %v", e.RoleARN, describe(e.Err))
}

func (e *AssumeRoleError) Unwrap() error { return e.Err }

// StoreFailure marks a failed read or write of the hub's own state (its
// DynamoDB table or S3 bucket). The store returns it so Boundary can tell a
// lost record (StateStoreError) from a spoke failure.
type StoreFailure struct {
	Op  string // what was being read or written, e.g. "put RUN record"
	Err error
}

func (e *StoreFailure) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *StoreFailure) Unwrap() error { return e.Err }

// throttleCodes are AWS error codes that mean "slow down". The SDK's own
// list is included so new codes it learns are picked up.
var throttleCodes = map[string]bool{
	"Throttled": true, "RequestThrottled": true, "ThrottledException": true,
	"EC2ThrottledException": true, "ThrottlingException": true, "Throttling": true,
	"TooManyRequestsException": true, "RequestLimitExceeded": true,
	"ProvisionedThroughputExceededException": true, "RequestThrottledException": true,
	"SlowDown": true, "BandwidthLimitExceeded": true, "PriorRequestNotComplete": true,
	"TransactionInProgressException": true,
}

var accessDeniedCodes = map[string]bool{
	"AccessDenied": true, "AccessDeniedException": true, "UnauthorizedOperation": true,
	"UnauthorizedAccess": true, "InvalidClientTokenId": true, "AuthFailure": true,
	"UnrecognizedClientException": true, "ExpiredToken": true, "ExpiredTokenException": true,
	"NotAuthorized": true, "Forbidden": true,
}

var transientCodes = map[string]bool{
	"InternalError": true, "InternalFailure": true, "InternalServerError": true,
	"InternalServerException": true, "ServiceUnavailable": true,
	"ServiceUnavailableException": true, "RequestTimeout": true, "RequestTimeoutException": true,
	"Unavailable": true,
}

// Boundary maps an error chain to exactly one of this package's types. Call
// it once, where a handler returns. A nil error stays nil.
//
// Order matters: a throttle or a 5xx is retryable wherever it happens, so it
// wins; a failed write of the hub's own state comes next (even when DynamoDB
// denied it, because it is the hub's problem, not the spoke's); then access
// denied, including a failed assume-role; everything else keeps its message
// as TargetFailed.
func Boundary(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if f := existing(err, msg); f != nil {
		return f
	}
	code, status := apiCode(err)
	var store *StoreFailure
	var assume *AssumeRoleError
	switch {
	case throttleCodes[code] || inSet(retry.DefaultThrottleErrorCodes, code) || status == 429:
		return &Throttled{Message: msg}
	case transientCodes[code] || inSet(retry.DefaultRetryableErrorCodes, code) || status >= 500 || isNetwork(err):
		return &Transient{Message: msg}
	case errors.As(err, &store):
		return &StateStoreError{Message: msg}
	case errors.As(err, &assume):
		// The assume error alone says what matters; the SDK's operation
		// wrapping around it adds only noise.
		if accessDeniedCodes[code] {
			return &AccessDenied{Message: assume.Error()}
		}
		return &TargetFailed{Message: assume.Error()}
	case accessDeniedCodes[code]:
		return &AccessDenied{Message: msg}
	}
	return &TargetFailed{Message: msg}
}

// existing returns a fault type already in the chain, re-made with the full
// message so the context added by wrapping is kept.
func existing(err error, msg string) error {
	var (
		t  *Throttled
		tr *Transient
		ad *AccessDenied
		iv *InvalidRunInput
		tf *TargetFailed
		ss *StateStoreError
		tb *TargetBusy
	)
	switch {
	case errors.As(err, &tb):
		return &TargetBusy{Message: msg}
	case errors.As(err, &iv):
		return &InvalidRunInput{Message: msg}
	case errors.As(err, &ss):
		return &StateStoreError{Message: msg}
	case errors.As(err, &ad):
		return &AccessDenied{Message: msg}
	case errors.As(err, &t):
		return &Throttled{Message: msg}
	case errors.As(err, &tr):
		return &Transient{Message: msg}
	case errors.As(err, &tf):
		return &TargetFailed{Message: msg}
	}
	return nil
}

// apiCode returns the first AWS error code and HTTP status in the chain.
func apiCode(err error) (string, int) {
	code := ""
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	status := 0
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) {
		status = respErr.HTTPStatusCode()
	}
	return code, status
}

func inSet(set map[string]struct{}, code string) bool {
	_, ok := set[code]
	return ok
}

func isNetwork(err error) bool {
	var netErr net.Error
	var urlErr *url.Error
	var canceled *smithy.CanceledError
	return errors.As(err, &netErr) || errors.As(err, &urlErr) || errors.As(err, &canceled) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, context.DeadlineExceeded)
}

// describe gives an AWS error as "Code: message", without the SDK's request
// IDs and operation prefix, which say nothing to an operator.
func describe(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		m := strings.TrimSpace(apiErr.ErrorMessage())
		if m == "" {
			return apiErr.ErrorCode()
		}
		return apiErr.ErrorCode() + ": " + m
	}
	return err.Error()
}
