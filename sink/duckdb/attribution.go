package duckdb

import (
	"context"
	"fmt"

	"strings"
	"time"

	"github.com/obolus/obolus/internal/sqlrows"
	"github.com/obolus/obolus/schemas"
)

// attributionColumns are the attribution table's columns in DDL order.
var attributionColumns = strings.Join(schemas.AttributionColumns(), ", ")

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
func (s *Store) ReplaceAttributionChunks(ctx context.Context, from, to time.Time, chunks [][]schemas.Attribution) (st schemas.WriteStats, err error) {
	if err := checkWindow(from, to); err != nil {
		return st, err
	}
	stage, err := s.StageAttributions(ctx)
	if err != nil {
		return st, err
	}
	defer func() {
		if cerr := stage.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	if err := schemas.AppendChunks(ctx, stage, chunks); err != nil {
		return st, err
	}
	st, _, err = stage.Commit(ctx, from, to)
	return st, err
}

func checkWindow(from, to time.Time) error {
	windowed := !from.IsZero() || !to.IsZero()
	if windowed && (from.IsZero() || to.IsZero() || !to.After(from)) {
		return fmt.Errorf("replace attributions: window [%s, %s) is not a window: set both ends, from before to, or neither", fmtTime(from), fmtTime(to))
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

// Calibration reads the calibration rows of run runID ("" for the latest
// run that has any).
func (s *Store) Calibration(ctx context.Context, runID string) ([]schemas.Calibration, error) {
	q, args := schemas.CalibrationQuery("calibration", runID)
	out, err := sqlrows.Query(ctx, s.db, q, args, (*schemas.Calibration).ScanTargets)
	if err != nil {
		return nil, fmt.Errorf("read calibration: %w", err)
	}
	return out, nil
}
