// Package contract is the single source of truth shared by the CDK constructs
// and the Lambda handlers: state and error names, environment variable names,
// JSON shapes that cross the state machine, DynamoDB keys and S3 layout, and the
// validation rules for run input.
//
// It imports only the standard library, so the Lambda binaries stay free of
// jsii, and a renamed JSON tag breaks a test on both sides in the same change.
package contract
