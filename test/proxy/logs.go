package proxy

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"sync"
)

// logSink collects every worker's output, one prefixed line at a time, so
// a failing test can print what the handlers logged.
type logSink struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines []LogLine
	tee   io.Writer
}

// LogLine is one line a handler process wrote on stdout or stderr: what
// CloudWatch Logs would receive, EMF metric lines included.
type LogLine struct {
	// Function is the function's name (contract.Function.Name).
	Function string
	Text     string
}

func (s *logSink) line(prefix, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := "[" + prefix + "] " + text + "\n"
	s.buf.WriteString(l)
	fn, _, _ := strings.Cut(prefix, "/") // the prefix is <function>/<worker>
	s.lines = append(s.lines, LogLine{Function: fn, Text: text})
	if s.tee != nil {
		_, _ = io.WriteString(s.tee, l)
	}
}

// since returns the lines from index mark on.
func (s *logSink) since(mark int) []LogLine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lines[min(mark, len(s.lines)):])
}

func (s *logSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines)
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *logSink) writer(prefix string) *lineWriter { return &lineWriter{sink: s, prefix: prefix} }

// lineWriter splits a process's output into lines for the sink.
type lineWriter struct {
	sink   *logSink
	prefix string
	mu     sync.Mutex
	part   []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.part = append(w.part, b...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			break
		}
		w.sink.line(w.prefix, string(w.part[:i]))
		w.part = w.part[i+1:]
	}
	return len(b), nil
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.part) > 0 {
		w.sink.line(w.prefix, string(w.part))
		w.part = nil
	}
}
