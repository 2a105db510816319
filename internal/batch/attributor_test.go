package batch

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/schemas"
	"github.com/obolus/obolus/sink/duckdb"
)

// The copy of a repeated invocation that is kept must not depend on the
// order the rows arrive in. The store decides it when the window is
// committed, so the test runs against a real one.
func TestAttributorKeepsTheSameCopyInAnyOrder(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	early := schemas.UsageEvent{InvocationID: "inv", Requester: "sp", EventTime: t0, TotalTokens: 10, DestinationModel: "gpt-5-mini"}
	late := early
	late.EventTime, late.TotalTokens = t0.Add(time.Second), 99
	richer := early
	richer.TotalTokens = 20
	for name, order := range map[string][]schemas.UsageEvent{
		"early first": {early, late, richer}, "late first": {late, early, richer}, "richer first": {richer, late, early},
	} {
		e, err := enrich.NewEngine(enrich.DefaultMatchConfig(), enrich.NewIndex(), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		s, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "s.duckdb"))
		if err != nil {
			t.Fatal(err)
		}
		stage, err := s.StageAttributions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		a := newAttributor(e, enrich.Run{ID: "r", Version: 1}, stage)
		for _, ev := range order {
			// One event at a time, each its own chunk: copies meet only in the store.
			if err := a.add(ctx, []schemas.UsageEvent{ev}); err != nil {
				t.Fatal(err)
			}
			if err := a.flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		_, tot, err := stage.Commit(ctx, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		stage.Close()
		rep := &Report{ByMethod: map[string]float64{}}
		a.finish(rep, tot)
		if rep.Invocations != 1 || rep.Duplicates != 2 || rep.OutputRows != 1 {
			t.Fatalf("%s: invocations %d duplicates %d rows %d, want 1, 2, 1", name, rep.Invocations, rep.Duplicates, rep.OutputRows)
		}
		rows, err := s.Attributions(ctx, time.Time{}, time.Time{})
		s.Close()
		if err != nil || len(rows) != 1 {
			t.Fatalf("%s: %d rows stored (%v), want 1", name, len(rows), err)
		}
		if got := rows[0]; !got.EventTime.Equal(t0) || got.TotalTokens != 20 || rep.TokensIn != 20 || rep.TokensOut != 20 {
			t.Errorf("%s: kept the copy at %s with %d tokens (in %d, out %d), want the earliest with the most tokens (20)", name, got.EventTime, got.TotalTokens, rep.TokensIn, rep.TokensOut)
		}
	}
}
