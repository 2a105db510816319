package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/obolus/obolus/internal/sqlrows"
	"github.com/obolus/obolus/schemas"
)

// Checkpoint returns the end of the last window job completed, and whether
// the job has a checkpoint at all.
func (s *Store) Checkpoint(ctx context.Context, job string) (time.Time, bool, error) {
	var end time.Time
	err := s.db.QueryRowContext(ctx, `SELECT window_end FROM checkpoints WHERE job = ?`, job).Scan(&end)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("read checkpoint of job %q: %w", job, err)
	}
	return end.UTC(), true, nil
}

// SetCheckpoint records windowEnd as where job's next run starts. It sets,
// not advances: a deliberate rewind (to reprocess) is allowed.
func (s *Store) SetCheckpoint(ctx context.Context, job string, windowEnd time.Time) error {
	if job == "" || !utf8.ValidString(job) {
		return fmt.Errorf("set checkpoint: job %q must be non-empty UTF-8", job)
	}
	if windowEnd.IsZero() {
		return fmt.Errorf("set checkpoint of job %q: window_end is zero", job)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.db.ExecContext(ctx, `INSERT INTO checkpoints (job, window_end, updated_at)
		VALUES (?, make_timestamp(?::BIGINT), make_timestamp(?::BIGINT))
		ON CONFLICT (job) DO UPDATE SET window_end = excluded.window_end, updated_at = excluded.updated_at`,
		job, micros(windowEnd), micros(time.Now()))
	if err != nil {
		return fmt.Errorf("set checkpoint of job %q: %w", job, err)
	}
	return nil
}

// RecordRun writes r, replacing an earlier record of the same RunID: record
// a run when it starts and again when it ends.
func (s *Store) RecordRun(ctx context.Context, r schemas.Run) error {
	if r.RunID == "" {
		return errors.New("record run: run_id is empty")
	}
	if r.Status == "" {
		return fmt.Errorf("record run %q: status is empty", r.RunID)
	}
	for _, f := range [...]struct{ name, v string }{{"run_id", r.RunID}, {"job", r.Job}, {"status", r.Status}} {
		if !utf8.ValidString(f.v) {
			return fmt.Errorf("record run %q: %s is not valid UTF-8", r.RunID, f.name)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.db.ExecContext(ctx, `INSERT OR REPLACE INTO runs (run_id, job, started_at, finished_at, window_from, window_to,
			rows_read, outside_window, duplicates, dead_lettered, attributed, unattributed,
			input_tokens_in, total_tokens_in, total_tokens_out, status, error, stale, stale_invocations)
		VALUES (?, ?, make_timestamp(?::BIGINT), make_timestamp(?::BIGINT), make_timestamp(?::BIGINT), make_timestamp(?::BIGINT),
			?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.RunID, r.Job, micros(r.StartedAt), micros(r.FinishedAt), micros(r.WindowFrom), micros(r.WindowTo),
		r.RowsRead, r.OutsideWindow, r.Duplicates, r.DeadLettered, r.Attributed, r.Unattributed,
		r.InputTokensIn, r.TotalTokensIn, r.TotalTokensOut, r.Status, clean(r.Error), r.Stale, r.StaleInvocations)
	if err != nil {
		return fmt.Errorf("record run %q: %w", r.RunID, err)
	}
	return nil
}

// Runs reads back the runs of job (all jobs when empty), oldest start first.
func (s *Store) Runs(ctx context.Context, job string) ([]schemas.Run, error) {
	rs, err := s.db.QueryContext(ctx, `SELECT `+schemas.RunColumns+`
		FROM runs WHERE ? = '' OR job = ? ORDER BY started_at NULLS LAST, run_id`, job, job)
	if err != nil {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	out, err := sqlrows.Collect(rs, (*schemas.Run).ScanTargets)
	if err != nil {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	return out, nil
}
