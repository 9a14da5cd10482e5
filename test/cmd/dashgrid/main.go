// Command dashgrid prints the widget grid of the hub's CloudWatch dashboard
// as ASCII boxes, from a synthesized hub template: an operator sees the
// layout before deploying, and the closing note can show it.
//
//	go run ./test/cmd/dashgrid [cdk.out/<prefix>-hub.template.json]
//
// Without an argument it reads the one *-hub.template.json in cdk.out (where
// `make synth` writes).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Columns is the dashboard grid's width.
const Columns = 24

// Cell sizes of one grid unit in characters.
const (
	cellWidth  = 4
	cellHeight = 1
)

// tokenPlaceholder stands for every CloudFormation token (Ref, GetAtt,
// pseudo parameter) inside the dashboard body.
const tokenPlaceholder = "<token>"

// Widget is one dashboard widget's place and title.
type Widget struct {
	Type   string
	Title  string
	X, Y   int
	Width  int
	Height int
}

func main() {
	path := ""
	if len(os.Args) > 1 {
		path = os.Args[1]
	} else {
		matches, _ := filepath.Glob(filepath.Join("cdk.out", "*-hub.template.json"))
		if len(matches) != 1 {
			fmt.Fprintln(os.Stderr, "dashgrid: give the hub template's path (found", len(matches), "*-hub.template.json in cdk.out; run make synth)")
			os.Exit(2)
		}
		path = matches[0]
	}
	data, err := os.ReadFile(path) //nolint:gosec // G703: reading the file the operator names is this tool's job
	if err != nil {
		fmt.Fprintln(os.Stderr, "dashgrid:", err)
		os.Exit(1)
	}
	name, widgets, err := Parse(data)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dashgrid: %s: %v\n", path, err)
		os.Exit(1)
	}
	fmt.Printf("Dashboard %s: %d widgets\n", name, len(widgets))
	if err := Render(os.Stdout, widgets); err != nil {
		fmt.Fprintln(os.Stderr, "dashgrid:", err)
		os.Exit(1)
	}
}

// Parse finds the template's one dashboard and returns its name and
// widgets, in reading order.
func Parse(template []byte) (name string, widgets []Widget, err error) {
	var tmpl struct {
		Resources map[string]struct {
			Type       string
			Properties struct {
				DashboardName any
				DashboardBody any
			}
		}
	}
	if err := json.Unmarshal(template, &tmpl); err != nil {
		return "", nil, fmt.Errorf("not a template: %w", err)
	}
	var found int
	var body string
	for _, r := range tmpl.Resources {
		if r.Type != "AWS::CloudWatch::Dashboard" {
			continue
		}
		found++
		name = join(r.Properties.DashboardName)
		body = join(r.Properties.DashboardBody)
	}
	if found != 1 {
		return "", nil, fmt.Errorf("%d dashboards, want 1", found)
	}
	var doc struct {
		Widgets []struct {
			Type       string
			X, Y       int
			Width      int
			Height     int
			Properties struct {
				Title    string
				Markdown string
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		return "", nil, fmt.Errorf("dashboard body: %w", err)
	}
	for _, w := range doc.Widgets {
		title := w.Properties.Title
		if title == "" && w.Properties.Markdown != "" {
			title = strings.TrimLeft(strings.SplitN(w.Properties.Markdown, "\n", 2)[0], "# ")
		}
		widgets = append(widgets, Widget{Type: w.Type, Title: title, X: w.X, Y: w.Y, Width: w.Width, Height: w.Height})
	}
	sort.SliceStable(widgets, func(i, j int) bool {
		if widgets[i].Y != widgets[j].Y {
			return widgets[i].Y < widgets[j].Y
		}
		return widgets[i].X < widgets[j].X
	})
	return name, widgets, nil
}

// join renders a string value: a literal as it is, an Fn::Join of literals
// and tokens with each token as tokenPlaceholder.
func join(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case map[string]any:
		if j, ok := t["Fn::Join"].([]any); ok && len(j) == 2 {
			sep, _ := j[0].(string)
			parts, _ := j[1].([]any)
			out := make([]string, len(parts))
			for i, p := range parts {
				out[i] = join(p)
			}
			return strings.Join(out, sep)
		}
	}
	return tokenPlaceholder
}

// Render draws the widgets as boxes on a grid of Columns columns.
func Render(w io.Writer, widgets []Widget) error {
	rows := 0
	for _, wd := range widgets {
		if wd.X < 0 || wd.Y < 0 || wd.Width < 1 || wd.Height < 1 || wd.X+wd.Width > Columns {
			return fmt.Errorf("widget %q at x=%d y=%d width=%d height=%d is off the %d-column grid",
				wd.Title, wd.X, wd.Y, wd.Width, wd.Height, Columns)
		}
		rows = max(rows, wd.Y+wd.Height)
	}
	if len(widgets) == 0 {
		return errors.New("no widgets")
	}
	canvas := make([][]rune, rows*cellHeight+1)
	for i := range canvas {
		canvas[i] = []rune(strings.Repeat(" ", Columns*cellWidth+1))
	}
	for _, wd := range widgets {
		x0, y0 := wd.X*cellWidth, wd.Y*cellHeight
		x1, y1 := (wd.X+wd.Width)*cellWidth, (wd.Y+wd.Height)*cellHeight
		// A border drawn over another box's border of the other direction
		// is a corner.
		set := func(x, y int, r rune) {
			if cur := canvas[y][x]; cur == ' ' || cur == r {
				canvas[y][x] = r
			} else {
				canvas[y][x] = '+'
			}
		}
		for x := x0; x <= x1; x++ {
			set(x, y0, '-')
			set(x, y1, '-')
		}
		for y := y0; y <= y1; y++ {
			set(x0, y, '|')
			set(x1, y, '|')
		}
		for _, c := range [][2]int{{x0, y0}, {x1, y0}, {x0, y1}, {x1, y1}} {
			canvas[c[1]][c[0]] = '+'
		}
		lines := wrap(wd.Title, x1-x0-3)
		if wd.Type != "" && wd.Type != "metric" {
			lines = append(lines, "("+wd.Type+")")
		}
		for i, line := range lines {
			y := y0 + 1 + i
			if y >= y1 {
				break
			}
			copy(canvas[y][x0+2:], []rune(line))
		}
	}
	for _, line := range canvas {
		if _, err := fmt.Fprintln(w, strings.TrimRight(string(line), " ")); err != nil {
			return err
		}
	}
	return nil
}

// wrap breaks text into lines of at most width runes, at spaces when it can.
func wrap(text string, width int) []string {
	if width < 1 {
		return nil
	}
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		for len([]rune(word)) > width {
			if line != "" {
				lines, line = append(lines, line), ""
			}
			r := []rune(word)
			lines, word = append(lines, string(r[:width])), string(r[width:])
		}
		switch {
		case line == "":
			line = word
		case len([]rune(line))+1+len([]rune(word)) <= width:
			line += " " + word
		default:
			lines, line = append(lines, line), word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
