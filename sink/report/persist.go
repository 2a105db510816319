package report

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/obolus/obolus/internal/chargeback"
)

// allocation is what a report keeps of its allocation for Persist: the
// attribution rows, what each was given, and the charges nobody used.
type allocation struct {
	rows          []usageRow
	itemMicros    []int64
	listMicros    []int64
	charges       []charge
	chargeResults []chargeback.ChargeResult
}

// AllocationRow is one row of cost_allocation: the share of the bill one
// attribution row (invocation × end user) was given, or, with Method
// MethodNoUsage and no invocation, a billed hour × endpoint × model that had
// no gateway usage.
type AllocationRow struct {
	Hour                            time.Time
	InvocationID, EndUser, Team     string
	CostCenter, Agent               string
	EndpointID, EndpointName, Model string
	Method                          string
	Weight                          float64
	ListMicros, AllocatedMicros     int64
}

// BillSnapshotID names the bill an allocation used: a digest of the period
// and of every billing record's id, type, times, quantity, prices and
// currency, in record-id order. A restated bill (a RETRACTION or RESTATEMENT
// record, or a changed quantity or price) gets a new id; the same bill read
// twice, from either store, the same one.
func BillSnapshotID(p Period, recs []billingRecord) string {
	sorted := slices.Clone(recs)
	slices.SortFunc(sorted, func(a, b billingRecord) int {
		return cmp.Or(cmp.Compare(a.recordID, b.recordID), a.start.Compare(b.start))
	})
	h := sha256.New()
	// Each field is written with its length first, so no value (record ids
	// and names come from the bill) can shift into the next field.
	field := func(v string) { fmt.Fprintf(h, "%d:%s", len(v), v) }
	field("obolus-bill-v1")
	field(strconv.FormatInt(p.Start.UnixMicro(), 10))
	field(strconv.FormatInt(p.End.UnixMicro(), 10))
	for i := range sorted {
		r := &sorted[i]
		for _, v := range []string{r.recordID, r.recordType, strconv.FormatInt(r.start.UnixMicro(), 10), strconv.FormatInt(r.end.UnixMicro(), 10),
			r.quantity.RatString(), r.price.RatString(), r.listPrice.RatString(), r.currency, r.sku, r.cloud, r.unit,
			r.endpointID, r.endpointName, r.model} {
			field(v)
		}
	}
	return "bill-" + hex.EncodeToString(h.Sum(nil))[:32]
}

// Allocation lists the report's cost_allocation rows: one per attribution
// row of the period (allocated 0 where no billing record covered it), then
// one per billed hour × endpoint × model without usage. AllocatedMicros sums
// to Rec.BilledMicros.
func (r *Report) Allocation() []AllocationRow {
	a := &r.alloc
	out := make([]AllocationRow, 0, len(a.rows))
	for i := range a.rows {
		u := &a.rows[i]
		out = append(out, AllocationRow{
			Hour: chargeback.HourOf(u.eventTime).Time(), InvocationID: u.invocationID, EndUser: u.endUser, Team: u.team,
			CostCenter: u.costCenter, Agent: u.agent, EndpointID: u.endpointID, EndpointName: u.endpointName, Model: u.model,
			Method: u.method, Weight: u.weight, ListMicros: a.listMicros[i], AllocatedMicros: a.itemMicros[i],
		})
	}
	// Charges without usage merge per hour × endpoint × model: SKUs and
	// prices are the bill's detail, which the FOCUS export keeps.
	type key struct {
		hour            chargeback.Hour
		endpoint, model string
	}
	idle := map[key]int{}
	for j := range a.charges {
		c := &a.charges[j]
		if a.chargeResults[j].Items > 0 {
			continue
		}
		k := key{c.hour, c.endpoint, c.model}
		n, ok := idle[k]
		if !ok {
			n = len(out)
			idle[k] = n
			out = append(out, AllocationRow{Hour: c.hour.Time(), EndpointID: c.endpoint, EndpointName: c.endpointName,
				Model: c.modelName, Method: MethodNoUsage})
		}
		out[n].AllocatedMicros += c.micros
	}
	return out
}

// AllocationTable is where Persist writes: a database, its dialect and the
// cost_allocation table's name (table, schema.table or catalog.schema.table).
type AllocationTable struct {
	DB      *sql.DB
	Dialect Dialect
	Table   string
}

// PersistResult says what Persist did.
type PersistResult struct {
	SnapshotID string
	ComputedAt time.Time
	Rows       int
	// Replaced counts the rows of older snapshots the period held.
	Replaced int64
	// SameBill is true when the period already held this bill snapshot:
	// its first computed_at is kept, and the rows written equal the old
	// ones unless attribution rows changed since (a late agent log).
	SameBill bool
}

// persistBatch is how many rows one INSERT binds: at 19 parameters a row,
// 4,750 a statement, inside the 8,192 the Databricks store's staging INSERTs
// bind (databricks.DefaultInsertParams).
const persistBatch = 250

// Persist writes the report's allocation into cost_allocation, replacing
// every row of the period's hours. computed_at is now, unless the period
// already holds this bill snapshot, whose computed_at is kept: persisting
// the same bill twice leaves the table as it was. A pseudonymized report
// is refused: the table is keyed by the store's real end users.
func (r *Report) Persist(ctx context.Context, t AllocationTable, now time.Time) (PersistResult, error) {
	res := PersistResult{SnapshotID: r.SnapshotID}
	if r.Pseudonymized {
		return res, errors.New("report: persist: a pseudonymized report cannot be persisted (cost_allocation holds the store's end users)")
	}
	if t.DB == nil {
		return res, errors.New("report: persist: no database")
	}
	src := Source{Dialect: t.Dialect}
	tbl, err := src.table("cost_allocation", t.Table)
	if err != nil {
		return res, err
	}
	ts := t.Dialect.ts()
	inPeriod := ` WHERE hour >= ` + ts + ` AND hour < ` + ts
	pargs := []any{r.Period.Start.UnixMicro(), r.Period.End.UnixMicro()}

	var first sql.NullTime
	if err := t.DB.QueryRowContext(ctx, `SELECT min(computed_at) FROM `+tbl+inPeriod+` AND snapshot_id = ?`,
		append(slices.Clone(pargs), r.SnapshotID)...).Scan(&first); err != nil {
		return res, fmt.Errorf("report: persist: read %s: %w", t.Table, err)
	}
	res.ComputedAt = now.UTC().Truncate(time.Microsecond)
	if first.Valid {
		res.ComputedAt, res.SameBill = first.Time.UTC(), true
	}
	if err := t.DB.QueryRowContext(ctx, `SELECT count(*) FROM `+tbl+inPeriod+` AND snapshot_id <> ?`,
		append(slices.Clone(pargs), r.SnapshotID)...).Scan(&res.Replaced); err != nil {
		return res, fmt.Errorf("report: persist: read %s: %w", t.Table, err)
	}

	rows := r.Allocation()
	res.Rows = len(rows)
	if t.Dialect.name == DuckDB.name {
		return res, r.persistDuckDB(ctx, t, tbl, inPeriod, pargs, rows, res.ComputedAt)
	}
	return res, r.persistInserts(ctx, t, tbl, inPeriod, pargs, rows, res.ComputedAt)
}

// allocationColumns are cost_allocation's columns in the order both writers
// fill them.
const allocationColumns = `snapshot_id, computed_at, period_start, period_end, hour, event_date, invocation_id, end_user, team, cost_center,
	agent_endpoint, endpoint_id, endpoint_name, destination_model, match_method, weight, list_cost, allocated_cost, currency`

// persistInserts is the Databricks writer. Delta has no multi-statement
// transactions, so the rows go first into a staging table of their own
// (multi-row INSERTs with every value bound), then replace the period in one
// statement, INSERT INTO ... REPLACE WHERE, a single Delta commit: a run that
// fails at any point leaves the period as it was. The staging table is
// dropped afterwards; one left behind by a killed process is named
// <table>_obolus_stage_<hex> and may be dropped.
func (r *Report) persistInserts(ctx context.Context, t AllocationTable, tbl, inPeriod string, pargs []any, rows []AllocationRow, at time.Time) error {
	var suffix [6]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return fmt.Errorf("report: persist: staging table name: %w", err)
	}
	stage, err := Source{Dialect: t.Dialect}.table("cost_allocation", t.Table+"_obolus_stage_"+hex.EncodeToString(suffix[:]))
	if err != nil {
		return err
	}
	if _, err := t.DB.ExecContext(ctx, `CREATE TABLE `+stage+` AS SELECT `+allocationColumns+` FROM `+tbl+` LIMIT 0`); err != nil {
		return fmt.Errorf("report: persist: create staging table for %s: %w", t.Table, err)
	}
	defer t.DB.ExecContext(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS `+stage) //nolint:errcheck // best effort: the name says it may be dropped
	ts := t.Dialect.ts()
	tuple := `(?, ` + ts + `, ` + ts + `, ` + ts + `, ` + ts + `, CAST(` + ts + ` AS DATE), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS DECIMAL(38, 6)), CAST(? AS DECIMAL(38, 6)), ?)`
	for lo := 0; lo < len(rows); lo += persistBatch {
		batch := rows[lo:min(lo+persistBatch, len(rows))]
		var sb strings.Builder
		sb.WriteString(`INSERT INTO ` + stage + ` (` + allocationColumns + `) VALUES `)
		args := make([]any, 0, len(batch)*19)
		for i := range batch {
			a := &batch[i]
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(tuple)
			args = append(args, r.SnapshotID, at.UnixMicro(), r.Period.Start.UnixMicro(), r.Period.End.UnixMicro(),
				a.Hour.UnixMicro(), a.Hour.UnixMicro(), a.InvocationID, a.EndUser, a.Team, a.CostCenter, a.Agent,
				a.EndpointID, a.EndpointName, a.Model, a.Method, a.Weight,
				chargeback.FormatFixed(a.ListMicros, 6), chargeback.FormatFixed(a.AllocatedMicros, 6), r.Currency)
		}
		if _, err := t.DB.ExecContext(ctx, sb.String(), args...); err != nil {
			return fmt.Errorf("report: persist: stage rows %d to %d for %s: %w", lo+1, lo+len(batch), t.Table, err)
		}
	}
	if _, err := t.DB.ExecContext(ctx, `INSERT INTO `+tbl+` REPLACE`+inPeriod+` SELECT `+allocationColumns+` FROM `+stage, pargs...); err != nil {
		return fmt.Errorf("report: persist: replace the period in %s: %w", t.Table, err)
	}
	return nil
}

// persistStage is the embedded writer's connection-local staging table.
const persistStage = "obolus_stage_cost_allocation"

// persistDuckDB is the embedded writer: the rows go through DuckDB's
// Appender into a temporary table (bound INSERTs took 28 s per 100,000
// rows), then one transaction replaces the period from it, so readers see
// the old snapshot or the new one, never a mix. Costs are staged as exact
// decimal text and cast, never through a float.
func (r *Report) persistDuckDB(ctx context.Context, t AllocationTable, tbl, inPeriod string, pargs []any, rows []AllocationRow, at time.Time) (err error) {
	conn, err := t.DB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("report: persist: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `CREATE OR REPLACE TEMP TABLE `+persistStage+` (hour TIMESTAMP, invocation_id VARCHAR, end_user VARCHAR,
	team VARCHAR, cost_center VARCHAR, agent_endpoint VARCHAR, endpoint_id VARCHAR, endpoint_name VARCHAR, destination_model VARCHAR,
	match_method VARCHAR, weight DOUBLE, list_cost VARCHAR, allocated_cost VARCHAR)`); err != nil {
		return fmt.Errorf("report: persist: create the stage: %w", err)
	}
	// The connection returns to the pool: its temporary table would live on.
	defer conn.ExecContext(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS temp.main.`+persistStage) //nolint:errcheck // best effort, see above
	err = conn.Raw(func(dc any) error {
		dconn, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("driver connection is %T", dc)
		}
		ap, err := duckdb.NewAppender(dconn, "temp", "main", persistStage)
		if err != nil {
			return err
		}
		for i := range rows {
			a := &rows[i]
			if err := ap.AppendRow(a.Hour, a.InvocationID, a.EndUser, a.Team, a.CostCenter, a.Agent, a.EndpointID, a.EndpointName,
				a.Model, a.Method, a.Weight, chargeback.FormatFixed(a.ListMicros, 6), chargeback.FormatFixed(a.AllocatedMicros, 6)); err != nil {
				_ = ap.Clear()
				_ = ap.Close()
				return err
			}
		}
		return ap.CloseWithCancel(ctx)
	})
	if err != nil {
		return fmt.Errorf("report: persist: stage the rows: %w", err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("report: persist: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+tbl+inPeriod, pargs...); err != nil {
		return fmt.Errorf("report: persist: clear the period in %s: %w", t.Table, err)
	}
	ts := t.Dialect.ts()
	q := `INSERT INTO ` + tbl + ` (` + allocationColumns + `)
SELECT ?, ` + ts + `, ` + ts + `, ` + ts + `, hour, CAST(hour AS DATE), invocation_id, end_user, team, cost_center, agent_endpoint,
	endpoint_id, endpoint_name, destination_model, match_method, weight,
	CAST(list_cost AS DECIMAL(38, 6)), CAST(allocated_cost AS DECIMAL(38, 6)), ?
FROM temp.main.` + persistStage
	if _, err := tx.ExecContext(ctx, q, r.SnapshotID, at.UnixMicro(), r.Period.Start.UnixMicro(), r.Period.End.UnixMicro(), r.Currency); err != nil {
		return fmt.Errorf("report: persist: insert into %s: %w", t.Table, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("report: persist: commit: %w", err)
	}
	return nil
}

// UsageSpan is the event_time of the source's first and last attribution
// rows; both zero when it has none. A batch run over all data (no window
// start) persists the months in between.
func (s Source) UsageSpan(ctx context.Context) (first, last time.Time, err error) {
	tbl, err := s.table("attribution", s.Tables.Attribution)
	if err != nil {
		return first, last, err
	}
	var lo, hi sql.NullTime
	if err := queryRow(ctx, s.DB, `SELECT min(event_time), max(event_time) FROM `+tbl).Scan(&lo, &hi); err != nil {
		return first, last, fmt.Errorf("report: read %s: %w", s.Tables.Attribution, err)
	}
	return lo.Time.UTC(), hi.Time.UTC(), nil
}
