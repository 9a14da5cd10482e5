package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/internal/emf"
	"github.com/ec2patch/ec2patch/test/emulator"
	"github.com/ec2patch/ec2patch/test/fleet"
)

// TestReports runs the demo plan once and checks what it leaves for
// operators: the JSON and CSV reports in the hub bucket, the instance
// ledger, the EMF metric lines the handlers wrote and the notifications.
func TestReports(t *testing.T) {
	if testing.Short() {
		t.Skip("emulator runs take minutes")
	}
	f, err := fleet.Load(fleetFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	h := emulator.NewForTest(t, ctx, emulator.Options{Fleet: f})

	runID := "e2e-report-" + time.Now().UTC().Format("150405")
	input := planInput(t, map[string]any{"runId": runID})
	logMark, inboxMark := h.Proxy.LogMark(), h.InboxMark()
	res := mustRun(t, ctx, h, input, runID)
	checkAgainstFleet(t, h, res, input)
	rep := res.Report
	bucket := h.Outputs[contract.OutputBucketName]

	t.Run("the JSON and CSV reports are in the hub bucket under reports/<runId>/", func(t *testing.T) {
		if want := "s3://" + bucket + "/" + contract.ReportJSONKey(runID); res.Summary.ReportURI != want {
			t.Errorf("reportUri %s, want %s", res.Summary.ReportURI, want)
		}
		if want := "s3://" + bucket + "/" + contract.ReportCSVKey(runID); res.Summary.CSVURI != want {
			t.Errorf("csvUri %s, want %s", res.Summary.CSVURI, want)
		}
		data, err := h.ReadObject(ctx, contract.ReportCSVKey(runID))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil {
			t.Fatalf("report CSV: %v", err)
		}
		if len(rows) < 2 || rows[0][0] != "runId" || rows[0][8] != "instanceId" || rows[0][9] != "instanceStatus" {
			t.Fatalf("CSV header %v and %d rows", rows[0], len(rows))
		}
		// One row per instance: the CSV's instance statuses tally to the
		// JSON report's totals.
		var c contract.Counts
		var instances []contract.InstanceResult
		for _, row := range rows[1:] {
			if row[0] != runID {
				t.Errorf("CSV row of run %s", row[0])
			}
			if row[8] != "" {
				instances = append(instances, contract.InstanceResult{InstanceID: row[8], Status: row[9]})
			}
		}
		c = contract.Count(instances)
		if c != rep.Totals || c.Targeted() == 0 {
			t.Errorf("CSV tallies %+v, JSON totals %+v", c, rep.Totals)
		}
	})

	t.Run("the ledger answers last patched for every targeted instance in one query", func(t *testing.T) {
		rows := 0
		forEachInstance(rep, func(tr contract.TargetResult, in contract.InstanceResult) {
			rows++
			hist, err := h.InstanceHistory(ctx, tr.Account, tr.Region, in.InstanceID, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(hist) != 1 {
				t.Errorf("%s: %d ledger rows, want 1", in.InstanceID, len(hist))
				return
			}
			e := hist[0]
			if e.RunID != runID || e.Status != in.Status || e.Reason != in.Reason || e.At == "" ||
				e.Account != tr.Account || e.Region != tr.Region || e.Operation != contract.OperationInstall {
				t.Errorf("%s: ledger row %+v, want run %s status %s reason %q", in.InstanceID, e, runID, in.Status, in.Reason)
			}
			if in.Status != contract.InstanceSkipped && (e.CommandID == "" || !strings.Contains(strings.Join(tr.CommandIDs, " "), e.CommandID)) {
				t.Errorf("%s: ledger command %q, not one of the target's %v", in.InstanceID, e.CommandID, tr.CommandIDs)
			}
		})
		if rows == 0 {
			t.Fatal("the report has no instance: the check proves nothing")
		}
	})

	lines := h.Proxy.LogLines(logMark)
	t.Run("every EMF line is valid and the metrics add up to the report", func(t *testing.T) {
		sums := map[string]float64{}
		metricLines := 0
		for _, l := range lines {
			if !strings.HasPrefix(l.Text, "{") || !strings.Contains(l.Text, `"_aws"`) {
				continue
			}
			metricLines++
			if err := emf.Validate([]byte(l.Text)); err != nil {
				t.Errorf("%s wrote an invalid EMF line %s: %v", l.Function, l.Text, err)
				continue
			}
			var doc map[string]any
			if err := json.Unmarshal([]byte(l.Text), &doc); err != nil {
				t.Fatal(err)
			}
			if doc[contract.DimEnvironment] != h.Params.Hub.NamePrefix {
				t.Errorf("%s: Environment %v, want %s", l.Function, doc[contract.DimEnvironment], h.Params.Hub.NamePrefix)
			}
			if run, ok := doc[contract.DimRunID]; ok && run != runID {
				continue // another run's line (none expected)
			}
			for _, name := range []string{contract.MetricPatchSuccess, contract.MetricPatchFailures, contract.MetricInstancesSkipped,
				contract.MetricRunsCompleted, contract.MetricWaveDurationSeconds} {
				if v, ok := doc[name].(float64); ok {
					sums[name] += v
				}
			}
		}
		if metricLines == 0 {
			t.Fatal("no EMF line was written")
		}
		// A target that failed as a whole before its instances were known
		// (its role is missing) counts one failure in the metric and none
		// in the report's totals.
		wholeFailures := 0
		for _, w := range rep.Waves {
			for _, tr := range w.Targets {
				if tr.Status == contract.StatusFailed && tr.Counts.Failed+tr.Counts.TimedOut == 0 {
					wholeFailures++
				}
			}
		}
		tot := rep.Totals
		want := map[string]float64{
			contract.MetricPatchSuccess:     float64(tot.Patched + tot.Scanned),
			contract.MetricPatchFailures:    float64(tot.Failed + tot.TimedOut + wholeFailures),
			contract.MetricInstancesSkipped: float64(tot.Skipped),
			contract.MetricRunsCompleted:    1,
		}
		for name, v := range want {
			if sums[name] != v {
				t.Errorf("%s sums to %v, want %v (totals %+v)", name, sums[name], v, tot)
			}
		}
		if _, ok := sums[contract.MetricWaveDurationSeconds]; !ok {
			t.Error("no WaveDurationSeconds was written")
		}
	})

	t.Run("every handler log line carries run, wave, account, region and command", func(t *testing.T) {
		checked := 0
		for _, l := range lines {
			var doc map[string]any
			if json.Unmarshal([]byte(l.Text), &doc) != nil || doc["msg"] == nil {
				continue // not a slog line (an EMF line, or the runtime's)
			}
			checked++
			for _, k := range []string{"runId", "waveId", "account", "region", "commandId"} {
				if _, ok := doc[k]; !ok {
					t.Errorf("%s line without %s: %s", l.Function, k, l.Text)
				}
			}
		}
		if checked == 0 {
			t.Fatal("no handler log line: the check proves nothing")
		}
	})

	t.Run("notifications at run start, after each wave and at run end, in order", func(t *testing.T) {
		prefix := "ec2patch " + h.Params.Hub.NamePrefix + " run " + runID + ": "
		want := []string{prefix + "started"}
		for _, w := range rep.Waves {
			if w.Status != contract.StatusNotStarted {
				want = append(want, prefix+"wave "+w.WaveID+" "+w.Status)
			}
		}
		want = append(want, prefix+rep.Status)
		got := waitForSubjects(ctx, h, inboxMark, prefix, len(want))
		var subjects []string
		for _, m := range got {
			subjects = append(subjects, m.Subject)
			if len(m.Subject) >= 100 {
				t.Errorf("subject of %d characters: %s", len(m.Subject), m.Subject)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("notifications %q, want %d starting %q", subjects, len(want), want)
		}
		for i := range want {
			if !strings.HasPrefix(got[i].Subject, want[i]+" (") && got[i].Subject != want[i] {
				t.Errorf("notification %d: %q, want %q (...)", i, got[i].Subject, want[i])
			}
			if i < len(want)-1 && !strings.Contains(got[i].Body, "s3://"+bucket+"/"+contract.ReportJSONKey(runID)) {
				t.Errorf("notification %q does not say where the report will be", got[i].Subject)
			}
		}
		end := got[len(got)-1].Body
		if !strings.Contains(end, res.Summary.ReportURI) || !strings.Contains(end, res.Summary.CSVURI) {
			t.Errorf("end notification does not carry the report's location:\n%s", end)
		}
	})
}

// waitForSubjects waits (until ctx ends) for n messages since mark whose
// subject begins with prefix, and returns those that came, in order.
func waitForSubjects(ctx context.Context, h *emulator.Harness, mark int, prefix string, n int) []emulator.Message {
	for {
		var got []emulator.Message
		all := h.Messages()
		for _, m := range all[min(mark, len(all)):] {
			if strings.HasPrefix(m.Subject, prefix) {
				got = append(got, m)
			}
		}
		if len(got) >= n || ctx.Err() != nil {
			return got
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}
