// Package emf writes CloudWatch embedded metric format (EMF) lines: one JSON
// object per line on the function's stdout, which CloudWatch Logs turns into
// metrics in contract.MetricNamespace. No PutMetricData call, no extra
// permission, and the numbers stay next to the log lines that explain them.
package emf

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ec2patch/ec2patch/internal/contract"
)

// Units the handlers use.
const (
	Count   = "Count"
	Seconds = "Seconds"
	None    = "None"
)

// Metric is one value.
type Metric struct {
	Name  string
	Value float64
	Unit  string
}

// Writer writes EMF lines for one environment. It is safe for concurrent use.
type Writer struct {
	mu          sync.Mutex
	w           io.Writer
	environment string
	now         func() time.Time
}

// New returns a writer for the environment (the hub's name prefix), the
// Environment dimension of every metric.
func New(w io.Writer, environment string, now func() time.Time) *Writer {
	if now == nil {
		now = time.Now
	}
	return &Writer{w: w, environment: environment, now: now}
}

// Dimensions are the dimension values of one line beyond Environment.
type Dimensions map[string]string

// Put writes one line with the metrics under three dimension sets: the
// environment alone (what the alarms read), the environment with each
// extra dimension named in coarse (e.g. WaveId, or Reason), and the
// environment with every dimension in dims (the per-run, per-account view).
// Empty dimension values are left out, as CloudWatch refuses them.
func (e *Writer) Put(dims Dimensions, coarse []string, metrics ...Metric) error {
	if e == nil || len(metrics) == 0 {
		return nil
	}
	values := map[string]string{contract.DimEnvironment: e.environment}
	for k, v := range dims {
		if v != "" {
			values[k] = v
		}
	}
	sets := [][]string{{contract.DimEnvironment}}
	if c := present(values, coarse); len(c) > 0 {
		sets = append(sets, append([]string{contract.DimEnvironment}, c...))
	}
	if all := present(values, slices.Sorted(maps.Keys(dims))); len(all) > 0 && !slices.Equal(all, present(values, coarse)) {
		sets = append(sets, append([]string{contract.DimEnvironment}, all...))
	}

	doc := map[string]any{}
	defs := make([]map[string]string, 0, len(metrics))
	for _, m := range metrics {
		if m.Name == "" {
			return fmt.Errorf("emf: a metric has no name")
		}
		if _, dup := doc[m.Name]; dup {
			return fmt.Errorf("emf: metric %s twice in one line", m.Name)
		}
		unit := m.Unit
		if unit == "" {
			unit = None
		}
		defs = append(defs, map[string]string{"Name": m.Name, "Unit": unit})
		doc[m.Name] = m.Value
	}
	for k, v := range values {
		if _, clash := doc[k]; clash {
			return fmt.Errorf("emf: dimension %s has a metric's name", k)
		}
		doc[k] = v
	}
	doc["_aws"] = map[string]any{
		"Timestamp": e.now().UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace":  contract.MetricNamespace,
			"Dimensions": sets,
			"Metrics":    defs,
		}},
	}
	line, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("emf: encode: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err = e.w.Write(append(line, '\n'))
	return err
}

// present keeps the names in order that have a value.
func present(values map[string]string, names []string) []string {
	var out []string
	for _, n := range names {
		if values[n] != "" && n != contract.DimEnvironment {
			out = append(out, n)
		}
	}
	return out
}
