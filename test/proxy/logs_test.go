package proxy

import (
	"reflect"
	"testing"
)

func TestLogLinesKeepTheFunctionOfEachLine(t *testing.T) {
	s := &logSink{}
	w := s.writer("PostEC2Verify/w3")
	if _, err := w.Write([]byte("{\"a\":1}\n{\"b\"")); err != nil {
		t.Fatal(err)
	}
	mark := s.count()
	if _, err := w.Write([]byte(":2}\n")); err != nil {
		t.Fatal(err)
	}
	s.writer("EvaluateWave/w4").flush() // nothing pending: no line
	want := []LogLine{{Function: "PostEC2Verify", Text: `{"b":2}`}}
	if got := s.since(mark); !reflect.DeepEqual(got, want) {
		t.Errorf("since(%d) = %+v, want %+v", mark, got, want)
	}
	if len(s.since(0)) != 2 {
		t.Errorf("%d lines in all, want 2", len(s.since(0)))
	}
}
