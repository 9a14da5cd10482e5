package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ec2patch/ec2patch/internal/contract"
)

// runtimePrefix is where the proxy serves the Lambda Runtime API; each
// worker gets its own prefix /rt/<worker-id>, so aws-lambda-go's
// "http://" + AWS_LAMBDA_RUNTIME_API + "/2018-06-01/runtime/..." reaches it.
const runtimePrefix = "/rt/"

// initTimeout bounds how long a new worker may take to ask for its first
// invocation (Lambda's init phase has a similar limit).
const initTimeout = 30 * time.Second

// runtime runs Lambda invocations with the handler binaries.
type runtime struct {
	p *Proxy

	mu      sync.Mutex
	funcs   map[string]*function // by function name
	pools   map[string]*pool     // by function name
	workers map[string]*worker   // by worker ID
	nextID  int
	closed  bool
}

// function is a Lambda function's configuration as moto holds it.
type function struct {
	Name      string
	ARN       string
	Region    string
	Role      string
	Handler   string // the EnvHandler value: which binary
	Env       map[string]string
	Timeout   time.Duration
	AccessKey string // dummy key that identifies this function's calls
}

type pool struct {
	fn    *function
	idle  chan *worker
	slots chan struct{} // one per live worker, bounding the pool
}

type worker struct {
	id   string
	fn   *function
	cmd  *exec.Cmd
	next chan *pending // the invocation handed to this worker
	done chan struct{} // closed when the process exits

	mu      sync.Mutex
	current *pending
	exitErr error
	initErr string // what the handler reported to init/error
}

type pending struct {
	id       string
	payload  []byte
	deadline time.Time
	picked   chan struct{} // closed when the worker took it
	result   chan result   // buffered, one value
	// crash, when set, names the fault that makes this invocation end as
	// when its process exits (see doom).
	crash string
}

type result struct {
	payload []byte
	errType string
	errMsg  string
}

func newRuntime(p *Proxy) *runtime {
	return &runtime{p: p, funcs: map[string]*function{}, pools: map[string]*pool{}, workers: map[string]*worker{}}
}

// principalOf names the function whose workers use the access key.
func (rt *runtime) principalOf(key string) string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, fn := range rt.funcs {
		if fn.AccessKey == key {
			return fn.Role
		}
	}
	return ""
}

// invoke answers POST /2015-03-31/functions/{name}/invocations.
func (rt *runtime) invoke(w http.ResponseWriter, r *http.Request, payload []byte, call *Call) {
	name := functionName(r.URL)
	call.Function = name
	if local, ok := rt.p.localFunction(name); ok {
		rt.invokeLocal(w, r, local, payload, call)
		return
	}
	fn, err := rt.function(r.Context(), r.Header.Get("Authorization"), name)
	if err != nil {
		writeJSONError(w, http.StatusNotFound, "ResourceNotFoundException", err.Error())
		return
	}
	call.Function = fn.Name
	if r.Header.Get("X-Amz-Invocation-Type") == "Event" {
		go rt.run(context.WithoutCancel(r.Context()), fn, payload)
		w.WriteHeader(http.StatusAccepted)
		return
	}
	res := rt.run(r.Context(), fn, payload)
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	if res.errType != "" {
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		call.Refused = "function error " + res.errType
		writeJSON(w, http.StatusOK, map[string]string{"errorType": res.errType, "errorMessage": res.errMsg})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.payload)
}

// functionName takes the function name from the path, which may hold a
// name, a partial or full ARN, with or without a qualifier.
func functionName(u *url.URL) string {
	p := strings.TrimPrefix(u.EscapedPath(), "/2015-03-31/functions/")
	p = strings.TrimSuffix(p, "/invocations")
	name, err := url.PathUnescape(p)
	if err != nil {
		name = p
	}
	if f := strings.Split(name, ":"); len(f) >= 7 && f[0] == "arn" {
		return f[6]
	}
	if f := strings.Split(name, ":"); len(f) == 2 {
		return f[0] // name:qualifier
	}
	return name
}

// function reads a function's configuration from moto once, signed with
// auth (the caller's Authorization header) so that moto looks in the
// caller's account and region.
func (rt *runtime) function(ctx context.Context, auth, name string) (*function, error) {
	rt.mu.Lock()
	fn, ok := rt.funcs[name]
	rt.mu.Unlock()
	if ok {
		return fn, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		rt.p.cfg.Upstream+"/2015-03-31/functions/"+url.PathEscape(name), nil)
	if err != nil {
		return nil, err
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := rt.p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get function %s: %w", name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get function %s: moto answered %d: %s", name, resp.StatusCode, body)
	}
	var out struct {
		Configuration struct {
			FunctionName string
			FunctionArn  string
			Role         string
			Timeout      int
			Environment  struct{ Variables map[string]string }
		}
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("get function %s: %w", name, err)
	}
	c := out.Configuration
	fn = &function{Name: c.FunctionName, ARN: c.FunctionArn, Role: c.Role, Env: c.Environment.Variables,
		Timeout: time.Duration(max(c.Timeout, 3)) * time.Second, Region: "us-east-1"}
	if f := strings.Split(c.FunctionArn, ":"); len(f) > 3 {
		fn.Region = f[3]
	}
	fn.Handler = fn.Env[contract.EnvHandler]
	if fn.Handler == "" {
		return nil, fmt.Errorf("function %s has no %s environment variable: cannot tell which handler it runs", name, contract.EnvHandler)
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if prev, ok := rt.funcs[name]; ok {
		return prev, nil
	}
	fn.AccessKey = fmt.Sprintf("AKIAEMU%013d", len(rt.funcs)+1)
	rt.funcs[name] = fn
	return fn, nil
}

// run executes one invocation on a worker of the function's pool.
func (rt *runtime) run(ctx context.Context, fn *function, payload []byte) result {
	w, err := rt.acquire(ctx, fn)
	if err != nil {
		return result{errType: "Runtime.Unavailable", errMsg: err.Error()}
	}
	inv := &pending{id: newID(), payload: payload, picked: make(chan struct{}), result: make(chan result, 1)}
	w.next <- inv // buffered: the worker is idle, nothing else is queued

	initTimer := time.NewTimer(initTimeout)
	defer initTimer.Stop()
	select {
	case <-inv.picked:
	case <-w.done:
		return result{errType: "Runtime.ExitError", errMsg: "handler exited before taking the invocation: " + w.exitError()}
	case <-initTimer.C:
		w.kill()
		return result{errType: "Runtime.InitTimeout", errMsg: "handler did not ask for an invocation within " + initTimeout.String()}
	case <-ctx.Done():
		w.kill()
		return result{errType: "Runtime.Cancelled", errMsg: ctx.Err().Error()}
	}

	timer := time.NewTimer(time.Until(inv.deadline) + time.Second)
	defer timer.Stop()
	select {
	case res := <-inv.result:
		rt.release(w)
		return res
	case <-w.done:
		return result{errType: "Runtime.ExitError", errMsg: "handler exited during the invocation: " + w.exitError()}
	case <-timer.C:
		w.kill()
		return result{errType: "Sandbox.Timedout", errMsg: fmt.Sprintf("Task timed out after %.2f seconds", fn.Timeout.Seconds())}
	case <-ctx.Done():
		w.kill()
		return result{errType: "Runtime.Cancelled", errMsg: ctx.Err().Error()}
	}
}

func (rt *runtime) pool(fn *function) *pool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	pl, ok := rt.pools[fn.Name]
	if !ok {
		n := rt.p.cfg.MaxWorkers
		pl = &pool{fn: fn, idle: make(chan *worker, n), slots: make(chan struct{}, n)}
		rt.pools[fn.Name] = pl
	}
	return pl
}

// acquire takes an idle live worker, or starts one while the pool has room,
// or waits for one.
func (rt *runtime) acquire(ctx context.Context, fn *function) (*worker, error) {
	pl := rt.pool(fn)
	for {
		select {
		case w := <-pl.idle:
			if w.alive() {
				return w, nil
			}
			continue
		default:
		}
		select {
		case w := <-pl.idle:
			if w.alive() {
				return w, nil
			}
		case pl.slots <- struct{}{}:
			w, err := rt.start(fn, pl)
			if err != nil {
				<-pl.slots
				return nil, err
			}
			return w, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (rt *runtime) release(w *worker) {
	if !w.alive() {
		return
	}
	pl := rt.pool(w.fn)
	select {
	case pl.idle <- w:
	default:
		w.kill() // cannot happen: idle holds every live worker
	}
}

// start launches one handler process with the function's environment and
// this proxy as its Runtime API and AWS endpoint.
func (rt *runtime) start(fn *function, pl *pool) (*worker, error) {
	bin := filepath.Join(rt.p.cfg.HandlersDir, fn.Handler)
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("handler binary for %s: %w (build the handlers for this machine first)", fn.Name, err)
	}
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return nil, errors.New("proxy is closed")
	}
	rt.nextID++
	id := fmt.Sprintf("w%d", rt.nextID)
	w := &worker{id: id, fn: fn, next: make(chan *pending, 1), done: make(chan struct{})}
	rt.workers[id] = w
	rt.mu.Unlock()

	cmd := exec.Command(bin)
	cmd.Env = rt.env(fn, id)
	out := rt.p.logs.writer(fn.Name + "/" + id)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		rt.mu.Lock()
		delete(rt.workers, id)
		rt.mu.Unlock()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	w.cmd = cmd
	go func() {
		err := cmd.Wait()
		out.flush()
		w.mu.Lock()
		w.exitErr = err
		cur := w.current
		w.mu.Unlock()
		close(w.done)
		if cur != nil {
			select {
			case cur.result <- result{errType: "Runtime.ExitError", errMsg: fmt.Sprintf("handler exited: %v", err)}:
			default:
			}
		}
		<-pl.slots
		rt.mu.Lock()
		delete(rt.workers, id)
		rt.mu.Unlock()
	}()
	return w, nil
}

func (rt *runtime) env(fn *function, workerID string) []string {
	addr := rt.p.Addr()
	env := []string{"PATH=" + os.Getenv("PATH"), "TZ=UTC"}
	for k, v := range fn.Env {
		env = append(env, k+"="+v)
	}
	return append(env,
		"AWS_LAMBDA_RUNTIME_API="+addr+runtimePrefix[:len(runtimePrefix)-1]+"/"+workerID,
		"AWS_ENDPOINT_URL=http://"+addr,
		"AWS_ACCESS_KEY_ID="+fn.AccessKey,
		"AWS_SECRET_ACCESS_KEY=emulator",
		"AWS_REGION="+fn.Region,
		"AWS_DEFAULT_REGION="+fn.Region,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
		"AWS_LAMBDA_FUNCTION_NAME="+fn.Name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+fn.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME="+workerID,
		"_HANDLER=bootstrap",
	)
}

func (w *worker) alive() bool {
	select {
	case <-w.done:
		return false
	default:
		return true
	}
}

func (w *worker) exitError() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.initErr != "" {
		return "init error: " + w.initErr
	}
	if w.exitErr == nil {
		return "exit status 0"
	}
	return w.exitErr.Error()
}

func (w *worker) kill() {
	if w.cmd != nil && w.cmd.Process != nil {
		_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
	}
}

func (rt *runtime) close() {
	rt.mu.Lock()
	rt.closed = true
	ws := make([]*worker, 0, len(rt.workers))
	for _, w := range rt.workers {
		ws = append(ws, w)
	}
	rt.mu.Unlock()
	for _, w := range ws {
		w.kill()
	}
	for _, w := range ws {
		select {
		case <-w.done:
		case <-time.After(5 * time.Second):
		}
	}
}

// serveRuntime implements the Runtime API endpoints under /rt/<worker-id>/.
func (rt *runtime) serveRuntime(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, runtimePrefix)
	id, path, _ := strings.Cut(rest, "/")
	rt.mu.Lock()
	wk, ok := rt.workers[id]
	rt.mu.Unlock()
	if !ok {
		http.Error(w, "unknown worker "+id, http.StatusNotFound)
		return
	}
	const base = "2018-06-01/runtime/"
	path, ok = strings.CutPrefix(path, base)
	if !ok {
		http.Error(w, "unknown runtime path", http.StatusNotFound)
		return
	}
	switch {
	case r.Method == http.MethodGet && path == "invocation/next":
		rt.next(w, r, wk)
	case r.Method == http.MethodPost && path == "init/error":
		body, _ := io.ReadAll(r.Body)
		t, m := decodeRuntimeError(r, body)
		rt.p.logs.line(wk.fn.Name+"/"+wk.id, "init error: "+t+": "+m)
		wk.mu.Lock()
		wk.initErr = t + ": " + m
		cur := wk.current
		wk.current = nil
		wk.mu.Unlock()
		if cur != nil {
			cur.result <- result{errType: t, errMsg: m}
		}
		w.WriteHeader(http.StatusAccepted)
		wk.kill()
	case r.Method == http.MethodPost && strings.HasPrefix(path, "invocation/"):
		reqID, kind, _ := strings.Cut(strings.TrimPrefix(path, "invocation/"), "/")
		body, _ := io.ReadAll(r.Body)
		wk.mu.Lock()
		cur := wk.current
		if cur != nil && cur.id == reqID {
			wk.current = nil
		}
		wk.mu.Unlock()
		if cur == nil || cur.id != reqID {
			http.Error(w, "unknown request ID "+reqID, http.StatusBadRequest)
			return
		}
		if rt.crash(wk, cur) {
			return
		}
		switch kind {
		case "response":
			cur.result <- result{payload: body}
		case "error":
			t, m := decodeRuntimeError(r, body)
			cur.result <- result{errType: t, errMsg: m}
		default:
			http.Error(w, "unknown runtime path", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"status":"OK"}`))
	default:
		http.Error(w, "unknown runtime path", http.StatusNotFound)
	}
}

// next blocks until the worker gets an invocation.
func (rt *runtime) next(w http.ResponseWriter, r *http.Request, wk *worker) {
	select {
	case inv := <-wk.next:
		inv.deadline = time.Now().Add(wk.fn.Timeout)
		wk.mu.Lock()
		wk.current = inv
		wk.mu.Unlock()
		close(inv.picked)
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", wk.fn.ARN)
		h.Set("Lambda-Runtime-Trace-Id", "Root=1-"+strconv.FormatInt(time.Now().Unix(), 16)+"-"+strings.ReplaceAll(inv.id, "-", "")[:24]+";Sampled=0")
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(inv.payload)
	case <-wk.done:
		http.Error(w, "worker stopped", http.StatusGone)
	case <-r.Context().Done():
	}
}

func decodeRuntimeError(r *http.Request, body []byte) (typ, msg string) {
	var e struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	_ = json.Unmarshal(bytes.TrimSpace(body), &e)
	typ = e.ErrorType
	if typ == "" {
		typ = r.Header.Get("Lambda-Runtime-Function-Error-Type")
	}
	if typ == "" {
		typ = "Unhandled"
	}
	msg = e.ErrorMessage
	if msg == "" && e.ErrorType == "" {
		msg = string(body)
	}
	return typ, msg
}

// handlerOf names the handler (contract.Function.Dir) whose workers sign
// with the access key ("" for other keys).
func (rt *runtime) handlerOf(key string) string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, fn := range rt.funcs {
		if fn.AccessKey == key {
			return fn.Handler
		}
	}
	return ""
}

// doom marks the invocations in progress on the workers that sign with the
// access key to crash when they return: a fault hook (see KindCrash). The
// call that triggered it is served first, so its effect stays, as when a
// process dies right after a call succeeded.
func (rt *runtime) doom(key, why string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, wk := range rt.workers {
		if wk.fn.AccessKey != key {
			continue
		}
		wk.mu.Lock()
		if wk.current != nil {
			wk.current.crash = why
		}
		wk.mu.Unlock()
	}
}

// crash ends a doomed invocation as Lambda does when the process exits
// before returning: the process is killed and the invocation answered with
// Runtime.ExitError instead of what the handler returned. It waits for
// the process to be gone, so the worker is never handed another invocation.
func (rt *runtime) crash(wk *worker, inv *pending) bool {
	wk.mu.Lock()
	why := inv.crash
	wk.mu.Unlock()
	if why == "" {
		return false
	}
	rt.p.logs.line(wk.fn.Name+"/"+wk.id, "fault: "+why+": the process is killed before it returns")
	wk.kill()
	<-wk.done
	inv.result <- result{errType: "Runtime.ExitError",
		errMsg: fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %s", inv.id, wk.exitError())}
	return true
}

// LocalFunction is a Lambda function served in the proxy's own process: a
// test stand-in for a handler the project does not have.
type LocalFunction func(ctx context.Context, payload []byte) ([]byte, error)

// RegisterFunction serves invocations of the function named name (by name
// or ARN) with fn instead of a handler binary; the calls are recorded as
// any Invoke.
func (p *Proxy) RegisterFunction(name string, fn LocalFunction) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.local[name] = fn
}

func (p *Proxy) localFunction(name string) (LocalFunction, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn, ok := p.local[name]
	return fn, ok
}

func (rt *runtime) invokeLocal(w http.ResponseWriter, r *http.Request, fn LocalFunction, payload []byte, call *Call) {
	out, err := fn(r.Context(), payload)
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	if err != nil {
		typ := fmt.Sprintf("%T", err)
		typ = typ[strings.LastIndexAny(typ, ".*")+1:]
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		call.Refused = "function error " + typ
		writeJSON(w, http.StatusOK, map[string]string{"errorType": typ, "errorMessage": err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}
