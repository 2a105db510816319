package databricks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	databricks "github.com/databricks/databricks-sql-go"

	"github.com/obolus/obolus/internal/sqlrows"
	"github.com/obolus/obolus/schemas"
)

// deadLetterBatch bounds the rows of one dead-letter MERGE (9 parameters each).
const deadLetterBatch = 500

// WriteDeadLetters upserts dead letters keyed by (source, location): reading
// the same bad record again overwrites its row. Records are cut to
// schemas.MaxDeadLetterRecord bytes of valid UTF-8.
func (s *Store) WriteDeadLetters(ctx context.Context, dl []schemas.DeadLetter) error {
	target := s.schema.Table("dead_letters")
	for lo := 0; lo < len(dl); lo += deadLetterBatch {
		hi := min(lo+deadLetterBatch, len(dl))
		// Later letters of the same record win, as they would in a sequence of writes.
		last := make(map[[2]string]int, hi-lo)
		for i := lo; i < hi; i++ {
			last[[2]string{dl[i].Source, dl[i].Location}] = i
		}
		var values []string
		var args []any
		for i := lo; i < hi; i++ {
			d := dl[i]
			if last[[2]string{d.Source, d.Location}] != i {
				continue
			}
			values = append(values, "(?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, d.Source, d.Location, d.Kind, d.Field, d.Reason, cutRecord(d.Record), d.RunID, timeParam("", d.DeadLetteredAt))
		}
		q := `MERGE INTO ` + target + ` AS t
USING (SELECT * FROM (VALUES ` + strings.Join(values, ", ") + `) AS v(source, location, kind, field, reason, record, run_id, dead_lettered_at)) AS s
ON t.source = s.source AND t.location = s.location
WHEN MATCHED THEN UPDATE SET kind = s.kind, field = s.field, reason = s.reason, record = s.record, run_id = s.run_id, dead_lettered_at = s.dead_lettered_at
WHEN NOT MATCHED THEN INSERT (source, location, kind, field, reason, record, run_id, dead_lettered_at)
  VALUES (s.source, s.location, s.kind, s.field, s.reason, s.record, s.run_id, s.dead_lettered_at)`
		if _, err := s.exec(ctx, fmt.Sprintf("write dead letters %d..%d", lo, hi), q, args...); err != nil {
			return err
		}
	}
	return nil
}

// cutRecord bounds a raw record like the embedded store: at most
// MaxDeadLetterRecord bytes, invalid UTF-8 replaced.
func cutRecord(r string) string {
	r = strings.ToValidUTF8(r, "\uFFFD")
	if len(r) <= schemas.MaxDeadLetterRecord {
		return r
	}
	cut := schemas.MaxDeadLetterRecord
	for cut > 0 && (r[cut]&0xC0) == 0x80 {
		cut--
	}
	return r[:cut]
}

// RefreshCoverage recomputes the coverage rows of every UTC date that
// [from,to) touches from all attribution rows of those dates, in one MERGE:
// rows of those dates that no longer occur are deleted.
func (s *Store) RefreshCoverage(ctx context.Context, from, to time.Time) error {
	if from.IsZero() || to.IsZero() || !to.After(from) {
		return fmt.Errorf("refresh coverage: window [%s, %s) is not a window: set both ends, from before to", fmtTime(from), fmtTime(to))
	}
	_, err := s.exec(ctx, "refresh coverage", CoverageStatement(s.schema.Table("coverage"), s.schema.Table("attribution")),
		dateParam("date_from", from), dateParam("date_to", to.Add(-time.Microsecond)))
	return err
}

// CoverageStatement is the MERGE that recomputes coverage for the dates
// :date_from..:date_to (DATE parameters) from attribution.
func CoverageStatement(coverage, attribution string) string {
	return `MERGE INTO ` + coverage + ` AS t
USING (
  SELECT event_date, endpoint_name, match_method,
         count(DISTINCT invocation_id) AS invocations,
         count(*) AS rows,
         round(sum(weight), 6) AS weighted_invocations,
         CAST(sum(input_tokens) AS BIGINT) AS input_tokens,
         CAST(sum(output_tokens) AS BIGINT) AS output_tokens,
         CAST(sum(total_tokens) AS BIGINT) AS total_tokens,
         sum(cost_usd) AS cost_usd,
         coalesce(sum(weight) / nullif(sum(sum(weight)) OVER (PARTITION BY event_date, endpoint_name), 0), 0) AS share_of_invocations
  FROM ` + attribution + `
  WHERE event_date BETWEEN :date_from AND :date_to
  GROUP BY event_date, endpoint_name, match_method
) AS s
ON t.event_date = s.event_date AND t.endpoint_name = s.endpoint_name AND t.match_method = s.match_method
WHEN MATCHED THEN UPDATE SET invocations = s.invocations, rows = s.rows, weighted_invocations = s.weighted_invocations,
  input_tokens = s.input_tokens, output_tokens = s.output_tokens, total_tokens = s.total_tokens,
  cost_usd = s.cost_usd, share_of_invocations = s.share_of_invocations
WHEN NOT MATCHED THEN INSERT (event_date, endpoint_name, match_method, invocations, rows, weighted_invocations,
  input_tokens, output_tokens, total_tokens, cost_usd, share_of_invocations)
  VALUES (s.event_date, s.endpoint_name, s.match_method, s.invocations, s.rows, s.weighted_invocations,
  s.input_tokens, s.output_tokens, s.total_tokens, s.cost_usd, s.share_of_invocations)
WHEN NOT MATCHED BY SOURCE AND t.event_date BETWEEN :date_from AND :date_to THEN DELETE`
}

// Checkpoint returns where job ended, if it has run.
func (s *Store) Checkpoint(ctx context.Context, job string) (time.Time, bool, error) {
	var t sql.NullTime
	err := s.db.QueryRowContext(ctx, "SELECT window_end FROM "+s.schema.Table("checkpoints")+" WHERE job = ?", job).Scan(&t)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("read checkpoint of job %s: %w", job, err)
	}
	return nullTime(t), t.Valid, nil
}

// SetCheckpoint records that job completed up to windowEnd.
func (s *Store) SetCheckpoint(ctx context.Context, job string, windowEnd time.Time) error {
	_, err := s.exec(ctx, "set checkpoint of job "+job, CheckpointStatement(s.schema.Table("checkpoints")),
		databricks.Parameter{Name: "job", Value: job}, timeParam("window_end", windowEnd), timeParam("updated_at", time.Now()))
	return err
}

// CheckpointStatement is the MERGE that sets the checkpoint of job :job to
// :window_end at :updated_at (a rendered job script fills them in itself).
func CheckpointStatement(checkpoints string) string {
	return `MERGE INTO ` + checkpoints + ` AS t
USING (SELECT :job AS job, :window_end AS window_end, :updated_at AS updated_at) AS s
ON t.job = s.job
WHEN MATCHED THEN UPDATE SET window_end = s.window_end, updated_at = s.updated_at
WHEN NOT MATCHED THEN INSERT (job, window_end, updated_at) VALUES (s.job, s.window_end, s.updated_at)`
}

// RecordRun upserts a run by run_id.
func (s *Store) RecordRun(ctx context.Context, r schemas.Run) error {
	cols := RunColumns()
	args := []any{r.RunID, r.Job, timeParam("", r.StartedAt), timeParam("", r.FinishedAt), timeParam("", r.WindowFrom), timeParam("", r.WindowTo),
		r.RowsRead, r.OutsideWindow, r.Duplicates, r.DeadLettered, r.Attributed, r.Unattributed,
		r.InputTokensIn, r.TotalTokensIn, r.TotalTokensOut, r.Status, r.Error, r.Stale, r.StaleInvocations}
	source := `SELECT * FROM (VALUES (` + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + `)) AS v(` + strings.Join(cols, ", ") + `)`
	_, err := s.exec(ctx, "record run "+r.RunID, RunStatement(s.schema.Table("runs"), source), args...)
	return err
}

// RunColumns are the columns of runs a run record sets, in the order
// RecordRun binds them.
func RunColumns() []string {
	return []string{"run_id", "job", "started_at", "finished_at", "window_from", "window_to", "rows_read", "outside_window",
		"duplicates", "dead_lettered", "attributed", "unattributed", "input_tokens_in", "total_tokens_in", "total_tokens_out", "status", "error",
		"stale", "stale_invocations"}
}

// RunStatement is the MERGE that upserts into runs the run the query source
// returns (one row, RunColumns), keyed by run_id: RecordRun's values, or a
// job script's counts.
func RunStatement(runs, source string) string {
	cols := RunColumns()
	set := make([]string, 0, len(cols)-1)
	vals := make([]string, len(cols))
	for i, c := range cols {
		vals[i] = "s." + c
		if c != "run_id" {
			set = append(set, c+" = s."+c)
		}
	}
	return `MERGE INTO ` + runs + ` AS t
USING (` + source + `) AS s
ON t.run_id = s.run_id
WHEN MATCHED THEN UPDATE SET ` + strings.Join(set, ", ") + `
WHEN NOT MATCHED THEN INSERT (` + strings.Join(cols, ", ") + `) VALUES (` + strings.Join(vals, ", ") + `)`
}

// Attributions reads back the rows whose event_time is in [from,to) (both
// zero: all rows), ordered by event_time, invocation_id and end_user.
func (s *Store) Attributions(ctx context.Context, from, to time.Time) ([]schemas.Attribution, error) {
	q := "SELECT " + strings.Join(attributionColumns, ", ") + " FROM " + s.schema.Table("attribution")
	var args []any
	switch {
	case from.IsZero() && to.IsZero():
	case from.IsZero() || to.IsZero() || !to.After(from):
		return nil, fmt.Errorf("read attributions: window [%s, %s) is not a window: %w", fmtTime(from), fmtTime(to), errWindow)
	default:
		q += " WHERE event_time >= :from AND event_time < :to"
		args = append(args, timeParam("from", from), timeParam("to", to))
	}
	q += " ORDER BY event_time, invocation_id, end_user"
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

// DeadLetters reads back every dead letter, ordered by source and location.
func (s *Store) DeadLetters(ctx context.Context) ([]schemas.DeadLetter, error) {
	rs, err := s.db.QueryContext(ctx, `SELECT `+schemas.DeadLetterColumns+` FROM `+s.schema.Table("dead_letters")+` ORDER BY source, location`)
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	out, err := sqlrows.Collect(rs, (*schemas.DeadLetter).ScanTargets)
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	return out, nil
}

// Runs reads back the runs of job (empty: every job), oldest first.
func (s *Store) Runs(ctx context.Context, job string) ([]schemas.Run, error) {
	rs, err := s.db.QueryContext(ctx, `SELECT `+schemas.RunColumns+`
FROM `+s.schema.Table("runs")+` WHERE :job = '' OR job = :job ORDER BY started_at NULLS LAST, run_id`,
		databricks.Parameter{Name: "job", Value: job})
	if err != nil {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	out, err := sqlrows.Collect(rs, (*schemas.Run).ScanTargets)
	if err != nil {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	return out, nil
}

// WriteCalibration replaces the calibration rows of the rows' run (all rows
// share one run id).
func (s *Store) WriteCalibration(ctx context.Context, rows []schemas.Calibration) error {
	if len(rows) == 0 {
		return nil
	}
	table := s.schema.Table("calibration")
	if _, err := s.exec(ctx, "clear calibration of run "+rows[0].RunID, "DELETE FROM "+table+" WHERE run_id = ?", rows[0].RunID); err != nil {
		return err
	}
	cols := schemas.CalibrationColumns()
	per := max(1, s.opt.InsertParams/len(cols))
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	for lo := 0; lo < len(rows); lo += per {
		hi := min(lo+per, len(rows))
		vals := make([]string, 0, hi-lo)
		args := make([]any, 0, (hi-lo)*len(cols))
		for i := lo; i < hi; i++ {
			vals = append(vals, row)
			args = append(args, rows[i].Values()...)
		}
		q := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES " + strings.Join(vals, ", ")
		if _, err := s.exec(ctx, "write calibration of run "+rows[0].RunID, q, args...); err != nil {
			return err
		}
	}
	return nil
}

// Calibration reads the calibration rows of run runID ("" for the latest
// run that has any), sorted by service principal, method, candidates and
// rule confidence (highest first).
func (s *Store) Calibration(ctx context.Context, runID string) ([]schemas.Calibration, error) {
	q, args := schemas.CalibrationQuery(s.schema.Table("calibration"), runID)
	out, err := sqlrows.Query(ctx, s.db, q, args, (*schemas.Calibration).ScanTargets)
	if err != nil {
		return nil, fmt.Errorf("read calibration: %w", err)
	}
	return out, nil
}
