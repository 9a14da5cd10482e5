// Package fault holds the error types a handler returns to Step Functions.
//
// aws-lambda-go reports the Go type name of a returned error as errorType,
// and the state machines' Retry and Catch match on it, so each type here is
// named exactly like its contract constant (contract.ErrThrottled...). A
// handler wraps errors with context as it goes; only Boundary, called once
// when the handler returns, decides which type an error becomes.
package fault

// Throttled means an AWS API throttled a call: retry with backoff.
type Throttled struct{ Message string }

// Transient means a 5xx or network error: retry with backoff.
type Transient struct{ Message string }

// AccessDenied means the spoke role is missing or does not trust the hub
// (role, trust policy or ExternalId): record the target as failed.
type AccessDenied struct{ Message string }

// InvalidRunInput means the run input is wrong: fail the execution at once.
type InvalidRunInput struct{ Message string }

// TargetFailed means the target cannot be patched for the stated reason.
type TargetFailed struct{ Message string }

// StateStoreError means DynamoDB or S3 refused a write: fail loudly.
type StateStoreError struct{ Message string }

// TargetBusy means another execution of the same run claimed the target and
// is sending its commands right now: retry, and the commands it sent are
// reused instead of sending a second set.
type TargetBusy struct{ Message string }

func (e *Throttled) Error() string       { return e.Message }
func (e *Transient) Error() string       { return e.Message }
func (e *AccessDenied) Error() string    { return e.Message }
func (e *InvalidRunInput) Error() string { return e.Message }
func (e *TargetFailed) Error() string    { return e.Message }
func (e *StateStoreError) Error() string { return e.Message }
func (e *TargetBusy) Error() string      { return e.Message }
