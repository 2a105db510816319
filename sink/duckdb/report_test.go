package duckdb

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/schemas"
)

var day2 = day1.Add(24 * time.Hour)

// fixture is two days of hand-built attribution rows:
//
//	day 1, ep-a: i1, i9 trace_id; i2 split alice/bob 0.5 each; i3 unattributed
//	day 1, ep-b: i4 tag_user carol on model gpt-x via agent-2
//	day 2, ep-a: i5 time_window; i6 split three ways; i7 unattributed; i8 trace_id
func fixture() []schemas.Attribution {
	third := 1.0 / 3
	share3 := func(in, out int64) func(*schemas.Attribution) {
		return func(a *schemas.Attribution) {
			split(third, in, out)(a)
			a.Candidates = 3
			a.MatchConfidence = third
		}
	}
	return []schemas.Attribution{
		att("i1", "alice", day1.Add(1*time.Hour)),
		att("i9", "bob", day1.Add(2*time.Hour)),
		att("i2", "alice", day1.Add(3*time.Hour), split(0.5, 60, 30)),
		att("i2", "bob", day1.Add(3*time.Hour), split(0.5, 40, 20)),
		att("i3", "", day1.Add(4*time.Hour), unattributed),
		att("i4", "carol", day1.Add(5*time.Hour), endpoint("ep-b"), method(schemas.MethodTagUser), func(a *schemas.Attribution) {
			a.DestinationModel, a.AgentEndpoint, a.CostUSD = "gpt-x", "agent-2", 1
		}),
		att("i5", "bob", day2.Add(1*time.Hour), method(schemas.MethodTimeWindow), func(a *schemas.Attribution) { a.MatchConfidence = 0.8 }),
		att("i6", "alice", day2.Add(2*time.Hour), share3(34, 17)),
		att("i6", "bob", day2.Add(2*time.Hour), share3(33, 17)),
		att("i6", "carol", day2.Add(2*time.Hour), share3(33, 16)),
		att("i7", "", day2.Add(3*time.Hour), unattributed),
		att("i8", "carol", day2.Add(4*time.Hour)),
	}
}

func loadFixture(t *testing.T) *Store {
	t.Helper()
	s, _ := openStore(t)
	ctx := context.Background()
	if _, err := s.ReplaceAttributions(ctx, day1, day2.Add(24*time.Hour), fixture()); err != nil {
		t.Fatal(err)
	}
	if err := s.RefreshCoverage(ctx, day1, day2.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCoverage(t *testing.T) {
	ctx := context.Background()
	s := loadFixture(t)
	const q = `SELECT * FROM coverage ORDER BY event_date, endpoint_name, match_method`
	golden(t, "coverage.golden", dump(t, s.DB(), q))

	// Refreshing again changes nothing.
	if err := s.RefreshCoverage(ctx, time.Time{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	golden(t, "coverage.golden", dump(t, s.DB(), q))

	// Shares within a day and endpoint sum to 1.
	var bad int
	s.DB().QueryRow(`SELECT count(*) FROM (SELECT sum(share_of_invocations) s FROM coverage GROUP BY event_date, endpoint_name) WHERE abs(s - 1) > 1e-9`).Scan(&bad)
	if bad != 0 {
		t.Errorf("%d (date, endpoint) groups whose shares do not sum to 1", bad)
	}

	// Day 2's rows vanish; a refresh of a window ending at day 2's midnight
	// must leave day 2 alone, one touching day 2 must recompute it.
	if _, err := s.ReplaceAttributions(ctx, day2, day2.Add(24*time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	count := func(d time.Time) int {
		var n int
		s.DB().QueryRow(`SELECT count(*) FROM coverage WHERE event_date = CAST(? AS DATE)`, d.Format(time.DateOnly)).Scan(&n)
		return n
	}
	if err := s.RefreshCoverage(ctx, day1.Add(12*time.Hour), day2); err != nil {
		t.Fatal(err)
	}
	if count(day1) != 4 || count(day2) != 4 {
		t.Errorf("after refreshing day 1: day 1 has %d rows (want 4), day 2 %d (want 4, untouched)", count(day1), count(day2))
	}
	if err := s.RefreshCoverage(ctx, day2.Add(23*time.Hour), day2.Add(23*time.Hour+time.Microsecond)); err != nil {
		t.Fatal(err)
	}
	if count(day1) != 4 || count(day2) != 0 {
		t.Errorf("after refreshing day 2: day 1 has %d rows (want 4), day 2 %d (want 0)", count(day1), count(day2))
	}
	if err := s.RefreshCoverage(ctx, day2, day1); err == nil {
		t.Error("reversed window accepted")
	}
}

func TestViews(t *testing.T) {
	s := loadFixture(t)
	for _, v := range []string{"v_daily_user", "v_daily_team", "v_daily_model", "v_daily_agent", "v_coverage_daily"} {
		t.Run(v, func(t *testing.T) {
			golden(t, v+".golden", dump(t, s.DB(), `SELECT * FROM `+quoteIdent(v)+` ORDER BY ALL`))
		})
	}

	// Split rows count once: a day's invocations summed over users is the
	// day's distinct invocations; tokens and cost add up to the table's.
	tests := []struct {
		view string
		day  time.Time
		inv  float64
	}{
		{"v_daily_user", day1, 5}, {"v_daily_user", day2, 4},
		{"v_daily_team", day1, 5}, {"v_daily_model", day2, 4},
		{"v_daily_agent", day1, 5}, {"v_coverage_daily", day2, 4},
	}
	for _, tt := range tests {
		var inv, cost, wantCost float64
		var tokens, wantTokens int64
		err := s.DB().QueryRow(`SELECT sum(invocations), sum(total_tokens), sum(cost_usd) FROM `+quoteIdent(tt.view)+` WHERE event_date = CAST(? AS DATE)`,
			tt.day.Format(time.DateOnly)).Scan(&inv, &tokens, &cost)
		if err != nil {
			t.Fatal(err)
		}
		s.DB().QueryRow(`SELECT sum(total_tokens), sum(cost_usd) FROM attribution WHERE event_date = CAST(? AS DATE)`,
			tt.day.Format(time.DateOnly)).Scan(&wantTokens, &wantCost)
		if math.Abs(inv-tt.inv) > 1e-6 || tokens != wantTokens || math.Abs(cost-wantCost) > 1e-9 {
			t.Errorf("%s on %s: invocations %v tokens %d cost %v, want %v %d %v",
				tt.view, tt.day.Format(time.DateOnly), inv, tokens, cost, tt.inv, wantTokens, wantCost)
		}
	}
	var share float64
	s.DB().QueryRow(`SELECT sum(share_of_invocations) FROM v_coverage_daily WHERE attributed AND event_date = CAST(? AS DATE)`,
		day1.Format(time.DateOnly)).Scan(&share)
	if math.Abs(share-0.8) > 1e-9 {
		t.Errorf("day 1 attributed share %v, want 0.8 (4 of 5 invocations)", share)
	}
}

func TestExportParquet(t *testing.T) {
	ctx := context.Background()
	s := loadFixture(t)
	dir := t.TempDir()
	for _, tt := range []struct{ table, file string }{
		{"attribution", "attribution.parquet"},
		{"coverage", "coverage.parquet"},
		{"v_daily_user", "v_daily_user.parquet"},
		{"attribution", `it's a "quoted" name.parquet`},
		{"attribution", `evil.parquet' (FORMAT csv); DROP TABLE runs; --.parquet`},
		{"runs", `back\slash.parquet`},
	} {
		path := filepath.Join(dir, tt.file)
		if err := s.ExportParquet(ctx, tt.table, path); err != nil {
			t.Fatalf("export %s to %q: %v", tt.table, tt.file, err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("export %s: file not written under its literal name: %v", tt.table, err)
		}
		var got, want int
		if err := s.DB().QueryRow(`SELECT count(*) FROM read_parquet(?)`, path).Scan(&got); err != nil {
			t.Fatalf("read back %q: %v", tt.file, err)
		}
		s.DB().QueryRow(`SELECT count(*) FROM ` + quoteIdent(tt.table)).Scan(&want)
		if got != want || (tt.table != "runs" && got == 0) {
			t.Errorf("%s: parquet has %d rows, table %d", tt.table, got, want)
		}
	}
	// Exporting again replaces the file.
	if err := s.ExportParquet(ctx, "coverage", filepath.Join(dir, "coverage.parquet")); err != nil {
		t.Errorf("re-export: %v", err)
	}

	for _, bad := range []struct{ table, path, want string }{
		{`attribution; DROP TABLE runs`, "x.parquet", "is not a table or view"},
		{`attribution" TO 'x.csv'; --`, "x.parquet", "is not a table or view"},
		{`main.attribution`, "x.parquet", "is not a table or view"},
		{`duckdb_settings()`, "x.parquet", "is not a table or view"},
		{`ATTRIBUTION`, "x.parquet", "is not a table or view"},
		{"", "x.parquet", "is not a table or view"},
		{"attribution", "", "empty path"},
		{"attribution", "x.parquet\n; DROP TABLE runs", "line break"},
		{"attribution", "x.parquet\x00", "NUL"},
	} {
		err := s.ExportParquet(ctx, bad.table, filepath.Join(dir, bad.path))
		if bad.path == "" {
			err = s.ExportParquet(ctx, bad.table, "")
		}
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ExportParquet(%q, %q) error = %v, want %q", bad.table, bad.path, err, bad.want)
		}
	}
	var n int
	if err := s.DB().QueryRow(`SELECT count(*) FROM runs`).Scan(&n); err != nil {
		t.Errorf("runs table gone after injection attempts: %v", err)
	}
}
