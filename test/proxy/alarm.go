package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// AlarmTrigger sets a CloudWatch alarm of the hub the first time a
// SendCommand acting in Account is seen, before that command is served: the
// alarm then fires while the wave that reaches the account runs, which is
// what an after-wave alarm gate must catch.
type AlarmTrigger struct {
	Account string
	Alarm   string
	// State is the state to set. Default: ALARM.
	State string

	mu    sync.Mutex
	fired bool
	err   error
}

// Fired reports whether the trigger has set its alarm, and the error if
// setting it failed.
func (t *AlarmTrigger) Fired() (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fired, t.err
}

// fireAlarmTriggers runs every trigger waiting for account, once.
func (p *Proxy) fireAlarmTriggers(ctx context.Context, account string) {
	for _, t := range p.Scenario().AlarmTriggers {
		if t.Account != account {
			continue
		}
		t.mu.Lock()
		if !t.fired {
			t.fired = true
			state := t.State
			if state == "" {
				state = "ALARM"
			}
			t.err = p.SetAlarmState(ctx, t.Alarm, state, "emulator: a wave reached account "+account)
		}
		t.mu.Unlock()
	}
}

// SetAlarmState sets a hub alarm's state in moto (SetAlarmState).
func (p *Proxy) SetAlarmState(ctx context.Context, alarm, state, reason string) error {
	form := url.Values{"Action": {"SetAlarmState"}, "Version": {"2010-08-01"}, "AlarmName": {alarm},
		"StateValue": {state}, "StateReason": {reason}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.Upstream+"/", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("Authorization", emulatorAuth("monitoring", p.cfg.HubRegion))
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("set alarm %s: %w", alarm, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("set alarm %s to %s: moto answered %d: %s", alarm, state, resp.StatusCode, body)
	}
	return nil
}
