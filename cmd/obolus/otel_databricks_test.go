package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/obolus/obolus/internal/synth"
	"github.com/obolus/obolus/internal/warehouse"
)

var scoreLine = regexp.MustCompile(`(?m)^(precision|recall)\s+([0-9.]+)$`)

// TestDatabricksPullOTelSpans serves one workload from the local warehouse
// with each kind of agent log — payload and trace tables, then span tables
// of both layouts — runs batch in pull mode and scores the Delta tables:
// span tables attribute as the logs they replace. Pushdown refuses them.
func TestDatabricksPullOTelSpans(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the Databricks path against a local warehouse")
	}
	run := func(sc synth.Config) (score string, cfg string) {
		t.Helper()
		cfg, _ = localSetupGen(t, sc, warehouse.Config{}, nil)
		quiet := []string{"--config", cfg, "--log-level", "warn"}
		mustObolus(t, append([]string{"init", "--target", "databricks"}, quiet...)...)
		if sc.AgentLogs == synth.AgentLogsOTel {
			doc := mustObolus(t, append([]string{"doctor"}, quiet...)...)
			for _, want := range []string{"ok    read lakehouse.agents.support_bot_otel_spans", "span tables that leave service_principal", "ok    agent logs"} {
				if !strings.Contains(doc, want) {
					t.Errorf("doctor output lacks %q:\n%s", want, doc)
				}
			}
		}
		out := mustObolus(t, append([]string{"batch", "--target", "databricks", "--mode", "pull", "--from", "2026-10-31", "--to", "2026-11-02"}, quiet...)...)
		if !strings.HasPrefix(out, "reconciled:") || !strings.Contains(out, "dead-lettered 0 ") {
			t.Fatalf("pull batch did not reconcile cleanly:\n%s", out)
		}
		rep := mustObolus(t, append([]string{"score", "--target", "databricks", "--truth", filepath.Join(filepath.Dir(cfg), "ground_truth.jsonl")}, quiet...)...)
		return strings.Join(scoreLine.FindAllString(rep, -1), "; "), cfg
	}
	want, _ := run(localWorkload)
	if !strings.Contains(want, "precision") || !strings.Contains(want, "recall") {
		t.Fatalf("no precision and recall in the score: %q", want)
	}
	for _, layout := range []struct{ layout, format string }{{synth.OTelV1, synth.FormatJSONL}, {synth.OTelV2, synth.FormatParquet}} {
		sc := localWorkload
		sc.AgentLogs, sc.OTelLayout, sc.Format = synth.AgentLogsOTel, layout.layout, layout.format
		got, cfg := run(sc)
		t.Logf("%s %s: %s (payload and trace tables: %s)", layout.layout, layout.format, got, want)
		if got != want {
			t.Errorf("%s %s: %s, want %s as with payload and trace tables", layout.layout, layout.format, got, want)
		}
		if out, err := obolus(t, "batch", "--config", cfg, "--target", "databricks", "--mode", "pushdown", "--log-level", "warn"); err == nil ||
			!strings.Contains(err.Error(), "databricks.otel_spans: pushdown mode does not read span tables") {
			t.Errorf("pushdown over span tables: %v\n%s", err, out)
		}
	}
}
