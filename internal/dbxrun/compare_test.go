package dbxrun_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/batch"
	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/dbxrun"
	"github.com/obolus/obolus/schemas"
	databrickssink "github.com/obolus/obolus/sink/databricks"
)

// comparable blanks what names the run rather than the answer.
func comparable(rows []schemas.Attribution) []schemas.Attribution {
	out := make([]schemas.Attribution, len(rows))
	for i, r := range rows {
		r.RunID, r.Version, r.ProcessedAt = "", 0, time.Time{}
		out[i] = r
	}
	return out
}

func diffRows(t *testing.T, pull, push []schemas.Attribution) {
	t.Helper()
	pull, push = comparable(pull), comparable(push)
	if len(pull) != len(push) {
		t.Errorf("pull wrote %d rows, pushdown %d", len(pull), len(push))
	}
	shown := 0
	for i := 0; i < len(pull) && i < len(push) && shown < 10; i++ {
		if pull[i] != push[i] {
			t.Errorf("row %d differs:\n pull %+v\n push %+v", i, pull[i], push[i])
			shown++
		}
	}
}

func TestPushdownMatchesPullSmoke(t *testing.T) {
	e := newEnv(t, smallWorkload(1), nil)
	ctx := dbsqltest.Context(t)
	job, err := dbxrun.NewPullJob(e.cfg, e.db, e.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	to := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	if _, err := job.Run(ctx, batch.Options{To: to}); err != nil {
		t.Fatal(err)
	}
	pushStore, err := databrickssink.New(e.db, e.cfg.Databricks.Catalog, "obolus_pushdown", databrickssink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pushStore.Init(ctx); err != nil {
		t.Fatal(err)
	}
	pd, err := dbxrun.NewPushdown(e.cfg, e.db, pushStore, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	rep, err := pd.Run(ctx, batch.Options{To: to})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s in %s %v", rep.Summary(), time.Since(t0), pd.Timings)
	pull, _ := e.store.Attributions(ctx, time.Time{}, time.Time{})
	push, _ := pushStore.Attributions(ctx, time.Time{}, time.Time{})
	diffRows(t, pull, push)
	_ = fmt.Sprint
}
