package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/obolus/obolus/ingest"
)

func TestTouchedMonths(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	day := func(s string) time.Time { d, _ := time.Parse(time.RFC3339, s); return d }
	tests := []struct {
		name string
		w    ingest.Window
		want []string
	}{
		{"inside one month", ingest.Window{From: day("2026-11-03T00:00:00Z"), To: day("2026-11-04T00:00:00Z")}, []string{"2026-11"}},
		{"lookback across a month end", ingest.Window{From: day("2026-10-31T22:00:00Z"), To: day("2026-11-01T01:00:00Z")}, []string{"2026-10", "2026-11"}},
		{"ends at a month start", ingest.Window{From: day("2026-10-30T00:00:00Z"), To: day("2026-11-01T00:00:00Z")}, []string{"2026-10"}},
		{"open end stops at now", ingest.Window{From: day("2026-11-20T00:00:00Z")}, []string{"2026-11", "2026-12"}},
		{"no start", ingest.Window{To: day("2026-11-04T00:00:00Z")}, nil},
		{"empty", ingest.Window{From: day("2026-11-04T00:00:00Z"), To: day("2026-11-04T00:00:00Z")}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, p := range touchedMonths(tc.w, now) {
				got = append(got, p.Label)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("months = %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("months = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestBatchPersistAllocation: with batch.persist_allocation, a batch run
// after the bill landed persists the months it rewrote, equal to what
// report chargeback --persist writes.
func TestBatchPersistAllocation(t *testing.T) {
	dir := t.TempDir()
	mustObolus(t, "gen", "--out", dir, "--agent-requests", "400", "--users", "20")
	cfg := filepath.Join(dir, "obolus.yaml")
	mustObolus(t, "batch", "--config", cfg, "--log-level", "warn")
	bill := filepath.Join(dir, "bill")
	mustObolus(t, "report", "gen-billing", "--config", cfg, "--period", "2026-11", "--out", bill, "--log-level", "warn")
	reports := filepath.Join(dir, "reports")
	// Load the bill (no --persist): the table stays empty.
	mustObolus(t, "report", "chargeback", "--config", cfg, "--period", "2026-11", "--format", "csv", "--out", reports, "--log-level", "warn",
		"--billing-usage", filepath.Join(bill, "billing_usage.jsonl"), "--list-prices", filepath.Join(bill, "billing_list_prices.jsonl"))
	t.Setenv("OBOLUS_BATCH_PERSIST_ALLOCATION", "true")
	mustObolus(t, "batch", "--config", cfg, "--from", "2026-11-01", "--to", "2026-12-01", "--log-level", "warn")
	checkPersisted(t, filepath.Join(dir, "obolus.duckdb"), filepath.Join(reports, "chargeback-2026-11.csv"))
}
