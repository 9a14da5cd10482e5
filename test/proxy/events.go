package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/ec2patch/ec2patch/internal/contract"
)

// Defaults of the scenario's clock.
const (
	// DefaultPatchDuration is how long a command runs when the scenario
	// does not say.
	DefaultPatchDuration = time.Second
	// DefaultReconcileEvery is how often the harness runs the reconciler
	// when the scenario does not say.
	DefaultReconcileEvery = 2 * time.Second
)

// EventPrincipal is the Principal of the invocations the proxy makes as
// EventBridge: command status events and scheduled reconciles.
const EventPrincipal = "events.amazonaws.com"

// EventStats counts the command status-change events of ended commands.
type EventStats struct {
	// Delivered events reached CommandStatusEvents (Failed of them ended
	// in a function error); Dropped ones were lost on purpose.
	Delivered, Dropped, Failed int
}

type eventSink struct {
	mu    sync.Mutex
	stats EventStats
}

func (e *eventSink) count(f func(*EventStats)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(&e.stats)
}

// EventStats returns the event counts so far.
func (p *Proxy) EventStats() EventStats {
	p.events.mu.Lock()
	defer p.events.mu.Unlock()
	return p.events.stats
}

// commandEnded runs when a simulated command ends: unless the scenario
// drops it, the status-change event goes to the hub's CommandStatusEvents
// function, as the spoke's forwarding rule and the hub bus's rule would
// deliver it. Only the patch document's events match those rules.
func (p *Proxy) commandEnded(cmd *command) {
	p.ssm.mu.Lock()
	status, _ := p.ssm.commandStatus(cmd)
	p.ssm.mu.Unlock()
	if cmd.DocumentName != contract.PatchDocument {
		return
	}
	s := p.Scenario()
	if s.DropEvents || s.DropEventsFor[cmd.Account] {
		p.events.count(func(st *EventStats) { st.Dropped++ })
		return
	}
	event := map[string]any{
		"version": "0", "id": newID(), "detail-type": contract.DetailTypeCommandState,
		"source": contract.EventSourceSSM, "account": cmd.Account, "region": cmd.Region,
		"time": time.Now().UTC().Format(time.RFC3339), "resources": []string{},
		"detail": contract.CommandStatusDetail{CommandID: cmd.ID, DocumentName: cmd.DocumentName,
			Status: status, RequestedAt: cmd.Requested.UTC().Format(time.RFC3339)},
	}
	payload, err := json.Marshal(event)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err = p.InvokeHandler(ctx, contract.CommandStatusEvents.Dir, payload)
	p.events.count(func(st *EventStats) {
		st.Delivered++
		if err != nil {
			st.Failed++
		}
	})
	if err != nil {
		p.logs.line("proxy", "command status event for "+cmd.ID+": "+err.Error())
	}
}

// FunctionError is a handler's error answer to InvokeHandler.
type FunctionError struct{ Type, Message string }

func (e *FunctionError) Error() string { return e.Type + ": " + e.Message }

// InvokeHandler runs the hub function whose EnvHandler is handlerDir with
// payload, as EventBridge would (the call is recorded as a Lambda Invoke by
// EventPrincipal), and returns its answer.
func (p *Proxy) InvokeHandler(ctx context.Context, handlerDir string, payload []byte) ([]byte, error) {
	auth := emulatorAuth("lambda", p.cfg.HubRegion)
	name, err := p.functionByHandler(ctx, auth, handlerDir)
	if err != nil {
		return nil, err
	}
	fn, err := p.rt.function(ctx, auth, name)
	if err != nil {
		return nil, err
	}
	call := Call{Time: time.Now(), Account: p.cfg.HubAccount, Region: fn.Region, Service: "lambda",
		Action: "Invoke", Function: fn.Name, Principal: EventPrincipal, Params: decodeJSONObject(payload),
		Status: http.StatusOK}
	res := p.rt.run(ctx, fn, payload)
	if res.errType != "" {
		call.Refused = "function error " + res.errType
	}
	p.rec.add(call)
	if res.errType != "" {
		return nil, &FunctionError{Type: res.errType, Message: res.errMsg}
	}
	return res.payload, nil
}

// FunctionName is the name of the hub function that runs handlerDir.
func (p *Proxy) FunctionName(ctx context.Context, handlerDir string) (string, error) {
	return p.functionByHandler(ctx, emulatorAuth("lambda", p.cfg.HubRegion), handlerDir)
}

// functionByHandler finds the name of the hub function that runs
// handlerDir, from moto's function list; the answer is cached.
func (p *Proxy) functionByHandler(ctx context.Context, auth, handlerDir string) (string, error) {
	p.mu.Lock()
	name, ok := p.byHandler[handlerDir]
	p.mu.Unlock()
	if ok {
		return name, nil
	}
	marker := ""
	for {
		u := p.cfg.Upstream + "/2015-03-31/functions/"
		if marker != "" {
			u += "?Marker=" + marker
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", auth)
		resp, err := p.client.Do(req)
		if err != nil {
			return "", fmt.Errorf("list functions: %w", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("list functions: moto answered %d: %s", resp.StatusCode, body)
		}
		var out struct {
			Functions []struct {
				FunctionName string
				Environment  struct{ Variables map[string]string }
			}
			NextMarker string
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return "", fmt.Errorf("list functions: %w", err)
		}
		for _, f := range out.Functions {
			if f.Environment.Variables[contract.EnvHandler] == handlerDir {
				p.mu.Lock()
				p.byHandler[handlerDir] = f.FunctionName
				p.mu.Unlock()
				return f.FunctionName, nil
			}
		}
		if out.NextMarker == "" {
			return "", errors.New("no hub function runs the " + handlerDir + " handler")
		}
		marker = out.NextMarker
	}
}
