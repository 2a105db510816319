package batch_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/obolus/obolus/internal/app"
	"github.com/obolus/obolus/internal/batch"
	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/synth"
	"github.com/obolus/obolus/sink/duckdb"
)

// TestTableSourcesMatchFileSources loads a generated workload into tables of
// the store (as a team that lands Databricks exports in DuckDB would) and
// checks that reading them gives the same attribution as reading the files.
func TestTableSourcesMatchFileSources(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a workload")
	}
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := synth.Generate(ctx, synth.Config{Seed: 3, AgentRequests: 1500}, dir); err != nil {
		t.Fatal(err)
	}
	fileCfg, err := config.Load(config.New(), filepath.Join(dir, "obolus.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fileRep := run(t, fileCfg, filepath.Join(t.TempDir(), "files.duckdb"), nil)

	// The same inputs as tables: one per source, named after its position.
	tableStore := filepath.Join(t.TempDir(), "tables.duckdb")
	tableCfg := *fileCfg
	tableCfg.Sources = nil
	load := func(store *duckdb.Store) {
		for i, s := range fileCfg.Sources {
			name := "src_" + strings.Repeat("x", i%3) + string(rune('a'+i))
			q := "CREATE TABLE " + name + " AS SELECT * FROM read_json_auto('" + strings.ReplaceAll(s.Path, "'", "''") + "', format = 'newline_delimited')"
			if _, err := store.DB().ExecContext(ctx, q); err != nil {
				t.Fatalf("load %s: %v", s.Path, err)
			}
			s.Path, s.Table = "", "main."+name
			tableCfg.Sources = append(tableCfg.Sources, s)
		}
	}
	tableRep := run(t, &tableCfg, tableStore, load)

	if fileRep.Summary() != tableRep.Summary() {
		t.Errorf("tables and files disagree:\nfiles  %s\ntables %s", fileRep.Summary(), tableRep.Summary())
	}
	for m, n := range fileRep.ByMethod {
		if tableRep.ByMethod[m] != n {
			t.Errorf("method %s: %v from files, %v from tables", m, n, tableRep.ByMethod[m])
		}
	}
}

func run(t *testing.T, cfg *config.Config, storePath string, prepare func(*duckdb.Store)) *batch.Report {
	t.Helper()
	ctx := context.Background()
	store, err := duckdb.Open(ctx, storePath)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if prepare != nil {
		prepare(store)
	}
	job, err := app.EmbeddedJob(cfg, store, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := job.Run(ctx, batch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if dl, _ := store.DeadLetters(ctx); len(dl) > 0 {
		t.Logf("dead letter: %+v", dl[0])
	}
	if !rep.Reconciled() || rep.Invocations == 0 {
		t.Fatalf("run did not reconcile or saw nothing: %s", rep.Summary())
	}
	return rep
}
