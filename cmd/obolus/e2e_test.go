package main

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/obolus/obolus/internal/score"
	"github.com/obolus/obolus/schemas"
)

// obolus runs the real command tree with args and returns what it printed.
func obolus(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func mustObolus(t *testing.T, args ...string) string {
	t.Helper()
	out, err := obolus(t, args...)
	if err != nil {
		t.Fatalf("obolus %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func scoreStore(t *testing.T, dir string) score.Report {
	t.Helper()
	truth, err := score.LoadTruth(filepath.Join(dir, "ground_truth.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	db := openReadOnly(t, filepath.Join(dir, "obolus.duckdb"))
	defer db.Close() // before the next batch run opens the file for writing
	rows, err := score.LoadRows(context.Background(), db, "attribution")
	if err != nil {
		t.Fatal(err)
	}
	return score.Score(truth, rows)
}

func openReadOnly(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", path+"?access_mode=read_only")
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestEndToEnd generates the default workload, attributes it, scores it
// against ground truth, and checks reconciliation and idempotent reruns.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	mustObolus(t, "gen", "--out", dir)
	cfg := filepath.Join(dir, "obolus.yaml")

	out := mustObolus(t, "batch", "--config", cfg, "--log-level", "warn")
	if !strings.HasPrefix(out, "reconciled:") {
		t.Fatalf("batch did not reconcile:\n%s", out)
	}
	first := tableDigest(t, filepath.Join(dir, "obolus.duckdb"))

	// The CLI's own bar check, as a scheduled job would use it.
	t.Log(mustObolus(t, "score", "--config", cfg, "--truth", filepath.Join(dir, "ground_truth.jsonl"),
		"--min-precision", "0.99", "--min-recall", "0.95", "--log-level", "warn"))
	rep := scoreStore(t, dir)
	if rep.Precision < 0.99 || rep.Recall < 0.95 {
		t.Errorf("precision %.4f recall %.4f, want ≥ 0.99 and ≥ 0.95", rep.Precision, rep.Recall)
	}
	if rep.Missing != 0 || rep.Unknown != 0 || rep.Overweight != 0 {
		t.Errorf("missing %d unknown %d overweight %d invocations, want none", rep.Missing, rep.Unknown, rep.Overweight)
	}
	for _, m := range rep.Methods {
		if schemas.IDMethod(m.Method) && m.Invocations > 0 && m.Precision != 1 {
			t.Errorf("%s precision %.6f, want 1 for an id-based method", m.Method, m.Precision)
		}
	}

	// A rerun of the same data changes nothing.
	out = mustObolus(t, "batch", "--config", cfg, "--from", "2026-10-01", "--to", "2026-12-01", "--log-level", "warn")
	if !strings.HasPrefix(out, "reconciled:") {
		t.Fatalf("rerun did not reconcile:\n%s", out)
	}
	mustObolus(t, "batch", "--config", cfg, "--from", "2026-10-01", "--to", "2026-12-01", "--log-level", "warn")
	if again := tableDigest(t, filepath.Join(dir, "obolus.duckdb")); again != first {
		t.Errorf("rerun changed the attribution table:\nfirst %s\nagain %s", first, again)
	}
}

// tableDigest summarises the attribution table's content, ignoring the
// columns that name the run.
func tableDigest(t *testing.T, path string) string {
	t.Helper()
	db := openReadOnly(t, path)
	defer db.Close()
	var n int64
	var digest string
	err := db.QueryRow(`
SELECT count(*), coalesce(sum(hash(invocation_id, end_user, match_method, weight, total_tokens, cost_usd, team, agent_request_id)), 0)::VARCHAR
FROM attribution`).Scan(&n, &digest)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(n, 10) + ":" + digest
}
