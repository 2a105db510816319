package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/chargeback"
	"github.com/obolus/obolus/sink/report"
)

// AllocationEnv is a store holding a period's attribution rows and its AI
// Gateway bill, with its cost_allocation table empty.
type AllocationEnv struct {
	// Source reads the store's attribution and the bill.
	Source report.Source
	// Table is the store's cost_allocation table.
	Table report.AllocationTable
	// Restate changes the bill as a restatement does: one record's
	// quantity differs afterwards.
	Restate func(t *testing.T)
}

// AllocationOptions shape the allocation suite.
type AllocationOptions struct {
	Period report.Period
	// WantSnapshot, when set, is the bill snapshot id the store must
	// derive: another store's, read from the same bill.
	WantSnapshot string
	// Snapshot, when set, receives the snapshot id this store derived.
	Snapshot func(id string)
}

// RunAllocation runs the cost_allocation cases; open returns a fresh store
// for each.
func RunAllocation(t *testing.T, open func(t *testing.T) AllocationEnv, opt AllocationOptions) {
	cases := []struct {
		name string
		fn   func(t *testing.T, e AllocationEnv, opt AllocationOptions)
	}{
		{"Reconciles", allocReconciles},
		{"IdempotentRepersist", allocIdempotent},
		{"RestatedBill", allocRestated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t), opt) })
	}
}

var allocT0 = time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)

func build(t *testing.T, e AllocationEnv, p report.Period) *report.Report {
	t.Helper()
	rep, err := report.Build(ctx(t), e.Source, report.Options{Period: p, By: []report.Dimension{report.ByTeam}})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	if !rep.Billing {
		t.Fatal("the store holds no billing records for the period")
	}
	return rep
}

func persist(t *testing.T, e AllocationEnv, rep *report.Report, now time.Time) report.PersistResult {
	t.Helper()
	res, err := rep.Persist(ctx(t), e.Table, now)
	if err != nil {
		t.Fatalf("persist: %v", err)
	}
	return res
}

// allocSum is the table's allocated_cost total over rows matching where
// (SQL both dialects read alike), exactly, in micro-units.
func allocSum(t *testing.T, e AllocationEnv, where string, args ...any) int64 {
	t.Helper()
	var s *string
	q := `SELECT CAST(sum(allocated_cost) AS STRING) FROM ` + e.Table.Table + where
	rows, err := e.Table.DB.QueryContext(ctx(t), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatalf("%s: no row (%v)", q, rows.Err())
	}
	if err := rows.Scan(&s); err != nil {
		t.Fatal(err)
	}
	if s == nil {
		return 0
	}
	m, err := chargeback.ParseMicros(*s)
	if err != nil {
		t.Fatalf("allocated_cost sums to %s: %v", *s, err)
	}
	return m
}

// allocTable is the table as sorted text rows.
func allocTable(t *testing.T, e AllocationEnv) []string {
	t.Helper()
	q := `SELECT snapshot_id, computed_at, hour, invocation_id, end_user, team, match_method,
	CAST(list_cost AS STRING), CAST(allocated_cost AS STRING), currency FROM ` + e.Table.Table
	rows, err := e.Table.DB.QueryContext(ctx(t), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var snap, inv, user, team, method, list, alloc, cur string
		var at, hour time.Time
		if err := rows.Scan(&snap, &at, &hour, &inv, &user, &team, &method, &list, &alloc, &cur); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Join([]string{snap, at.UTC().Format(time.RFC3339Nano), hour.UTC().Format(time.RFC3339), inv, user, team, method, list, alloc, cur}, " | "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// allocReconciles: the persisted rows sum to the bill to the micro-unit,
// and per team to the report's lines; the snapshot id is the bill's.
func allocReconciles(t *testing.T, e AllocationEnv, opt AllocationOptions) {
	rep := build(t, e, opt.Period)
	res := persist(t, e, rep, allocT0)
	if opt.WantSnapshot != "" && res.SnapshotID != opt.WantSnapshot {
		t.Errorf("snapshot %s, want %s (another store's, same bill)", res.SnapshotID, opt.WantSnapshot)
	}
	if opt.Snapshot != nil {
		opt.Snapshot(res.SnapshotID)
	}
	if got := allocSum(t, e, ""); got != rep.Rec.BilledMicros {
		t.Errorf("allocated_cost sums to %d micro-units, the bill to %d", got, rep.Rec.BilledMicros)
	}
	for _, l := range rep.Lines {
		if got := allocSum(t, e, ` WHERE team = ? AND match_method NOT IN ('unattributed', 'no_usage')`, l.Keys[0]); got != l.AllocatedMicros {
			t.Errorf("team %s: persisted %d, the report %d", l.Keys[0], got, l.AllocatedMicros)
		}
	}
	if got := allocSum(t, e, ` WHERE match_method IN ('unattributed', 'no_usage')`); got != rep.Unattributed.AllocatedMicros {
		t.Errorf("unattributed: persisted %d, the report %d", got, rep.Unattributed.AllocatedMicros)
	}
	if n := len(allocTable(t, e)); n != res.Rows {
		t.Errorf("table holds %d rows, persist wrote %d", n, res.Rows)
	}
}

// allocIdempotent: persisting the same bill again, later, changes nothing.
func allocIdempotent(t *testing.T, e AllocationEnv, opt AllocationOptions) {
	first := persist(t, e, build(t, e, opt.Period), allocT0)
	before := allocTable(t, e)
	again := persist(t, e, build(t, e, opt.Period), allocT0.Add(24*time.Hour))
	if !again.SameBill || again.Replaced != 0 || again.SnapshotID != first.SnapshotID || !again.ComputedAt.Equal(allocT0) {
		t.Errorf("second persist %+v, want snapshot %s unchanged, computed at %s", again, first.SnapshotID, allocT0)
	}
	if after := allocTable(t, e); !slices.Equal(after, before) {
		t.Errorf("re-persisting the same bill changed the table:\n%s\nwas\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
	}
}

// allocRestated: a restated bill gets a new snapshot, whose rows replace
// every row of the older one.
func allocRestated(t *testing.T, e AllocationEnv, opt AllocationOptions) {
	old := build(t, e, opt.Period)
	first := persist(t, e, old, allocT0)
	e.Restate(t)
	rep := build(t, e, opt.Period)
	if rep.SnapshotID == first.SnapshotID {
		t.Fatalf("the restated bill kept snapshot %s", first.SnapshotID)
	}
	res := persist(t, e, rep, allocT0.Add(time.Hour))
	if res.SameBill || res.Replaced != int64(first.Rows) {
		t.Errorf("restated persist %+v, want the %d rows of %s replaced", res, first.Rows, first.SnapshotID)
	}
	for _, r := range allocTable(t, e) {
		if !strings.HasPrefix(r, rep.SnapshotID+" | ") {
			t.Fatalf("row of another snapshot left: %s", r)
		}
	}
	if got := allocSum(t, e, ""); got != rep.Rec.BilledMicros || got == old.Rec.BilledMicros {
		t.Errorf("allocated_cost sums to %d, the restated bill to %d (the old one to %d)", got, rep.Rec.BilledMicros, old.Rec.BilledMicros)
	}
}
