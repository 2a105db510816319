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

	"github.com/obolus/obolus/internal/sqlrows"
	"github.com/obolus/obolus/schemas"
)

// attributionColumns are the attribution table's columns in DDL order.
var attributionColumns = strings.Join(schemas.AttributionColumns(), ", ")

const (
	stageAttribution = "obolus_stage_attribution"
	stageInvocations = "obolus_stage_invocations"
	stageKept        = "obolus_stage_kept"
)

// ReplaceAttributions writes rows so that, afterwards, the table holds for
// the invocations they name exactly these rows, and for the event-time window
// [from,to) nothing else: in one transaction it deletes the window's stored
// rows and every stored row of the incoming invocation ids (wherever their
// event_time), then inserts rows. Writing the same input twice leaves the
// same content. With from and to both zero only the incoming invocations are
// replaced; setting just one of them is an error.
//
// Version guard, per invocation: let v be the version of its incoming rows
// (all rows of one invocation must carry the same version) and w the highest
// version among its stored rows. If w > v the stored rows stay, even inside
// the window, and the incoming rows are dropped (counted in Stats.Stale);
// otherwise (w <= v, or nothing stored) the stored rows are replaced, so an
// equal version — a rerun — overwrites. Stored rows of invocations absent
// from rows are deleted by the window whatever their version: a window
// replace asserts that the input is the complete answer for the window.
//
// rows may be split rows of one invocation (distinct end_user each); a
// repeated (invocation_id, end_user) is an error. Nothing is written when an
// error is returned. Timestamps are stored in UTC at microsecond precision.
func (s *Store) ReplaceAttributions(ctx context.Context, from, to time.Time, rows []schemas.Attribution) (schemas.WriteStats, error) {
	return s.ReplaceAttributionChunks(ctx, from, to, [][]schemas.Attribution{rows})
}

// ReplaceAttributionChunks is ReplaceAttributions for rows held in several
// slices, so a caller with millions of rows never builds one contiguous copy.
// Row numbers in errors count across chunks.
func (s *Store) ReplaceAttributionChunks(ctx context.Context, from, to time.Time, chunks [][]schemas.Attribution) (schemas.WriteStats, error) {
	var st schemas.WriteStats
	for _, rows := range chunks {
		st.Rows += int64(len(rows))
	}
	windowed := !from.IsZero() || !to.IsZero()
	if windowed && (from.IsZero() || to.IsZero() || !to.After(from)) {
		return st, fmt.Errorf("replace attributions: window [%s, %s) is not a window: set both ends, from before to, or neither", fmtTime(from), fmtTime(to))
	}
	dates := make([][]time.Time, len(chunks))
	base := 0
	for c, rows := range chunks {
		dates[c] = make([]time.Time, len(rows))
		for i := range rows {
			d, err := rows[i].Validate()
			if err != nil {
				return st, fmt.Errorf("attribution row %d (invocation_id %q, end_user %q): %w", base+i, rows[i].InvocationID, rows[i].EndUser, err)
			}
			dates[c][i] = d
		}
		base += len(rows)
	}
	if st.Rows == 0 && !windowed {
		return st, nil
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return st, fmt.Errorf("replace attributions: %w", err)
	}
	defer conn.Close()
	defer dropStage(conn, stageAttribution, stageInvocations, stageKept)

	err = stage(ctx, conn, "attribution", stageAttribution, func(ap *duckdb.Appender) error {
		for c, rows := range chunks {
			if err := appendAttributions(ctx, ap, rows, dates[c]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("replace attributions: %w", err)
	}
	if err := checkStagedInvocations(ctx, conn, &st); err != nil {
		return st, fmt.Errorf("replace attributions: %w", err)
	}

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
		res, err = tx.ExecContext(ctx, `INSERT INTO attribution (`+columnList("attribution")+`) SELECT * FROM `+stageAttribution+` WHERE `+notKept)
		if err != nil {
			return fmt.Errorf("insert rows: %w", err)
		}
		if st.Inserted, err = res.RowsAffected(); err != nil {
			return fmt.Errorf("insert rows: %w", err)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("replace attributions: %w", err)
	}
	return st, nil
}

// checkStagedInvocations builds the per-invocation table of the staged rows
// and rejects repeated keys and mixed versions, naming the first offender.
func checkStagedInvocations(ctx context.Context, conn *sql.Conn, st *schemas.WriteStats) error {
	_, err := conn.ExecContext(ctx, `CREATE OR REPLACE TEMP TABLE `+stageInvocations+` AS
		SELECT invocation_id, max(version) AS version, min(version) AS min_version,
		       count(*) AS n, count(DISTINCT end_user) AS users
		FROM `+stageAttribution+` GROUP BY invocation_id`)
	if err != nil {
		return fmt.Errorf("index staged invocations: %w", err)
	}
	var (
		id               string
		n, users, lo, hi int64
	)
	err = conn.QueryRowContext(ctx, `SELECT invocation_id, n, users, min_version, version FROM `+stageInvocations+`
		WHERE n <> users OR min_version <> version ORDER BY invocation_id LIMIT 1`).Scan(&id, &n, &users, &lo, &hi)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("check staged invocations: %w", err)
	case n != users:
		return fmt.Errorf("invocation_id %q: %d rows for %d distinct end_user: (invocation_id, end_user) must be unique", id, n, users)
	default:
		return fmt.Errorf("invocation_id %q: rows carry versions %d to %d: all rows of one invocation must share its version", id, lo, hi)
	}
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM `+stageInvocations).Scan(&st.Invocations); err != nil {
		return fmt.Errorf("count staged invocations: %w", err)
	}
	return nil
}

func appendAttributions(ctx context.Context, ap *duckdb.Appender, rows []schemas.Attribution, dates []time.Time) error {
	// One argument slice for all rows: the Appender copies the values out
	// before AppendRow returns, and a fresh slice per row is a 35-word allocation.
	vals := make([]any, 0, schemas.NumAttributionColumns)
	args := make([]driver.Value, schemas.NumAttributionColumns)
	for i := range rows {
		if i%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		r := &rows[i]
		vals = r.AppendValues(vals[:0], dates[i])
		for k, v := range vals {
			args[k] = v
		}
		if err := ap.AppendRow(args...); err != nil {
			return fmt.Errorf("append attribution row %d (invocation_id %q): %w", i, r.InvocationID, err)
		}
	}
	return nil
}

// Attributions reads back the rows whose event_time is in [from,to) (both
// zero: all rows), ordered by event_time, invocation_id and end_user.
func (s *Store) Attributions(ctx context.Context, from, to time.Time) ([]schemas.Attribution, error) {
	q := `SELECT ` + attributionColumns + ` FROM attribution`
	var args []any
	switch {
	case from.IsZero() && to.IsZero():
	case from.IsZero() || to.IsZero() || !to.After(from):
		return nil, fmt.Errorf("read attributions: window [%s, %s) is not a window: set both ends, from before to, or neither", fmtTime(from), fmtTime(to))
	default:
		q += ` WHERE event_time >= make_timestamp(?::BIGINT) AND event_time < make_timestamp(?::BIGINT)`
		args = append(args, micros(from), micros(to))
	}
	q += ` ORDER BY event_time, invocation_id, end_user`
	rs, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read attributions: %w", err)
	}
	out, err := sqlrows.Collect(rs, (*schemas.Attribution).ScanTargets)
	if err != nil {
		return nil, fmt.Errorf("read attributions: %w", err)
	}
	return out, nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "zero"
	}
	return t.UTC().Format(time.RFC3339Nano)
}
