package emulator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/test/fleet"
	"github.com/ec2patch/ec2patch/test/proxy"
)

// inboxQueue is the SQS queue the harness subscribes to the hub's topic:
// moto's CloudFormation skips AWS::SNS::Subscription, and a queue is the
// only way to read what was published.
const inboxQueue = "ec2patch-emulator-inbox"

// Message is one notification the hub published to its topic.
type Message struct {
	Subject  string
	Body     string
	Received time.Time
}

// inbox collects the topic's messages as they arrive.
type inbox struct {
	mu       sync.Mutex
	messages []Message
	changed  chan struct{} // closed and replaced on every new message
	stop     context.CancelFunc
	done     chan struct{}
}

func (b *inbox) add(m Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.messages = append(b.messages, m)
	close(b.changed)
	b.changed = make(chan struct{})
}

// snapshot returns the messages and a channel closed on the next one.
func (b *inbox) snapshot() ([]Message, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.messages), b.changed
}

// Messages returns every message published to the hub's topic so far.
func (h *Harness) Messages() []Message {
	if h.inbox == nil {
		return nil
	}
	m, _ := h.inbox.snapshot()
	return m
}

// startInbox subscribes a queue to the hub's topic and drains it in the
// background.
func (h *Harness) startInbox(ctx context.Context) error {
	topic := h.Outputs[contract.OutputTopicARN]
	if topic == "" {
		return fmt.Errorf("emulator: hub stack has no %s output", contract.OutputTopicARN)
	}
	q := sqs.NewFromConfig(h.hub)
	created, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(inboxQueue)})
	if err != nil {
		return fmt.Errorf("emulator: inbox queue: %w", err)
	}
	queueURL := aws.ToString(created.QueueUrl)
	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return fmt.Errorf("emulator: inbox queue: %w", err)
	}
	// Not raw: the envelope keeps the Subject.
	if _, err := sns.NewFromConfig(h.hub).Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(topic),
		Protocol: aws.String("sqs"), Endpoint: aws.String(attrs.Attributes["QueueArn"])}); err != nil {
		return fmt.Errorf("emulator: subscribe the inbox to %s: %w", topic, err)
	}
	loopCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	h.inbox = &inbox{changed: make(chan struct{}), stop: stop, done: make(chan struct{})}
	go h.drain(loopCtx, q, queueURL)
	return nil
}

func (h *Harness) drain(ctx context.Context, q *sqs.Client, queueURL string) {
	defer close(h.inbox.done)
	for ctx.Err() == nil {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10})
		if err == nil && len(out.Messages) > 0 {
			for _, m := range out.Messages {
				h.inbox.add(decodeNotification(aws.ToString(m.Body)))
				_, _ = q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle})
			}
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// decodeNotification reads an SNS envelope (or a raw message).
func decodeNotification(body string) Message {
	var env struct {
		Type    string
		Subject string
		Message string
	}
	if json.Unmarshal([]byte(body), &env) == nil && env.Type == "Notification" {
		return Message{Subject: env.Subject, Body: env.Message, Received: time.Now()}
	}
	return Message{Body: body, Received: time.Now()}
}

// ApprovalLinks are the two signed links of an approval message.
type ApprovalLinks struct {
	ApprovalID string
	Approve    string
	Reject     string
}

var linkRe = regexp.MustCompile(`https?://[^\s"'<>]+\?[^\s"'<>]*decision=(approve|reject)[^\s"'<>]*`)

// ParseApprovalLinks extracts the approve and reject links of an approval
// message; ok is false when the message has neither.
func ParseApprovalLinks(body string) (ApprovalLinks, bool) {
	var l ApprovalLinks
	for _, m := range linkRe.FindAllStringSubmatch(body, -1) {
		link := strings.TrimRight(m[0], ".,;)")
		u, err := url.Parse(link)
		if err != nil {
			continue
		}
		switch u.Query().Get("decision") {
		case contract.DecisionApprove:
			l.Approve = link
		case contract.DecisionReject:
			l.Reject = link
		}
		l.ApprovalID = u.Path[strings.LastIndexByte(u.Path, '/')+1:]
	}
	return l, l.Approve != "" || l.Reject != ""
}

// ApprovalMessage is an approval request found in the inbox.
type ApprovalMessage struct {
	Message
	RunID  string
	WaveID string
	Links  ApprovalLinks
}

// findApproval returns the approval message of run's wave among msgs (the
// message names the run, the wave and carries links).
func findApproval(msgs []Message, run contract.Run, waveID string) (ApprovalMessage, bool) {
	for _, m := range msgs {
		links, ok := ParseApprovalLinks(m.Body)
		if !ok {
			continue
		}
		text := m.Subject + "\n" + m.Body
		if !containsWord(text, run.RunID) {
			continue
		}
		if waveID != "" && !containsWord(text, waveID) {
			continue
		}
		return ApprovalMessage{Message: m, RunID: run.RunID, WaveID: waveID, Links: links}, true
	}
	return ApprovalMessage{}, false
}

// containsWord reports whether word occurs in text not as part of a longer
// identifier.
func containsWord(text, word string) bool {
	ident := func(b byte) bool {
		return b == '-' || b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
	}
	for i := 0; ; {
		j := strings.Index(text[i:], word)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(word)
		if (start == 0 || !ident(text[start-1])) && (end == len(text) || !ident(text[end])) {
			return true
		}
		i = start + 1
	}
}

// WaitForApproval waits until the approval message of a run's wave
// arrives.
func (h *Harness) WaitForApproval(ctx context.Context, run contract.Run, waveID string) (ApprovalMessage, error) {
	return h.waitForApproval(ctx, run, waveID, 0)
}

// InboxMark is the number of messages received so far: pass it to
// WaitForApprovalSince to ignore earlier runs' messages.
func (h *Harness) InboxMark() int { return len(h.Messages()) }

// WaitForApprovalSince is WaitForApproval among the messages from mark on.
func (h *Harness) WaitForApprovalSince(ctx context.Context, run contract.Run, waveID string, mark int) (ApprovalMessage, error) {
	return h.waitForApproval(ctx, run, waveID, mark)
}

func (h *Harness) waitForApproval(ctx context.Context, run contract.Run, waveID string, from int) (ApprovalMessage, error) {
	if h.inbox == nil {
		return ApprovalMessage{}, fmt.Errorf("emulator: no inbox")
	}
	for {
		msgs, changed := h.inbox.snapshot()
		if m, ok := findApproval(msgs[min(from, len(msgs)):], run, waveID); ok {
			return m, nil
		}
		select {
		case <-ctx.Done():
			return ApprovalMessage{}, fmt.Errorf("emulator: no approval message for run %s wave %s: %w", run.RunID, waveID, ctx.Err())
		case <-changed:
		}
	}
}

// Page is one answer of the approval API.
type Page struct {
	Status int
	Header http.Header
	Body   string
}

// Click sends method to an approval link (rewritten to the proxy's API
// route), with form as the body of a POST.
func (h *Harness) Click(ctx context.Context, method, link string, form url.Values) (Page, error) {
	target, err := h.Proxy.APIGatewayURL(link)
	if err != nil {
		return Page{}, err
	}
	var body io.Reader
	if method == http.MethodPost {
		u, err := url.Parse(target)
		if err != nil {
			return Page{}, err
		}
		u.RawQuery = ""
		target, body = u.String(), strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return Page{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Page{}, fmt.Errorf("emulator: %s %s: %w", method, link, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return Page{Status: resp.StatusCode, Header: resp.Header, Body: string(data)}, err
}

// LinkForm is the form a POST of link sends: the link's signed fields and
// the approver.
func LinkForm(link, approver string) url.Values {
	form := url.Values{}
	if u, err := url.Parse(link); err == nil {
		for k, vs := range u.Query() {
			form[k] = vs
		}
	}
	form.Set("approver", approver)
	return form
}

var inputRe = regexp.MustCompile(`(?is)<input\b[^>]*>`)
var attrRe = regexp.MustCompile(`(?is)\b(name|value|type)\s*=\s*("([^"]*)"|'([^']*)')`)

// FormFields reads the <input> fields of an approval page: hidden fields
// with their values, and the name of the field that takes the approver
// (the first text or e-mail input).
func FormFields(page string) (fields url.Values, approverField string) {
	fields = url.Values{}
	for _, in := range inputRe.FindAllString(page, -1) {
		attrs := map[string]string{}
		for _, a := range attrRe.FindAllStringSubmatch(in, -1) {
			attrs[strings.ToLower(a[1])] = htmlUnescape(a[3] + a[4])
		}
		name := attrs["name"]
		if name == "" {
			continue
		}
		switch strings.ToLower(attrs["type"]) {
		case "hidden":
			fields.Set(name, attrs["value"])
		case "", "text", "email":
			if approverField == "" {
				approverField = name
			}
		}
	}
	return fields, approverField
}

func htmlUnescape(s string) string {
	r := strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&quot;", `"`, "&#34;", `"`, "&#39;", "'", "&#x27;", "'")
	return r.Replace(s)
}

// Answer is one approval the harness answered, as the approver would.
type Answer struct {
	WaveID     string
	ApprovalID string
	Decision   string // approve, reject or timeout (not answered)
	Approver   string
	// GetStatus is the status of the GET of the link (the page with the
	// form); StatusAfterGet the approval record's status right after it;
	// PostStatus the status of the form's POST.
	GetStatus      int
	StatusAfterGet string
	PostStatus     int
	PostBody       string
	Err            error
}

// Approve answers an approval link as a person would: GET the link (a GET
// must not decide), then POST the page's form with the approver's name.
func (h *Harness) Approve(ctx context.Context, link, approver string) Answer {
	a := Answer{Approver: approver}
	if u, err := url.Parse(link); err == nil {
		a.Decision = u.Query().Get("decision")
		a.ApprovalID = u.Path[strings.LastIndexByte(u.Path, '/')+1:]
	}
	page, err := h.Click(ctx, http.MethodGet, link, nil)
	if err != nil {
		a.Err = err
		return a
	}
	a.GetStatus = page.Status
	if a.StatusAfterGet, err = h.ApprovalStatus(ctx, a.ApprovalID); err != nil {
		a.Err = err
		return a
	}
	form := LinkForm(link, approver)
	if fields, approverField := FormFields(page.Body); len(fields) > 0 && approverField != "" {
		form = fields
		form.Set(approverField, approver)
	}
	post, err := h.Click(ctx, http.MethodPost, link, form)
	if err != nil {
		a.Err = err
		return a
	}
	a.PostStatus, a.PostBody = post.Status, post.Body
	if a.PostStatus != http.StatusOK {
		a.Err = fmt.Errorf("emulator: POST %s answered %d: %s", link, post.Status, post.Body)
	}
	return a
}

// ApprovalStatus reads an approval record's status ("" when there is none).
func (h *Harness) ApprovalStatus(ctx context.Context, approvalID string) (string, error) {
	out, err := dynamodb.NewFromConfig(h.hub).GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(h.Outputs[contract.OutputTableName]), ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{
			contract.AttrPK: &ddbtypes.AttributeValueMemberS{Value: contract.ApprovalPK(approvalID)},
			contract.AttrSK: &ddbtypes.AttributeValueMemberS{Value: contract.SKApproval},
		}})
	if err != nil {
		return "", fmt.Errorf("emulator: read approval %s: %w", approvalID, err)
	}
	if s, ok := out.Item["status"].(*ddbtypes.AttributeValueMemberS); ok {
		return s.Value, nil
	}
	return "", nil
}

// answerApprovals answers, until ctx ends, the approval gates of run's
// waves from decisions (wave ID to approve, reject or timeout; a gated
// wave without a decision is not answered).
func (h *Harness) answerApprovals(ctx context.Context, run contract.Run, decisions map[string]string, from int, record func(Answer)) {
	for _, w := range run.Waves {
		if !w.Approval {
			continue
		}
		m, err := h.waitForApproval(ctx, run, w.WaveID, from)
		if err != nil {
			return // the run ended before this gate
		}
		d := decisions[w.WaveID]
		a := Answer{WaveID: w.WaveID, ApprovalID: m.Links.ApprovalID, Decision: fleet.ApprovalTimeout}
		switch d {
		case fleet.ApprovalApprove, fleet.ApprovalReject:
			link := m.Links.Approve
			if d == fleet.ApprovalReject {
				link = m.Links.Reject
			}
			a = h.Approve(ctx, link, "emulator-approver@example.com")
			a.WaveID = w.WaveID
		}
		h.logf("approval of %s wave %s: %s (GET %d, POST %d)", run.RunID, w.WaveID, a.Decision, a.GetStatus, a.PostStatus)
		record(a)
	}
}

// CreateAlarm creates a hub alarm (PutMetricAlarm) and sets its state.
func (h *Harness) CreateAlarm(ctx context.Context, name, state string) error {
	form := url.Values{"Action": {"PutMetricAlarm"}, "Version": {"2010-08-01"}, "AlarmName": {name},
		"Namespace": {"ec2patch/emulator"}, "MetricName": {name}, "Statistic": {"Sum"}, "Period": {"60"},
		"EvaluationPeriods": {"1"}, "Threshold": {"1"}, "ComparisonOperator": {"GreaterThanOrEqualToThreshold"}}
	if err := h.motoQuery(ctx, "monitoring", form); err != nil {
		return fmt.Errorf("emulator: create alarm %s: %w", name, err)
	}
	return h.SetAlarm(ctx, name, state)
}

// SetAlarm sets a hub alarm's state.
func (h *Harness) SetAlarm(ctx context.Context, name, state string) error {
	return h.Proxy.SetAlarmState(ctx, name, state, "emulator: set by the harness")
}

// createAlarms creates the fleet's alarms.
func (h *Harness) createAlarms(ctx context.Context) error {
	for _, name := range sortedNames(h.Fleet.Alarms) {
		if err := h.CreateAlarm(ctx, name, h.Fleet.Alarms[name]); err != nil {
			return err
		}
	}
	return nil
}

func sortedNames(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// FixAccount gives a role-missing account its spoke role: it deploys the
// spoke stack there if it was not deployed, lets AssumeRole through from
// now on, and makes the harness's fleet say so (Expected then counts the
// account's instances).
func (h *Harness) FixAccount(ctx context.Context, account string) error {
	a, ok := h.Fleet.Account(account)
	if !ok {
		return fmt.Errorf("emulator: account %s is not in the fleet", account)
	}
	if !a.RoleMissing {
		return nil
	}
	cfg, err := h.accountConfig(ctx, account, h.Params.Region)
	if err != nil {
		return err
	}
	h.logf("deploying %s in %s", h.Templates.SpokeStackName, account)
	if _, err := deployStack(ctx, cloudformation.NewFromConfig(cfg), h.Templates.SpokeStackName, h.Templates.Spoke); err != nil {
		return fmt.Errorf("emulator: spoke in %s: %w", account, err)
	}
	s := h.Proxy.Scenario()
	missing := map[string]bool{}
	for k, v := range s.RoleMissing {
		missing[k] = v && k != account
	}
	s.RoleMissing = missing
	h.Proxy.SetScenario(s)

	fixed := *h.Fleet
	fixed.Accounts = slices.Clone(h.Fleet.Accounts)
	for i := range fixed.Accounts {
		if fixed.Accounts[i].ID == account {
			fixed.Accounts[i].RoleMissing = false
		}
	}
	h.Fleet = &fixed
	return nil
}

// provideSecrets stands in for moto's CloudFormation, which skips
// AWS::SecretsManager::Secret (and so leaves every policy and variable that
// refers to the secret without a value): it creates each secret of the
// template through the API with a random value, replaces every Ref to it
// with the new ARN and removes the resource. The template is otherwise
// deployed as synthesized.
func (h *Harness) provideSecrets(ctx context.Context, stack string, template []byte) ([]byte, error) {
	var t map[string]any
	if err := json.Unmarshal(template, &t); err != nil {
		return nil, fmt.Errorf("emulator: %s template: %w", stack, err)
	}
	resources, _ := t["Resources"].(map[string]any)
	arns := map[string]string{}
	sm := secretsmanager.NewFromConfig(h.hub)
	for id, r := range resources {
		if r.(map[string]any)["Type"] != "AWS::SecretsManager::Secret" {
			continue
		}
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name: aws.String(stack + "-" + id), SecretString: aws.String(hex.EncodeToString(key))})
		if err != nil {
			return nil, fmt.Errorf("emulator: secret %s: %w", id, err)
		}
		arns[id] = aws.ToString(out.ARN)
		delete(resources, id)
		h.logf("created secret %s for %s (moto's CloudFormation has no AWS::SecretsManager::Secret)", id, stack)
	}
	if len(arns) == 0 {
		return template, nil
	}
	return json.Marshal(replaceRefs(t, arns))
}

// replaceRefs returns v with every {"Ref": id} of ids replaced by its value
// and every DependsOn entry naming one of them dropped.
func replaceRefs(v any, ids map[string]string) any {
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["Ref"].(string); ok && len(x) == 1 {
			if arn, ok := ids[ref]; ok {
				return arn
			}
		}
		for k, item := range x {
			if k == "DependsOn" {
				x[k] = dropDependencies(item, ids)
				continue
			}
			x[k] = replaceRefs(item, ids)
		}
	case []any:
		for i, item := range x {
			x[i] = replaceRefs(item, ids)
		}
	}
	return v
}

func dropDependencies(v any, ids map[string]string) any {
	switch x := v.(type) {
	case string:
		if _, ok := ids[x]; ok {
			return []any{}
		}
	case []any:
		kept := []any{}
		for _, d := range x {
			if name, ok := d.(string); ok {
				if _, drop := ids[name]; drop {
					continue
				}
			}
			kept = append(kept, d)
		}
		return kept
	}
	return v
}

// motoQuery sends a query-protocol request to moto as the hub.
func (h *Harness) motoQuery(ctx context.Context, service string, form url.Values) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.Moto.URL+"/", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("Authorization", harnessAuth(service, h.Params.Region))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("moto answered %d: %s", resp.StatusCode, data)
	}
	return nil
}

func harnessAuth(service, region string) string {
	return "AWS4-HMAC-SHA256 Credential=HARNESS/" + time.Now().UTC().Format("20060102") + "/" + region + "/" +
		service + "/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("0", 64)
}

// AlarmTrigger sets a hub alarm to ALARM when the first SendCommand to
// account is seen (a wave reaching it), for the after-wave alarm gate. The
// trigger stays in the proxy's scenario until remove is called.
func (h *Harness) AlarmTrigger(account, alarm string) (t *proxy.AlarmTrigger, remove func()) {
	t = &proxy.AlarmTrigger{Account: account, Alarm: alarm}
	s := h.Proxy.Scenario()
	s.AlarmTriggers = append(slices.Clone(s.AlarmTriggers), t)
	h.Proxy.SetScenario(s)
	return t, func() {
		s := h.Proxy.Scenario()
		s.AlarmTriggers = slices.DeleteFunc(slices.Clone(s.AlarmTriggers), func(x *proxy.AlarmTrigger) bool { return x == t })
		h.Proxy.SetScenario(s)
	}
}

// AnswerApprovals answers, in the background, the approval gates of the
// execution name started with input: decisions maps a wave ID to approve,
// reject or timeout (nil: the fleet's approvals). stop ends the answering
// and returns what was answered.
func (h *Harness) AnswerApprovals(ctx context.Context, input, name string, decisions map[string]string) (stop func() []Answer) {
	if decisions == nil {
		decisions = h.Fleet.Approvals
	}
	run, err := contract.Normalize([]byte(input), h.Params.RunDefaults(), h.Params.Waves, name, "")
	if err != nil {
		return func() []Answer { return nil } // PrepareRun refuses it: no gate opens
	}
	from := h.InboxMark()
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var answers []Answer
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.answerApprovals(ctx, run, decisions, from, func(a Answer) {
			mu.Lock()
			defer mu.Unlock()
			answers = append(answers, a)
		})
	}()
	return func() []Answer {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(answers)
	}
}
