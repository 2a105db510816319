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
	stageRows        = "obolus_stage_rows"
	stageLosers      = "obolus_stage_losers"
	stageInvocations = "obolus_stage_invocations"
	stageNewer       = "obolus_stage_newer"
	stageCalibration = "obolus_stage_calibration"
	stageCalMap      = "obolus_stage_calmap"
	stageGated       = "obolus_stage_gated"
)

// AttributionStage is a window replace written in chunks: Append puts rows
// into a temporary table of the stage's own connection, which DuckDB spills
// to disk beyond its memory limit, and Commit replaces the window from it in
// one transaction. It implements schemas.AttributionStage.
type AttributionStage struct {
	s    *Store
	conn *sql.Conn
	rows int64 // staged so far, for row numbers in errors
	// calibrate, when set, makes the calibration table (Calibrate).
	calibrate func(schemas.CalibrationStats) schemas.CalibrationResult
	vals      []any
	args      []driver.Value
	// staging is set while the transaction the appends run in is open.
	staging bool
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
	q := fmt.Sprintf("CREATE OR REPLACE TEMP TABLE %s AS SELECT %s FROM attribution LIMIT 0", stageRows, strings.Join(defs, ", "))
	if _, err := conn.ExecContext(ctx, q); err != nil {
		conn.Close()
		return nil, fmt.Errorf("stage attributions: create staging table: %w", err)
	}
	// Every Append's flush would otherwise be a commit of its own, merging
	// the chunk into the staging table's storage: a third of the staging
	// time on the 944 k-row week. In one transaction the chunks stay
	// transaction-local until Commit merges them once.
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		dropStage(conn, stageRows)
		conn.Close()
		return nil, fmt.Errorf("stage attributions: begin: %w", err)
	}
	return &AttributionStage{s: s, conn: conn, staging: true,
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
	err := appendTo(ctx, a.conn, stageRows, func(ap *duckdb.Appender) error {
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
				return fmt.Errorf("attribution row %d (invocation_id %q, end_user %q): %w", a.rows+int64(i), r.InvocationID, r.EndUser, err)
			}
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
	if a.staging {
		_, _ = a.conn.ExecContext(context.Background(), "ROLLBACK")
		a.staging = false
	}
	dropStage(a.conn, stageRows, stageLosers, stageInvocations, stageNewer, stageCalibration, stageCalMap, stageGated)
	err := a.conn.Close()
	a.conn = nil
	return err
}

// Calibrate implements schemas.AttributionStage.
func (a *AttributionStage) Calibrate(fn func(schemas.CalibrationStats) schemas.CalibrationResult) {
	a.calibrate = fn
}

// calibrationStats counts the kept rows' masked outcomes and presence.
func calibrationStats(ctx context.Context, conn *sql.Conn) (schemas.CalibrationStats, error) {
	var s schemas.CalibrationStats
	err := queryEach(ctx, conn, schemas.MaskedStatsSQL(stageRows), func(scan func(...any) error) error {
		var m schemas.MaskedStat
		err := scan(&m.ServicePrincipal, &m.Code, &m.Calls, &m.Correct)
		s.Masked = append(s.Masked, m)
		return err
	})
	if err == nil {
		err = queryEach(ctx, conn, schemas.PresenceSQL(stageRows), func(scan func(...any) error) error {
			var p schemas.PresenceStat
			err := scan(&p.ServicePrincipal, &p.Linked, &p.NotFound)
			s.Presence = append(s.Presence, p)
			return err
		})
	}
	if err != nil {
		return s, fmt.Errorf("calibration counts: %w", err)
	}
	return s, nil
}

func queryEach(ctx context.Context, conn *sql.Conn, q string, row func(scan func(...any) error) error) error {
	rs, err := conn.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rs.Close()
	for rs.Next() {
		if err := row(rs.Scan); err != nil {
			return err
		}
	}
	return rs.Err()
}

// writeCalibration replaces the run's calibration rows.
func writeCalibration(ctx context.Context, tx *sql.Tx, rows []schemas.Calibration) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM calibration WHERE run_id = ?", rows[0].RunID); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO calibration SELECT * FROM "+stageCalibration)
	return err
}

// calibrateStage counts the kept rows' calibration stats, makes the
// calibration with a.calibrate, and holds it in the stage's own tables: the
// rows, and the map from bucket to calibrated confidence the insert joins.
// With a minimum confidence, picks below it give way to their fallbacks.
func (a *AttributionStage) calibrateStage(ctx context.Context, conn *sql.Conn) (schemas.CalibrationResult, error) {
	stats, err := calibrationStats(ctx, conn)
	if err != nil {
		return schemas.CalibrationResult{}, err
	}
	cal := a.calibrate(stats)
	if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TEMP TABLE "+stageCalibration+" AS SELECT * FROM calibration LIMIT 0"); err != nil {
		return cal, fmt.Errorf("calibration: %w", err)
	}
	cols := schemas.CalibrationColumns()
	ins := "INSERT INTO " + stageCalibration + " (" + strings.Join(cols, ", ") + ") VALUES (" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	for i := range cal.Rows {
		if _, err := conn.ExecContext(ctx, ins, cal.Rows[i].Values()...); err != nil {
			return cal, fmt.Errorf("calibration: %w", err)
		}
	}
	if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TEMP TABLE "+stageCalMap+" AS "+schemas.CalibrationMapSQL(stageRows, stageCalibration, "")); err != nil {
		return cal, fmt.Errorf("calibration map: %w", err)
	}
	gated := schemas.GatedSQL(stageRows, stageCalMap, "?")
	if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TEMP TABLE "+stageGated+" AS "+gated, cal.MinConfidence); err != nil {
		return cal, fmt.Errorf("confidence gate: %w", err)
	}
	// Gated picks go, and fallbacks whose pick stands.
	_, err = conn.ExecContext(ctx, "DELETE FROM "+stageRows+" s WHERE (s.copy_masked = "+fmt.Sprint(schemas.MaskedFallback)+
		") <> EXISTS (SELECT 1 FROM "+stageGated+" g WHERE g.invocation_id = s.invocation_id AND g.copy_seq = s.copy_seq)")
	if err != nil {
		return cal, fmt.Errorf("confidence gate: %w", err)
	}
	return cal, nil
}

// Commit keeps each invocation's winning copy (schemas.LosersSQL) and
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
	if a.staging {
		if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
			return st, tot, fmt.Errorf("replace attributions: commit the staged rows: %w", err)
		}
		a.staging = false
	}
	if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TEMP TABLE "+stageLosers+" AS "+schemas.LosersSQL(stageRows)); err != nil {
		return st, tot, fmt.Errorf("replace attributions: rank copies: %w", err)
	}
	// The losing copies' rows are deleted from the stage, which then holds
	// what is kept.
	_, err := conn.ExecContext(ctx, "DELETE FROM "+stageRows+" s USING "+stageLosers+" l WHERE s.invocation_id = l.invocation_id AND s.copy_seq = l.copy_seq")
	if err != nil {
		return st, tot, fmt.Errorf("replace attributions: drop losing copies: %w", err)
	}
	var cal schemas.CalibrationResult
	if a.calibrate != nil {
		if cal, err = a.calibrateStage(ctx, conn); err != nil {
			return st, tot, fmt.Errorf("replace attributions: %w", err)
		}
	}
	if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TEMP TABLE "+stageInvocations+" AS "+schemas.InvocationsSQL(stageRows)); err != nil {
		return st, tot, fmt.Errorf("replace attributions: index staged invocations: %w", err)
	}
	if err := checkKeys(ctx, conn); err != nil {
		return st, tot, fmt.Errorf("replace attributions: %w", err)
	}
	tot, err = schemas.ScanTotals(conn.QueryRowContext(ctx, schemas.TotalsSQL(stageInvocations)).Scan)
	if err != nil {
		return st, tot, fmt.Errorf("replace attributions: totals: %w", err)
	}
	if err := scanMethods(ctx, conn, &tot); err != nil {
		return st, tot, err
	}
	st.Rows, st.Invocations = tot.Rows, tot.Invocations
	cols := strings.Join(schemas.AttributionColumns(), ", ")
	source := "SELECT " + cols + " FROM " + stageRows
	if a.calibrate != nil {
		source = "SELECT " + schemas.CalibratedSelect("s", "m") + " FROM " + stageRows + " s " + schemas.CalibratedJoin("s", stageCalMap, "m")
	}
	err = inTx(ctx, conn, func(tx *sql.Tx) error {
		if len(cal.Rows) > 0 {
			if err := writeCalibration(ctx, tx, cal.Rows); err != nil {
				return fmt.Errorf("write calibration: %w", err)
			}
		}
		// Invocations the store holds at a higher version than offered.
		_, err := tx.ExecContext(ctx, `CREATE OR REPLACE TEMP TABLE `+stageNewer+` AS
			SELECT i.invocation_id, i.n FROM `+stageInvocations+` i
			WHERE EXISTS (SELECT 1 FROM attribution a WHERE a.invocation_id = i.invocation_id AND a.version > i.version)`)
		if err != nil {
			return fmt.Errorf("version guard: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(n), 0)::BIGINT FROM `+stageNewer).Scan(&st.StaleInvocations, &st.Stale); err != nil {
			return fmt.Errorf("version guard: %w", err)
		}
		// Usually nothing is kept: then the anti-joins are left out.
		notKept := "TRUE"
		if st.StaleInvocations > 0 {
			notKept = `invocation_id NOT IN (SELECT invocation_id FROM ` + stageNewer + `)`
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
		res, err = tx.ExecContext(ctx, `INSERT INTO attribution (`+cols+`) `+source+` WHERE `+notKept)
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

func scanMethods(ctx context.Context, conn *sql.Conn, t *schemas.StagedTotals) error {
	rs, err := conn.QueryContext(ctx, schemas.MethodsSQL(stageRows))
	if err != nil {
		return fmt.Errorf("replace attributions: weights by method: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		if err := t.ScanMethod(rs.Scan); err != nil {
			return fmt.Errorf("replace attributions: weights by method: %w", err)
		}
	}
	if err := rs.Err(); err != nil {
		return fmt.Errorf("replace attributions: weights by method: %w", err)
	}
	return nil
}

// checkKeys applies the key rules to the kept rows.
func checkKeys(ctx context.Context, conn *sql.Conn) error {
	var (
		id, user  string
		n, lo, hi int64
	)
	err := conn.QueryRowContext(ctx, schemas.RepeatedKeySQL(stageRows, stageInvocations)).Scan(&id, &user, &n)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("check keys: %w", err)
	default:
		return schemas.RepeatedKeyError(id, user, n)
	}
	err = conn.QueryRowContext(ctx, schemas.MixedVersionSQL(stageInvocations)).Scan(&id, &lo, &hi)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("check versions: %w", err)
	default:
		return schemas.MixedVersionError(id, lo, hi)
	}
}
