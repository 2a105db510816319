package databricks_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/schemas"
	"github.com/obolus/obolus/sink/databricks"
)

// A store made before store_meta (version 1) is refused by writers until
// obolus init migrates it; a newer or unknown one is refused by init too.
func TestStoreVersion(t *testing.T) {
	ctx := dbsqltest.Context(t)
	_, s := newStore(t, databricks.Options{})
	if v, err := s.Version(ctx); err != nil || v != schemas.StoreVersion {
		t.Fatalf("new store version %d, err %v", v, err)
	}
	run := schemas.Run{RunID: "r1", Job: "default", StartedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Status: schemas.RunOK, RowsRead: 10}
	if err := s.RecordRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	// What an older obolus left: no store_meta, runs without the stale columns,
	// the stage without the copy columns, no calibration or cost_allocation
	// table.
	for _, q := range []string{"DROP TABLE " + s.Table("store_meta"),
		"ALTER TABLE " + s.Table("runs") + " DROP COLUMN stale",
		"ALTER TABLE " + s.Table("runs") + " DROP COLUMN stale_invocations",
		"ALTER TABLE " + s.Table("stage_attribution") + " DROP COLUMN copy_seq",
		"ALTER TABLE " + s.Table("stage_attribution") + " DROP COLUMN copy_event_ns",
		"ALTER TABLE " + s.Table("stage_attribution") + " DROP COLUMN copy_total_tokens",
		"ALTER TABLE " + s.Table("stage_attribution") + " DROP COLUMN copy_input_tokens",
		"ALTER TABLE " + s.Table("stage_attribution") + " DROP COLUMN copy_masked",
		"DROP TABLE " + s.Table("calibration"),
		"DROP VIEW " + s.Table("v_monthly_allocated"),
		"DROP TABLE " + s.Table("cost_allocation")} {
		if _, err := s.DB().ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := s.CheckVersion(ctx); !errors.Is(err, schemas.ErrStoreVersion) {
		t.Fatalf("version 1 store: CheckVersion %v", err)
	}
	if _, err := s.Init(ctx); err != nil {
		t.Fatalf("init of a version 1 store: %v", err)
	}
	if err := s.CheckVersion(ctx); err != nil {
		t.Fatalf("after migration: %v", err)
	}
	var n int
	if err := s.DB().QueryRowContext(ctx, "SELECT count(*) FROM "+s.Table("v_monthly_allocated")).Scan(&n); err != nil {
		t.Errorf("cost_allocation and its view after migration: %v", err)
	}
	run.RunID, run.Stale, run.StaleInvocations = "r2", 3, 2
	if err := s.RecordRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	runs, err := s.Runs(ctx, "")
	if err != nil || len(runs) != 2 || runs[0].RowsRead != 10 || runs[0].Stale != 0 || runs[1].Stale != 3 || runs[1].StaleInvocations != 2 {
		t.Fatalf("runs %+v, err %v", runs, err)
	}

	for _, v := range []string{strconv.Itoa(schemas.StoreVersion + 1), "x"} {
		if _, err := s.DB().ExecContext(ctx, "UPDATE "+s.Table("store_meta")+" SET value = ? WHERE name = ?", v, schemas.StoreVersionKey); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckVersion(ctx); !errors.Is(err, schemas.ErrStoreVersion) {
			t.Errorf("version %s: CheckVersion %v", v, err)
		}
		if _, err := s.Init(ctx); !errors.Is(err, schemas.ErrStoreVersion) {
			t.Errorf("version %s: Init %v", v, err)
		}
	}
}
