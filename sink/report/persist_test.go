package report

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/chargeback"
)

// allocationDigest is the cost_allocation table as text, for golden files
// and for comparing two states of the table.
func allocationDigest(t *testing.T, q Querier) string {
	t.Helper()
	return digest(t, q, `SELECT snapshot_id, computed_at, period_start, period_end, hour, event_date, invocation_id, end_user, team,
	cost_center, agent_endpoint, endpoint_id, endpoint_name, destination_model, match_method, weight,
	CAST(list_cost AS VARCHAR) AS list_cost, CAST(allocated_cost AS VARCHAR) AS allocated_cost, currency FROM cost_allocation`)
}

// persistedSum is the period's exact allocated total in the table, in micro-units.
func persistedSum(t *testing.T, q Querier, where string) int64 {
	t.Helper()
	var s string
	if err := queryRow(context.Background(), q, `SELECT CAST(coalesce(sum(allocated_cost), 0) AS VARCHAR) FROM cost_allocation`+where).Scan(&s); err != nil {
		t.Fatal(err)
	}
	m, err := chargeback.ParseMicros(s)
	if err != nil {
		t.Fatalf("persisted total %s: %v", s, err)
	}
	return m
}

// TestPersistAllocation persists the fixture's allocation, checks that it
// reconciles to the bill to the micro-unit and line by line to the report,
// that persisting the same bill again changes nothing, and that a restated
// bill replaces the period's rows with a new snapshot.
func TestPersistAllocation(t *testing.T) {
	ctx := context.Background()
	s := fixtureStore(t)
	src := NewDuckDBSource(s.DB())
	p := mustPeriod(t, "2026-11")
	tbl := AllocationTable{DB: s.DB(), Dialect: DuckDB, Table: "cost_allocation"}
	t0 := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)

	rep, err := Build(ctx, src, Options{Period: p, By: []Dimension{ByTeam}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := rep.Persist(ctx, tbl, t0)
	if err != nil {
		t.Fatal(err)
	}
	if res.SameBill || res.Replaced != 0 || res.Rows == 0 || !res.ComputedAt.Equal(t0) || res.SnapshotID != rep.SnapshotID {
		t.Errorf("first persist = %+v", res)
	}
	if got := persistedSum(t, s.DB(), ""); got != rep.Rec.BilledMicros {
		t.Errorf("persisted allocated_cost sums to %d micro-units, billed %d", got, rep.Rec.BilledMicros)
	}
	for _, l := range rep.Lines {
		if got := persistedSum(t, s.DB(), fmt.Sprintf(" WHERE match_method NOT IN ('unattributed', 'no_usage') AND team = '%s'", l.Keys[0])); got != l.AllocatedMicros {
			t.Errorf("team %s: persisted %d, report %d", l.Keys[0], got, l.AllocatedMicros)
		}
	}
	if got := persistedSum(t, s.DB(), " WHERE match_method IN ('unattributed', 'no_usage')"); got != rep.Unattributed.AllocatedMicros {
		t.Errorf("unattributed: persisted %d, report %d", got, rep.Unattributed.AllocatedMicros)
	}
	first := allocationDigest(t, s.DB())
	golden(t, "cost_allocation.golden", []byte(first+"\n"))

	// The same bill again, later: nothing changes, computed_at included.
	rep2, err := Build(ctx, src, Options{Period: p, By: []Dimension{ByUser}})
	if err != nil {
		t.Fatal(err)
	}
	res2, err := rep2.Persist(ctx, tbl, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !res2.SameBill || res2.Replaced != 0 || res2.SnapshotID != res.SnapshotID || !res2.ComputedAt.Equal(t0) {
		t.Errorf("second persist = %+v, want unchanged snapshot %s computed at %s", res2, res.SnapshotID, t0)
	}
	if again := allocationDigest(t, s.DB()); again != first {
		t.Errorf("re-persisting the same bill changed the table:\n%s\nwas\n%s", again, first)
	}

	// A restatement: one record's quantity changes, as a RESTATEMENT record
	// carries it. A new snapshot replaces every row of the period.
	if _, err := s.DB().ExecContext(ctx, `UPDATE billing_usage SET usage_quantity = usage_quantity * 2, record_type = 'RESTATEMENT'
		WHERE record_id = (SELECT min(record_id) FROM billing_usage)`); err != nil {
		t.Fatal(err)
	}
	rep3, err := Build(ctx, src, Options{Period: p})
	if err != nil {
		t.Fatal(err)
	}
	if rep3.SnapshotID == rep.SnapshotID {
		t.Fatalf("restated bill kept snapshot %s", rep.SnapshotID)
	}
	res3, err := rep3.Persist(ctx, tbl, t0.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res3.SameBill || res3.Replaced != int64(res.Rows) || !res3.ComputedAt.Equal(t0.Add(48*time.Hour)) {
		t.Errorf("restated persist = %+v, want %d rows of the old snapshot replaced", res3, res.Rows)
	}
	var snapshots int
	var snap string
	if err := s.DB().QueryRowContext(ctx, `SELECT count(DISTINCT snapshot_id), max(snapshot_id) FROM cost_allocation`).Scan(&snapshots, &snap); err != nil {
		t.Fatal(err)
	}
	if snapshots != 1 || snap != rep3.SnapshotID {
		t.Errorf("table holds %d snapshots (latest %s), want only %s", snapshots, snap, rep3.SnapshotID)
	}
	if got := persistedSum(t, s.DB(), ""); got != rep3.Rec.BilledMicros || got == rep.Rec.BilledMicros {
		t.Errorf("restated: persisted %d, billed %d (was %d)", got, rep3.Rec.BilledMicros, rep.Rec.BilledMicros)
	}
}

// TestPersistRefuses checks the cases Persist must not write.
func TestPersistRefuses(t *testing.T) {
	ctx := context.Background()
	s := fixtureStore(t)
	p := mustPeriod(t, "2026-11")
	pz, err := NewPseudonymizer([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Build(ctx, NewDuckDBSource(s.DB()), Options{Period: p, Pseudonymizer: pz})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		rep   *Report
		table string
		want  string
	}{
		{"pseudonymized", rep, "cost_allocation", "pseudonymized"},
		{"bad table name", &Report{Period: p}, "cost_allocation; DROP TABLE attribution", "not a plain identifier"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.rep.Persist(ctx, AllocationTable{DB: s.DB(), Dialect: DuckDB, Table: tc.table}, time.Now())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestBillSnapshotID: the id follows every part of the bill the allocation
// rests on, and nothing else (not the order records were read in).
func TestBillSnapshotID(t *testing.T) {
	p := Period{Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	rec := func(id, qty string) billingRecord {
		q, _ := chargeback.ParseDecimal(qty)
		price, _ := chargeback.ParseDecimal("0.07")
		start := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
		return billingRecord{recordID: id, recordType: "ORIGINAL", start: start, end: start.Add(time.Hour), quantity: q,
			price: price, listPrice: price, currency: "USD", sku: "SKU", endpointID: "e", model: "m"}
	}
	base := []billingRecord{rec("r1", "1.5"), rec("r2", "2")}
	want := BillSnapshotID(p, base)
	if got := BillSnapshotID(p, []billingRecord{base[1], base[0]}); got != want {
		t.Errorf("record order changed the id: %s, %s", got, want)
	}
	restated := rec("r2", "2")
	restated.recordType = "RESTATEMENT"
	retraction := rec("r3", "-2")
	retraction.recordType = "RETRACTION"
	repriced := rec("r2", "2")
	repriced.price, _ = chargeback.ParseDecimal("0.065")
	shifted := rec("r1", "1.5")
	shifted.recordID = "r"
	shifted.recordType = "1ORIGINAL" // the same bytes run together, another split
	for _, tc := range []struct {
		name string
		p    Period
		recs []billingRecord
	}{
		{"changed quantity", p, []billingRecord{base[0], rec("r2", "2.000001")}},
		{"restatement", p, []billingRecord{base[0], restated}},
		{"retraction added", p, append(base[:2:2], retraction)},
		{"repriced", p, []billingRecord{base[0], repriced}},
		{"record dropped", p, base[:1]},
		{"fields shifted", p, []billingRecord{shifted, base[1]}},
		{"other period", Period{Start: p.Start, End: p.End.Add(time.Hour)}, base},
	} {
		if got := BillSnapshotID(tc.p, tc.recs); got == want {
			t.Errorf("%s: snapshot id unchanged (%s)", tc.name, got)
		}
	}
}
