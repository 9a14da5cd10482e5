// Package proxy is the emulator's test proxy. It sits on the port where
// moto's Step Functions interpreter sends its integration calls and where the
// Lambda handlers send their SDK calls. It runs Lambda invocations with the
// real handler binaries under a Lambda Runtime API of its own, simulates the
// SSM calls moto lacks from the scenario fleet, refuses role assumptions the
// way AWS would, injects faults, records every call, and forwards everything
// else to moto unchanged.
package proxy

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DefaultHubAccount is the account moto gives to keys it did not issue.
const DefaultHubAccount = "123456789012"

// Config sets up a proxy.
type Config struct {
	// Upstream is moto's base URL, e.g. "http://127.0.0.1:5000".
	Upstream string
	// HandlersDir holds one executable per handler, named by the function's
	// EnvHandler value.
	HandlersDir string
	// HubAccount is the account of requests signed with keys AssumeRole did
	// not return. Default: DefaultHubAccount.
	HubAccount string
	// HubRegion is where the REST APIs served under APIGatewayPrefix and
	// the alarms of AlarmTriggers live. Default: us-east-1.
	HubRegion string
	// MaxWorkers bounds the handler processes per function. Default: 8.
	MaxWorkers int
	// Logs receives, besides the proxy's own buffer, every worker's output.
	Logs io.Writer
}

// Scenario is what the proxy simulates; tests may change it between runs.
type Scenario struct {
	// RoleMissing lists the accounts whose spoke role cannot be assumed.
	RoleMissing map[string]bool
	// ExternalID is the sts:ExternalId every spoke role requires; with
	// EnforceExternalID a different one is refused with AccessDenied.
	ExternalID        string
	EnforceExternalID bool
	// ExternalIDs overrides ExternalID per account: the ExternalId that
	// account's spoke role was deployed with (a spoke stack deployed with
	// a stale or mistyped external_id).
	ExternalIDs map[string]string
	// PatchTagKey, when set, is the spoke role's ssm:resourceTag condition
	// on SendCommand: a command naming any instance without this tag key
	// is refused with AccessDeniedException, as IAM would.
	PatchTagKey string
	// PatchDuration is how long, in simulated time, a command stays
	// InProgress before it ends. Default (0): DefaultPatchDuration.
	PatchDuration time.Duration
	// SimulatedSecondsPerSecond compresses the clock: a command ends after
	// PatchDuration / SimulatedSecondsPerSecond of real time. Default (0): 1.
	SimulatedSecondsPerSecond float64
	// DropEvents drops every command status-change event; DropEventsFor
	// drops those of the listed accounts only. A dropped event leaves the
	// target to the reconciler.
	DropEvents    bool
	DropEventsFor map[string]bool
	// ReconcileEvery is how often, in real time, the harness runs the
	// reconciler while a run is in progress (the schedule moto does not
	// run). Default (0): DefaultReconcileEvery.
	ReconcileEvery time.Duration
	// Faults are applied in order to every recorded call.
	Faults []*Fault
	// AlarmTriggers set CloudWatch alarms when a wave reaches an account.
	AlarmTriggers []*AlarmTrigger
}

// Instance is one EC2 instance the scenario knows, with what SSM does on it.
type Instance struct {
	ID      string
	Account string
	Region  string
	// Outcome is the fleet's outcome: success, failed, timeout or unmanaged.
	Outcome string
	Running bool
	// Tags are the instance's EC2 tags, which IAM's ssm:resourceTag
	// conditions read.
	Tags map[string]string
}

// Proxy is the test proxy. Create it with New, start it with Serve.
type Proxy struct {
	cfg    Config
	client *http.Client
	srv    *http.Server
	ln     net.Listener
	rec    recorder
	logs   *logSink
	rt     *runtime
	ssm    *ssmSim
	events *eventSink

	mu       sync.Mutex
	scenario Scenario
	keys     map[string]principal // access key -> who it belongs to
	// byHandler caches which function runs a handler (by EnvHandler).
	byHandler map[string]string
	local     map[string]LocalFunction // by function name
}

type principal struct {
	account string
	arn     string
}

// New returns a proxy that is not yet serving.
func New(cfg Config) *Proxy {
	if cfg.HubAccount == "" {
		cfg.HubAccount = DefaultHubAccount
	}
	if cfg.HubRegion == "" {
		cfg.HubRegion = "us-east-1"
	}
	if cfg.MaxWorkers <= 0 {
		cfg.MaxWorkers = 8
	}
	p := &Proxy{
		cfg: cfg,
		client: &http.Client{Transport: &http.Transport{
			Proxy: nil, MaxIdleConnsPerHost: 32, IdleConnTimeout: 30 * time.Second,
		}},
		logs: &logSink{tee: cfg.Logs},
		keys: map[string]principal{},

		byHandler: map[string]string{},
		local:     map[string]LocalFunction{},
	}
	p.rt = newRuntime(p)
	p.ssm = newSSMSim()
	p.events = &eventSink{}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	return p
}

// Listen opens a listener on a free loopback port.
func Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy: listen: %w", err)
	}
	return ln, nil
}

// Serve starts serving on ln in the background.
func (p *Proxy) Serve(ln net.Listener) {
	p.ln = ln
	go func() { _ = p.srv.Serve(ln) }()
}

// Addr is the host:port the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is the proxy's base URL.
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// Close kills every worker and stops the server.
func (p *Proxy) Close() error {
	p.ssm.stopTimers()
	p.rt.close()
	return p.srv.Close()
}

// SetScenario replaces the scenario.
func (p *Proxy) SetScenario(s Scenario) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.scenario = s
}

// Scenario returns the current scenario.
func (p *Proxy) Scenario() Scenario {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.scenario
}

// AddInstance tells the proxy about one instance of the fleet.
func (p *Proxy) AddInstance(in Instance) { p.ssm.addInstance(in) }

// Calls returns every recorded call from sequence number seq on.
func (p *Proxy) Calls(seq int) []Call { return p.rec.since(seq) }

// Mark returns the sequence number the next call will get.
func (p *Proxy) Mark() int { return p.rec.len() }

// Logs returns everything the workers wrote.
func (p *Proxy) Logs() string { return p.logs.String() }

// LogMark is the number of handler output lines so far: pass it to
// LogLines to read what a run wrote.
func (p *Proxy) LogMark() int { return p.logs.count() }

// LogLines returns every line the handler processes wrote since mark.
func (p *Proxy) LogLines(mark int) []LogLine { return p.logs.since(mark) }

// ResetSSM forgets the simulated commands (not the instances).
func (p *Proxy) ResetSSM() { p.ssm.resetCommands() }

// ServeHTTP routes one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, runtimePrefix) {
		p.rt.serveRuntime(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, APIGatewayPrefix) {
		p.serveAPIGateway(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "proxy: read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	call := p.describe(r, body)
	rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		call.Status = rw.status
		p.rec.add(call)
	}()

	if f := p.fault(&call); f != nil {
		call.Refused = f.name()
		f.reply(rw, call.Service)
		return
	}
	switch {
	case call.Service == "lambda" && call.Action == "Invoke":
		p.rt.invoke(rw, r, body, &call)
	case call.Service == "monitoring" && call.Action == "DescribeAlarms" && call.Params == nil && call.Form == nil:
		p.describeAlarmsCBOR(rw, r, body, &call)
	case call.Service == "sts" && call.Action == "AssumeRole":
		p.assumeRole(rw, r, body, &call)
	case call.Service == "ssm" && p.ssm.handles(call.Action):
		if call.Action == "SendCommand" {
			p.fireAlarmTriggers(r.Context(), call.Account)
		}
		p.simulateSSM(rw, r, body, &call)
	default:
		p.forward(rw, r, body)
	}
}

// describe builds the call record of a request.
func (p *Proxy) describe(r *http.Request, body []byte) Call {
	c := Call{Time: time.Now(), Account: p.cfg.HubAccount, Region: "us-east-1"}
	scope, signed := ParseScope(r)
	if signed {
		c.Region, c.Service, c.AccessKey = scope.Region, scope.Service, scope.AccessKey
		p.mu.Lock()
		if who, ok := p.keys[scope.AccessKey]; ok {
			c.Account, c.Principal = who.account, who.arn
		}
		p.mu.Unlock()
	} else {
		c.Service = "s3" // moto routes a request without SigV4 to S3
	}
	if c.Principal == "" {
		c.Principal = p.rt.principalOf(c.AccessKey)
	}
	ct := r.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/x-www-form-urlencoded"):
		c.Form, _ = url.ParseQuery(string(body))
	case strings.Contains(ct, "json") && c.Service != "s3":
		c.Params = decodeJSONObject(body)
	}
	c.Action = actionOf(r, c.Service, c.Form)
	if op, ok := cloudWatchRPCOperation(r); ok && c.Service == "monitoring" {
		c.Action = op
	}
	c.InstanceIDs = instanceIDs(c.Params, c.Form)
	c.Path = r.URL.Path
	if c.Action == "AssumeRole" {
		c.RoleARN, c.ExternalID = c.Form.Get("RoleArn"), c.Form.Get("ExternalId")
	}
	return c
}

// forward sends the request to moto unchanged and copies the answer back.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	status, header, respBody, err := p.roundTrip(r.Context(), r, body)
	if err != nil {
		http.Error(w, "proxy: upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	copyHeader(w.Header(), header)
	w.WriteHeader(status)
	_, _ = w.Write(respBody)
}

func (p *Proxy) roundTrip(ctx context.Context, r *http.Request, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, r.Method, p.cfg.Upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	copyHeader(req.Header, r.Header)
	req.Host = r.Host
	req.ContentLength = int64(len(body))
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, respBody, nil
}

var hopHeaders = map[string]bool{"Connection": true, "Keep-Alive": true, "Transfer-Encoding": true,
	"Te": true, "Trailer": true, "Upgrade": true, "Proxy-Connection": true, "Content-Length": true}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		if hopHeaders[http.CanonicalHeaderKey(k)] {
			continue
		}
		for _, v := range vs {
			dst.Add(k, v)
		}
	}
}

// assumeRole refuses what AWS would refuse, forwards the rest and learns
// which account the returned keys act in.
func (p *Proxy) assumeRole(w http.ResponseWriter, r *http.Request, body []byte, call *Call) {
	account := arnAccount(call.RoleARN)
	s := p.Scenario()
	switch {
	case s.RoleMissing[account]:
		call.Refused = "role missing"
		writeSTSAccessDenied(w, call.Principal, call.RoleARN)
		return
	case s.EnforceExternalID && call.ExternalID != s.requiredExternalID(account):
		call.Refused = "wrong ExternalId"
		writeSTSAccessDenied(w, call.Principal, call.RoleARN)
		return
	}
	status, header, respBody, err := p.roundTrip(r.Context(), r, body)
	if err != nil {
		http.Error(w, "proxy: upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	if status == http.StatusOK {
		if key, arn, err := parseAssumeRole(respBody); err == nil {
			p.mu.Lock()
			p.keys[key] = principal{account: account, arn: arn}
			p.mu.Unlock()
		}
	}
	copyHeader(w.Header(), header)
	w.WriteHeader(status)
	_, _ = w.Write(respBody)
}

// requiredExternalID is the ExternalId the account's spoke role trusts.
func (s Scenario) requiredExternalID(account string) string {
	if id, ok := s.ExternalIDs[account]; ok {
		return id
	}
	return s.ExternalID
}

type assumeRoleResponse struct {
	Result struct {
		Credentials struct {
			AccessKeyID string `xml:"AccessKeyId"`
		} `xml:"Credentials"`
		AssumedRoleUser struct {
			ARN string `xml:"Arn"`
		} `xml:"AssumedRoleUser"`
	} `xml:"AssumeRoleResult"`
}

func parseAssumeRole(body []byte) (key, arn string, err error) {
	var resp assumeRoleResponse
	if err := xml.Unmarshal(body, &resp); err != nil {
		return "", "", fmt.Errorf("assume role response: %w", err)
	}
	if resp.Result.Credentials.AccessKeyID == "" {
		return "", "", errors.New("assume role response has no access key")
	}
	return resp.Result.Credentials.AccessKeyID, resp.Result.AssumedRoleUser.ARN, nil
}

// writeSTSAccessDenied answers as STS does when a role does not exist or
// does not trust the caller.
func writeSTSAccessDenied(w http.ResponseWriter, caller, roleARN string) {
	if caller == "" {
		caller = "arn:aws:sts::" + DefaultHubAccount + ":assumed-role/unknown/session"
	}
	msg := fmt.Sprintf("User: %s is not authorized to perform: sts:AssumeRole on resource: %s", caller, roleARN)
	writeQueryError(w, http.StatusForbidden, "Sender", "AccessDenied", msg)
}

func writeQueryError(w http.ResponseWriter, status int, typ, code, msg string) {
	var b bytes.Buffer
	b.WriteString(`<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>`)
	_ = xml.EscapeText(&b, []byte(typ))
	b.WriteString(`</Type><Code>`)
	_ = xml.EscapeText(&b, []byte(code))
	b.WriteString(`</Code><Message>`)
	_ = xml.EscapeText(&b, []byte(msg))
	b.WriteString(`</Message></Error><RequestId>`)
	b.WriteString(newID())
	b.WriteString(`</RequestId></ErrorResponse>`)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
