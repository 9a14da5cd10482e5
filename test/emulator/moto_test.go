package emulator_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/ec2patch/ec2patch/test/emulator"
	"github.com/ec2patch/ec2patch/test/proxy"
)

func motoOrSkip(t *testing.T) string {
	t.Helper()
	bin, err := emulator.MotoServerPath()
	if errors.Is(err, emulator.ErrNoMoto) {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestMotoStartsAnswersAndStops(t *testing.T) {
	bin := motoOrSkip(t)
	ctx := context.Background()
	port, err := emulator.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	m, err := emulator.StartMoto(ctx, bin, port)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			m.Stop()
		}
	})
	if !strings.HasPrefix(m.URL, "http://127.0.0.1:") {
		t.Errorf("moto URL %s is not on loopback", m.URL)
	}
	if err := m.SetConfig(ctx, `{"stepfunctions":{"execute_state_machine":true}}`); err != nil {
		t.Errorf("SetConfig: %v", err)
	}
	if err := m.Reset(ctx); err != nil {
		t.Errorf("Reset: %v", err)
	}
	m.Stop()
	stopped = true
	if resp, err := http.Get(m.URL + "/moto-api/"); err == nil {
		_ = resp.Body.Close()
		t.Errorf("moto still answers after Stop")
	}
}

// TestProxyBridgesCloudWatchToMoto: the Go SDK's CloudWatch client speaks
// CBOR, moto only the query protocol; alarms set through the proxy are
// read back through the SDK.
func TestProxyBridgesCloudWatchToMoto(t *testing.T) {
	bin := motoOrSkip(t)
	ctx := context.Background()
	ln, err := proxy.Listen()
	if err != nil {
		t.Fatal(err)
	}
	m, err := emulator.StartMoto(ctx, bin, ln.Addr().(*net.TCPAddr).Port)
	if err != nil {
		_ = ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	p := proxy.New(proxy.Config{Upstream: m.URL, HandlersDir: t.TempDir()})
	p.Serve(ln)
	t.Cleanup(func() { _ = p.Close() })

	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(p.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")}
	// PutMetricAlarm in the query protocol: the bridge covers DescribeAlarms only.
	form := url.Values{"Action": {"PutMetricAlarm"}, "Version": {"2010-08-01"}, "AlarmName": {"fleet-health"},
		"Namespace": {"ns"}, "MetricName": {"m"}, "Statistic": {"Sum"}, "Period": {"60"}, "EvaluationPeriods": {"1"},
		"Threshold": {"1"}, "ComparisonOperator": {"GreaterThanOrEqualToThreshold"}}
	req, _ := http.NewRequest(http.MethodPost, m.URL+"/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/monitoring/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PutMetricAlarm: %d", resp.StatusCode)
	}
	if err := p.SetAlarmState(ctx, "fleet-health", "ALARM", "test"); err != nil {
		t.Fatal(err)
	}
	out, err := cloudwatch.NewFromConfig(cfg).DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{
		AlarmNames: []string{"fleet-health", "absent"},
		AlarmTypes: []cwtypes.AlarmType{cwtypes.AlarmTypeMetricAlarm, cwtypes.AlarmTypeCompositeAlarm}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.MetricAlarms) != 1 || aws.ToString(out.MetricAlarms[0].AlarmName) != "fleet-health" ||
		out.MetricAlarms[0].StateValue != cwtypes.StateValueAlarm || len(out.CompositeAlarms) != 0 {
		t.Errorf("DescribeAlarms() = %+v, want fleet-health in ALARM only", out)
	}
}
