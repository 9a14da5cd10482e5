package emf

import (
	"encoding/json"
	"fmt"
	"slices"
)

// maxDimensions is the most dimensions one dimension set may have.
const maxDimensions = 30

// units CloudWatch accepts.
var units = []string{"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes",
	"Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent",
	"Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
	"Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
	"Terabits/Second", "Count/Second", "None"}

// Validate checks one line against the EMF specification's rules that
// CloudWatch enforces (a line breaking them is stored as a log line and
// yields no metric): a millisecond Timestamp, a Namespace, every metric and
// dimension present in the root as a number or a string, known units and at
// most 30 dimensions per set. Tests run it on every line a handler writes.
func Validate(line []byte) error {
	var doc map[string]any
	if err := json.Unmarshal(line, &doc); err != nil {
		return fmt.Errorf("emf: not a JSON object: %w", err)
	}
	meta, ok := doc["_aws"].(map[string]any)
	if !ok {
		return fmt.Errorf("emf: no _aws object")
	}
	if ts, ok := meta["Timestamp"].(float64); !ok || ts <= 0 {
		return fmt.Errorf("emf: _aws.Timestamp must be milliseconds since the epoch")
	}
	directives, ok := meta["CloudWatchMetrics"].([]any)
	if !ok || len(directives) == 0 {
		return fmt.Errorf("emf: _aws.CloudWatchMetrics must be a non-empty array")
	}
	for i, d := range directives {
		if err := validateDirective(doc, d); err != nil {
			return fmt.Errorf("emf: CloudWatchMetrics[%d]: %w", i, err)
		}
	}
	return nil
}

func validateDirective(doc map[string]any, d any) error {
	dir, ok := d.(map[string]any)
	if !ok {
		return fmt.Errorf("not an object")
	}
	if ns, ok := dir["Namespace"].(string); !ok || ns == "" {
		return fmt.Errorf("no Namespace")
	}
	sets, ok := dir["Dimensions"].([]any)
	if !ok {
		return fmt.Errorf("dimensions must be an array of arrays")
	}
	for _, s := range sets {
		names, ok := s.([]any)
		if !ok || len(names) > maxDimensions {
			return fmt.Errorf("a dimension set must be an array of at most %d names", maxDimensions)
		}
		for _, n := range names {
			name, _ := n.(string)
			if v, ok := doc[name].(string); !ok || v == "" {
				return fmt.Errorf("dimension %q has no string value in the root", name)
			}
		}
	}
	metrics, ok := dir["Metrics"].([]any)
	if !ok || len(metrics) == 0 || len(metrics) > 100 {
		return fmt.Errorf("metrics must list 1 to 100 metrics")
	}
	for _, m := range metrics {
		def, ok := m.(map[string]any)
		if !ok {
			return fmt.Errorf("a metric definition is not an object")
		}
		name, _ := def["Name"].(string)
		if name == "" {
			return fmt.Errorf("a metric has no Name")
		}
		if u, ok := def["Unit"]; ok {
			if s, _ := u.(string); !slices.Contains(units, s) {
				return fmt.Errorf("metric %s: unit %v is not a CloudWatch unit", name, u)
			}
		}
		switch v := doc[name].(type) {
		case float64:
		case []any:
			for _, x := range v {
				if _, ok := x.(float64); !ok {
					return fmt.Errorf("metric %s: values must be numbers", name)
				}
			}
		default:
			return fmt.Errorf("metric %s has no numeric value in the root", name)
		}
	}
	return nil
}
