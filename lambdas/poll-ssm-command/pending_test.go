package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/internal/emf"
	"github.com/ec2patch/ec2patch/lambdas/internal/logx"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
	"github.com/ec2patch/ec2patch/lambdas/internal/waits/waitstest"
)

// pendingGates is a fake pending-approval partition.
type pendingGates struct {
	rows      []store.PendingApproval
	listErr   error
	forgotten []string
}

func (g *pendingGates) PendingApprovals(context.Context) ([]store.PendingApproval, error) {
	return g.rows, g.listErr
}

func (g *pendingGates) ForgetPending(_ context.Context, id string) error {
	g.forgotten = append(g.forgotten, id)
	return nil
}

// emfLines decodes every line written, checking each against the EMF rules.
func emfLines(t *testing.T, out *bytes.Buffer) []map[string]any {
	t.Helper()
	var docs []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if err := emf.Validate(line); err != nil {
			t.Errorf("invalid EMF line %s: %v", line, err)
		}
		var doc map[string]any
		if err := json.Unmarshal(line, &doc); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc)
	}
	return docs
}

func gaugeHandler(gates *pendingGates, out io.Writer, mem *waitstest.Memory) *Handler {
	h := newHandler(mem, &fakeSSM{}, &waitstest.States{})
	h.Pending, h.Expired = gates, gates
	h.Metrics = emf.New(out, "ec2patch-test", func() time.Time { return now })
	return h
}

func TestReconcilePublishesPendingApprovals(t *testing.T) {
	gates := &pendingGates{rows: []store.PendingApproval{
		{ApprovalID: "recent", RunID: "r1", WaveID: "w2", CreatedAt: now.Add(-5 * time.Minute), LinkExpiresAt: later},
		{ApprovalID: "old", RunID: "r2", WaveID: "w3", CreatedAt: now.Add(-90*time.Minute - 20*time.Second), LinkExpiresAt: later},
		// Its links expired: the task timed out (a rejection).
		{ApprovalID: "timed-out", RunID: "r3", WaveID: "w1", CreatedAt: now.Add(-3 * time.Hour), LinkExpiresAt: earlier},
	}}
	var out bytes.Buffer
	if _, err := gaugeHandler(gates, &out, waitstest.New()).Handle(context.Background(), events.CloudWatchEvent{}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gates.forgotten, []string{"timed-out"}) {
		t.Errorf("deleted rows %v, want only the timed-out gate's", gates.forgotten)
	}
	docs := emfLines(t, &out)
	if len(docs) != 1 {
		t.Fatalf("%d EMF lines, want 1", len(docs))
	}
	d := docs[0]
	if d[contract.MetricPendingApprovals] != 2.0 || d[contract.MetricOldestPendingApprovalMinutes] != 90.0 {
		t.Errorf("pending %v, oldest %v: want 2 and 90", d[contract.MetricPendingApprovals], d[contract.MetricOldestPendingApprovalMinutes])
	}
	// The alarm reads the Environment dimension alone.
	dims, _ := json.Marshal(d["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Dimensions"])
	if string(dims) != `[["Environment"]]` || d[contract.DimEnvironment] != "ec2patch-test" {
		t.Errorf("dimensions %s, Environment %v", dims, d[contract.DimEnvironment])
	}
}

func TestReconcilePublishesZeroWithoutGates(t *testing.T) {
	var out bytes.Buffer
	// Even when the waits cannot be read, the gauge is published.
	mem := waitstest.New()
	mem.Fail = errors.New("unavailable")
	if _, err := gaugeHandler(&pendingGates{}, &out, mem).Handle(context.Background(), events.CloudWatchEvent{}); err == nil {
		t.Fatal("no error from a store failure")
	}
	docs := emfLines(t, &out)
	if len(docs) != 1 || docs[0][contract.MetricPendingApprovals] != 0.0 || docs[0][contract.MetricOldestPendingApprovalMinutes] != 0.0 {
		t.Errorf("lines %v, want one with 0 pending and age 0", docs)
	}
}

func TestReconcileGoesOnWhenGatesAreUnreadable(t *testing.T) {
	var out bytes.Buffer
	h := gaugeHandler(&pendingGates{listErr: errors.New("throttled")}, &out, waitstest.New())
	h.Log = logx.New(io.Discard)
	if _, err := h.Handle(context.Background(), events.CloudWatchEvent{}); err != nil {
		t.Errorf("Handle = %v: the gauge must not fail the reconcile", err)
	}
	if out.Len() != 0 {
		t.Errorf("published %q without reading the gates", out.String())
	}
}

func TestPendingGauge(t *testing.T) {
	if n, age := PendingGauge(nil, now); n != 0 || age != 0 {
		t.Errorf("no gates: %d, %v", n, age)
	}
	// A gate whose links expire exactly now is no longer pending.
	n, age := PendingGauge([]store.PendingApproval{{CreatedAt: now.Add(-time.Hour), LinkExpiresAt: now}}, now)
	if n != 0 || age != 0 {
		t.Errorf("expiring now: %d, %v", n, age)
	}
}
