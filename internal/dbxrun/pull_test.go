package dbxrun_test

import (
	"testing"
	"time"

	"github.com/obolus/obolus/internal/app"
	"github.com/obolus/obolus/internal/batch"
	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/score"
)

func TestPullScoresAgainstTruth(t *testing.T) {
	e := newEnv(t, smallWorkload(1), nil)
	ctx := dbsqltest.Context(t)
	job, err := app.PullJob(e.cfg, e.db, e.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	sw := timed(job)
	t0 := time.Now()
	rep, err := job.Run(ctx, batch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s in %s %v", rep.Summary(), time.Since(t0), sw.d)
	rows, err := e.store.Attributions(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	truth, err := score.LoadTruth(e.layout.Truth)
	if err != nil {
		t.Fatal(err)
	}
	var srows []score.Row
	for _, r := range rows {
		srows = append(srows, score.Row{InvocationID: r.InvocationID, EndUser: r.EndUser, MatchMethod: r.MatchMethod, Weight: r.Weight})
	}
	sc := score.Score(truth, srows)
	t.Logf("precision %.4f recall %.4f", sc.Precision, sc.Recall)
}
