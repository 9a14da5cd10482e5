package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SSM invocation outcomes as the fleet names them.
const (
	outcomeSuccess   = "success"
	outcomeFailed    = "failed"
	outcomeTimeout   = "timeout"
	outcomeUnmanaged = "unmanaged"
)

// ssmSim answers the SSM calls moto lacks or answers wrongly (every command
// Success at once, every instance of the region in each command) from the
// scenario's instances and the commands ec2patch sent.
type ssmSim struct {
	mu        sync.Mutex
	instances map[string]*Instance
	commands  map[string]*command
}

type command struct {
	ID           string
	Account      string
	Region       string
	InstanceIDs  []string // as sent, not as moto lists them
	DocumentName string
	Parameters   map[string]any
	Comment      string
	Requested    time.Time
	// DoneAt is when, in real time, the command ends: its Requested time
	// plus the scenario's patch duration on the compressed clock.
	DoneAt time.Time
	timer  *time.Timer
}

func newSSMSim() *ssmSim {
	return &ssmSim{instances: map[string]*Instance{}, commands: map[string]*command{}}
}

func (s *ssmSim) addInstance(in Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.instances[in.ID] = &in
}

func (s *ssmSim) resetCommands() {
	s.stopTimers()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commands = map[string]*command{}
}

// stopTimers cancels the pending command ends, so no event is delivered
// after a reset or close.
func (s *ssmSim) stopTimers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cmd := range s.commands {
		if cmd.timer != nil {
			cmd.timer.Stop()
		}
	}
}

func (s *ssmSim) handles(action string) bool {
	switch action {
	case "SendCommand", "ListCommands", "ListCommandInvocations", "GetCommandInvocation",
		"DescribeInstanceInformation":
		return true
	}
	return false
}

func (p *Proxy) simulateSSM(w http.ResponseWriter, r *http.Request, body []byte, c *Call) {
	s := p.ssm
	switch c.Action {
	case "SendCommand":
		s.sendCommand(p, w, r, body, c)
	case "ListCommands":
		s.listCommands(p, w, r, body, c)
	case "ListCommandInvocations":
		s.listInvocations(p, w, c)
	case "GetCommandInvocation":
		s.getInvocation(p, w, r, body, c)
	case "DescribeInstanceInformation":
		s.describeInstanceInformation(w, c)
	}
}

// sendCommand refuses instances SSM cannot reach (as AWS answers
// InvalidInstanceId), forwards the rest to moto for a real command ID and
// remembers the instances that were sent.
func (s *ssmSim) sendCommand(p *Proxy, w http.ResponseWriter, r *http.Request, body []byte, c *Call) {
	ids := c.Param("InstanceIds")
	// IAM decides before SSM looks at the instances' state.
	if id := s.untagged(ids, p.Scenario().PatchTagKey); id != "" {
		c.Refused = "instance without the patch tag key"
		writeJSONError(w, http.StatusBadRequest, "AccessDeniedException", fmt.Sprintf(
			"User: %s is not authorized to perform: ssm:SendCommand on resource: arn:aws:ec2:%s:%s:instance/%s "+
				"because no identity-based policy allows the ssm:SendCommand action",
			principalOr(c.Principal, c.Account), c.Region, c.Account, id))
		return
	}
	s.mu.Lock()
	var bad []string
	for _, id := range ids {
		if in, ok := s.instances[id]; ok && (!in.Running || in.Outcome == outcomeUnmanaged ||
			in.Account != c.Account || in.Region != c.Region) {
			bad = append(bad, id)
		}
	}
	s.mu.Unlock()
	if len(bad) > 0 {
		c.Refused = "invalid instance"
		writeJSONError(w, http.StatusBadRequest, "InvalidInstanceId",
			"Instances "+strings.Join(bad, ", ")+" not in a valid state for account "+c.Account)
		return
	}
	status, header, respBody, err := p.roundTrip(r.Context(), r, body)
	if err != nil {
		http.Error(w, "proxy: upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	var resp struct {
		Command map[string]any `json:"Command"`
	}
	if status == http.StatusOK && json.Unmarshal(respBody, &resp) == nil {
		id, _ := resp.Command["CommandId"].(string)
		now := time.Now()
		run := p.realPatchDuration()
		cmd := &command{ID: id, Account: c.Account, Region: c.Region, InstanceIDs: ids,
			Requested: now, DoneAt: now.Add(run)}
		cmd.DocumentName, _ = c.Params["DocumentName"].(string)
		cmd.Parameters, _ = c.Params["Parameters"].(map[string]any)
		cmd.Comment, _ = c.Params["Comment"].(string)
		s.mu.Lock()
		s.commands[id] = cmd
		// The command's end is an event too: SSM emits a status change that
		// the spoke's rule forwards to the hub.
		cmd.timer = time.AfterFunc(run, func() { p.commandEnded(cmd) })
		s.mu.Unlock()
		// Answer with the instances ec2patch sent, not moto's list.
		resp.Command["InstanceIds"] = ids
		resp.Command["TargetCount"] = len(ids)
		resp.Command["Status"], resp.Command["StatusDetails"] = "Pending", "Pending"
		writeJSON(w, status, resp)
		return
	}
	copyHeader(w.Header(), header)
	w.WriteHeader(status)
	_, _ = w.Write(respBody)
}

// untagged returns the first of ids that the scenario knows and that lacks
// key, the spoke role's ssm:resourceTag/<key> condition ("" when key is
// empty or every instance carries it). Instances the scenario does not know
// are left to moto: the proxy cannot tell their tags.
func (s *ssmSim) untagged(ids []string, key string) string {
	if key == "" {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if in, ok := s.instances[id]; ok {
			if _, tagged := in.Tags[key]; !tagged {
				return id
			}
		}
	}
	return ""
}

// principalOr is the caller's ARN as IAM names it in a denial.
func principalOr(arn, account string) string {
	if arn != "" {
		return arn
	}
	return "arn:aws:iam::" + account + ":root"
}

// invocation is one instance's state in a command.
type invocation struct {
	status, details string
	responseCode    int
}

func (s *ssmSim) invocationOf(_ *command, id string, terminal bool) invocation {
	if !terminal {
		return invocation{"InProgress", "InProgress", -1}
	}
	outcome := outcomeSuccess
	if in, ok := s.instances[id]; ok {
		outcome = in.Outcome
	}
	switch outcome {
	case outcomeFailed:
		return invocation{"Failed", "Failed", 1}
	case outcomeTimeout:
		return invocation{"TimedOut", "ExecutionTimedOut", -1}
	}
	return invocation{"Success", "Success", 0}
}

// realPatchDuration is how long a command sent now runs in real time.
func (p *Proxy) realPatchDuration() time.Duration {
	s := p.Scenario()
	d := s.PatchDuration
	if d <= 0 {
		d = DefaultPatchDuration
	}
	if f := s.SimulatedSecondsPerSecond; f > 0 {
		d = time.Duration(float64(d) / f)
	}
	return d
}

// terminal reports whether the command has ended at now.
func (cmd *command) terminal(now time.Time) bool { return !now.Before(cmd.DoneAt) }

// commandStatus is the command's overall status once it ended: Success,
// or Failed when any invocation did not succeed.
func (s *ssmSim) commandStatus(cmd *command) (status string, errors int) {
	for _, id := range cmd.InstanceIDs {
		if s.invocationOf(cmd, id, true).status != "Success" {
			errors++
		}
	}
	if errors > 0 {
		return "Failed", errors
	}
	return "Success", 0
}

func (s *ssmSim) commandJSON(cmd *command, now time.Time) map[string]any {
	terminal := cmd.terminal(now)
	status, completed, errors := "InProgress", 0, 0
	if terminal {
		completed = len(cmd.InstanceIDs)
		status, errors = s.commandStatus(cmd)
	}
	return map[string]any{
		"CommandId": cmd.ID, "DocumentName": cmd.DocumentName, "DocumentVersion": "$DEFAULT",
		"Comment": cmd.Comment, "Parameters": cmd.Parameters, "InstanceIds": cmd.InstanceIDs,
		"RequestedDateTime": epoch(cmd.Requested), "ExpiresAfter": epoch(cmd.Requested.Add(time.Hour)),
		"Status": status, "StatusDetails": status, "TargetCount": len(cmd.InstanceIDs),
		"CompletedCount": completed, "ErrorCount": errors, "DeliveryTimedOutCount": 0,
		"MaxConcurrency": "50", "MaxErrors": "0", "Targets": []any{},
	}
}

func (s *ssmSim) listCommands(p *Proxy, w http.ResponseWriter, r *http.Request, body []byte, c *Call) {
	id, _ := c.Params["CommandId"].(string)
	now := time.Now()
	s.mu.Lock()
	var out []map[string]any
	for _, cmd := range s.sortedCommands(c) {
		if id != "" && cmd.ID != id {
			continue
		}
		out = append(out, s.commandJSON(cmd, now))
	}
	s.mu.Unlock()
	if id != "" && len(out) == 0 {
		p.forward(w, r, body) // a command this proxy did not see: moto's answer
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"Commands": orEmpty(out)})
}

func (s *ssmSim) sortedCommands(c *Call) []*command {
	var out []*command
	for _, cmd := range s.commands {
		if cmd.Account == c.Account && cmd.Region == c.Region {
			out = append(out, cmd)
		}
	}
	slices.SortFunc(out, func(a, b *command) int { return a.Requested.Compare(b.Requested) })
	return out
}

func (s *ssmSim) listInvocations(_ *Proxy, w http.ResponseWriter, c *Call) {
	id, _ := c.Params["CommandId"].(string)
	instanceID, _ := c.Params["InstanceId"].(string)
	details, _ := c.Params["Details"].(bool)
	now := time.Now()
	s.mu.Lock()
	var all []map[string]any
	for _, cmd := range s.sortedCommands(c) {
		if id != "" && cmd.ID != id {
			continue
		}
		for _, iid := range cmd.InstanceIDs {
			if instanceID != "" && iid != instanceID {
				continue
			}
			inv := s.invocationOf(cmd, iid, cmd.terminal(now))
			m := map[string]any{
				"CommandId": cmd.ID, "InstanceId": iid, "InstanceName": "", "DocumentName": cmd.DocumentName,
				"DocumentVersion": "$DEFAULT", "Comment": cmd.Comment, "RequestedDateTime": epoch(cmd.Requested),
				"Status": inv.status, "StatusDetails": inv.details, "TraceOutput": "",
				"StandardOutputUrl": "", "StandardErrorUrl": "", "ServiceRole": "",
			}
			if details {
				m["CommandPlugins"] = []any{map[string]any{
					"Name": "PatchLinux", "Status": inv.status, "StatusDetails": inv.details,
					"ResponseCode": inv.responseCode, "Output": inv.details,
				}}
			}
			all = append(all, m)
		}
	}
	s.mu.Unlock()
	page, next := paginate(all, c.Params, 50)
	resp := map[string]any{"CommandInvocations": orEmpty(page)}
	if next != "" {
		resp["NextToken"] = next
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *ssmSim) getInvocation(p *Proxy, w http.ResponseWriter, r *http.Request, body []byte, c *Call) {
	id, _ := c.Params["CommandId"].(string)
	instanceID, _ := c.Params["InstanceId"].(string)
	now := time.Now()
	s.mu.Lock()
	cmd, ok := s.commands[id]
	if !ok || cmd.Account != c.Account || cmd.Region != c.Region {
		s.mu.Unlock()
		p.forward(w, r, body)
		return
	}
	if !slices.Contains(cmd.InstanceIDs, instanceID) {
		s.mu.Unlock()
		writeJSONError(w, http.StatusBadRequest, "InvocationDoesNotExist", "")
		return
	}
	inv := s.invocationOf(cmd, instanceID, cmd.terminal(now))
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"CommandId": cmd.ID, "InstanceId": instanceID, "DocumentName": cmd.DocumentName,
		"DocumentVersion": "$DEFAULT", "Comment": cmd.Comment, "PluginName": "PatchLinux",
		"ResponseCode": inv.responseCode, "Status": inv.status, "StatusDetails": inv.details,
		"ExecutionStartDateTime": cmd.Requested.UTC().Format(time.RFC3339),
		"StandardOutputContent":  "", "StandardErrorContent": "",
		"StandardOutputUrl": "", "StandardErrorUrl": "",
	})
}

func (s *ssmSim) describeInstanceInformation(w http.ResponseWriter, c *Call) {
	want := c.InstanceIDs // from the InstanceIds filter, in either filter shape
	s.mu.Lock()
	var ids []string
	for id, in := range s.instances {
		if in.Account != c.Account || in.Region != c.Region || !in.Running || in.Outcome == outcomeUnmanaged {
			continue
		}
		if len(want) > 0 && !slices.Contains(want, id) {
			continue
		}
		ids = append(ids, id)
	}
	s.mu.Unlock()
	slices.Sort(ids)
	list := make([]map[string]any, 0, len(ids))
	now := epoch(time.Now())
	for _, id := range ids {
		list = append(list, map[string]any{
			"InstanceId": id, "PingStatus": "Online", "LastPingDateTime": now,
			"AgentVersion": "3.3.0.0", "IsLatestVersion": true, "PlatformType": "Linux",
			"PlatformName": "Amazon Linux", "PlatformVersion": "2023", "ResourceType": "EC2Instance",
			"ComputerName": id + ".ec2.internal", "IPAddress": "10.0.0.1",
		})
	}
	page, next := paginate(list, c.Params, 10)
	resp := map[string]any{"InstanceInformationList": page}
	if next != "" {
		resp["NextToken"] = next
	}
	writeJSON(w, http.StatusOK, resp)
}

// paginate cuts a list by the request's MaxResults and NextToken (an offset).
func paginate(all []map[string]any, params map[string]any, defaultMax int) ([]map[string]any, string) {
	limit := defaultMax
	if f, ok := params["MaxResults"].(float64); ok && f > 0 {
		limit = int(f)
	}
	start := 0
	if t, ok := params["NextToken"].(string); ok && t != "" {
		start, _ = strconv.Atoi(t)
	}
	start = min(max(start, 0), len(all))
	end := min(start+limit, len(all))
	next := ""
	if end < len(all) {
		next = strconv.Itoa(end)
	}
	return orEmpty(all[start:end]), next
}

func orEmpty(list []map[string]any) []map[string]any {
	if list == nil {
		return []map[string]any{}
	}
	return list
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:])
}
