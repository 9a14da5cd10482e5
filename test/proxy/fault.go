package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
)

// Fault makes the proxy answer some calls with an error instead of serving
// them. Build one with Throttle.
type Fault struct {
	// Service and Action select the calls ("" matches any); Account, when
	// set, limits the fault to calls acting in that account.
	Service string
	Action  string
	Account string
	// First is how many matching calls fail; later ones pass.
	First int

	mu   sync.Mutex
	seen int
}

// Throttle fails the first n calls of service's action with the service's
// throttling error, as AWS does under a request rate limit.
func Throttle(service, action string, n int) *Fault {
	return &Fault{Service: service, Action: action, First: n}
}

// Hits is how many calls the fault has failed.
func (f *Fault) Hits() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return min(f.seen, f.First)
}

func (f *Fault) match(c *Call) bool {
	if (f.Service != "" && f.Service != c.Service) || (f.Action != "" && f.Action != c.Action) ||
		(f.Account != "" && f.Account != c.Account) {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen++
	return f.seen <= f.First
}

func (f *Fault) name() string { return fmt.Sprintf("throttled %s:%s", f.Service, f.Action) }

// reply writes the throttling error in the service's protocol.
func (f *Fault) reply(w http.ResponseWriter, service string) {
	switch service {
	case "lambda":
		w.Header().Set("X-Amzn-ErrorType", "TooManyRequestsException")
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"Type": "User", "message": "Rate exceeded"})
	case "ec2":
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, `<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>%s</RequestID></Response>`, newID())
	case "sts", "sns", "cloudformation":
		writeQueryError(w, http.StatusBadRequest, "Sender", "Throttling", "Rate exceeded")
	default:
		writeJSONError(w, http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
	}
}

// fault returns the first fault that takes this call, if any.
func (p *Proxy) fault(c *Call) *Fault {
	for _, f := range p.Scenario().Faults {
		if f.match(c) {
			return f
		}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeJSONError answers in the awsJson protocol's error shape.
func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Amzn-ErrorType", code)
	writeJSON(w, status, map[string]string{"__type": code, "message": msg})
}
