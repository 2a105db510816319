package main

import (
	"math"
	"path/filepath"
	"strings"
	"testing"
)

// TestEndToEndOTelSpans generates one workload with each kind of agent log —
// payload tables and MLflow traces, then OpenTelemetry span tables in both
// layouts and two formats — attributes each, and scores it against the
// ground truth, which is the same for all: spans must attribute as well as
// the logs they replace.
func TestEndToEndOTelSpans(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	run := func(args ...string) (precision, recall float64, out string) {
		t.Helper()
		dir := t.TempDir()
		mustObolus(t, append([]string{"gen", "--out", dir, "--seed", "3", "--agent-requests", "4000", "--duration", "6h"}, args...)...)
		out = mustObolus(t, "batch", "--config", filepath.Join(dir, "obolus.yaml"), "--log-level", "warn")
		if !strings.HasPrefix(out, "reconciled:") || !strings.Contains(out, "dead-lettered 0 ") {
			t.Fatalf("gen %v: batch did not reconcile cleanly:\n%s", args, out)
		}
		rep := scoreStore(t, dir)
		if rep.Missing != 0 || rep.Unknown != 0 || rep.Overweight != 0 {
			t.Errorf("gen %v: missing %d unknown %d overweight %d invocations, want none", args, rep.Missing, rep.Unknown, rep.Overweight)
		}
		return rep.Precision, rep.Recall, out
	}
	if out, err := obolus(t, "gen", "--out", t.TempDir(), "--otel-layout", "v1"); err == nil || !strings.Contains(err.Error(), "--otel-layout: only with --agent-logs otel") {
		t.Errorf("--otel-layout without --agent-logs otel: %v\n%s", err, out)
	}
	wantP, wantR, _ := run()
	if wantP < 0.99 || wantR < 0.9 {
		t.Fatalf("baseline precision %.4f recall %.4f", wantP, wantR)
	}
	for _, args := range [][]string{
		{"--agent-logs", "otel"},
		{"--agent-logs", "otel", "--otel-layout", "v1"},
		{"--agent-logs", "otel", "--format", "parquet"},
		{"--agent-logs", "otel", "--otel-layout", "v1", "--format", "parquet"},
	} {
		p, r, out := run(args...)
		t.Logf("%v: precision %.4f recall %.4f (payload and traces: %.4f %.4f)", args, p, r, wantP, wantR)
		if math.Abs(p-wantP) > 1e-9 || math.Abs(r-wantR) > 1e-9 {
			t.Errorf("%v: precision %.6f recall %.6f, want %.6f and %.6f as with payload tables and traces", args, p, r, wantP, wantR)
		}
		// Child spans are read, skipped and counted.
		if !strings.Contains(out, "agent log rows skipped") {
			t.Errorf("%v: no skipped spans reported:\n%s", args, out)
		}
	}
}
