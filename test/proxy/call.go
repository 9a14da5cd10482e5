package proxy

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Scope is the credential scope of a SigV4-signed request.
type Scope struct {
	AccessKey string
	Date      string
	Region    string
	Service   string
}

// ParseScope reads the credential scope from a SigV4 Authorization header
// ("AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/ssm/aws4_request,
// SignedHeaders=..., Signature=...") or, for a presigned URL, from the
// X-Amz-Credential query parameter. ok is false when the request is not
// SigV4-signed.
func ParseScope(r *http.Request) (s Scope, ok bool) {
	cred := ""
	if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "AWS4-") {
		for part := range strings.SplitSeq(auth[strings.IndexByte(auth, ' ')+1:], ",") {
			if v, found := strings.CutPrefix(strings.TrimSpace(part), "Credential="); found {
				cred = v
			}
		}
	} else {
		cred = r.URL.Query().Get("X-Amz-Credential")
	}
	return parseCredential(cred)
}

func parseCredential(cred string) (Scope, bool) {
	f := strings.Split(cred, "/")
	if len(f) != 5 || f[4] != "aws4_request" || f[0] == "" || f[2] == "" || f[3] == "" {
		return Scope{}, false
	}
	return Scope{AccessKey: f[0], Date: f[1], Region: f[2], Service: f[3]}, true
}

// Call is one request the proxy saw: who made it, where, and what it asked.
type Call struct {
	Seq  int
	Time time.Time
	// Account is the account the request acts in: the hub for the default
	// keys, the assumed role's account for keys that AssumeRole returned.
	Account string
	Region  string
	Service string
	Action  string
	// Principal is the ARN the keys belong to: the assumed role, or the
	// execution role of the Lambda function whose worker made the call
	// ("" for the state machine interpreter and hand-made requests).
	Principal string
	AccessKey string
	// RoleARN and ExternalID are AssumeRole's parameters.
	RoleARN    string
	ExternalID string
	// Function is the function an Invoke called.
	Function string
	// InstanceIDs are the instance IDs the request named.
	InstanceIDs []string
	// Path is the request's URL path: an S3 request's bucket and key.
	Path string
	// Params is the decoded body of a JSON-protocol request; Form holds a
	// query-protocol request's parameters.
	Params map[string]any
	Form   url.Values
	// Status is the HTTP status answered; Refused is set when the proxy
	// answered an error itself (a fault, a missing role, a wrong ExternalId).
	Status  int
	Refused string
}

// TargetAccount is the account a call reaches: for AssumeRole, the role's
// account; otherwise the account it acts in.
func (c Call) TargetAccount() string {
	if c.RoleARN != "" {
		return arnAccount(c.RoleARN)
	}
	return c.Account
}

// Param returns a string-list request parameter of a JSON-protocol call,
// such as SendCommand's Parameters.Operation ("Parameters", "Operation").
func (c Call) Param(path ...string) []string {
	var v any = c.Params
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// recorder keeps every call in order.
type recorder struct {
	mu    sync.Mutex
	calls []Call
}

func (r *recorder) add(c Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c.Seq = len(r.calls)
	r.calls = append(r.calls, c)
}

func (r *recorder) since(seq int) []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq > len(r.calls) {
		seq = len(r.calls)
	}
	return slices.Clone(r.calls[seq:])
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// actionOf names the operation of a request: X-Amz-Target for JSON
// protocols, the Action parameter for query protocols, the REST path for S3
// and Lambda.
func actionOf(r *http.Request, service string, form url.Values) string {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		return t[strings.LastIndexByte(t, '.')+1:]
	}
	if a := form.Get("Action"); a != "" {
		return a
	}
	if a := r.URL.Query().Get("Action"); a != "" {
		return a
	}
	switch service {
	case "lambda":
		return lambdaAction(r)
	case "s3":
		return s3Action(r)
	}
	return r.Method + " " + r.URL.Path
}

func lambdaAction(r *http.Request) string {
	p := strings.TrimPrefix(r.URL.Path, "/")
	parts := strings.Split(p, "/")
	switch {
	case len(parts) == 4 && parts[1] == "functions" && parts[3] == "invocations":
		return "Invoke"
	case len(parts) == 3 && parts[1] == "functions" && r.Method == http.MethodGet:
		return "GetFunction"
	case len(parts) == 4 && parts[1] == "functions" && parts[3] == "configuration":
		return "GetFunctionConfiguration"
	}
	return r.Method + " " + r.URL.Path
}

func s3Action(r *http.Request) string {
	_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	switch {
	case key == "" && r.Method == http.MethodGet && q.Get("list-type") == "2":
		return "ListObjectsV2"
	case key == "" && r.Method == http.MethodGet:
		return "ListObjects"
	case key == "" && r.Method == http.MethodPut:
		return "CreateBucket"
	case key == "" && r.Method == http.MethodHead:
		return "HeadBucket"
	case key == "" && r.Method == http.MethodPost && q.Has("delete"):
		return "DeleteObjects"
	case r.Method == http.MethodGet:
		return "GetObject"
	case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "":
		return "CopyObject"
	case r.Method == http.MethodPut:
		return "PutObject"
	case r.Method == http.MethodHead:
		return "HeadObject"
	case r.Method == http.MethodDelete:
		return "DeleteObject"
	}
	return r.Method + " " + r.URL.Path
}

// instanceIDs collects the instance IDs a request names, in any of the
// shapes EC2 and SSM use.
func instanceIDs(params map[string]any, form url.Values) []string {
	var ids []string
	add := func(v any) {
		switch x := v.(type) {
		case string:
			ids = append(ids, x)
		case []any:
			for _, e := range x {
				if s, ok := e.(string); ok {
					ids = append(ids, s)
				}
			}
		}
	}
	add(params["InstanceIds"])
	add(params["InstanceId"])
	for _, key := range []string{"Filters", "InstanceInformationFilterList"} {
		list, _ := params[key].([]any)
		for _, f := range list {
			m, _ := f.(map[string]any)
			k, _ := m["Key"].(string)
			if k == "" {
				k, _ = m["key"].(string)
			}
			if k == "InstanceIds" {
				add(m["Values"])
				add(m["valueSet"])
			}
		}
	}
	var formKeys []string
	for k := range form {
		if strings.HasPrefix(k, "InstanceId.") {
			formKeys = append(formKeys, k)
		}
	}
	sort.Strings(formKeys)
	for _, k := range formKeys {
		ids = append(ids, form.Get(k))
	}
	return ids
}

func decodeJSONObject(body []byte) map[string]any {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return nil
	}
	return m
}

// arnAccount is the account field of an ARN ("" if s is not one).
func arnAccount(s string) string {
	f := strings.SplitN(s, ":", 6)
	if len(f) < 6 || f[0] != "arn" {
		return ""
	}
	return f[4]
}
