package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"go.yaml.in/yaml/v3"

	"github.com/obolus/obolus/internal/score"
	"github.com/obolus/obolus/schemas"
	"github.com/obolus/obolus/sink/duckdb"
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

// TestLateAgentLogsAreAttributedByALaterRun runs a window before the late
// agent logs land, then the next window once they have: the lookback
// re-processes the end of the first window, and the invocations left
// unattributed for want of their agent request become attributed by id.
func TestLateAgentLogsAreAttributedByALaterRun(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	mustObolus(t, "gen", "--out", dir, "--agent-requests", "5000", "--late-share", "0.2")
	full := filepath.Join(dir, "obolus.yaml")
	body, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	onTime := filepath.Join(dir, "obolus-ontime.yaml")
	if err := os.WriteFile(onTime, []byte(withoutLateSources(t, string(body))), 0o600); err != nil {
		t.Fatal(err)
	}

	mustObolus(t, "batch", "--config", onTime, "--from", "2026-11-01T00:00:00Z", "--to", "2026-11-01T12:00:00Z", "--log-level", "warn")
	pendingBefore, rowsBefore := lateCounts(t, dir)
	if pendingBefore == 0 {
		t.Fatal("no invocation waited for a late agent log; the test proves nothing")
	}

	mustObolus(t, "batch", "--config", full, "--from", "2026-11-01T12:00:00Z", "--to", "2026-11-02T00:00:00Z", "--log-level", "warn")
	pendingAfter, rowsAfter := lateCounts(t, dir)
	if pendingAfter != 0 {
		t.Errorf("%d invocations in the lookback still wait for their agent log (were %d)", pendingAfter, pendingBefore)
	}
	if rowsAfter != rowsBefore {
		t.Errorf("lookback window holds %d rows after the rerun, %d before: rows were duplicated or lost", rowsAfter, rowsBefore)
	}
	rep := scoreStore(t, dir)
	if rep.Missing != 0 || rep.Overweight != 0 {
		t.Errorf("missing %d, overweight %d invocations after two windows", rep.Missing, rep.Overweight)
	}
}

// lateCounts reports, for the lookback part of the first window
// [10:00, 12:00), how many invocations wait for an agent log and how many
// rows there are.
func lateCounts(t *testing.T, dir string) (pending, rows int64) {
	t.Helper()
	db := openReadOnly(t, filepath.Join(dir, "obolus.duckdb"))
	defer db.Close()
	err := db.QueryRow(`
SELECT count(*) FILTER (WHERE reason = 'id_not_found'), count(*)
FROM attribution
WHERE event_time >= TIMESTAMP '2026-11-01 10:00:00' AND event_time < TIMESTAMP '2026-11-01 12:00:00'`).Scan(&pending, &rows)
	if err != nil {
		t.Fatal(err)
	}
	return pending, rows
}

// withoutLateSources drops the agents_late/ entries of a generated config.
func withoutLateSources(t *testing.T, cfg string) string {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(cfg), &doc); err != nil {
		t.Fatal(err)
	}
	var kept []any
	for _, s := range doc["sources"].([]any) {
		if !strings.HasPrefix(s.(map[string]any)["path"].(string), "agents_late/") {
			kept = append(kept, s)
		}
	}
	if len(kept) == len(doc["sources"].([]any)) {
		t.Fatal("generated config has no agents_late/ sources")
	}
	doc["sources"] = kept
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// Read commands never create a store: a mistyped --store is a usage error
// (exit code 2) naming the path, and no file appears there.
func TestReadCommandsNeedAStore(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "typo.duckdb")
	truth := filepath.Join(dir, "truth.jsonl")
	if err := os.WriteFile(truth, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"summary"},
		{"score", "--truth", truth},
		{"report", "chargeback", "--period", "2026-11"},
		{"report", "gen-billing", "--period", "2026-11", "--out", dir},
	} {
		t.Run(args[0], func(t *testing.T) {
			out, err := obolus(t, append(args, "--store", missing)...)
			if err == nil || exitCode(context.Background(), err) != 2 || !strings.Contains(err.Error(), missing) {
				t.Fatalf("err %v (exit %d), want a usage error naming %s\n%s", err, exitCode(context.Background(), err), missing, out)
			}
			if _, err := os.Stat(missing); !os.IsNotExist(err) {
				t.Fatalf("%s created %s", args[0], missing)
			}
		})
	}
}

// doctor --target duckdb checks the embedded store and the sources without
// writing: before the first run the store is missing (exit 1, and no store
// appears), afterwards every check passes.
func TestDoctorDuckDB(t *testing.T) {
	dir := t.TempDir()
	mustObolus(t, "gen", "--out", dir, "--agent-requests", "200", "--tag-key-variants", "0.5")
	cfg := filepath.Join(dir, "obolus.yaml")
	out, err := obolus(t, "doctor", "--target", "duckdb", "--config", cfg, "--log-level", "warn")
	if err == nil || exitCode(context.Background(), err) != exitFailure || !strings.Contains(out, "FAIL  store") {
		t.Fatalf("doctor before any run: err %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "obolus.duckdb")); !os.IsNotExist(err) {
		t.Fatal("doctor created the store")
	}
	mustObolus(t, "batch", "--config", cfg, "--log-level", "warn")
	out = mustObolus(t, "doctor", "--config", cfg, "--log-level", "warn") // duckdb: no databricks.host
	// The workload spells some id tag keys another way (AGENT-REQUEST-ID):
	// doctor names them, read by the forgiving rule.
	for _, want := range []string{"ok    store", "ok    objects", "ok    read usage ", "ok    tag key AGENT-REQUEST-ID", `is read as "agent_request_id"`, "ok    agent logs",
		"ok    calibration ", "time-window matches were right"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
}

// A --to in the future (a typo for 2026) is refused with exit code 2 before
// anything runs, so the checkpoint cannot move past now and strand the
// scheduled job.
func TestBatchRefusesFutureWindow(t *testing.T) {
	dir := t.TempDir()
	mustObolus(t, "gen", "--out", dir, "--agent-requests", "100")
	cfg := filepath.Join(dir, "obolus.yaml")
	to := time.Now().UTC().AddDate(1, 0, 0).Format(time.DateOnly)
	out, err := obolus(t, "batch", "--config", cfg, "--from", "2026-11-01", "--to", to, "--log-level", "warn")
	if err == nil || exitCode(context.Background(), err) != exitUsage || !strings.Contains(err.Error(), "in the future") {
		t.Fatalf("future --to: err %v (exit %d)\n%s", err, exitCode(context.Background(), err), out)
	}
	// The next scheduled run works.
	if out := mustObolus(t, "batch", "--config", cfg, "--log-level", "warn"); !strings.HasPrefix(out, "reconciled:") {
		t.Fatalf("the next run did not reconcile:\n%s", out)
	}
}

// A corrupt Parquet page (arrow-go panics on it) is an error naming the
// file: exit code 1, a failed run recorded, no reconciliation line.
func TestBatchCorruptParquet(t *testing.T) {
	dir := t.TempDir()
	mustObolus(t, "gen", "--out", dir, "--agent-requests", "300", "--format", "parquet")
	files, err := filepath.Glob(filepath.Join(dir, "usage", "ai_gateway_usage-*.parquet"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no usage parquet: %v", err)
	}
	editFile(t, files[0], func(b []byte) []byte {
		// Flip bytes in the data pages, past the header and before the footer.
		for i := len(b) / 4; i < len(b)/2; i += 499 {
			b[i] ^= 0xff
		}
		return b
	})
	cfg := filepath.Join(dir, "obolus.yaml")
	out, err := obolus(t, "batch", "--config", cfg, "--log-level", "warn")
	if err == nil || exitCode(context.Background(), err) != exitFailure || !strings.Contains(err.Error(), files[0]) {
		t.Fatalf("corrupt parquet: err %v (exit %d)\n%s", err, exitCode(context.Background(), err), out)
	}
	if strings.Contains(out, "reconciled:") || !strings.HasPrefix(out, "FAILED:") {
		t.Errorf("a failed run printed:\n%s", out)
	}
	store, err := duckdb.OpenReadOnly(context.Background(), filepath.Join(dir, "obolus.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	runs, err := store.Runs(context.Background(), "")
	if err != nil || len(runs) != 1 || runs[0].Status != schemas.RunFailed || !strings.Contains(runs[0].Error, "corrupt Parquet") {
		t.Errorf("runs %+v, err %v; want one failed run naming the corrupt file", runs, err)
	}
}

// Implausible rows are dead-lettered naming their field, through the real
// CLI, and the run goes on and reconciles: times no store can keep (Go's
// zero time, an epoch of -2^63 microseconds) used to fail the whole write,
// and token counts near 2^63 overflowed the reconciliation, the coverage
// refresh of a rerun and the monthly chargeback.
func TestBatchImplausibleRows(t *testing.T) {
	dir := t.TempDir()
	mustObolus(t, "gen", "--out", dir, "--agent-requests", "100")
	cases := []struct {
		name, field, reason string
		set                 func(row map[string]any)
	}{
		{"zero time", "event_time", "before 2000-01-01", func(r map[string]any) { r["event_time"] = "0001-01-01T00:00:00Z" }},
		{"epoch -2^63", "event_time", "before 2000-01-01", func(r map[string]any) { r["event_time"] = float64(math.MinInt64) }},
		{"input tokens near 2^63", "input_tokens", "limits.max_tokens", func(r map[string]any) { r["input_tokens"] = json.Number("9223372036854775000") }},
		{"total tokens near 2^63", "total_tokens", "limits.max_tokens", func(r map[string]any) { r["total_tokens"] = json.Number("9223372036854775807") }},
		{"reasoning tokens over the bound", "token_details.output_reasoning_tokens", "limits.max_tokens", func(r map[string]any) {
			r["token_details"] = map[string]any{"output_reasoning_tokens": json.Number("4611686018427387904")}
		}},
	}
	for i, c := range cases {
		appendUsageRow(t, dir, func(row map[string]any) {
			row["invocation_id"] = fmt.Sprintf("implausible-%d", i)
			c.set(row)
		})
	}
	cfg := filepath.Join(dir, "obolus.yaml")
	for run := range 2 { // the rerun refreshes coverage over the same window
		out := mustObolus(t, "batch", "--config", cfg, "--from", "2026-10-01T00:00:00Z", "--log-level", "warn")
		if !strings.HasPrefix(out, "reconciled:") || strings.Contains(out, "tokens in -") {
			t.Fatalf("batch run %d:\n%s", run+1, out)
		}
	}
	mustObolus(t, "report", "chargeback", "--config", cfg, "--period", "2026-11", "--format", "csv", "--out", filepath.Join(dir, "reports"), "--log-level", "warn")
	store, err := duckdb.OpenReadOnly(context.Background(), filepath.Join(dir, "obolus.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	dl, err := store.DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		id := fmt.Sprintf(`"implausible-%d"`, i)
		found := false
		for _, d := range dl {
			if strings.Contains(d.Record, id) {
				found = true
				if d.Field != c.field || !strings.Contains(d.Reason, c.reason) {
					t.Errorf("%s: dead letter field %q reason %q; want %q and a reason mentioning %q", c.name, d.Field, d.Reason, c.field, c.reason)
				}
			}
		}
		if !found {
			t.Errorf("%s: not dead-lettered", c.name)
		}
	}
}

// A stray positional argument is a usage error (exit 2), never ignored.
// Careless configuration and flags fail fast with exit code 2 and a message
// naming the key or flag, before any data is read.
func TestCarelessUseRefused(t *testing.T) {
	dir := t.TempDir()
	mustObolus(t, "gen", "--out", dir, "--agent-requests", "50")
	base, err := os.ReadFile(filepath.Join(dir, "obolus.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	prices := func(body string) string {
		p := filepath.Join(t.TempDir(), "prices.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sqlite := filepath.Join(dir, "app.db")
	if err := os.WriteFile(sqlite, append([]byte("SQLite format 3\x00"), make([]byte, 4096)...), 0o600); err != nil {
		t.Fatal(err)
	}
	version := func(name, from, input string) string {
		return "  - version: " + name + "\n    effective_from: " + from + "\n    models:\n      m: {input: " + input + ", output: 1}\n"
	}
	tests := []struct {
		name  string
		extra string // appended to the generated config
		args  []string
		want  string
	}{
		{"--from at Go's zero time", "", []string{"--from", "0001-01-01"}, "--from 0001-01-01 is before 2000-01-01"},
		{"duration without a unit", "stream:\n  grace: 300\n", nil, "'stream.grace' 300 is a bare number"},
		{"NaN price", "prices: " + prices("versions:\n"+version("v1", "2026-01-01T00:00:00Z", ".nan")) + "\n", nil, "NaN is not a price"},
		{"two prices from one instant", "prices: " + prices("versions:\n"+version("v1", "2026-01-01T00:00:00Z", "1")+version("v2", "2026-01-01T00:00:00Z", "2")) + "\n", nil,
			"is also the effective_from of version"},
		{"token limit zero", "limits:\n  max_tokens: 0\n", nil, "limits.max_tokens"},
		{"store is a SQLite file", "", []string{"--store", sqlite}, "not a DuckDB store"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(dir, fmt.Sprintf("careless-%d.yaml", i))
			if err := os.WriteFile(cfg, append(base, tt.extra...), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := obolus(t, append([]string{"batch", "--config", cfg, "--log-level", "warn"}, tt.args...)...)
			if err == nil || exitCode(context.Background(), err) != exitUsage || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v (exit %d), want exit 2 and a message mentioning %q\n%s", err, exitCode(context.Background(), err), tt.want, out)
			}
		})
	}
}

func TestStrayArgumentsRefused(t *testing.T) {
	for _, args := range [][]string{{"batch", "obolus.yaml"}, {"summary", "x"}, {"report", "chargeback", "2026-11"}} {
		out, err := obolus(t, args...)
		if err == nil || exitCode(context.Background(), err) != exitUsage || !strings.Contains(err.Error(), "takes no arguments") {
			t.Errorf("obolus %v: err %v (exit %d)\n%s", args, err, exitCode(context.Background(), err), out)
		}
	}
}

// An end user named by a request tag, which any gateway caller can set, is
// shown by summary with its controls and bidi overrides as visible escapes:
// it cannot clear the screen, set the terminal title or reorder the line.
func TestSummaryShowsHostileNamesSafely(t *testing.T) {
	dir := t.TempDir()
	mustObolus(t, "gen", "--out", dir, "--agent-requests", "50")
	appendUsageRow(t, dir, func(row map[string]any) {
		row["invocation_id"] = "hostile-1"
		row["request_tags"] = map[string]string{"end_user": "\x1b[2J\x1b]0;pwned\x07eve\u202Egpj.exe"}
	})
	cfg := filepath.Join(dir, "obolus.yaml")
	mustObolus(t, "batch", "--config", cfg, "--log-level", "warn")
	out := mustObolus(t, "summary", "--config", cfg, "--log-level", "warn", "--top", "1000")
	if !strings.Contains(out, "Attributed cost by confidence") || !strings.Contains(out, "at least 0.9") {
		t.Errorf("summary lacks the cost by confidence:\n%s", out)
	}
	for _, bad := range []string{"\x1b", "\x07", "\u202E"} {
		if strings.Contains(out, bad) {
			t.Errorf("summary output holds %q", bad)
		}
	}
	if !strings.Contains(out, `\x1b]0;pwned\x07eve\u202egpj.exe`) {
		t.Errorf("summary does not show the name's escapes:\n%s", out)
	}
}

// The checkpoint never moves backwards: a backfill of an older window leaves
// it where it is. One after now (left by a --to in the future before such
// windows were refused) is reset by any run.
func TestCheckpointNeverMovesBackwards(t *testing.T) {
	dir := t.TempDir()
	mustObolus(t, "gen", "--out", dir, "--agent-requests", "100")
	cfg := filepath.Join(dir, "obolus.yaml")
	storePath := filepath.Join(dir, "obolus.duckdb")
	checkpoint := func() time.Time {
		t.Helper()
		s, err := duckdb.OpenReadOnly(context.Background(), storePath)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		cp, ok, err := s.Checkpoint(context.Background(), "default")
		if err != nil || !ok {
			t.Fatalf("checkpoint %v %v", ok, err)
		}
		return cp
	}
	mustObolus(t, "batch", "--config", cfg, "--log-level", "warn")
	first := checkpoint()
	out := mustObolus(t, "batch", "--config", cfg, "--from", "2026-11-01T10:00:00Z", "--to", "2026-11-01T11:00:00Z", "--log-level", "warn")
	if !strings.HasPrefix(out, "reconciled:") {
		t.Fatalf("backfill:\n%s", out)
	}
	if got := checkpoint(); !got.Equal(first) {
		t.Errorf("backfill moved the checkpoint from %s to %s", first, got)
	}

	// A checkpoint in the future, as an older obolus could leave it.
	s, err := duckdb.Open(context.Background(), storePath)
	if err != nil {
		t.Fatal(err)
	}
	future := time.Now().UTC().AddDate(1, 0, 0)
	if err := s.SetCheckpoint(context.Background(), "default", future); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := obolus(t, "batch", "--config", cfg, "--log-level", "warn"); err == nil || !strings.Contains(err.Error(), "run once with --from") {
		t.Fatalf("run after a future checkpoint: %v", err)
	}
	mustObolus(t, "batch", "--config", cfg, "--from", "2026-11-01T00:00:00Z", "--log-level", "warn")
	if got := checkpoint(); !got.Before(future) || got.Before(first) {
		t.Errorf("checkpoint %s after the reset, want now", got)
	}
}

// Careless and corrupt input files, through the real CLI: each case's exit
// code, and for rows, its dead letter, while the rows around it are kept.
func TestBadInputFiles(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, dir string) // edits the generated CSV workload
		exit    int
		message string // in the error (exit ≠ 0)
		dead    string // a dead letter's location prefix and reason fragment (exit 0)
	}{
		{"stray quote in a usage CSV", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "usage", "ai_gateway_usage-000.csv"), func(b []byte) []byte {
				// A line whose quote the next line's first quote closes: the
				// reader used to take both, or the rest of the file, as one
				// field. Only the broken line may be lost.
				lines := bytes.SplitAfter(b, []byte("\n"))
				lines = append(lines[:3], append([][]byte{[]byte("broken,\"2026\n")}, lines[3:]...)...)
				return bytes.Join(lines, nil)
			})
		}, 0, "", "line 4|quoted field opened on this line"},
		{"usage CSV without its header", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "usage", "ai_gateway_usage-000.csv"), func(b []byte) []byte {
				return b[bytes.IndexByte(b, '\n')+1:]
			})
		}, exitFailure, "is the header row missing?", ""},
		{"org.csv saved with a byte order mark", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "org.csv"), func(b []byte) []byte { return append([]byte("\ufeff"), b...) })
		}, 0, "", ""},
		{"store of a newer schema version", func(t *testing.T, dir string) {
			s, err := duckdb.Open(context.Background(), filepath.Join(dir, "obolus.duckdb"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.DB().Exec("UPDATE store_meta SET value = '99' WHERE name = 'schema_version'"); err != nil {
				t.Fatal(err)
			}
		}, exitUsage, "newer than this obolus", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mustObolus(t, "gen", "--out", dir, "--agent-requests", "100", "--format", "csv")
			tt.corrupt(t, dir)
			out, err := obolus(t, "batch", "--config", filepath.Join(dir, "obolus.yaml"), "--log-level", "warn")
			if code := exitCode(context.Background(), err); code != tt.exit || (tt.exit != 0 && !strings.Contains(err.Error(), tt.message)) {
				t.Fatalf("exit %d (%v), want %d and a message mentioning %q\n%s", code, err, tt.exit, tt.message, out)
			}
			if tt.exit != 0 {
				return
			}
			wantDead := "dead-lettered 0 "
			if tt.dead != "" {
				wantDead = "dead-lettered 1 "
			}
			if !strings.HasPrefix(out, "reconciled:") || !strings.Contains(out, wantDead) {
				t.Fatalf("batch, want %q:\n%s", wantDead, out)
			}
			s, err := duckdb.OpenReadOnly(context.Background(), filepath.Join(dir, "obolus.duckdb"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var unassigned int
			if err := s.DB().QueryRow("SELECT count(*) FILTER (WHERE team = ?) FROM attribution WHERE match_method <> 'unattributed'", schemas.UnassignedTeam).Scan(&unassigned); err != nil {
				t.Fatal(err)
			}
			if unassigned > 0 {
				t.Errorf("%d attributed rows without a team: the org directory was not read", unassigned)
			}
			if tt.dead == "" {
				return
			}
			where, why, _ := strings.Cut(tt.dead, "|")
			dl, err := s.DeadLetters(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range dl {
				if d.Location == where && strings.Contains(d.Reason, why) && d.Record != "" {
					return
				}
			}
			t.Errorf("no dead letter at %s mentioning %q with its raw text: %+v", where, why, dl)
		})
	}
}

// appendUsageRow appends to the generated workload in dir a copy of its
// first usage row, changed by set.
func appendUsageRow(t *testing.T, dir string, set func(row map[string]any)) {
	t.Helper()
	editFile(t, filepath.Join(dir, "usage", "ai_gateway_usage-000.jsonl"), func(b []byte) []byte {
		var row map[string]any
		if err := json.Unmarshal(b[:bytes.IndexByte(b, '\n')], &row); err != nil {
			t.Fatal(err)
		}
		set(row)
		line, err := json.Marshal(row)
		if err != nil {
			t.Fatal(err)
		}
		return append(append(b, line...), '\n')
	})
}

func editFile(t *testing.T, path string, edit func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edit(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Calibrated confidence means what it says: on generated workloads with
// known truth, the expected calibration error of time-window picks is at
// most 0.03, where the rule's own confidence is far off. (make calibration
// measures the README's larger workloads.)
func TestCalibratedConfidence(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and attributes two workloads")
	}
	for _, w := range []struct {
		name string
		gen  []string
	}{
		{"one hot agent", []string{"--seed", "5", "--agent-requests", "4000"}},
		{"shifted timing", []string{"--seed", "6", "--agent-requests", "4000", "--max-skew", "1800ms", "--tagged-share", "0.5"}},
	} {
		t.Run(w.name, func(t *testing.T) {
			dir := t.TempDir()
			mustObolus(t, append([]string{"gen", "--out", dir}, w.gen...)...)
			cfg := filepath.Join(dir, "obolus.yaml")
			t.Setenv("OBOLUS_MATCH_AMBIGUITY", "nearest")
			ece := map[string]float64{}
			for _, cal := range []string{"true", "false"} {
				t.Setenv("OBOLUS_MATCH_CALIBRATE", cal)
				store := filepath.Join(dir, "cal-"+cal+".duckdb")
				mustObolus(t, "batch", "--config", cfg, "--store", store, "--log-level", "warn")
				out := mustObolus(t, "score", "--config", cfg, "--store", store, "--truth", filepath.Join(dir, "ground_truth.jsonl"))
				i := strings.Index(out, "expected calibration error ")
				if i < 0 {
					t.Fatalf("score prints no calibration error:\n%s", out)
				}
				var v float64
				if _, err := fmt.Sscan(out[i+len("expected calibration error "):], &v); err != nil {
					t.Fatal(err)
				}
				ece[cal] = v
			}
			t.Logf("ECE calibrated %.4f, rule %.4f", ece["true"], ece["false"])
			if ece["true"] > 0.03 || ece["false"] < 0.05 {
				t.Errorf("ECE calibrated %.4f (want ≤ 0.03), rule %.4f (want it worse than 0.05)", ece["true"], ece["false"])
			}
		})
	}
}

// The likely policy, on a workload with no tags at all, reaches more
// recall at precision ≥ 0.99 than leaving ambiguous calls unattributed or
// taking the nearest; on a tagged workload its picks are calibrated.
func TestLikelyPolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and attributes two workloads")
	}
	scoreOf := func(t *testing.T, dir, policy string) (recallAt99, precision, ece float64) {
		t.Helper()
		cfg := filepath.Join(dir, "obolus.yaml")
		store := filepath.Join(dir, policy+".duckdb")
		t.Setenv("OBOLUS_MATCH_AMBIGUITY", policy)
		mustObolus(t, "batch", "--config", cfg, "--store", store, "--log-level", "warn")
		out := mustObolus(t, "score", "--config", cfg, "--store", store, "--truth", filepath.Join(dir, "ground_truth.jsonl"))
		for _, f := range []struct {
			prefix string
			v      *float64
		}{{"recall at precision ≥ 0.99: ", &recallAt99}, {"\nprecision ", &precision}, {"expected calibration error ", &ece}} {
			i := strings.Index(out, f.prefix)
			if i < 0 {
				t.Fatalf("score prints no %q:\n%s", f.prefix, out)
			}
			if _, err := fmt.Sscan(out[i+len(f.prefix):], f.v); err != nil {
				t.Fatalf("%q: %v\n%s", f.prefix, err, out)
			}
		}
		return recallAt99, precision, ece
	}
	t.Run("no tags", func(t *testing.T) {
		dir := t.TempDir()
		mustObolus(t, "gen", "--out", dir, "--seed", "5", "--agent-requests", "4000", "--tagged-share", "0")
		recall := map[string]float64{}
		for _, p := range []string{"unattributed", "nearest", "likely"} {
			r, prec, _ := scoreOf(t, dir, p)
			recall[p] = r
			t.Logf("%s: recall at precision ≥ 0.99 %.4f, precision %.4f", p, r, prec)
			if p == "likely" && prec < 0.99 {
				t.Errorf("likely: precision %.4f, want ≥ 0.99", prec)
			}
		}
		if recall["likely"] < recall["unattributed"]+0.02 || recall["likely"] <= recall["nearest"] {
			t.Errorf("recall at precision ≥ 0.99: likely %.4f, want above unattributed %.4f by 0.02 and above nearest %.4f",
				recall["likely"], recall["unattributed"], recall["nearest"])
		}
	})
	t.Run("tagged", func(t *testing.T) {
		dir := t.TempDir()
		mustObolus(t, "gen", "--out", dir, "--seed", "5", "--agent-requests", "4000")
		if _, _, ece := scoreOf(t, dir, "likely"); ece > 0.03 {
			t.Errorf("likely: expected calibration error %.4f, want ≤ 0.03", ece)
		}
	})
}
