package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseJoinsTheBodyWithTokensReplaced(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "hub.template.json"))
	if err != nil {
		t.Fatal(err)
	}
	name, widgets, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []Widget{
		{Type: "metric", Title: "Patch success rate per wave (%)", X: 0, Y: 0, Width: 12, Height: 4},
		{Type: "log", Title: "Handler errors", X: 12, Y: 0, Width: 12, Height: 4},
		{Type: "text", Title: "Runbook", X: 0, Y: 4, Width: 24, Height: 3},
	}
	if name != "ec2patch-test-dashboard" || !reflect.DeepEqual(widgets, want) {
		t.Errorf("Parse = %q, %+v\nwant %+v", name, widgets, want)
	}
}

func TestRenderDrawsTheGrid(t *testing.T) {
	data, _ := os.ReadFile(filepath.Join("testdata", "hub.template.json"))
	_, widgets, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Render(&out, widgets); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join("testdata", "hub.golden.txt"))
	if out.String() != string(want) {
		t.Errorf("Render =\n%s\nwant\n%s", out.String(), want)
	}
}

func TestRenderRefusesAWidgetOffTheGrid(t *testing.T) {
	err := Render(&bytes.Buffer{}, []Widget{{Title: "wide", X: 20, Width: 6, Height: 1}})
	if err == nil || !strings.Contains(err.Error(), "off the 24-column grid") {
		t.Errorf("Render = %v", err)
	}
}

func TestParseNeedsOneDashboard(t *testing.T) {
	if _, _, err := Parse([]byte(`{"Resources":{}}`)); err == nil || !strings.Contains(err.Error(), "0 dashboards") {
		t.Errorf("Parse = %v", err)
	}
}

func TestWrap(t *testing.T) {
	text := "Instance availability: targeted before"
	got := wrap(text, 12)
	for _, l := range got {
		if len(l) > 12 {
			t.Errorf("line %q longer than 12", l)
		}
	}
	if strip := func(s string) string { return strings.ReplaceAll(s, " ", "") }; strip(strings.Join(got, "")) != strip(text) {
		t.Errorf("wrap lost text: %q", got)
	}
	if !reflect.DeepEqual(wrap("a b c", 3), []string{"a b", "c"}) {
		t.Errorf("wrap(a b c, 3) = %q", wrap("a b c", 3))
	}
}
