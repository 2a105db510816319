package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/obolus/obolus/schemas"
)

const (
	stageRaw         = "obolus_stage_raw"
	stageAttribution = "obolus_stage_attribution"
	stageInvocations = "obolus_stage_invocations"
	stageKept        = "obolus_stage_kept"
)

// keptRows reads the winning copies' rows, once Commit has kept them.
const keptRows = "SELECT * FROM " + stageAttribution

// AttributionStage is a window replace written in chunks: Append puts rows
// into a temporary table of the stage's own connection, which DuckDB spills
// to disk beyond its memory limit, and Commit replaces the window from it in
// one transaction. It implements schemas.AttributionStage.
type AttributionStage struct {
	s    *Store
	conn *sql.Conn
	rows int64 // staged so far, for row numbers in errors
	vals []any
	args []driver.Value
}

// StageAttributions starts a staged replace. The caller must Close it.
func (s *Store) StageAttributions(ctx context.Context) (schemas.AttributionStage, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("stage attributions: %w", err)
	}
	cols := schemas.StageColumns()
	defs := make([]string, len(cols))
	for i, c := range cols[:schemas.NumAttributionColumns] {
		defs[i] = quoteIdent(c)
	}
	for i, c := range cols[schemas.NumAttributionColumns:] {
		defs[schemas.NumAttributionColumns+i] = "0::BIGINT AS " + quoteIdent(c)
	}
	// Created from the table, so a column type change reaches the stage too.
	q := fmt.Sprintf("CREATE OR REPLACE TEMP TABLE %s AS SELECT %s FROM attribution LIMIT 0", stageRaw, strings.Join(defs, ", "))
	if _, err := conn.ExecContext(ctx, q); err != nil {
		conn.Close()
		return nil, fmt.Errorf("stage attributions: create staging table: %w", err)
	}
	return &AttributionStage{s: s, conn: conn,
		vals: make([]any, 0, len(cols)), args: make([]driver.Value, len(cols))}, nil
}

// Append stages rows. A row that does not validate fails the stage, naming
// its position among all rows staged.
func (a *AttributionStage) Append(ctx context.Context, rows []schemas.Staged) error {
	if len(rows) == 0 {
		return nil
	}
	if a.conn == nil {
		return errors.New("stage attributions: append after close")
	}
	err := a.conn.Raw(func(dc any) error {
		dconn, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("driver connection is %T", dc)
		}
		ap, err := duckdb.NewAppender(dconn, "temp", "main", stageRaw)
		if err != nil {
			return err
		}
		for i := range rows {
			r := &rows[i]
			day, err := r.Validate()
			if err == nil {
				a.vals = r.AppendValues(a.vals[:0], day)
				for k, v := range a.vals {
					a.args[k] = v
				}
				err = ap.AppendRow(a.args...)
			}
			if err != nil {
				_ = ap.Clear()
				_ = ap.Close()
				return fmt.Errorf("attribution row %d (invocation_id %q, end_user %q): %w", a.rows+int64(i), r.InvocationID, r.EndUser, err)
			}
		}
		if err := ap.CloseWithCancel(ctx); err != nil {
			return fmt.Errorf("flush appender: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("stage attributions: %w", err)
	}
	a.rows += int64(len(rows))
	return nil
}

// Close drops the stage's tables and returns its connection.
func (a *AttributionStage) Close() error {
	if a.conn == nil {
		return nil
	}
	dropStage(a.conn, stageRaw, stageAttribution, stageInvocations, stageKept)
	err := a.conn.Close()
	a.conn = nil
	return err
}

// Commit keeps each invocation's winning copy (schemas.WinnersSQL) and
// replaces the window with it, under the contract of ReplaceAttributions.
func (a *AttributionStage) Commit(ctx context.Context, from, to time.Time) (schemas.WriteStats, schemas.StagedTotals, error) {
	st := schemas.WriteStats{}
	tot := schemas.StagedTotals{ByMethod: map[string]float64{}}
	if err := checkWindow(from, to); err != nil {
		return st, tot, err
	}
	if a.conn == nil {
		return st, tot, errors.New("replace attributions: commit after close")
	}
	if a.rows == 0 && from.IsZero() {
		return st, tot, nil
	}
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	conn := a.conn
	if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TEMP TABLE "+stageAttribution+" AS "+schemas.WinnersSQL(stageRaw)); err != nil {
		return st, tot, fmt.Errorf("replace attributions: keep winning copies: %w", err)
	}
	// The raw stage is not read again: free its memory before the replace.
	dropStage(conn, stageRaw)
	t, err := schemas.ScanTotals(conn.QueryRowContext(ctx, schemas.TotalsSQL(keptRows)).Scan)
	if err != nil {
		return st, tot, fmt.Errorf("replace attributions: totals: %w", err)
	}
	t.ByMethod = tot.ByMethod
	tot = t
	if err := scanByMethod(ctx, conn, tot.ByMethod); err != nil {
		return st, tot, err
	}
	st.Rows = tot.Rows
	if err := checkStagedInvocations(ctx, conn, &st); err != nil {
		return st, tot, fmt.Errorf("replace attributions: %w", err)
	}
	cols := strings.Join(schemas.AttributionColumns(), ", ")
	err = inTx(ctx, conn, func(tx *sql.Tx) error {
		// Invocations the store holds at a higher version than offered.
		_, err := tx.ExecContext(ctx, `CREATE OR REPLACE TEMP TABLE `+stageKept+` AS
			SELECT i.invocation_id, i.n FROM `+stageInvocations+` i
			WHERE EXISTS (SELECT 1 FROM attribution a WHERE a.invocation_id = i.invocation_id AND a.version > i.version)`)
		if err != nil {
			return fmt.Errorf("version guard: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(n), 0)::BIGINT FROM `+stageKept).Scan(&st.StaleInvocations, &st.Stale); err != nil {
			return fmt.Errorf("version guard: %w", err)
		}
		// Usually nothing is kept: then the anti-joins are left out.
		notKept := "TRUE"
		if st.StaleInvocations > 0 {
			notKept = `invocation_id NOT IN (SELECT invocation_id FROM ` + stageKept + `)`
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM attribution
			WHERE (invocation_id IN (SELECT invocation_id FROM `+stageInvocations+`)
			       OR (event_time >= make_timestamp(?::BIGINT) AND event_time < make_timestamp(?::BIGINT)))
			  AND `+notKept, micros(from), micros(to))
		if err != nil {
			return fmt.Errorf("delete replaced rows: %w", err)
		}
		if st.Deleted, err = res.RowsAffected(); err != nil {
			return fmt.Errorf("delete replaced rows: %w", err)
		}
		res, err = tx.ExecContext(ctx, `INSERT INTO attribution (`+cols+`) SELECT `+cols+` FROM `+stageAttribution+` WHERE `+notKept)
		if err != nil {
			return fmt.Errorf("insert rows: %w", err)
		}
		if st.Inserted, err = res.RowsAffected(); err != nil {
			return fmt.Errorf("insert rows: %w", err)
		}
		return nil
	})
	if err != nil {
		return st, tot, fmt.Errorf("replace attributions: %w", err)
	}
	return st, tot, nil
}

func scanByMethod(ctx context.Context, conn *sql.Conn, into map[string]float64) error {
	rs, err := conn.QueryContext(ctx, schemas.ByMethodSQL(keptRows))
	if err != nil {
		return fmt.Errorf("replace attributions: weights by method: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var m string
		var w float64
		if err := rs.Scan(&m, &w); err != nil {
			return fmt.Errorf("replace attributions: weights by method: %w", err)
		}
		into[m] = w
	}
	if err := rs.Err(); err != nil {
		return fmt.Errorf("replace attributions: weights by method: %w", err)
	}
	return nil
}
