package main

import (
	"context"
	"encoding/csv"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/obolus/obolus/internal/chargeback"
	"github.com/obolus/obolus/sink/duckdb"
)

// TestReportChargeback runs the pipeline end to end on a small generated
// workload: gen, batch, a generated bill, then every report format.
func TestReportChargeback(t *testing.T) {
	dir := t.TempDir()
	mustObolus(t, "gen", "--out", dir, "--agent-requests", "1500", "--users", "60")
	cfg := filepath.Join(dir, "obolus.yaml")
	mustObolus(t, "batch", "--config", cfg, "--log-level", "warn")
	bill := filepath.Join(dir, "bill")
	out := mustObolus(t, "report", "gen-billing", "--config", cfg, "--period", "2026-11", "--out", bill, "--log-level", "warn")
	if !strings.Contains(out, "billing_usage.jsonl") {
		t.Fatalf("gen-billing printed %q", out)
	}
	usage, prices := filepath.Join(bill, "billing_usage.jsonl"), filepath.Join(bill, "billing_list_prices.jsonl")

	reports := filepath.Join(dir, "reports")
	mustObolus(t, "report", "chargeback", "--config", cfg, "--period", "2026-11", "--by", "team,agent",
		"--billing-usage", usage, "--list-prices", prices,
		"--format", "markdown,csv,parquet,focus,focus-parquet,html,distribution", "--out", reports, "--log-level", "warn")
	for _, f := range []string{"chargeback-2026-11.md", "chargeback-2026-11.csv", "chargeback-2026-11.parquet", "focus-2026-11.csv", "focus-2026-11.parquet", "chargeback-2026-11.html", "distribution-2026-11.csv"} {
		if st, err := os.Stat(filepath.Join(reports, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(reports, "chargeback-2026-11.md"))
	for _, want := range []string{"Costs are reconciled to the Databricks bill", "## Reconciliation", "(difference 0.000000)", "| (unattributed) |", "Price change:",
		"carries a match confidence of at least 0.9", "- Time-window matches on agent ", "## Cost per turn and conversation by agent", "| Agent | Turns |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("markdown lacks %q", want)
		}
	}

	// Grouping by conversation and by turn.
	turns := mustObolus(t, "report", "chargeback", "--config", cfg, "--period", "2026-11", "--by", "agent,agent_request", "--log-level", "warn")
	sessions := mustObolus(t, "report", "chargeback", "--config", cfg, "--period", "2026-11", "--by", "session", "--format", "csv", "--log-level", "warn")
	if !strings.Contains(turns, "| Agent | Agent request |") || !strings.HasPrefix(sessions, "period,period_start,period_end,kind,session,") {
		t.Errorf("--by agent,agent_request:\n%.400s\n--by session:\n%.300s", turns, sessions)
	}

	// FOCUS 1.3 by default, with the split allocation columns; 1.2 on request.
	focus13, _ := os.ReadFile(filepath.Join(reports, "focus-2026-11.csv"))
	focus12 := mustObolus(t, "report", "chargeback", "--config", cfg, "--period", "2026-11", "--format", "focus", "--focus-version", "1.2", "--log-level", "warn")
	if !strings.Contains(string(focus13), "AllocatedMethodId") || strings.Contains(focus12, "AllocatedMethodId") || !strings.HasPrefix(focus12, "AvailabilityZone,BilledCost,") {
		t.Errorf("FOCUS 1.3 header %.200q; 1.2 header %.200q", focus13, focus12)
	}

	// The billing tables stay in the store: a second report needs no files.
	again := mustObolus(t, "report", "chargeback", "--config", cfg, "--period", "2026-11", "--by", "model", "--log-level", "warn")
	if !strings.Contains(again, "Costs are reconciled") {
		t.Errorf("second report without billing flags did not reconcile:\n%s", again)
	}

	// --persist writes the allocation into cost_allocation; twice with the
	// same bill leaves one snapshot whose allocated_cost sums to the bill.
	persistOut := filepath.Join(dir, "persisted")
	for range 2 {
		mustObolus(t, "report", "chargeback", "--config", cfg, "--period", "2026-11", "--persist", "--format", "csv", "--out", persistOut, "--log-level", "warn")
	}
	checkPersisted(t, filepath.Join(dir, "obolus.duckdb"), filepath.Join(persistOut, "chargeback-2026-11.csv"))

	// Pseudonymised CSV on standard output: no emails, only keyed hashes.
	t.Setenv("OBOLUS_PSEUDONYM_KEY", "an example key that is long enough")
	csv := mustObolus(t, "report", "chargeback", "--config", cfg, "--period", "2026-11", "--by", "user", "--format", "csv", "--pseudonymize", "--log-level", "warn")
	if strings.Contains(csv, "@") || !regexp.MustCompile(`u-[0-9a-f]{20}`).MatchString(csv) {
		t.Errorf("pseudonymised CSV:\n%.500s", csv)
	}
}

func TestReportChargebackUsageErrors(t *testing.T) {
	store := filepath.Join(t.TempDir(), "s.duckdb")
	tests := []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"bad period", []string{"--period", "Nov"}, "", "--period"},
		{"bad dimension", []string{"--by", "dept"}, "", "not one of team"},
		{"binary format to stdout", []string{"--format", "parquet"}, "", "--out: name a directory"},
		{"two formats to stdout", []string{"--format", "markdown,csv"}, "", "--out: name a directory"},
		{"unknown format", []string{"--format", "pdf", "--out", "x"}, "", `"pdf" is not one of`},
		{"usage without prices", []string{"--billing-usage", "u.jsonl"}, "", "go together"},
		{"pseudonymize without key", []string{"--pseudonymize"}, "", "OBOLUS_PSEUDONYM_KEY"},
		{"persist pseudonyms", []string{"--persist", "--pseudonymize"}, "an example key that is long enough", "--persist with --pseudonymize"},
		{"unknown FOCUS version", []string{"--focus-version", "1.4"}, "", "--focus-version"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("OBOLUS_PSEUDONYM_KEY", tc.env)
			args := append([]string{"report", "chargeback", "--store", store, "--period", "2026-11"}, tc.args...)
			_, err := obolus(t, args...)
			var ue usageError
			if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want a usage error containing %q", err, tc.want)
			}
		})
	}
}

// checkPersisted checks the store's cost_allocation against the report's
// CSV: one snapshot, and the allocated total equal to the CSV's total line.
func checkPersisted(t *testing.T, store, csvPath string) {
	t.Helper()
	s, err := duckdb.OpenReadOnly(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var snapshots, rows int
	var total string
	if err := s.DB().QueryRow(`SELECT count(DISTINCT snapshot_id), count(*), CAST(sum(allocated_cost) AS VARCHAR) FROM cost_allocation`).Scan(&snapshots, &rows, &total); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(mustOpen(t, csvPath)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := slices.Index(recs[0], "allocated_cost")
	want := new(big.Rat)
	for _, r := range recs[1:] { // the lines and the unattributed line sum to the bill
		v, err := chargeback.ParseDecimal(r[col])
		if err != nil {
			t.Fatal(err)
		}
		want.Add(want, v)
	}
	got, err := chargeback.ParseDecimal(total)
	if err != nil {
		t.Fatal(err)
	}
	if snapshots != 1 || rows == 0 || got.Cmp(want) != 0 {
		t.Errorf("cost_allocation: %d snapshots, %d rows, allocated %s; the report's lines sum to %s", snapshots, rows, total, want.FloatString(6))
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
