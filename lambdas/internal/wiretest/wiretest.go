// Package wiretest runs a handler the way Lambda does, for tests: JSON from
// testdata/ through aws-lambda-go's decoder (unknown fields rejected), and
// the output compared with a golden file, or the error with its errorType.
package wiretest

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Invoke runs handlerFunc on testdata/<name>.json.
func Invoke(t *testing.T, handlerFunc any, name string) ([]byte, error) {
	t.Helper()
	in, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	h := lambda.NewHandlerWithOptions(handlerFunc, lambda.WithDisallowUnknownFields(true))
	out, err := h.Invoke(context.Background(), in)
	// The handler reuses its response buffer: copy before the next call.
	return bytes.Clone(out), err
}

// Golden runs handlerFunc on testdata/<name>.json and compares its output
// with testdata/<name>.golden.json (rewritten with -update).
func Golden(t *testing.T, handlerFunc any, name string) {
	t.Helper()
	out, err := Invoke(t, handlerFunc, name)
	if err != nil {
		t.Fatalf("%s: unexpected error %s: %v", name, ErrorType(err), err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, out, "", "  "); err != nil {
		t.Fatalf("%s: output is not JSON: %v: %s", name, err, out)
	}
	pretty.WriteByte('\n')
	golden := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(golden, pretty.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("%s: output differs from %s:\n%s", name, golden, pretty.Bytes())
	}
}

// WantError runs handlerFunc on testdata/<name>.json and checks that it
// fails with errorType wantType. It returns the error message.
func WantError(t *testing.T, handlerFunc any, name, wantType string) string {
	t.Helper()
	_, err := Invoke(t, handlerFunc, name)
	if err == nil {
		t.Fatalf("%s: no error, want %s", name, wantType)
	}
	if got := ErrorType(err); got != wantType {
		t.Fatalf("%s: errorType %s (%v), want %s", name, got, err, wantType)
	}
	return err.Error()
}

// ErrorType is the errorType aws-lambda-go reports for err: its Go type name.
func ErrorType(err error) string {
	typ := reflect.TypeOf(err)
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	return typ.Name()
}

// Match compares v, as indented JSON, with testdata/<name>.golden.json
// (rewritten with -update). Use it for what a handler wrote, beside what it
// returned.
func Match(t *testing.T, name string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	golden := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(golden, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("%s differs from %s:\n%s", name, golden, b)
	}
}

// MatchFile compares got with testdata/<name> byte for byte (rewritten
// with -update).
func MatchFile(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n%s", path, got)
	}
}
