package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ec2patch/ec2patch/test/proxy"
)

// Every fault answers in its service's own protocol: the real SDK client
// decodes the error code, and its retryer classifies it as AWS's would
// (throttles and 5xx retryable, access denied final).
func TestFaultsSpeakEachServicesProtocol(t *testing.T) {
	fx := newFixture(t, t.TempDir())
	base := fx.proxy.URL()
	creds := credentials.NewStaticCredentialsProvider("AKIDHUB", "secret", "")
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(base), RetryMaxAttempts: 1, Credentials: creds}
	ctx := context.Background()
	calls := map[string]func() error{
		"dynamodb:PutItem": func() error {
			_, err := dynamodb.NewFromConfig(cfg).PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("t"),
				Item: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "x"}}})
			return err
		},
		"s3:PutObject": func() error {
			_, err := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }).PutObject(ctx,
				&s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("reports/r/report.json"), Body: bytes.NewReader([]byte("{}"))})
			return err
		},
		"ssm:SendCommand": func() error {
			_, err := ssm.NewFromConfig(cfg).SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("d")})
			return err
		},
		"ec2:DescribeInstances": func() error {
			_, err := ec2.NewFromConfig(cfg).DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
			return err
		},
		"sts:GetCallerIdentity": func() error {
			_, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			return err
		},
	}
	cases := []struct {
		service, action string
		fault           func(service, action string, n int) *proxy.Fault
		code            string
		status          int
		throttle, retry bool
	}{
		{"dynamodb", "PutItem", proxy.Throttle, "ProvisionedThroughputExceededException", 400, true, true},
		{"dynamodb", "PutItem", proxy.Deny, "AccessDeniedException", 400, false, false},
		{"dynamodb", "PutItem", proxy.Unavailable, "InternalServerError", 500, false, true},
		{"s3", "PutObject", proxy.Throttle, "SlowDown", 503, true, true},
		{"s3", "PutObject", proxy.Deny, "AccessDenied", 403, false, false},
		{"s3", "PutObject", proxy.Unavailable, "ServiceUnavailable", 503, false, true},
		{"ssm", "SendCommand", proxy.Throttle, "ThrottlingException", 400, true, true},
		{"ssm", "SendCommand", proxy.Deny, "AccessDeniedException", 400, false, false},
		{"ssm", "SendCommand", proxy.Unavailable, "InternalServerError", 500, false, true},
		{"ec2", "DescribeInstances", proxy.Throttle, "RequestLimitExceeded", 503, true, true},
		{"ec2", "DescribeInstances", proxy.Deny, "UnauthorizedOperation", 403, false, false},
		{"ec2", "DescribeInstances", proxy.Unavailable, "Unavailable", 503, false, true},
		{"sts", "GetCallerIdentity", proxy.Throttle, "Throttling", 400, true, true},
		{"sts", "GetCallerIdentity", proxy.Deny, "AccessDenied", 403, false, false},
		{"sts", "GetCallerIdentity", proxy.Unavailable, "ServiceUnavailable", 503, false, true},
	}
	retryer := retry.NewStandard()
	for _, c := range cases {
		f := c.fault(c.service, c.action, 1)
		t.Run(c.service+" "+f.Kind.String(), func(t *testing.T) {
			fx.proxy.SetScenario(proxy.Scenario{Faults: []*proxy.Fault{f}})
			err := calls[c.service+":"+c.action]()
			var re *smithyhttp.ResponseError
			if code := errorCode(err); code != c.code || !errors.As(err, &re) || re.HTTPStatusCode() != c.status {
				t.Fatalf("error %v: code %q, want %q with status %d", err, code, c.code, c.status)
			}
			throttle := retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool()
			if throttle != c.throttle || retryer.IsErrorRetryable(err) != c.retry {
				t.Errorf("SDK sees throttle %v, retryable %v; want %v, %v", throttle, retryer.IsErrorRetryable(err), c.throttle, c.retry)
			}
			if f.Hits() != 1 {
				t.Errorf("the fault took %d calls, want 1", f.Hits())
			}
		})
	}
}
