package proxy

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"sync"
)

// FaultKind is what a fault does to the calls it takes.
type FaultKind int

const (
	// KindThrottle answers with the service's throttling error (the zero
	// value, so a Fault literal throttles).
	KindThrottle FaultKind = iota
	// KindAccessDenied answers with the service's access-denied error, as
	// AWS does when a policy or a key policy refuses the call: not
	// retryable.
	KindAccessDenied
	// KindUnavailable answers with the service's 5xx error (S3's 503
	// ServiceUnavailable, a JSON service's InternalServerError): an outage.
	KindUnavailable
	// KindCrash does not refuse the call: the call is served, then the
	// invocation of the Lambda function whose worker made it ends as when
	// the process exits (Runtime.ExitError) instead of returning.
	KindCrash
)

func (k FaultKind) String() string {
	switch k {
	case KindAccessDenied:
		return "denied"
	case KindUnavailable:
		return "unavailable"
	case KindCrash:
		return "crash after"
	}
	return "throttled"
}

// Fault makes the proxy answer some calls with an error instead of serving
// them, or crash the handler that made them. Build one with Throttle, Deny,
// Unavailable or CrashAfter.
type Fault struct {
	// Service and Action select the calls ("" matches any); Account, when
	// set, limits the fault to calls acting in that account; Handler, when
	// set, to calls made by the workers of the Lambda function that runs
	// that handler (its contract.Function.Dir).
	Service string
	Action  string
	Account string
	Handler string
	// Kind is the error answered. Default: KindThrottle.
	Kind FaultKind
	// First is how many matching calls fail; later ones pass. For
	// KindCrash, the invocation that makes the First-th matching call
	// crashes, once.
	First int

	mu   sync.Mutex
	seen int
}

// Throttle fails the first n calls of service's action with the service's
// throttling error, as AWS does under a request rate limit.
func Throttle(service, action string, n int) *Fault {
	return &Fault{Service: service, Action: action, First: n}
}

// Deny fails the first n calls of service's action with the service's
// access-denied error.
func Deny(service, action string, n int) *Fault {
	return &Fault{Service: service, Action: action, First: n, Kind: KindAccessDenied}
}

// Unavailable fails the first n calls of service's action with the
// service's 5xx error.
func Unavailable(service, action string, n int) *Fault {
	return &Fault{Service: service, Action: action, First: n, Kind: KindUnavailable}
}

// CrashAfter makes the worker of handler (a contract.Function.Dir) that
// makes the nth call of service's action die right after that call is
// served, before its invocation returns: the invocation is answered with
// Runtime.ExitError, as Lambda answers when the process exits.
func CrashAfter(handler, service, action string, n int) *Fault {
	return &Fault{Service: service, Action: action, Handler: handler, First: n, Kind: KindCrash}
}

// Hits is how many calls the fault has failed (for KindCrash: 1 once the
// invocation was made to crash).
func (f *Fault) Hits() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Kind == KindCrash {
		if f.seen >= f.First {
			return 1
		}
		return 0
	}
	return min(f.seen, f.First)
}

// Seen is how many calls matched the fault, failed or not.
func (f *Fault) Seen() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen
}

// match counts a matching call and tells whether the fault takes it: for
// KindCrash, whether this call is the one after which the worker dies.
func (f *Fault) match(c *Call, handler string) bool {
	if (f.Service != "" && f.Service != c.Service) || (f.Action != "" && f.Action != c.Action) ||
		(f.Account != "" && f.Account != c.Account) || (f.Handler != "" && f.Handler != handler) {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen++
	if f.Kind == KindCrash {
		return f.seen == f.First
	}
	return f.seen <= f.First
}

func (f *Fault) name() string {
	return fmt.Sprintf("%s %s:%s", f.Kind, f.Service, f.Action)
}

// reply writes the fault's error in the service's protocol.
func (f *Fault) reply(w http.ResponseWriter, service string) {
	switch f.Kind {
	case KindAccessDenied:
		replyDenied(w, service)
	case KindUnavailable:
		replyUnavailable(w, service)
	default:
		replyThrottled(w, service)
	}
}

func replyThrottled(w http.ResponseWriter, service string) {
	switch service {
	case "lambda":
		w.Header().Set("X-Amzn-ErrorType", "TooManyRequestsException")
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"Type": "User", "message": "Rate exceeded"})
	case "ec2":
		writeEC2Error(w, http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded.")
	case "sts", "sns", "cloudformation":
		writeQueryError(w, http.StatusBadRequest, "Sender", "Throttling", "Rate exceeded")
	case "s3":
		writeS3Error(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
	case "dynamodb":
		writeJSONError(w, http.StatusBadRequest, "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
			"The level of configured provisioned throughput for the table was exceeded. "+
				"Consider increasing your provisioning level with the UpdateTable API.")
	default:
		writeJSONError(w, http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
	}
}

func replyDenied(w http.ResponseWriter, service string) {
	const msg = "User is not authorized to perform this action because no identity-based policy allows it"
	switch service {
	case "ec2":
		writeEC2Error(w, http.StatusForbidden, "UnauthorizedOperation", "You are not authorized to perform this operation.")
	case "sts", "sns", "cloudformation":
		writeQueryError(w, http.StatusForbidden, "Sender", "AccessDenied", msg)
	case "s3":
		writeS3Error(w, http.StatusForbidden, "AccessDenied", "Access Denied")
	case "dynamodb":
		writeJSONError(w, http.StatusBadRequest, "com.amazonaws.dynamodb.v20120810#AccessDeniedException", msg)
	default:
		writeJSONError(w, http.StatusBadRequest, "AccessDeniedException", msg)
	}
}

func replyUnavailable(w http.ResponseWriter, service string) {
	switch service {
	case "ec2":
		writeEC2Error(w, http.StatusServiceUnavailable, "Unavailable", "The server is overloaded and cannot handle the request.")
	case "sts", "sns", "cloudformation":
		writeQueryError(w, http.StatusServiceUnavailable, "Receiver", "ServiceUnavailable", "Service is unavailable")
	case "s3":
		writeS3Error(w, http.StatusServiceUnavailable, "ServiceUnavailable", "Service is unable to handle request.")
	case "dynamodb":
		writeJSONError(w, http.StatusInternalServerError, "com.amazonaws.dynamodb.v20120810#InternalServerError",
			"Internal server error")
	default:
		writeJSONError(w, http.StatusInternalServerError, "InternalServerError", "Internal server error")
	}
}

// fault returns the first fault that refuses this call, if any. A crash
// fault never refuses: the call it takes is served, and the invocation
// that made it is marked to die before it returns.
func (p *Proxy) fault(c *Call) *Fault {
	handler := ""
	for _, f := range p.Scenario().Faults {
		if f.Handler != "" && handler == "" {
			handler = p.rt.handlerOf(c.AccessKey)
		}
		if !f.match(c, handler) {
			continue
		}
		if f.Kind == KindCrash {
			p.rt.doom(c.AccessKey, f.name())
			continue
		}
		return f
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

// writeEC2Error answers in the EC2 query protocol's error shape.
func writeEC2Error(w http.ResponseWriter, status int, code, msg string) {
	var b bytes.Buffer
	b.WriteString(`<Response><Errors><Error><Code>`)
	_ = xml.EscapeText(&b, []byte(code))
	b.WriteString(`</Code><Message>`)
	_ = xml.EscapeText(&b, []byte(msg))
	b.WriteString(`</Message></Error></Errors><RequestID>`)
	b.WriteString(newID())
	b.WriteString(`</RequestID></Response>`)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// writeS3Error answers in S3's REST-XML error shape.
func writeS3Error(w http.ResponseWriter, status int, code, msg string) {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<Error><Code>")
	_ = xml.EscapeText(&b, []byte(code))
	b.WriteString(`</Code><Message>`)
	_ = xml.EscapeText(&b, []byte(msg))
	b.WriteString(`</Message><RequestId>`)
	id := newID()
	b.WriteString(id)
	b.WriteString(`</RequestId></Error>`)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("X-Amz-Request-Id", id)
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}
