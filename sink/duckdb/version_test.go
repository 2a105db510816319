package duckdb

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/schemas"
)

// exec runs statements on a store file outside obolus, as a user or an older
// obolus might have left it, and closes it again.
func exec(t *testing.T, path string, stmts ...string) {
	t.Helper()
	s, _, err := open(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, q := range stmts {
		if _, err := s.DB().Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func storeVersionOf(t *testing.T, s *Store) string {
	t.Helper()
	var v string
	if err := s.DB().QueryRow("SELECT value FROM store_meta WHERE name = 'schema_version'").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// A store made before store_meta existed (version 1) is migrated on open:
// runs gain their stale columns, its rows are kept, the version is recorded.
// Opened read-only, it is refused with the way to migrate it.
func TestStoreMigratesVersion1(t *testing.T) {
	ctx := context.Background()
	s, path := openStore(t)
	run := schemas.Run{RunID: "r1", Job: "default", StartedAt: day1, Status: schemas.RunOK, RowsRead: 10}
	if err := s.RecordRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	s.Close()
	exec(t, path, "DROP TABLE store_meta", "ALTER TABLE runs DROP COLUMN stale", "ALTER TABLE runs DROP COLUMN stale_invocations", "DROP TABLE calibration",
		"DROP VIEW v_monthly_allocated", "DROP TABLE cost_allocation")

	if _, err := OpenReadOnly(ctx, path); !errors.Is(err, schemas.ErrStoreVersion) || !strings.Contains(err.Error(), "version 1") || !strings.Contains(err.Error(), "obolus init") {
		t.Fatalf("read-only open of a version 1 store: %v", err)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := storeVersionOf(t, s); v != strconv.Itoa(schemas.StoreVersion) {
		t.Errorf("version after migration %q", v)
	}
	var n int
	if err := s.DB().QueryRowContext(ctx, "SELECT count(*) FROM v_monthly_allocated").Scan(&n); err != nil {
		t.Errorf("cost_allocation and its view after migration: %v", err)
	}
	runs, err := s.Runs(ctx, "")
	if err != nil || len(runs) != 1 || runs[0].RowsRead != 10 || runs[0].Stale != 0 {
		t.Fatalf("runs after migration %+v, err %v", runs, err)
	}
	run.RunID, run.Stale, run.StaleInvocations = "r2", 3, 2
	if err := s.RecordRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	if runs, _ := s.Runs(ctx, ""); len(runs) != 2 || runs[1].Stale != 3 || runs[1].StaleInvocations != 2 {
		t.Errorf("runs %+v", runs)
	}
}

// A store of a newer or unknown version is refused, read-write and read-only:
// this build would write its tables wrongly.
func TestStoreRefusesUnknownVersion(t *testing.T) {
	ctx := context.Background()
	for _, v := range []string{strconv.Itoa(schemas.StoreVersion + 1), "99", "two", "0"} {
		s, path := openStore(t)
		s.Close()
		exec(t, path, "UPDATE store_meta SET value = '"+v+"' WHERE name = 'schema_version'")
		for name, open := range map[string]func(context.Context, string) (*Store, error){"Open": Open, "OpenReadOnly": OpenReadOnly} {
			if s, err := open(ctx, path); !errors.Is(err, schemas.ErrStoreVersion) || !strings.Contains(err.Error(), path) {
				if s != nil {
					s.Close()
				}
				t.Errorf("version %s, %s: err %v", v, name, err)
			}
		}
	}
}

// Rows are written by column name: an attribution table with its columns in
// another order keeps team and cost center apart (they used to be written
// by position, swapping them).
func TestStoreWritesByColumnName(t *testing.T) {
	ctx := context.Background()
	s, path := openStore(t)
	s.Close()
	cols := schemas.AttributionColumns()
	for i, j := 0, len(cols)-1; i < j; i, j = i+1, j-1 {
		cols[i], cols[j] = cols[j], cols[i]
	}
	exec(t, path, "CREATE TABLE reordered AS SELECT "+strings.Join(cols, ", ")+" FROM attribution",
		"DROP TABLE attribution", "ALTER TABLE reordered RENAME TO attribution")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := att("inv-1", "ana", day1)
	if _, err := s.ReplaceAttributions(ctx, day1, day1.Add(time.Hour), []schemas.Attribution{want}); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, s)
	if len(got) != 1 || got[0].Team != want.Team || got[0].CostCenter != want.CostCenter || got[0].EndUser != want.EndUser {
		t.Fatalf("read back %+v", got)
	}
	if err := s.WriteDeadLetters(ctx, []schemas.DeadLetter{{Source: "f", Location: "line 2", Kind: "usage", Field: "x", Reason: "why", DeadLetteredAt: day1}}); err != nil {
		t.Fatal(err)
	}
}

// A table missing a column obolus writes is refused at open, naming it.
func TestStoreRefusesMissingColumn(t *testing.T) {
	s, path := openStore(t)
	s.Close()
	exec(t, path, "ALTER TABLE attribution DROP COLUMN cost_center")
	if _, err := Open(context.Background(), path); err == nil || !strings.Contains(err.Error(), "lacks column(s) cost_center") {
		t.Fatalf("err %v", err)
	}
}

// A store is created complete or not at all: an empty file, what a process
// killed while creating one could leave, is taken as no store; no draft is
// left behind.
func TestOpenCreatesAtomically(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := dir + "/obolus.duckdb"
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("open over an empty file: %v", err)
	}
	if v := storeVersionOf(t, s); v != strconv.Itoa(schemas.StoreVersion) {
		t.Errorf("version %q", v)
	}
	s.Close()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only the store", names)
	}
}
