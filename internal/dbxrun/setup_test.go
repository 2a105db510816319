package dbxrun_test

import (
	"database/sql"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/dbsql/workload"
	"github.com/obolus/obolus/internal/synth"
	"github.com/obolus/obolus/internal/warehouse"
	"github.com/obolus/obolus/sink/databricks"
)

// env is a local warehouse holding a generated workload, and an obolus
// configuration pointing at it.
type env struct {
	wh     *dbsqltest.Warehouse
	db     *sql.DB
	cfg    *config.Config
	layout *workload.Layout
	store  *databricks.Store
	dir    string
}

func newEnv(t testing.TB, gen synth.Config, edit func(*config.Config)) *env {
	t.Helper()
	return newEnvWith(t, gen, warehouse.Config{}, edit)
}

// newEnvWith is newEnv on a warehouse configured by wc.
func newEnvWith(t testing.TB, gen synth.Config, wc warehouse.Config, edit func(*config.Config)) *env {
	t.Helper()
	ctx := dbsqltest.Context(t)
	dir := t.TempDir()
	if _, err := synth.Generate(ctx, gen, dir); err != nil {
		t.Fatal(err)
	}
	wh := dbsqltest.Start(t, wc)
	layout, err := workload.Load(ctx, wh.Server.DB(), dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.New(), "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Databricks = wh.Config
	layout.Configure(&cfg.Databricks)
	cfg.Org = layout.Org
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	db := dbsqltest.Open(t, cfg.Databricks)
	store, err := databricks.New(db, cfg.Databricks.Catalog, cfg.Databricks.Schema, databricks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Init(ctx); err != nil {
		t.Fatal(err)
	}
	return &env{wh: wh, db: db, cfg: cfg, layout: layout, store: store, dir: dir}
}

func smallWorkload(seed int64) synth.Config {
	return synth.Config{Seed: seed, AgentRequests: 1500, Users: 80, Duration: 6 * time.Hour}
}

// benchAgentRequests sizes the benchmarks' workload: OBOLUS_BENCH_AGENT_REQUESTS,
// else 110000 agent requests (about 1.04M usage rows).
func benchAgentRequests() int {
	if v, err := strconv.Atoi(os.Getenv("OBOLUS_BENCH_AGENT_REQUESTS")); err == nil && v > 0 {
		return v
	}
	return 110_000
}
