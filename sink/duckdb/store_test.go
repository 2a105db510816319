package duckdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/schemas"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

var day1 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func openStore(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "obolus.duckdb")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// att builds an attributed row of one invocation; opts adjust it.
func att(inv, user string, at time.Time, opts ...func(*schemas.Attribution)) schemas.Attribution {
	a := schemas.Attribution{
		InvocationID: inv, RequestID: "req-" + inv, EventTime: at, EventDate: at.UTC().Format(time.DateOnly),
		AccountID: "acct", WorkspaceID: "ws-1", EndpointID: "ep-id-a", EndpointName: "ep-a",
		DestinationModel: "claude-sonnet", Requester: "sp-agent", StatusCode: 200, UsageSource: schemas.SourceAIGateway,
		EndUser: user, Team: "team-" + user, CostCenter: "cc-" + user, AgentEndpoint: "agent-1",
		TraceID: "tr-" + inv, AgentRequestID: "ar-" + inv, Session: "sess",
		MatchMethod: schemas.MethodTraceID, MatchConfidence: 1, Candidates: 1, Weight: 1,
		InputTokens: 100, OutputTokens: 50, TotalTokens: 150, CacheReadInputTokens: 10,
		CacheCreationInputTokens: 5, OutputReasoningTokens: 7, CostUSD: 0.25, PriceListVersion: "2026-01",
		Version: 1, RunID: "run-1", ProcessedAt: day1.Add(48 * time.Hour),
	}
	for _, o := range opts {
		o(&a)
	}
	return a
}

func version(v int64) func(*schemas.Attribution) {
	return func(a *schemas.Attribution) { a.Version = v }
}

// split makes the row one share of a split invocation.
func split(w float64, in, out int64) func(*schemas.Attribution) {
	return func(a *schemas.Attribution) {
		a.MatchMethod, a.Weight, a.Candidates, a.MatchConfidence = schemas.MethodTimeWindowSplit, w, 2, 0.5
		a.InputTokens, a.OutputTokens, a.TotalTokens = in, out, in+out
		a.CostUSD = 0.25 * w
	}
}

func unattributed(a *schemas.Attribution) {
	a.MatchMethod, a.Reason, a.MatchConfidence, a.Candidates = schemas.MethodUnattributed, "no_candidate", 0, 0
	a.EndUser, a.Team, a.CostCenter, a.AgentEndpoint, a.TraceID, a.AgentRequestID, a.Session = a.Requester, schemas.UnassignedTeam, "", "", "", "", ""
}

func endpoint(name string) func(*schemas.Attribution) {
	return func(a *schemas.Attribution) { a.EndpointName, a.EndpointID = name, "ep-id-"+name }
}

func method(m string) func(*schemas.Attribution) {
	return func(a *schemas.Attribution) { a.MatchMethod = m }
}

func keys(rows []schemas.Attribution) []string {
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprintf("%s/%s/v%d", r.InvocationID, r.EndUser, r.Version))
	}
	slices.Sort(out)
	return out
}

func readAll(t *testing.T, s *Store) []schemas.Attribution {
	t.Helper()
	rows, err := s.Attributions(context.Background(), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func jsonNames(v any) []string {
	var out []string
	typ := reflect.TypeOf(v)
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		out = append(out, name)
	}
	return out
}

func columns(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	rs, err := db.Query(`SELECT column_name FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = ? ORDER BY column_index`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var c string
		if err := rs.Scan(&c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func TestOpenAppliesDDLIdempotently(t *testing.T) {
	ctx := context.Background()
	s, path := openStore(t)
	if _, err := s.ReplaceAttributions(ctx, time.Time{}, time.Time{}, []schemas.Attribution{att("i1", "alice", day1)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Second and third application, on a file that holds data.
	for range 2 {
		s2, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if got := readAll(t, s2); len(got) != 1 {
			t.Fatalf("after reopen: %d rows, want 1", len(got))
		}
		s2.Close()
	}
	s, _ = openStore(t)

	if got, want := columns(t, s.DB(), "attribution"), jsonNames(schemas.Attribution{}); !slices.Equal(got, want) {
		t.Errorf("attribution columns\n got %v\nwant %v (schemas.Attribution JSON names)", got, want)
	}
	if got, want := strings.Join(columns(t, s.DB(), "attribution"), ","), strings.Join(strings.Fields(strings.ReplaceAll(attributionColumns, ",", " ")), ","); got != want {
		t.Errorf("attributionColumns out of date:\n got %s\nwant %s", want, got)
	}
	if got, want := columns(t, s.DB(), "dead_letters"), jsonNames(schemas.DeadLetter{}); !slices.Equal(got, want) {
		t.Errorf("dead_letters columns\n got %v\nwant %v", got, want)
	}
	wantRuns := []string{"run_id", "job", "started_at", "finished_at", "window_from", "window_to", "rows_read",
		"outside_window", "duplicates", "dead_lettered", "attributed", "unattributed", "input_tokens_in",
		"total_tokens_in", "total_tokens_out", "status", "error", "stale", "stale_invocations"}
	if got := columns(t, s.DB(), "runs"); !slices.Equal(got, wantRuns) {
		t.Errorf("runs columns %v, want %v", got, wantRuns)
	}
	if n := reflect.TypeOf(schemas.Run{}).NumField(); n != len(wantRuns) {
		t.Errorf("Run has %d fields, runs table %d columns", n, len(wantRuns))
	}

	// Every column of every table and view carries a comment.
	rs, err := s.DB().Query(`SELECT table_name, column_name FROM duckdb_columns()
		WHERE schema_name = 'main' AND NOT internal AND coalesce(comment, '') = '' ORDER BY ALL`)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var tb, c string
		rs.Scan(&tb, &c)
		t.Errorf("column %s.%s has no comment", tb, c)
	}
	rs.Close()
	// Objects are exactly what the DDL creates (other files may join the
	// store's own ten).
	stmts, err := schemas.DDL("duckdb")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range stmts {
		names = append(names, st.Name)
	}
	slices.Sort(names)
	if got := s.Objects(); !slices.Equal(got, names) {
		t.Errorf("Objects() = %v, want %v", got, names)
	}
	for _, own := range []string{"attribution", "dead_letters", "coverage", "checkpoints", "runs",
		"v_daily_user", "v_daily_team", "v_daily_model", "v_daily_agent", "v_coverage_daily"} {
		if !slices.Contains(names, own) {
			t.Errorf("DDL lacks %s", own)
		}
	}
}

// The DDL also runs statement by statement, as a driver without
// multi-statement support would run it.
func TestDDLParts(t *testing.T) {
	db, err := sql.Open("duckdb", filepath.Join(t.TempDir(), "parts.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts, err := schemas.DDL("duckdb")
	if err != nil {
		t.Fatal(err)
	}
	for pass := range 2 {
		for _, st := range stmts {
			for _, p := range st.Parts() {
				if _, err := db.Exec(p); err != nil {
					t.Fatalf("pass %d, %s: %v\n%s", pass, st.Name, err, p)
				}
			}
		}
	}
}

func TestReplaceRoundTripAndIdempotent(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	in := []schemas.Attribution{
		att("i1", "alice", day1.Add(time.Hour+123456*time.Microsecond)),
		att("i2", "bob", day1.Add(2*time.Hour), split(0.5, 60, 30)),
		att("i2", "carol", day1.Add(2*time.Hour), split(0.5, 40, 20)),
		att("i3", "sp-agent", day1.Add(3*time.Hour), unattributed, func(a *schemas.Attribution) { a.ProcessedAt = time.Time{} }),
		// Written in another zone, without event_date: stored and read back
		// as UTC with the UTC date.
		att("i4", "dave", time.Date(2026, 3, 2, 0, 30, 0, 0, time.FixedZone("CET", 3600)), func(a *schemas.Attribution) { a.EventDate = "" }),
	}
	from, to := day1, day1.Add(24*time.Hour)
	st, err := s.ReplaceAttributions(ctx, from, to, in)
	if err != nil {
		t.Fatal(err)
	}
	if want := (schemas.WriteStats{Rows: 5, Invocations: 4, Inserted: 5}); st != want {
		t.Errorf("first write stats %+v, want %+v", st, want)
	}
	first := readAll(t, s)
	want := slices.Clone(in)
	for i := range want {
		want[i].EventTime = want[i].EventTime.UTC()
		want[i].EventDate = want[i].EventTime.Format(time.DateOnly)
	}
	slices.SortFunc(want, func(a, b schemas.Attribution) int {
		return cmpKey(a).Compare(cmpKey(b))
	})
	if !reflect.DeepEqual(first, want) {
		gotJ, _ := json.MarshalIndent(first, "", " ")
		wantJ, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("read back differs:\n got %s\nwant %s", gotJ, wantJ)
	}

	st, err = s.ReplaceAttributions(ctx, from, to, in)
	if err != nil {
		t.Fatal(err)
	}
	if want := (schemas.WriteStats{Rows: 5, Invocations: 4, Inserted: 5, Deleted: 5}); st != want {
		t.Errorf("rerun stats %+v, want %+v", st, want)
	}
	if second := readAll(t, s); !reflect.DeepEqual(second, first) {
		t.Errorf("rerun changed the table:\n got %v\nwant %v", keys(second), keys(first))
	}
	var n int
	s.DB().QueryRow(`SELECT count(*) FROM attribution`).Scan(&n)
	if n != 5 {
		t.Errorf("count after rerun = %d, want 5", n)
	}
}

type key struct {
	t    time.Time
	inv  string
	user string
}

func cmpKey(a schemas.Attribution) key { return key{a.EventTime.UTC(), a.InvocationID, a.EndUser} }

func (k key) Compare(o key) int {
	if c := k.t.Compare(o.t); c != 0 {
		return c
	}
	if c := strings.Compare(k.inv, o.inv); c != 0 {
		return c
	}
	return strings.Compare(k.user, o.user)
}

func TestWindowReplace(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	from, to := day1, day1.Add(24*time.Hour)
	before := att("prev", "zoe", from.Add(-time.Microsecond))
	edge := att("next", "zoe", to) // to is exclusive
	seed := []schemas.Attribution{
		before, edge,
		att("a", "alice", from),
		att("b", "bob", from.Add(time.Hour)),
		att("c", "carol", to.Add(-time.Microsecond)),
	}
	if _, err := s.ReplaceAttributions(ctx, time.Time{}, time.Time{}, seed); err != nil {
		t.Fatal(err)
	}
	// The rerun no longer produces c; b now goes to a different user; a moved
	// out of the window is still replaced by invocation id.
	rerun := []schemas.Attribution{
		att("a", "alice", from.Add(-time.Hour)),
		att("b", "bert", from.Add(time.Hour)),
	}
	st, err := s.ReplaceAttributions(ctx, from, to, rerun)
	if err != nil {
		t.Fatal(err)
	}
	if want := (schemas.WriteStats{Rows: 2, Invocations: 2, Inserted: 2, Deleted: 3}); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	got := keys(readAll(t, s))
	want := []string{"a/alice/v1", "b/bert/v1", "next/zoe/v1", "prev/zoe/v1"}
	if !slices.Equal(got, want) {
		t.Errorf("after window replace %v, want %v", got, want)
	}
	// An empty input empties the window and nothing else.
	if _, err := s.ReplaceAttributions(ctx, from, to, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(readAll(t, s)), []string{"a/alice/v1", "next/zoe/v1", "prev/zoe/v1"}; !slices.Equal(got, want) {
		t.Errorf("after empty window replace %v, want %v", got, want)
	}
	// Windowed read.
	in, err := s.Attributions(ctx, from.Add(-time.Hour), to)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keys(in), []string{"a/alice/v1", "prev/zoe/v1"}; !slices.Equal(got, want) {
		t.Errorf("windowed read %v, want %v", got, want)
	}
}

func TestVersionGuard(t *testing.T) {
	t0 := day1.Add(time.Hour)
	from, to := day1, day1.Add(24*time.Hour)
	tests := []struct {
		name       string
		stored     []schemas.Attribution
		windowed   bool
		in         []schemas.Attribution
		want       []string
		stale      int64
		staleInvoc int64
	}{
		{"lower version is dropped", []schemas.Attribution{att("i", "alice", t0, version(2))}, false,
			[]schemas.Attribution{att("i", "bob", t0, version(1))}, []string{"i/alice/v2"}, 1, 1},
		{"higher version replaces", []schemas.Attribution{att("i", "alice", t0, version(1))}, false,
			[]schemas.Attribution{att("i", "bob", t0, version(2))}, []string{"i/bob/v2"}, 0, 0},
		{"equal version replaces", []schemas.Attribution{att("i", "alice", t0, version(3))}, false,
			[]schemas.Attribution{att("i", "bob", t0, version(3))}, []string{"i/bob/v3"}, 0, 0},
		{"stored split kept whole against lower single row",
			[]schemas.Attribution{att("i", "alice", t0, version(2), split(0.5, 1, 1)), att("i", "bob", t0, version(2), split(0.5, 1, 1))}, false,
			[]schemas.Attribution{att("i", "carol", t0, version(1))}, []string{"i/alice/v2", "i/bob/v2"}, 1, 1},
		{"stored single replaced by higher split",
			[]schemas.Attribution{att("i", "alice", t0, version(1))}, false,
			[]schemas.Attribution{att("i", "alice", t0, version(2), split(0.5, 1, 1)), att("i", "bob", t0, version(2), split(0.5, 1, 1))},
			[]string{"i/alice/v2", "i/bob/v2"}, 0, 0},
		{"guard holds inside a replaced window; others in the batch still land",
			[]schemas.Attribution{att("i", "alice", t0, version(5)), att("j", "bob", t0, version(5))}, true,
			[]schemas.Attribution{att("i", "carol", t0, version(4)), att("j", "dave", t0, version(6))},
			[]string{"i/alice/v5", "j/dave/v6"}, 1, 1},
		{"window drops an absent invocation whatever its version",
			[]schemas.Attribution{att("gone", "alice", t0, version(9))}, true,
			[]schemas.Attribution{att("k", "bob", t0, version(1))}, []string{"k/bob/v1"}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := openStore(t)
			if _, err := s.ReplaceAttributions(ctx, time.Time{}, time.Time{}, tt.stored); err != nil {
				t.Fatal(err)
			}
			f, e := time.Time{}, time.Time{}
			if tt.windowed {
				f, e = from, to
			}
			st, err := s.ReplaceAttributions(ctx, f, e, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if st.Stale != tt.stale || st.StaleInvocations != tt.staleInvoc {
				t.Errorf("stale %d rows / %d invocations, want %d / %d", st.Stale, st.StaleInvocations, tt.stale, tt.staleInvoc)
			}
			if st.Inserted != st.Rows-st.Stale {
				t.Errorf("inserted %d, want rows %d - stale %d", st.Inserted, st.Rows, st.Stale)
			}
			if got := keys(readAll(t, s)); !slices.Equal(got, tt.want) {
				t.Errorf("table holds %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReplaceRejects(t *testing.T) {
	t0 := day1.Add(time.Hour)
	tests := []struct {
		name     string
		from, to time.Time
		rows     []schemas.Attribution
		want     string
	}{
		{"duplicate key", time.Time{}, time.Time{},
			[]schemas.Attribution{att("i", "alice", t0), att("i", "alice", t0)}, `invocation_id "i", end_user "alice": 2 rows`},
		{"mixed versions", time.Time{}, time.Time{},
			[]schemas.Attribution{att("i", "alice", t0, version(1)), att("i", "bob", t0, version(2))}, `invocation_id "i": rows carry versions 1 to 2`},
		{"empty invocation id", time.Time{}, time.Time{},
			[]schemas.Attribution{att("ok", "a", t0), att("", "alice", t0)}, `row 1 (invocation_id "", end_user "alice"): invocation_id is empty`},
		{"zero event time", time.Time{}, time.Time{},
			[]schemas.Attribution{att("i", "alice", time.Time{})}, "event_time is zero"},
		{"event date not UTC date", time.Time{}, time.Time{},
			[]schemas.Attribution{att("i", "alice", t0, func(a *schemas.Attribution) { a.EventDate = "2026-02-28" })}, `event_date "2026-02-28" is not the UTC date`},
		{"NaN weight", time.Time{}, time.Time{},
			[]schemas.Attribution{att("i", "alice", t0, func(a *schemas.Attribution) { a.Weight = math.NaN() })}, "weight is NaN"},
		{"weight above one", time.Time{}, time.Time{},
			[]schemas.Attribution{att("i", "alice", t0, func(a *schemas.Attribution) { a.Weight = 1.5 })}, "weight 1.5 is outside"},
		{"infinite cost", time.Time{}, time.Time{},
			[]schemas.Attribution{att("i", "alice", t0, func(a *schemas.Attribution) { a.CostUSD = math.Inf(1) })}, "cost_usd is +Inf"},
		{"bad UTF-8", time.Time{}, time.Time{},
			[]schemas.Attribution{att("i", "al\xffice", t0)}, "end_user is not valid UTF-8"},
		{"empty method", time.Time{}, time.Time{},
			[]schemas.Attribution{att("i", "alice", t0, method(""))}, "match_method is empty"},
		{"half window", day1, time.Time{}, nil, "is not a window"},
		{"reversed window", day1, day1.Add(-time.Hour), nil, "is not a window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := openStore(t)
			seed := []schemas.Attribution{att("seed", "zoe", t0)}
			if _, err := s.ReplaceAttributions(ctx, time.Time{}, time.Time{}, seed); err != nil {
				t.Fatal(err)
			}
			_, err := s.ReplaceAttributions(ctx, tt.from, tt.to, tt.rows)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
			if got := keys(readAll(t, s)); !slices.Equal(got, []string{"seed/zoe/v1"}) {
				t.Errorf("a rejected write changed the table: %v", got)
			}
		})
	}
}

func TestDeadLetters(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	at := day1.Add(5 * time.Minute)
	dl := func(loc, reason, record string) schemas.DeadLetter {
		return schemas.DeadLetter{Source: "usage.jsonl", Location: loc, Kind: schemas.KindUsage, Field: "event_time",
			Reason: reason, Record: record, RunID: "run-1", DeadLetteredAt: at}
	}
	if err := s.WriteDeadLetters(ctx, []schemas.DeadLetter{dl("line 1", "bad time", "{}"), dl("line 2", "bad time", "{}")}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", schemas.MaxDeadLetterRecord) // 2 bytes a rune
	err := s.WriteDeadLetters(ctx, []schemas.DeadLetter{
		dl("line 2", "first", "x"),
		dl("line 2", "rerun reason", "\xff\xfe raw"), // last for the key wins
		dl("line 3", "long", long),
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d dead letters, want 3: %+v", len(got), got)
	}
	if got[0] != dl("line 1", "bad time", "{}") {
		t.Errorf("line 1 = %+v", got[0])
	}
	if got[1].Reason != "rerun reason" || got[1].Record != "\uFFFD raw" {
		t.Errorf("line 2 not upserted with the last entry: %+v", got[1])
	}
	if r := got[2].Record; len(r) != schemas.MaxDeadLetterRecord || r != long[:schemas.MaxDeadLetterRecord] {
		t.Errorf("long record kept %d bytes, want %d on a rune boundary", len(r), schemas.MaxDeadLetterRecord)
	}
	if err := s.WriteDeadLetters(ctx, []schemas.DeadLetter{{Source: "x"}}); err == nil || !strings.Contains(err.Error(), "source and location must be set") {
		t.Errorf("missing location: error %v", err)
	}
}

func TestCutKeepsRunes(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 5, "abc"}, {"abc", 2, "ab"}, {"aé", 2, "a"}, {"aé", 3, "aé"}, {"€x", 2, ""}, {"€x", 3, "€"},
	}
	for _, tt := range tests {
		if got := cut(tt.s, tt.n); got != tt.want {
			t.Errorf("cut(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

func TestCheckpointsAndRuns(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	if _, ok, err := s.Checkpoint(ctx, "daily"); err != nil || ok {
		t.Fatalf("missing checkpoint: ok=%v err=%v", ok, err)
	}
	end := time.Date(2026, 3, 2, 0, 0, 0, 0, time.FixedZone("X", -5*3600))
	for _, e := range []time.Time{end, end.Add(24 * time.Hour), end} { // a rewind is allowed
		if err := s.SetCheckpoint(ctx, "daily", e); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.Checkpoint(ctx, "daily")
		if err != nil || !ok || !got.Equal(e) || got.Location() != time.UTC {
			t.Fatalf("checkpoint = %v %v %v, want %v in UTC", got, ok, err, e)
		}
	}
	if err := s.SetCheckpoint(ctx, "", end); err == nil {
		t.Error("empty job accepted")
	}
	if err := s.SetCheckpoint(ctx, "daily", time.Time{}); err == nil {
		t.Error("zero window end accepted")
	}

	r := schemas.Run{RunID: "run-1", Job: "daily", StartedAt: day1, WindowFrom: day1, WindowTo: day1.Add(24 * time.Hour), Status: schemas.RunRunning}
	if err := s.RecordRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.FinishedAt, r.Status = day1.Add(time.Minute), schemas.RunOK
	r.RowsRead, r.OutsideWindow, r.Duplicates, r.DeadLettered, r.Attributed, r.Unattributed = 100, 1, 2, 3, 90, 4
	r.InputTokensIn, r.TotalTokensIn, r.TotalTokensOut = 1000, 1500, 1500
	if err := s.RecordRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	other := schemas.Run{RunID: "run-2", Job: "hourly", Status: schemas.RunFailed, Error: "boom"}
	if err := s.RecordRun(ctx, other); err != nil {
		t.Fatal(err)
	}
	runs, err := s.Runs(ctx, "daily")
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0] != r {
		t.Errorf("runs of daily = %+v, want [%+v]", runs, r)
	}
	if all, _ := s.Runs(ctx, ""); len(all) != 2 || all[1] != other {
		t.Errorf("all runs = %+v", all)
	}
	if err := s.RecordRun(ctx, schemas.Run{Status: schemas.RunOK}); err == nil {
		t.Error("run without id accepted")
	}
}

func TestConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			var rows []schemas.Attribution
			for i := range 100 {
				rows = append(rows, att(fmt.Sprintf("g%d-%d", g, i), "u", day1.Add(time.Duration(i)*time.Second)))
			}
			// All goroutines replace the same invocation too.
			rows = append(rows, att("shared", fmt.Sprintf("u%d", g), day1))
			_, err := s.ReplaceAttributions(ctx, time.Time{}, time.Time{}, rows)
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var n, shared int
	s.DB().QueryRow(`SELECT count(*), count(*) FILTER (WHERE invocation_id = 'shared') FROM attribution`).Scan(&n, &shared)
	if n != 801 || shared != 1 {
		t.Errorf("rows %d (shared %d), want 801 (1)", n, shared)
	}
}

// dump renders a query's result as tab-separated text for golden files.
func dump(t *testing.T, db *sql.DB, query string) string {
	t.Helper()
	rs, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	cols, _ := rs.Columns()
	var b strings.Builder
	b.WriteString(strings.Join(cols, "\t") + "\n")
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rs.Next() {
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if i > 0 {
				b.WriteByte('\t')
			}
			switch v := v.(type) {
			case nil:
				b.WriteString("NULL")
			case time.Time:
				if v.Equal(v.Truncate(24 * time.Hour)) {
					b.WriteString(v.Format(time.DateOnly))
				} else {
					b.WriteString(v.Format(time.RFC3339Nano))
				}
			case float64:
				b.WriteString(strconv.FormatFloat(v, 'g', 10, 64))
			default:
				fmt.Fprint(&b, v)
			}
		}
		b.WriteByte('\n')
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got\n%s--- want\n%s", name, got, want)
	}
}

func TestReplaceAttributionChunksEqualsOneSlice(t *testing.T) {
	ctx := context.Background()
	var rows []schemas.Attribution
	for i := 0; i < 10; i++ {
		rows = append(rows, schemas.Attribution{
			InvocationID: fmt.Sprintf("inv-%02d", i), EndUser: "u@example.com", MatchMethod: schemas.MethodTraceID,
			EventTime: time.Date(2026, 11, 2, 9, i, 0, 0, time.UTC), Weight: 1, TotalTokens: int64(i), Version: 1,
		})
	}
	one, err := Open(ctx, filepath.Join(t.TempDir(), "one.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	chunked, err := Open(ctx, filepath.Join(t.TempDir(), "chunked.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer chunked.Close()
	from, to := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	if _, err := one.ReplaceAttributions(ctx, from, to, rows); err != nil {
		t.Fatal(err)
	}
	st, err := chunked.ReplaceAttributionChunks(ctx, from, to, [][]schemas.Attribution{rows[:3], nil, rows[3:]})
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != 10 || st.Inserted != 10 {
		t.Errorf("stats %+v, want 10 rows inserted", st)
	}
	a, _ := one.Attributions(ctx, time.Time{}, time.Time{})
	b, _ := chunked.Attributions(ctx, time.Time{}, time.Time{})
	if len(a) != len(b) {
		t.Fatalf("one slice wrote %d rows, chunks %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("row %d differs: %+v vs %+v", i, a[i], b[i])
		}
	}
	bad := rows[5]
	bad.InvocationID = ""
	if _, err := chunked.ReplaceAttributionChunks(ctx, from, to, [][]schemas.Attribution{rows[:3], {bad}}); err == nil || !strings.Contains(err.Error(), "row 3") {
		t.Errorf("error %v, want it to name row 3 (counted across chunks)", err)
	}
}

func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "typo.duckdb")
	if _, err := OpenReadOnly(ctx, missing); !errors.Is(err, ErrNoStore) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing store: err %v, want ErrNoStore naming %s", err, missing)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenReadOnly created %s", missing)
	}
	s, path := openStore(t)
	if _, err := s.ReplaceAttributions(ctx, time.Time{}, time.Time{}, []schemas.Attribution{att("a", "ana", day1)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	ro, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if rows, err := ro.Attributions(ctx, time.Time{}, time.Time{}); err != nil || len(rows) != 1 {
		t.Fatalf("read %d rows, err %v", len(rows), err)
	}
	if _, err := ro.ReplaceAttributions(ctx, time.Time{}, time.Time{}, []schemas.Attribution{att("b", "bo", day1)}); err == nil {
		t.Error("a read-only store accepted a write")
	}
}

// A file that is not a DuckDB database is refused before DuckDB reads it (it
// used to fetch the sqlite_scanner extension from the network), and a store
// never installs or loads extensions on its own.
func TestOpenNotDuckDB(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	files := map[string][]byte{
		"sqlite.db": append([]byte("SQLite format 3\x00"), make([]byte, 4096)...),
		"text.db":   []byte("hello\n"),
		"short.db":  []byte("DU"),
	}
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, body, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, open := range []func(context.Context, string) (*Store, error){Open, OpenReadOnly} {
			if s, err := open(ctx, path); !errors.Is(err, ErrNotDuckDB) || !strings.Contains(err.Error(), path) {
				if s != nil {
					s.Close()
				}
				t.Errorf("%s: err %v, want ErrNotDuckDB naming the file", name, err)
			}
		}
		if got, _ := os.ReadFile(path); string(got) != string(body) {
			t.Errorf("%s was changed", name)
		}
	}
	s, _ := openStore(t)
	for _, setting := range []string{"autoinstall_known_extensions", "autoload_known_extensions"} {
		var on bool
		if err := s.DB().QueryRowContext(ctx, "SELECT current_setting('"+setting+"')").Scan(&on); err != nil || on {
			t.Errorf("%s = %v (err %v), want false", setting, on, err)
		}
	}
}
