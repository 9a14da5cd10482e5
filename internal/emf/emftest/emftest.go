// Package emftest checks the EMF lines a handler wrote in its tests.
package emftest

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/internal/emf"
)

// Sums checks that every line in out is valid EMF carrying each of dims'
// values, and sums each metric by name (by name/Reason for a line with a
// Reason dimension).
func Sums(t testing.TB, out []byte, dims map[string]string) map[string]float64 {
	t.Helper()
	sums := map[string]float64{}
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if err := emf.Validate(line); err != nil {
			t.Errorf("invalid EMF line %s: %v", line, err)
		}
		var doc struct {
			AWS struct {
				CloudWatchMetrics []struct{ Metrics []struct{ Name string } }
			} `json:"_aws"`
		}
		var values map[string]any
		if json.Unmarshal(line, &doc) != nil || json.Unmarshal(line, &values) != nil {
			t.Fatalf("not JSON: %s", line)
		}
		for k, v := range dims {
			if values[k] != v {
				t.Errorf("line %s: %s = %v, want %s", line, k, values[k], v)
			}
		}
		for _, d := range doc.AWS.CloudWatchMetrics {
			for _, m := range d.Metrics {
				name := m.Name
				if r, ok := values[contract.DimReason].(string); ok {
					name += "/" + r
				}
				v, _ := values[m.Name].(float64)
				sums[name] += v
			}
		}
	}
	return sums
}
