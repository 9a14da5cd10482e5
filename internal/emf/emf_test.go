package emf_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/internal/emf"
)

func TestPutWritesOneValidLine(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2026, 12, 10, 3, 0, 0, 0, time.UTC)
	w := emf.New(&buf, "ec2patch-dev", func() time.Time { return at })
	err := w.Put(emf.Dimensions{contract.DimRunID: "r1", contract.DimWaveID: "wave1", contract.DimAccount: "222222222222"},
		[]string{contract.DimWaveID},
		emf.Metric{Name: contract.MetricPatchSuccess, Value: 3, Unit: emf.Count},
		emf.Metric{Name: contract.MetricPatchFailures, Value: 1, Unit: emf.Count})
	require.NoError(t, err)

	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	require.Len(t, lines, 1)
	require.NoError(t, emf.Validate(lines[0]))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(lines[0], &doc))
	assert.Equal(t, 3.0, doc[contract.MetricPatchSuccess])
	assert.Equal(t, "ec2patch-dev", doc[contract.DimEnvironment])
	meta := doc["_aws"].(map[string]any)
	assert.Equal(t, float64(at.UnixMilli()), meta["Timestamp"])
	cwm := meta["CloudWatchMetrics"].([]any)[0].(map[string]any)
	assert.Equal(t, contract.MetricNamespace, cwm["Namespace"])
	assert.Equal(t, []any{
		[]any{"Environment"},
		[]any{"Environment", "WaveId"},
		[]any{"Environment", "Account", "RunId", "WaveId"},
	}, cwm["Dimensions"])
}

func TestPutLeavesOutEmptyDimensions(t *testing.T) {
	var buf bytes.Buffer
	w := emf.New(&buf, "ec2patch-dev", nil)
	require.NoError(t, w.Put(emf.Dimensions{contract.DimWaveID: ""}, []string{contract.DimWaveID},
		emf.Metric{Name: contract.MetricPendingApprovals, Value: 0, Unit: emf.Count}))
	require.NoError(t, emf.Validate(bytes.TrimSpace(buf.Bytes())))
	assert.NotContains(t, buf.String(), `"WaveId"`)
}

func TestPutRefusesBadMetrics(t *testing.T) {
	w := emf.New(&bytes.Buffer{}, "e", nil)
	assert.ErrorContains(t, w.Put(nil, nil, emf.Metric{Value: 1}), "no name")
	assert.ErrorContains(t, w.Put(nil, nil, emf.Metric{Name: "A"}, emf.Metric{Name: "A"}), "twice")
	assert.ErrorContains(t, w.Put(emf.Dimensions{"A": "x"}, nil, emf.Metric{Name: "A"}), "dimension A")
	var nilWriter *emf.Writer
	assert.NoError(t, nilWriter.Put(nil, nil, emf.Metric{Name: "A"}))
}

func TestValidateRejectsWhatCloudWatchDrops(t *testing.T) {
	for name, line := range map[string]string{
		"not json":          `{`,
		"no _aws":           `{"A":1}`,
		"no timestamp":      `{"_aws":{"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["D"]],"Metrics":[{"Name":"A"}]}]},"A":1,"D":"x"}`,
		"missing value":     `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["D"]],"Metrics":[{"Name":"A"}]}]},"D":"x"}`,
		"missing dimension": `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["D"]],"Metrics":[{"Name":"A"}]}]},"A":1}`,
		"bad unit":          `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["D"]],"Metrics":[{"Name":"A","Unit":"Things"}]}]},"A":1,"D":"x"}`,
		"too many dims":     `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q","r","s","t","u","v","w","x","y","z","A","B","C","D","E"]],"Metrics":[{"Name":"M"}]}]},"M":1}`,
		"no namespace":      `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Dimensions":[],"Metrics":[{"Name":"A"}]}]},"A":1}`,
	} {
		assert.Error(t, emf.Validate([]byte(line)), name)
	}
}
