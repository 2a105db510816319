package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// RefreshCoverage recomputes the coverage rows of every UTC date that
// [from,to) touches, from all attribution rows of those dates (a date is
// recomputed whole even when the window covers part of it). With from and to
// both zero it recomputes every date. Dates left without attribution rows
// lose their coverage rows.
func (s *Store) RefreshCoverage(ctx context.Context, from, to time.Time) error {
	where := "TRUE"
	var args []any
	switch {
	case from.IsZero() && to.IsZero():
	case from.IsZero() || to.IsZero() || !to.After(from):
		return fmt.Errorf("refresh coverage: window [%s, %s) is not a window: set both ends, from before to, or neither", fmtTime(from), fmtTime(to))
	default:
		// to is exclusive: the last date touched is the one of the instant
		// before it, so a window ending at midnight does not touch the next day.
		first := from.UTC().Format(time.DateOnly)
		last := to.UTC().Add(-time.Microsecond).Format(time.DateOnly)
		where = "event_date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)"
		args = []any{first, last}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("refresh coverage: %w", err)
	}
	defer conn.Close()
	err = inTx(ctx, conn, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM coverage WHERE `+where, args...); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO coverage
			SELECT event_date, endpoint_name, match_method,
			       count(DISTINCT invocation_id),
			       count(*),
			       round(sum(weight), 6),
			       sum(input_tokens)::BIGINT,
			       sum(output_tokens)::BIGINT,
			       sum(total_tokens)::BIGINT,
			       sum(cost_usd),
			       coalesce(sum(weight) / nullif(sum(sum(weight)) OVER (PARTITION BY event_date, endpoint_name), 0), 0)
			FROM attribution WHERE `+where+`
			GROUP BY event_date, endpoint_name, match_method`, args...)
		if err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("refresh coverage: %w", err)
	}
	return nil
}
