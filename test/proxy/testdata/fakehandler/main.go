// Command fakehandler is a tiny Lambda handler for the proxy's Runtime API
// tests: it echoes its input, fails with a named error, or exits.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type input struct {
	Name string `json:"name"`
	Fail bool   `json:"fail"`
	Exit bool   `json:"exit"`
	// An API Gateway proxy event: the handler answers with what it got.
	HTTPMethod     string            `json:"httpMethod"`
	Resource       string            `json:"resource"`
	Path           string            `json:"path"`
	PathParameters map[string]string `json:"pathParameters"`
	Query          map[string]string `json:"queryStringParameters"`
	Body           string            `json:"body"`
	RequestContext struct {
		Stage    string `json:"stage"`
		Identity struct {
			SourceIP string `json:"sourceIp"`
		} `json:"identity"`
	} `json:"requestContext"`
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

func handle(ctx context.Context, in input) (any, error) {
	if in.HTTPMethod != "" {
		echo, _ := json.Marshal(in)
		return map[string]any{"statusCode": 299, "headers": map[string]string{"Content-Type": "application/json", "X-Fake": "api"},
			"body": string(echo)}, nil
	}
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
