package databricks_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/warehouse"
	"github.com/obolus/obolus/schemas"
	"github.com/obolus/obolus/sink/databricks"
)

func newStore(t testing.TB, opt databricks.Options) (*dbsqltest.Warehouse, *databricks.Store) {
	t.Helper()
	wh := dbsqltest.Start(t, warehouse.Config{})
	db := dbsqltest.Open(t, wh.Config)
	s, err := databricks.New(db, wh.Config.Catalog, wh.Config.Schema, opt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Init(dbsqltest.Context(t)); err != nil {
		t.Fatal(err)
	}
	return wh, s
}

func row(inv, user string, t time.Time, version int64) schemas.Attribution {
	return schemas.Attribution{
		InvocationID: inv, RequestID: "r-" + inv, EventTime: t, EventDate: t.UTC().Format(time.DateOnly),
		AccountID: "acc", WorkspaceID: "ws", EndpointID: "ep", EndpointName: "databricks-gpt-5", DestinationModel: "gpt-5",
		Requester: "sp-1", StatusCode: 200, UsageSource: schemas.SourceAIGateway, EndUser: user, Team: "t", CostCenter: "cc",
		MatchMethod: schemas.MethodTagUser, MatchConfidence: 1, Candidates: 1, Weight: 1,
		InputTokens: 10, OutputTokens: 5, TotalTokens: 15, CostUSD: 0.000123, PriceListVersion: "v1",
		Version: version, RunID: fmt.Sprintf("run-%d", version), ProcessedAt: t.Add(time.Hour),
	}
}

func TestInitTwiceAndRoundTrip(t *testing.T) {
	for _, mode := range []struct {
		name string
		opt  databricks.Options
	}{{"inserts", databricks.Options{InsertParams: 100}}, {"volume", databricks.Options{StagingVolume: "/Volumes/main/obolus/staging/runs"}}} {
		t.Run(mode.name, func(t *testing.T) {
			ctx := dbsqltest.Context(t)
			_, s := newStore(t, mode.opt)
			if _, err := s.Init(ctx); err != nil {
				t.Fatalf("second init: %v", err)
			}
			day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			rows := []schemas.Attribution{
				row("a", "u1", day.Add(time.Hour), 1),
				row("b", "u2", day.Add(2*time.Hour+123456*time.Microsecond), 1),
				row("c", "u3", day.Add(3*time.Hour), 1),
			}
			rows[2].ProcessedAt = time.Time{}
			if _, err := s.ReplaceAttributions(ctx, day, day.Add(24*time.Hour), rows); err != nil {
				t.Fatal(err)
			}
			got, err := s.Attributions(ctx, time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 {
				t.Fatalf("got %d rows, want 3: %+v", len(got), got)
			}
			for i := range got {
				if got[i] != rows[i] {
					t.Errorf("row %d:\n got %+v\nwant %+v", i, got[i], rows[i])
				}
			}
		})
	}
}

func TestReplaceSemantics(t *testing.T) {
	for _, opt := range []databricks.Options{{}, {StagingVolume: "/Volumes/main/obolus/staging"}} {
		t.Run(fmt.Sprintf("volume=%q", opt.StagingVolume), func(t *testing.T) { testReplaceSemantics(t, opt) })
	}
}

func testReplaceSemantics(t *testing.T, opt databricks.Options) {
	ctx := dbsqltest.Context(t)
	_, s := newStore(t, opt)
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	w0, w1 := day, day.Add(12*time.Hour)
	split1 := row("x", "u1", day.Add(time.Hour), 1)
	split2 := row("x", "u2", day.Add(time.Hour), 1)
	split1.Weight, split2.Weight = 0.5, 0.5
	keep := row("late-window", "u9", day.Add(13*time.Hour), 1) // outside the window
	gone := row("gone", "u4", day.Add(2*time.Hour), 1)         // in the window, not produced again
	if _, err := s.ReplaceAttributions(ctx, day, day.Add(24*time.Hour), []schemas.Attribution{split1, split2, keep, gone}); err != nil {
		t.Fatal(err)
	}
	// Restatement: x is now attributed by id to u3; gone is no longer produced.
	x := row("x", "u3", day.Add(time.Hour), 2)
	st, err := s.ReplaceAttributions(ctx, w0, w1, []schemas.Attribution{x})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats %+v", st)
	check := func(want ...schemas.Attribution) {
		t.Helper()
		got, err := s.Attributions(ctx, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("got %d rows %+v, want %d", len(got), got, len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("row %d:\n got %+v\nwant %+v", i, got[i], want[i])
			}
		}
	}
	check(x, keep)
	// An older answer does not overwrite a newer one, even inside the window.
	old := row("x", "u1", day.Add(time.Hour), 1)
	if _, err := s.ReplaceAttributions(ctx, w0, w1, []schemas.Attribution{old}); err != nil {
		t.Fatal(err)
	}
	check(x, keep)
	// A rerun of the same answer changes nothing.
	if _, err := s.ReplaceAttributions(ctx, w0, w1, []schemas.Attribution{x}); err != nil {
		t.Fatal(err)
	}
	check(x, keep)
	// An empty window replace clears the window.
	if _, err := s.ReplaceAttributions(ctx, w0, w1, nil); err != nil {
		t.Fatal(err)
	}
	check(keep)
}

func TestReplaceRejectsBadRows(t *testing.T) {
	ctx := dbsqltest.Context(t)
	_, s := newStore(t, databricks.Options{})
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	dup := []schemas.Attribution{row("a", "u", day, 1), row("a", "u", day, 1)}
	if _, err := s.ReplaceAttributions(ctx, time.Time{}, time.Time{}, dup); err == nil {
		t.Error("duplicate key accepted")
	}
	bad := row("b", "u", day, 1)
	bad.EventDate = "2026-11-02"
	if _, err := s.ReplaceAttributions(ctx, time.Time{}, time.Time{}, []schemas.Attribution{bad}); err == nil {
		t.Error("wrong event_date accepted")
	}
}

// A write whose connection drops before the MERGE runs is started over.
func TestWriteSurvivesADroppedConnection(t *testing.T) {
	faults := &warehouse.Faults{}
	wh := dbsqltest.Start(t, warehouse.Config{Faults: faults})
	db := dbsqltest.Open(t, wh.Config)
	ctx := dbsqltest.Context(t)
	s, err := databricks.New(db, wh.Config.Catalog, wh.Config.Schema, databricks.Options{StagingVolume: "/Volumes/main/obolus/staging"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Init(ctx); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	rows := []schemas.Attribution{row("a", "u1", day.Add(time.Hour), 1), row("b", "u2", day.Add(2*time.Hour), 1)}
	faults.DropNext("ExecuteStatement", 2)
	if _, err := s.ReplaceAttributions(ctx, day, day.Add(24*time.Hour), rows); err != nil {
		t.Fatal(err)
	}
	if faults.Injected() != 2 {
		t.Errorf("injected %d faults, want 2", faults.Injected())
	}
	got, err := s.Attributions(ctx, time.Time{}, time.Time{})
	if err != nil || len(got) != 2 {
		t.Fatalf("read %d rows, err %v", len(got), err)
	}
}

// Rows in chunks are staged across chunk boundaries, either way.
func TestReplaceChunks(t *testing.T) {
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var chunks [][]schemas.Attribution
	n := 0
	for _, size := range []int{3, 0, 7, 2} {
		var ch []schemas.Attribution
		for i := 0; i < size; i++ {
			ch = append(ch, row(fmt.Sprintf("inv-%02d", n), "u", day.Add(time.Duration(n)*time.Minute), 1))
			n++
		}
		chunks = append(chunks, ch)
	}
	for _, opt := range []databricks.Options{{InsertParams: (len(schemas.StageColumns()) + 1) * 4}, {StagingVolume: "/Volumes/main/obolus/staging"}} {
		_, s := newStore(t, opt)
		ctx := dbsqltest.Context(t)
		st, tm, err := s.ReplaceTimed(ctx, day, day.Add(24*time.Hour), chunks...)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Attributions(ctx, time.Time{}, time.Time{})
		if err != nil || len(got) != n || st.Invocations != int64(n) {
			t.Fatalf("%+v: wrote %d rows (stats %+v), err %v; want %d", opt, len(got), st, err, n)
		}
		if opt.StagingVolume == "" && tm.Statements != 9 {
			t.Errorf("inserts of 4 rows each: %d statements, want 3 INSERTs, the key and version checks, totals, weights by method, the stale count and the MERGE", tm.Statements)
		}
	}
}
