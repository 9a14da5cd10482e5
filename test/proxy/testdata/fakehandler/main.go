// Command fakehandler is a tiny Lambda handler for the proxy's Runtime API
// tests: it echoes its input, fails with a named error, or exits.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type input struct {
	Name string `json:"name"`
	Fail bool   `json:"fail"`
	Exit bool   `json:"exit"`
}

type output struct {
	Greeting string `json:"greeting"`
	Name     string `json:"name"`
	Function string `json:"function"`
	ARN      string `json:"arn"`
	Endpoint string `json:"endpoint"`
}

// BoomError is the error the handler returns when asked to fail; its type
// name becomes the invocation's errorType.
type BoomError struct{ Name string }

func (e BoomError) Error() string { return "boom for " + e.Name }

func handle(ctx context.Context, in input) (output, error) {
	fmt.Fprintf(os.Stderr, "{\"msg\":\"handling\",\"name\":%q}\n", in.Name)
	if in.Exit {
		os.Exit(3)
	}
	if in.Fail {
		return output{}, BoomError{Name: in.Name}
	}
	lc, _ := lambdacontext.FromContext(ctx)
	arn := ""
	if lc != nil {
		arn = lc.InvokedFunctionArn
	}
	return output{Greeting: os.Getenv("FAKE_GREETING"), Name: in.Name,
		Function: os.Getenv("AWS_LAMBDA_FUNCTION_NAME"), ARN: arn, Endpoint: os.Getenv("AWS_ENDPOINT_URL")}, nil
}

func main() {
	if os.Getenv("FAKE_BROKEN") != "" {
		fmt.Fprintln(os.Stderr, "fakehandler: missing configuration")
		os.Exit(1)
	}
	lambda.Start(handle)
}
