package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/test/proxy"
)

func TestParseScope(t *testing.T) {
	tests := []struct {
		name   string
		auth   string
		query  string
		want   proxy.Scope
		wantOK bool
	}{
		{"header", "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/ssm/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc",
			"", proxy.Scope{AccessKey: "AKID", Date: "20260101", Region: "eu-west-1", Service: "ssm"}, true},
		{"header without spaces", "AWS4-HMAC-SHA256 Credential=K/20260101/us-east-1/sts/aws4_request,SignedHeaders=host,Signature=x",
			"", proxy.Scope{AccessKey: "K", Date: "20260101", Region: "us-east-1", Service: "sts"}, true},
		{"presigned", "", "X-Amz-Credential=" + url.QueryEscape("K2/20260101/us-west-2/s3/aws4_request"),
			proxy.Scope{AccessKey: "K2", Date: "20260101", Region: "us-west-2", Service: "s3"}, true},
		{"no auth", "", "", proxy.Scope{}, false},
		{"sigv2", "AWS AKID:signature", "", proxy.Scope{}, false},
		{"truncated scope", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1, Signature=x", "", proxy.Scope{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/?"+tt.query, nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			got, ok := proxy.ParseScope(r)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ParseScope() = %+v, %v; want %+v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// fakeMoto stands in for moto: it serves GetFunction, AssumeRole and
// SendCommand, and answers anything else with a marker body.
type fakeMoto struct {
	commands  atomic.Int32
	forwarded atomic.Int32
	mu        sync.Mutex
	alarms    []url.Values // SetAlarmState calls
}

func (f *fakeMoto) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/2015-03-31/functions/fake":
		_, _ = io.WriteString(w, `{"Configuration": {"FunctionName": "fake",
		  "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:fake",
		  "Role": "arn:aws:iam::123456789012:role/fake-role", "Timeout": 10,
		  "Environment": {"Variables": {"`+contract.EnvHandler+`": "fake-dir", "FAKE_GREETING": "hello"}}}}`)
	case r.Method == http.MethodGet && r.URL.Path == "/2015-03-31/functions/":
		_, _ = io.WriteString(w, `{"Functions": [{"FunctionName": "fake", "Environment": {"Variables": {"`+contract.EnvHandler+`": "fake-dir"}}},
		  {"FunctionName": "events", "Environment": {"Variables": {"`+contract.EnvHandler+`": "`+contract.CommandStatusEvents.Dir+`"}}}]}`)
	case r.Method == http.MethodGet && r.URL.Path == "/2015-03-31/functions/events":
		_, _ = io.WriteString(w, `{"Configuration": {"FunctionName": "events",
		  "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:events", "Timeout": 10,
		  "Environment": {"Variables": {"`+contract.EnvHandler+`": "`+contract.CommandStatusEvents.Dir+`"}}}}`)
	case r.Method == http.MethodGet && r.URL.Path == "/2015-03-31/functions/broken":
		_, _ = io.WriteString(w, `{"Configuration": {"FunctionName": "broken",
		  "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:broken", "Timeout": 10,
		  "Environment": {"Variables": {"`+contract.EnvHandler+`": "fake-dir", "FAKE_BROKEN": "1"}}}}`)
	case r.Method == http.MethodGet && r.URL.Path == "/restapis/api1/resources":
		_, _ = io.WriteString(w, `{"item": [{"id": "root", "path": "/", "resourceMethods": {}},
		  {"id": "res1", "path": "/approvals", "resourceMethods": {}},
		  {"id": "res2", "path": "/approvals/{approvalId}", "resourceMethods": {"GET": {}, "POST": {}}},
		  {"id": "res3", "path": "/approvals/latest", "resourceMethods": {"GET": {}}}]}`)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/restapis/api1/resources/res2/methods/"):
		_, _ = io.WriteString(w, `{"type": "AWS_PROXY", "uri": "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:fake/invocations"}`)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/restapis/api1/resources/res3/methods/"):
		_, _ = io.WriteString(w, `{"type": "MOCK", "uri": ""}`)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/restapis/"):
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"message": "Invalid Rest API Id specified"}`)
	case strings.Contains(string(body), "Action=SetAlarmState"):
		form, _ := url.ParseQuery(string(body))
		f.mu.Lock()
		f.alarms = append(f.alarms, form)
		f.mu.Unlock()
		_, _ = io.WriteString(w, `<SetAlarmStateResponse/>`)
	case strings.Contains(string(body), "Action=AssumeRole"):
		form, _ := url.ParseQuery(string(body))
		account := strings.Split(form.Get("RoleArn"), ":")[4]
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
		  <Credentials><AccessKeyId>ASIA%s</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken>
		  <Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>
		  <AssumedRoleUser><AssumedRoleId>AROA:x</AssumedRoleId><Arn>arn:aws:sts::%s:assumed-role/PatchExecRole/x</Arn></AssumedRoleUser>
		  </AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>`, account, account)
	case r.Header.Get("X-Amz-Target") == "AmazonSSM.SendCommand":
		n := f.commands.Add(1)
		fmt.Fprintf(w, `{"Command": {"CommandId": "cmd-%d", "InstanceIds": ["i-every", "i-instance"], "Status": "Success"}}`, n)
	default:
		f.forwarded.Add(1)
		w.Header().Set("X-Fake-Moto", "yes")
		_, _ = io.WriteString(w, `{"upstream": true}`)
	}
}

type fixture struct {
	proxy *proxy.Proxy
	moto  *fakeMoto
}

func newFixture(t *testing.T, handlersDir string) *fixture {
	t.Helper()
	moto := &fakeMoto{}
	upstream := httptest.NewServer(moto)
	t.Cleanup(upstream.Close)
	ln, err := proxy.Listen()
	if err != nil {
		t.Fatal(err)
	}
	p := proxy.New(proxy.Config{Upstream: upstream.URL, HandlersDir: handlersDir, MaxWorkers: 3})
	p.Serve(ln)
	t.Cleanup(func() { _ = p.Close() })
	return &fixture{proxy: p, moto: moto}
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// fakeHandlers builds testdata/fakehandler once into a directory, named as
// the fake function's EnvHandler says.
func fakeHandlers(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "fakehandler")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", filepath.Join(buildDir, "fake-dir"), "./testdata/fakehandler")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build fake handler: %w\n%s", err, out)
			return
		}
		// The same echo handler stands in for the command event receiver.
		bin, err := os.ReadFile(filepath.Join(buildDir, "fake-dir"))
		if err == nil {
			err = os.WriteFile(filepath.Join(buildDir, contract.CommandStatusEvents.Dir), bin, 0o700) //nolint:gosec // G306: a handler binary the proxy runs must be executable
		}
		buildErr = err
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

const hubAuth = "AWS4-HMAC-SHA256 Credential=AKIDHUB/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=x"

// invoke calls function through the proxy and returns the answer's header
// and body (the body is read and closed here).
func invoke(t *testing.T, base, function, payload string) (http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/2015-03-31/functions/"+url.PathEscape(function)+"/invocations",
		strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", hubAuth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header, body
}

func TestRuntimeAPIRoundTrip(t *testing.T) {
	fx := newFixture(t, fakeHandlers(t))
	base := fx.proxy.URL()
	arn := "arn:aws:lambda:us-east-1:123456789012:function:fake"

	t.Run("payload comes back from the handler", func(t *testing.T) {
		hdr, body := invoke(t, base, arn, `{"name": "alice"}`)
		var out map[string]string
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("invoke body %s: %v", body, err)
		}
		if hdr.Get("X-Amz-Function-Error") != "" {
			t.Fatalf("unexpected function error: %s", body)
		}
		want := map[string]string{"greeting": "hello", "name": "alice", "function": "fake", "arn": arn, "endpoint": base}
		for k, v := range want {
			if out[k] != v {
				t.Errorf("%s = %q, want %q", k, out[k], v)
			}
		}
	})

	t.Run("handler error is Unhandled with the Go type name", func(t *testing.T) {
		hdr, body := invoke(t, base, "fake", `{"name": "bob", "fail": true}`)
		if got := hdr.Get("X-Amz-Function-Error"); got != "Unhandled" {
			t.Errorf("X-Amz-Function-Error = %q, want Unhandled", got)
		}
		var e struct{ ErrorType, ErrorMessage string }
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatal(err)
		}
		if e.ErrorType != "BoomError" || e.ErrorMessage != "boom for bob" {
			t.Errorf("error = %+v, want BoomError / boom for bob", e)
		}
	})

	t.Run("concurrent invocations each get their own answer", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 20 {
			wg.Go(func() {
				name := fmt.Sprintf("caller-%d", i)
				_, body := invoke(t, base, "fake", `{"name": "`+name+`"}`)
				var out map[string]string
				if err := json.Unmarshal(body, &out); err != nil || out["name"] != name {
					errs <- fmt.Errorf("%s got %s", name, body)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("a handler that exits fails the invocation and is replaced", func(t *testing.T) {
		hdr, body := invoke(t, base, "fake", `{"name": "carol", "exit": true}`)
		if hdr.Get("X-Amz-Function-Error") != "Unhandled" || !strings.Contains(string(body), "Runtime.ExitError") {
			t.Errorf("exit: header %q body %s, want Unhandled Runtime.ExitError", hdr.Get("X-Amz-Function-Error"), body)
		}
		_, body = invoke(t, base, "fake", `{"name": "dave"}`)
		if !strings.Contains(string(body), `"name":"dave"`) {
			t.Errorf("after exit: %s", body)
		}
	})

	t.Run("a handler that exits at start fails the invocation", func(t *testing.T) {
		hdr, body := invoke(t, base, "broken", `{}`)
		if hdr.Get("X-Amz-Function-Error") != "Unhandled" || !strings.Contains(string(body), "before taking the invocation") {
			t.Errorf("got header %q body %s, want Unhandled Runtime.ExitError", hdr.Get("X-Amz-Function-Error"), body)
		}
		if !strings.Contains(fx.proxy.Logs(), "fakehandler: missing configuration") {
			t.Errorf("the handler's message is not in the logs:\n%s", fx.proxy.Logs())
		}
	})

	t.Run("worker output is captured", func(t *testing.T) {
		if logs := fx.proxy.Logs(); !strings.Contains(logs, `"name":"alice"`) || !strings.Contains(logs, "[fake/") {
			t.Errorf("logs do not hold the handler's line:\n%s", logs)
		}
	})

	t.Run("invokes are recorded", func(t *testing.T) {
		n := 0
		for _, c := range fx.proxy.Calls(0) {
			if c.Service == "lambda" && c.Action == "Invoke" && c.Function == "fake" {
				n++
			}
		}
		if n < 24 {
			t.Errorf("recorded %d invokes of fake, want at least 24", n)
		}
	})
}

func TestInvokeUnknownHandlerBinaryFailsTheInvocation(t *testing.T) {
	fx := newFixture(t, t.TempDir())
	hdr, body := invoke(t, fx.proxy.URL(), "fake", `{}`)
	if hdr.Get("X-Amz-Function-Error") != "Unhandled" || !strings.Contains(string(body), "fake-dir") {
		t.Errorf("got header %q body %s, want an Unhandled error naming the missing binary", hdr.Get("X-Amz-Function-Error"), body)
	}
}

func stsClient(base, key string) *sts.Client {
	return sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(base), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(key, "secret", "")})
}

func ssmClient(base, key, region string) *ssm.Client {
	return ssm.New(ssm.Options{Region: region, BaseEndpoint: aws.String(base), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(key, "secret", "")})
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestAssumeRole(t *testing.T) {
	fx := newFixture(t, t.TempDir())
	fx.proxy.SetScenario(proxy.Scenario{RoleMissing: map[string]bool{"555555555555": true},
		ExternalID: "ext-1", EnforceExternalID: true})
	ctx := context.Background()
	client := stsClient(fx.proxy.URL(), "AKIDHUB")
	assume := func(account, externalID string) (*sts.AssumeRoleOutput, error) {
		return client.AssumeRole(ctx, &sts.AssumeRoleInput{
			RoleArn: aws.String(contract.SpokeRoleARN("aws", account, "PatchExecRole")), RoleSessionName: aws.String("t"),
			ExternalId: aws.String(externalID)})
	}

	if _, err := assume("555555555555", "ext-1"); errorCode(err) != "AccessDenied" {
		t.Errorf("missing role: err = %v, want AccessDenied", err)
	}
	if _, err := assume("222222222222", "wrong"); errorCode(err) != "AccessDenied" {
		t.Errorf("wrong ExternalId: err = %v, want AccessDenied", err)
	}
	out, err := assume("222222222222", "ext-1")
	if err != nil {
		t.Fatalf("good assumption: %v", err)
	}
	key := aws.ToString(out.Credentials.AccessKeyId)
	// A call made with the returned keys acts in the role's account.
	_, _ = ssmClient(fx.proxy.URL(), key, "eu-west-1").DescribeDocument(ctx, &ssm.DescribeDocumentInput{Name: aws.String("x")})

	calls := fx.proxy.Calls(0)
	if len(calls) != 4 {
		t.Fatalf("recorded %d calls, want 4: %+v", len(calls), calls)
	}
	for i, want := range []struct{ target, externalID, refused string }{
		{"555555555555", "ext-1", "role missing"}, {"222222222222", "wrong", "wrong ExternalId"}, {"222222222222", "ext-1", ""},
	} {
		c := calls[i]
		if c.Service != "sts" || c.Action != "AssumeRole" || c.TargetAccount() != want.target ||
			c.ExternalID != want.externalID || c.Refused != want.refused || c.Account != proxy.DefaultHubAccount {
			t.Errorf("call %d = %+v, want AssumeRole into %s with ExternalId %s refused %q", i, c, want.target, want.externalID, want.refused)
		}
	}
	last := calls[3]
	if last.Account != "222222222222" || last.Region != "eu-west-1" || last.Service != "ssm" || last.Action != "DescribeDocument" ||
		!strings.Contains(last.Principal, "assumed-role/PatchExecRole") {
		t.Errorf("spoke call = %+v, want ssm DescribeDocument in 222222222222/eu-west-1 by the assumed role", last)
	}
	if fx.moto.forwarded.Load() != 1 {
		t.Errorf("moto saw %d forwarded calls, want 1", fx.moto.forwarded.Load())
	}
}

func TestSSMSimulation(t *testing.T) {
	fx := newFixture(t, t.TempDir())
	// Commands run for an hour: nothing ends during the test's reads.
	fx.proxy.SetScenario(proxy.Scenario{PatchDuration: time.Hour})
	for i, outcome := range []string{"success", "success", "failed", "timeout", "unmanaged"} {
		fx.proxy.AddInstance(proxy.Instance{ID: fmt.Sprintf("i-%d", i), Account: proxy.DefaultHubAccount,
			Region: "us-east-1", Outcome: outcome, Running: true})
	}
	fx.proxy.AddInstance(proxy.Instance{ID: "i-stopped", Account: proxy.DefaultHubAccount, Region: "us-east-1", Running: false})
	fx.proxy.AddInstance(proxy.Instance{ID: "i-west", Account: proxy.DefaultHubAccount, Region: "us-west-2", Outcome: "success", Running: true})
	ctx := context.Background()
	c := ssmClient(fx.proxy.URL(), "AKIDHUB", "us-east-1")

	t.Run("DescribeInstanceInformation lists managed running instances, filtered and paginated", func(t *testing.T) {
		var ids []string
		pages := 0
		pg := ssm.NewDescribeInstanceInformationPaginator(c, &ssm.DescribeInstanceInformationInput{MaxResults: aws.Int32(2)})
		for pg.HasMorePages() {
			out, err := pg.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, in := range out.InstanceInformationList {
				if in.PingStatus != ssmtypes.PingStatusOnline {
					t.Errorf("%s ping status %s", aws.ToString(in.InstanceId), in.PingStatus)
				}
				ids = append(ids, aws.ToString(in.InstanceId))
			}
		}
		if strings.Join(ids, ",") != "i-0,i-1,i-2,i-3" || pages != 2 {
			t.Errorf("got %v in %d pages, want i-0..i-3 in 2 pages", ids, pages)
		}
		out, err := c.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{
			Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{"i-1", "i-4", "i-stopped"}}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.InstanceInformationList) != 1 || aws.ToString(out.InstanceInformationList[0].InstanceId) != "i-1" {
			t.Errorf("filtered: %+v, want only i-1", out.InstanceInformationList)
		}
	})

	t.Run("SendCommand refuses an unmanaged instance", func(t *testing.T) {
		_, err := c.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String(contract.PatchDocument), InstanceIds: []string{"i-0", "i-4"}})
		if errorCode(err) != "InvalidInstanceId" {
			t.Errorf("err = %v, want InvalidInstanceId", err)
		}
	})

	sent := []string{"i-0", "i-1", "i-2", "i-3"}
	out, err := c.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String(contract.PatchDocument),
		InstanceIds: sent, Parameters: map[string][]string{"Operation": {"Install"}}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.Command.CommandId)
	if got := strings.Join(out.Command.InstanceIds, ","); got != strings.Join(sent, ",") {
		t.Errorf("SendCommand answer lists %s, want the instances sent", got)
	}

	t.Run("ListCommands answers InProgress until the patch duration passed", func(t *testing.T) {
		for read := 1; read <= 3; read++ {
			lc, err := c.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(id)})
			if err != nil {
				t.Fatal(err)
			}
			if len(lc.Commands) != 1 || lc.Commands[0].Status != ssmtypes.CommandStatusInProgress {
				t.Fatalf("read %d: %+v, want one InProgress command", read, lc.Commands)
			}
		}
	})

	// From here on commands end at once (a compressed clock).
	fx.proxy.SetScenario(proxy.Scenario{PatchDuration: time.Hour, SimulatedSecondsPerSecond: 1e12})
	out, err = c.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String(contract.PatchDocument),
		InstanceIds: sent, Parameters: map[string][]string{"Operation": {"Install"}}})
	if err != nil {
		t.Fatal(err)
	}
	id = aws.ToString(out.Command.CommandId)

	t.Run("ListCommands answers Failed with counts once the clock passed the duration", func(t *testing.T) {
		lc, err := c.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		if len(lc.Commands) != 1 {
			t.Fatalf("%d commands", len(lc.Commands))
		}
		cmd := lc.Commands[0]
		if cmd.Status != ssmtypes.CommandStatusFailed || cmd.TargetCount != 4 || cmd.CompletedCount != 4 || cmd.ErrorCount != 2 {
			t.Errorf("%s target %d completed %d errors %d, want Failed 4/4/2", cmd.Status, cmd.TargetCount, cmd.CompletedCount, cmd.ErrorCount)
		}
	})

	t.Run("ListCommandInvocations pages every sent instance with its outcome", func(t *testing.T) {
		got := map[string]string{}
		pg := ssm.NewListCommandInvocationsPaginator(c, &ssm.ListCommandInvocationsInput{CommandId: aws.String(id), MaxResults: aws.Int32(3), Details: true})
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, inv := range page.CommandInvocations {
				got[aws.ToString(inv.InstanceId)] = string(inv.Status)
			}
		}
		want := map[string]string{"i-0": "Success", "i-1": "Success", "i-2": "Failed", "i-3": "TimedOut"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("invocations %v, want %v", got, want)
		}
	})

	t.Run("GetCommandInvocation answers sent instances only", func(t *testing.T) {
		inv, err := c.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(id), InstanceId: aws.String("i-2")})
		if err != nil {
			t.Fatal(err)
		}
		if inv.Status != ssmtypes.CommandInvocationStatusFailed || inv.ResponseCode != 1 {
			t.Errorf("i-2: %s %d, want Failed 1", inv.Status, inv.ResponseCode)
		}
		_, err = c.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(id), InstanceId: aws.String("i-west")})
		if errorCode(err) != "InvocationDoesNotExist" {
			t.Errorf("unsent instance: err = %v, want InvocationDoesNotExist", err)
		}
	})

	t.Run("SendCommand is recorded with its parameters", func(t *testing.T) {
		var sends []proxy.Call
		for _, call := range fx.proxy.Calls(0) {
			if call.Action == "SendCommand" && call.Refused == "" {
				sends = append(sends, call)
			}
		}
		if len(sends) != 2 || strings.Join(sends[0].InstanceIDs, ",") != strings.Join(sent, ",") ||
			strings.Join(sends[0].Param("Parameters", "Operation"), ",") != "Install" {
			t.Errorf("recorded sends %+v", sends)
		}
	})
}

func TestThrottleFault(t *testing.T) {
	fx := newFixture(t, t.TempDir())
	f := proxy.Throttle("ssm", "DescribeDocument", 2)
	fx.proxy.SetScenario(proxy.Scenario{Faults: []*proxy.Fault{f}})
	c := ssmClient(fx.proxy.URL(), "AKIDHUB", "us-east-1")
	ctx := context.Background()
	var codes []string
	for range 3 {
		_, err := c.DescribeDocument(ctx, &ssm.DescribeDocumentInput{Name: aws.String("x")})
		codes = append(codes, errorCode(err))
	}
	if strings.Join(codes, ",") != "ThrottlingException,ThrottlingException," || f.Hits() != 2 {
		t.Errorf("codes %v hits %d, want two throttles then a pass", codes, f.Hits())
	}
	// The forwarded call reached moto unchanged and came back with its headers.
	if fx.moto.forwarded.Load() != 1 {
		t.Errorf("moto saw %d calls, want 1", fx.moto.forwarded.Load())
	}
}

func TestForwardKeepsBodyAndMarksUnsignedRequestsAsS3(t *testing.T) {
	fx := newFixture(t, t.TempDir())
	resp, err := http.Post(fx.proxy.URL()+"/bucket/key", "application/octet-stream", bytes.NewReader([]byte("data")))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("X-Fake-Moto") != "yes" {
		t.Errorf("response did not come from upstream: %v", resp.Header)
	}
	calls := fx.proxy.Calls(0)
	if len(calls) != 1 || calls[0].Service != "s3" || calls[0].Account != proxy.DefaultHubAccount {
		t.Errorf("calls %+v, want one s3 call in the hub", calls)
	}
}

func TestRewriteAPIGatewayURL(t *testing.T) {
	tests := []struct{ link, want, err string }{
		{"https://abc123.execute-api.us-east-1.amazonaws.com/prod/approvals/x1?decision=approve&expires=9&signature=ff",
			"http://127.0.0.1:9/_apigw/abc123/prod/approvals/x1?decision=approve&expires=9&signature=ff", ""},
		{"https://abc123.execute-api.cn-north-1.amazonaws.com.cn/None/approvals/x%2F1",
			"http://127.0.0.1:9/_apigw/abc123/None/approvals/x%2F1", ""},
		{"https://example.com/prod/approvals/x", "", "not an execute-api URL"},
		{"https://abc.execute-api.us-east-1.amazonaws.com", "", "names no stage"},
	}
	for _, tt := range tests {
		got, err := proxy.RewriteAPIGatewayURL("http://127.0.0.1:9/", tt.link)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("RewriteAPIGatewayURL(%q) error = %v, want one containing %q", tt.link, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("RewriteAPIGatewayURL(%q) = %q, %v; want %q", tt.link, got, err, tt.want)
		}
	}
}

func TestAPIGatewayRoute(t *testing.T) {
	fx := newFixture(t, fakeHandlers(t))
	link, err := fx.proxy.APIGatewayURL("https://api1.execute-api.us-east-1.amazonaws.com/prod/approvals/ab%2Dc?decision=reject&expires=5")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a form POST reaches the integration's function as a proxy event", func(t *testing.T) {
		resp, err := http.Post(link, "application/x-www-form-urlencoded", strings.NewReader("approver=ann&decision=reject"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 299 || resp.Header.Get("X-Fake") != "api" {
			t.Fatalf("status %d header %q body %s, want the function's 299 and headers", resp.StatusCode, resp.Header.Get("X-Fake"), body)
		}
		var got events.APIGatewayProxyRequest
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("body %s: %v", body, err)
		}
		if got.HTTPMethod != "POST" || got.Resource != "/approvals/{approvalId}" || got.Path != "/approvals/ab-c" ||
			got.PathParameters["approvalId"] != "ab-c" || got.QueryStringParameters["decision"] != "reject" || got.QueryStringParameters["expires"] != "5" ||
			got.Body != "approver=ann&decision=reject" || got.RequestContext.Stage != "prod" ||
			got.RequestContext.Identity.SourceIP != "127.0.0.1" {
			t.Errorf("event = %+v", got)
		}
	})

	t.Run("unknown paths, methods and APIs get API Gateway's 403", func(t *testing.T) {
		base := fx.proxy.URL() + proxy.APIGatewayPrefix
		for _, tc := range []struct{ method, url string }{
			{http.MethodGet, base + "api1/prod/approvals"},
			{http.MethodDelete, base + "api1/prod/approvals/x"},
			{http.MethodGet, base + "api1/prod/approvals/x/y"},
			{http.MethodGet, base + "nope/prod/approvals/x"},
		} {
			req, _ := http.NewRequest(tc.method, tc.url, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s: status %d, want 403", tc.method, tc.url, resp.StatusCode)
			}
		}
	})

	t.Run("a literal resource wins over a parameter and a non-Lambda integration is a 500", func(t *testing.T) {
		resp, err := http.Get(fx.proxy.URL() + proxy.APIGatewayPrefix + "api1/prod/approvals/latest")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("status %d, want 500 from the MOCK integration of /approvals/latest", resp.StatusCode)
		}
	})

	t.Run("calls are recorded", func(t *testing.T) {
		n := 0
		for _, c := range fx.proxy.Calls(0) {
			if c.Service == "execute-api" && c.Action == "POST /approvals/{approvalId}" && c.Function == "fake" && c.Status == 299 {
				n++
			}
		}
		if n != 1 {
			t.Errorf("recorded %d API calls to the function, want 1", n)
		}
	})
}

func TestAlarmTriggerFiresOnceOnTheFirstSendCommandToItsAccount(t *testing.T) {
	fx := newFixture(t, t.TempDir())
	trigger := &proxy.AlarmTrigger{Account: "333333333333", Alarm: "fleet-health"}
	fx.proxy.SetScenario(proxy.Scenario{AlarmTriggers: []*proxy.AlarmTrigger{trigger}})
	ctx := context.Background()
	send := func(account string) {
		key := "AKIDHUB"
		if account != proxy.DefaultHubAccount {
			out, err := stsClient(fx.proxy.URL(), "AKIDHUB").AssumeRole(ctx, &sts.AssumeRoleInput{
				RoleArn: aws.String("arn:aws:iam::" + account + ":role/PatchExecRole"), RoleSessionName: aws.String("s")})
			if err != nil {
				t.Fatal(err)
			}
			key = aws.ToString(out.Credentials.AccessKeyId)
		}
		_, err := ssmClient(fx.proxy.URL(), key, "us-east-1").SendCommand(ctx, &ssm.SendCommandInput{
			DocumentName: aws.String("AWS-RunPatchBaseline"), InstanceIds: []string{"i-1"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	send("222222222222")
	if fired, _ := trigger.Fired(); fired {
		t.Fatal("the trigger fired for another account")
	}
	send("333333333333")
	send("333333333333")
	fired, err := trigger.Fired()
	if !fired || err != nil {
		t.Fatalf("Fired() = %v, %v; want true, nil", fired, err)
	}
	fx.moto.mu.Lock()
	defer fx.moto.mu.Unlock()
	if len(fx.moto.alarms) != 1 || fx.moto.alarms[0].Get("AlarmName") != "fleet-health" || fx.moto.alarms[0].Get("StateValue") != "ALARM" {
		t.Errorf("SetAlarmState calls = %v, want one setting fleet-health to ALARM", fx.moto.alarms)
	}
}

func TestCommandEndDeliversAStatusEventUnlessDropped(t *testing.T) {
	fx := newFixture(t, fakeHandlers(t))
	fx.proxy.SetScenario(proxy.Scenario{SimulatedSecondsPerSecond: 1e12, DropEventsFor: map[string]bool{"222222222222": true}})
	for _, in := range []proxy.Instance{
		{ID: "i-hub", Account: proxy.DefaultHubAccount, Region: "us-east-1", Outcome: "success", Running: true},
		{ID: "i-spoke", Account: "222222222222", Region: "us-west-2", Outcome: "failed", Running: true},
	} {
		fx.proxy.AddInstance(in)
	}
	ctx := context.Background()
	out, err := ssmClient(fx.proxy.URL(), "AKIDHUB", "us-east-1").SendCommand(ctx, &ssm.SendCommandInput{
		DocumentName: aws.String(contract.PatchDocument), InstanceIds: []string{"i-hub"}})
	if err != nil {
		t.Fatal(err)
	}
	// Keys for the spoke account come from an assumption.
	creds, err := stsClient(fx.proxy.URL(), "AKIDHUB").AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String("arn:aws:iam::222222222222:role/PatchExecRole"), RoleSessionName: aws.String("t")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ssmClient(fx.proxy.URL(), aws.ToString(creds.Credentials.AccessKeyId), "us-west-2").SendCommand(ctx,
		&ssm.SendCommandInput{DocumentName: aws.String(contract.PatchDocument), InstanceIds: []string{"i-spoke"}}); err != nil {
		t.Fatal(err)
	}
	// Both commands end at once; wait for their events to be handled.
	for st := fx.proxy.EventStats(); st.Delivered+st.Dropped < 2; st = fx.proxy.EventStats() {
		time.Sleep(10 * time.Millisecond)
	}
	if st := fx.proxy.EventStats(); st != (proxy.EventStats{Delivered: 1, Dropped: 1}) {
		t.Errorf("event stats %+v, want one delivered (hub account) and one dropped (222222222222)", st)
	}
	var delivered []proxy.Call
	for _, c := range fx.proxy.Calls(0) {
		if c.Action == "Invoke" && c.Principal == proxy.EventPrincipal {
			delivered = append(delivered, c)
		}
	}
	if len(delivered) != 1 {
		t.Fatalf("recorded %d event invocations, want 1", len(delivered))
	}
	ev := delivered[0]
	detail, _ := ev.Params["detail"].(map[string]any)
	if ev.Function != "events" || ev.Params["source"] != contract.EventSourceSSM || ev.Params["detail-type"] != contract.DetailTypeCommandState ||
		ev.Params["account"] != proxy.DefaultHubAccount || detail["command-id"] != aws.ToString(out.Command.CommandId) ||
		detail["status"] != "Success" || detail["document-name"] != contract.PatchDocument {
		t.Errorf("delivered event %+v to %s, want the hub command's Success event to CommandStatusEvents", ev.Params, ev.Function)
	}
}
