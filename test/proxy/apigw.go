package proxy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// APIGatewayPrefix is where the proxy serves the REST APIs moto holds:
// /_apigw/{restApiId}/{stage}/{path...}. An execute-api host cannot be
// reached here, so links to one are rewritten to this route
// (RewriteAPIGatewayURL) and the proxy plays API Gateway's Lambda proxy
// integration: it matches the path against the API's resources, finds the
// method's integration, invokes the function through the runtime pool and
// maps its response back to HTTP.
const APIGatewayPrefix = "/_apigw/"

// maxAPIBody is API Gateway's payload limit.
const maxAPIBody = 10 << 20

// RewriteAPIGatewayURL turns https://{id}.execute-api.{region}.{suffix}/{stage}/{path}?{query}
// into base + /_apigw/{id}/{stage}/{path}?{query}.
func RewriteAPIGatewayURL(base, link string) (string, error) {
	u, err := url.Parse(link)
	if err != nil {
		return "", fmt.Errorf("api link: %w", err)
	}
	id, rest, ok := strings.Cut(u.Hostname(), ".execute-api.")
	if !ok || id == "" || rest == "" {
		return "", fmt.Errorf("api link %q is not an execute-api URL", link)
	}
	path := strings.TrimPrefix(u.EscapedPath(), "/")
	if path == "" {
		return "", fmt.Errorf("api link %q names no stage", link)
	}
	out := strings.TrimSuffix(base, "/") + APIGatewayPrefix + id + "/" + path
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out, nil
}

// APIGatewayURL rewrites an execute-api link to this proxy.
func (p *Proxy) APIGatewayURL(link string) (string, error) {
	return RewriteAPIGatewayURL(p.URL(), link)
}

// apiResource is one resource of a REST API as moto lists it.
type apiResource struct {
	ID              string                     `json:"id"`
	Path            string                     `json:"path"`
	ResourceMethods map[string]json.RawMessage `json:"resourceMethods"`
}

// serveAPIGateway answers one request to a REST API.
func (p *Proxy) serveAPIGateway(w http.ResponseWriter, r *http.Request) {
	call := Call{Time: time.Now(), Account: p.cfg.HubAccount, Region: p.cfg.HubRegion, Service: "execute-api"}
	rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		call.Status = rw.status
		p.rec.add(call)
	}()
	rest := strings.TrimPrefix(r.URL.Path, APIGatewayPrefix)
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		writeAPIError(rw, http.StatusNotFound, "Not Found")
		return
	}
	apiID, stage, path := parts[0], parts[1], "/"
	if len(parts) == 3 {
		path += parts[2]
	}
	call.Action = r.Method + " " + path
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAPIBody+1))
	if err != nil || len(body) > maxAPIBody {
		writeAPIError(rw, http.StatusRequestEntityTooLarge, "Request Too Long")
		return
	}

	resources, err := p.apiResources(r.Context(), apiID)
	if err != nil {
		call.Refused = err.Error()
		writeAPIError(rw, http.StatusForbidden, "Forbidden")
		return
	}
	res, params, ok := matchResource(resources, path)
	method := r.Method
	if ok && res.ResourceMethods[method] == nil && res.ResourceMethods["ANY"] != nil {
		method = "ANY"
	}
	if !ok || res.ResourceMethods[method] == nil {
		// What API Gateway answers for a path or method the API does not have.
		call.Refused = "no such resource or method"
		writeAPIError(rw, http.StatusForbidden, "Missing Authentication Token")
		return
	}
	call.Action = r.Method + " " + res.Path
	name, err := p.apiIntegration(r.Context(), apiID, res.ID, method)
	if err != nil {
		call.Refused = err.Error()
		writeAPIError(rw, http.StatusInternalServerError, "Internal server error")
		return
	}
	call.Function = name

	event := apiEvent(r, body, apiID, stage, path, res, params, p.cfg.HubAccount)
	payload, err := json.Marshal(event)
	if err != nil {
		writeAPIError(rw, http.StatusInternalServerError, "Internal server error")
		return
	}
	fn, err := p.rt.function(r.Context(), emulatorAuth("lambda", p.cfg.HubRegion), name)
	if err != nil {
		call.Refused = err.Error()
		writeAPIError(rw, http.StatusInternalServerError, "Internal server error")
		return
	}
	out := p.rt.run(r.Context(), fn, payload)
	if out.errType != "" {
		call.Refused = "function error " + out.errType + ": " + out.errMsg
		writeAPIError(rw, http.StatusBadGateway, "Internal server error")
		return
	}
	var resp events.APIGatewayProxyResponse
	if err := json.Unmarshal(out.payload, &resp); err != nil || resp.StatusCode == 0 {
		// A proxy integration must answer with a statusCode.
		call.Refused = "malformed Lambda proxy response"
		writeAPIError(rw, http.StatusBadGateway, "Internal server error")
		return
	}
	respBody := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if respBody, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			call.Refused = "malformed base64 body"
			writeAPIError(rw, http.StatusBadGateway, "Internal server error")
			return
		}
	}
	for k, v := range resp.Headers {
		rw.Header().Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		rw.Header().Del(k)
		for _, v := range vs {
			rw.Header().Add(k, v)
		}
	}
	rw.WriteHeader(resp.StatusCode)
	_, _ = rw.Write(respBody)
}

// apiEvent builds the Lambda proxy integration event API Gateway sends.
func apiEvent(r *http.Request, body []byte, apiID, stage, path string, res apiResource, params map[string]string, account string) events.APIGatewayProxyRequest {
	headers, multiHeaders := map[string]string{}, map[string][]string{}
	for k, vs := range r.Header {
		headers[k] = vs[len(vs)-1]
		multiHeaders[k] = vs
	}
	var query map[string]string
	var multiQuery map[string][]string
	if q := r.URL.Query(); len(q) > 0 {
		query, multiQuery = map[string]string{}, map[string][]string{}
		for k, vs := range q {
			query[k] = vs[len(vs)-1]
			multiQuery[k] = vs
		}
	}
	if len(params) == 0 {
		params = nil
	}
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	now := time.Now()
	e := events.APIGatewayProxyRequest{
		Resource: res.Path, Path: path, HTTPMethod: r.Method,
		Headers: headers, MultiValueHeaders: multiHeaders,
		QueryStringParameters: query, MultiValueQueryStringParameters: multiQuery,
		PathParameters: params,
		RequestContext: events.APIGatewayProxyRequestContext{
			AccountID: account, ResourceID: res.ID, Stage: stage, RequestID: newID(),
			Identity:     events.APIGatewayRequestIdentity{SourceIP: ip, UserAgent: r.UserAgent()},
			ResourcePath: res.Path, HTTPMethod: r.Method, APIID: apiID, Path: "/" + stage + path,
			Protocol: r.Proto, RequestTime: now.UTC().Format("02/Jan/2006:15:04:05 -0700"), RequestTimeEpoch: now.UnixMilli(),
		},
	}
	if utf8.Valid(body) {
		e.Body = string(body)
	} else {
		e.Body, e.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	return e
}

// matchResource finds the resource whose path template matches path,
// preferring literal segments over {parameters}, and returns the
// parameters' values.
func matchResource(resources []apiResource, path string) (apiResource, map[string]string, bool) {
	segs := splitPath(path)
	var best apiResource
	var bestParams map[string]string
	bestScore, found := -1, false
	for _, res := range resources {
		tmpl := splitPath(res.Path)
		params, score, ok := matchSegments(tmpl, segs)
		if ok && score > bestScore {
			best, bestParams, bestScore, found = res, params, score, true
		}
	}
	return best, bestParams, found
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// matchSegments matches path segments against a template; score counts
// the literal segments matched.
func matchSegments(tmpl, segs []string) (map[string]string, int, bool) {
	params := map[string]string{}
	score := 0
	for i, t := range tmpl {
		if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "+}") {
			if i >= len(segs) {
				return nil, 0, false
			}
			params[strings.TrimSuffix(t[1:], "+}")] = strings.Join(segs[i:], "/")
			return params, score, true
		}
		if i >= len(segs) {
			return nil, 0, false
		}
		seg, err := url.PathUnescape(segs[i])
		if err != nil {
			seg = segs[i]
		}
		switch {
		case strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}"):
			params[t[1:len(t)-1]] = seg
		case t == seg:
			score++
		default:
			return nil, 0, false
		}
	}
	if len(tmpl) != len(segs) {
		return nil, 0, false
	}
	return params, score, true
}

// apiResources lists a REST API's resources from moto.
func (p *Proxy) apiResources(ctx context.Context, apiID string) ([]apiResource, error) {
	var out struct {
		Item  []apiResource `json:"item"`
		Items []apiResource `json:"items"`
	}
	if err := p.motoJSON(ctx, "apigateway", "/restapis/"+url.PathEscape(apiID)+"/resources?limit=500", &out); err != nil {
		return nil, fmt.Errorf("rest api %s: %w", apiID, err)
	}
	return append(out.Item, out.Items...), nil
}

// apiIntegration names the Lambda function a method's proxy integration
// invokes (its URI is arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations).
func (p *Proxy) apiIntegration(ctx context.Context, apiID, resourceID, method string) (string, error) {
	var out struct {
		Type string `json:"type"`
		URI  string `json:"uri"`
	}
	path := "/restapis/" + url.PathEscape(apiID) + "/resources/" + url.PathEscape(resourceID) + "/methods/" + method + "/integration"
	if err := p.motoJSON(ctx, "apigateway", path, &out); err != nil {
		return "", fmt.Errorf("integration of %s %s: %w", method, resourceID, err)
	}
	_, fnPath, ok := strings.Cut(out.URI, "/functions/")
	arn, _, ok2 := strings.Cut(fnPath, "/invocations")
	if !ok || !ok2 || arn == "" {
		return "", fmt.Errorf("integration of %s %s is not a Lambda proxy integration (type %s, uri %q)", method, resourceID, out.Type, out.URI)
	}
	return functionName(&url.URL{Path: "/2015-03-31/functions/" + arn + "/invocations"}), nil
}

// motoJSON GETs a REST path from moto as the hub and decodes the answer.
func (p *Proxy) motoJSON(ctx context.Context, service, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.Upstream+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", emulatorAuth(service, p.cfg.HubRegion))
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("moto answered %d: %s", resp.StatusCode, body)
	}
	return json.Unmarshal(body, v)
}

// emulatorAuth is a SigV4-shaped Authorization header with a key moto did
// not issue: moto routes the request to the service and acts as the hub
// account (it does not check signatures).
func emulatorAuth(service, region string) string {
	return "AWS4-HMAC-SHA256 Credential=EMULATORPROXY/" + time.Now().UTC().Format("20060102") + "/" + region + "/" +
		service + "/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("0", 64)
}

// writeAPIError answers like API Gateway does for its own errors.
func writeAPIError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", strings.ReplaceAll(http.StatusText(status), " ", "")+"Exception")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]string{"message": msg})
	_, _ = w.Write(body)
}
