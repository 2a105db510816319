package databricks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	databricks "github.com/databricks/databricks-sql-go"

	"github.com/obolus/obolus/internal/dbsql"
	"github.com/obolus/obolus/internal/retry"
	"github.com/obolus/obolus/schemas"
)

// timing says where a write's time went, for the benchmarks.
type timing struct {
	// Stage is the time spent getting the rows into the warehouse (Parquet
	// and upload, or batched INSERTs), Merge the time of the MERGE.
	Stage, Merge time.Duration
	Statements   int
}

// ReplaceAttributions writes rows so that afterwards the table holds, for
// the invocations they name, exactly these rows, and for the event-time
// window [from,to) nothing else — the contract of the embedded store's
// ReplaceAttributions, version guard included: an invocation stored at a
// higher version than offered keeps its stored rows. The rows are staged
// (a Parquet file in the staging volume, or batched INSERTs into
// stage_attribution) and then replaced with one MERGE, which is atomic:
// a failure leaves the table as it was, and a rerun completes it.
func (s *Store) ReplaceAttributions(ctx context.Context, from, to time.Time, rows []schemas.Attribution) (schemas.WriteStats, error) {
	return s.ReplaceAttributionChunks(ctx, from, to, [][]schemas.Attribution{rows})
}

// ReplaceAttributionChunks is ReplaceAttributions for rows held in chunks,
// sparing a run a contiguous copy of millions of rows.
func (s *Store) ReplaceAttributionChunks(ctx context.Context, from, to time.Time, chunks [][]schemas.Attribution) (schemas.WriteStats, error) {
	st, _, err := s.replace(ctx, from, to, chunks)
	return st, err
}

func (s *Store) replace(ctx context.Context, from, to time.Time, chunks [][]schemas.Attribution) (schemas.WriteStats, timing, error) {
	rows := rowChunks(chunks)
	st := schemas.WriteStats{Rows: int64(rows.len())}
	windowed := !from.IsZero() || !to.IsZero()
	if windowed && (from.IsZero() || to.IsZero() || !to.After(from)) {
		return st, timing{}, fmt.Errorf("replace attributions: window [%s, %s) is not a window: %w", fmtTime(from), fmtTime(to), errWindow)
	}
	set, err := schemas.CheckRows(chunks, nil)
	if err != nil {
		return st, timing{}, fmt.Errorf("replace attributions: %w", err)
	}
	st.Invocations = set.Invocations
	if rows.len() == 0 && !windowed {
		return st, timing{}, nil
	}
	lo, hi := set.First, set.Last
	if windowed {
		lo, hi = minTime(lo, from), maxTime(hi, to.Add(-time.Microsecond))
	}
	// The write is idempotent: when its session is gone, start over.
	var tm timing
	in := st
	err = retry.Do(ctx, retry.Policy{Attempts: 3, Retryable: dbsql.IsDropped}, func(ctx context.Context) (err error) {
		st, tm, err = s.replaceOnce(ctx, from, to, lo, hi, rows, in)
		return err
	})
	return st, tm, err
}

func (s *Store) replaceOnce(ctx context.Context, from, to, lo, hi time.Time, rows rowChunks, st schemas.WriteStats) (schemas.WriteStats, timing, error) {
	var tm timing
	stageID, err := newStageID()
	if err != nil {
		return st, tm, err
	}
	// One session for the whole write.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return st, tm, fmt.Errorf("replace attributions: %w", err)
	}
	defer conn.Close()

	t0 := time.Now()
	var source string
	var cleanup func(context.Context) error
	switch {
	case rows.len() == 0:
		source = emptySource(s.schema.Table("attribution"))
	case s.opt.StagingVolume != "":
		source, cleanup, err = s.stageVolume(ctx, conn, stageID, rows, &tm)
	default:
		source, cleanup, err = s.stageInserts(ctx, conn, stageID, rows, &tm)
	}
	if cleanup != nil {
		// The stage is only scaffolding: removing it must not fail the write.
		defer func() { _ = cleanup(context.WithoutCancel(ctx)) }()
	}
	if err != nil {
		return st, tm, fmt.Errorf("replace attributions: %w", err)
	}
	tm.Stage = time.Since(t0)

	t0 = time.Now()
	args := []any{dateParam("date_from", lo), dateParam("date_to", hi)}
	if strings.Contains(source, ":stage_id") {
		args = append(args, databricks.Parameter{Name: "stage_id", Value: stageID})
	}
	if rows.len() > 0 {
		// What the version guard will keep out, for the run report. Read
		// before the MERGE, which leaves no trace of it.
		err := conn.QueryRowContext(ctx, StaleStatement(s.schema.Table("attribution"), source), args...).Scan(&st.Stale, &st.StaleInvocations)
		tm.Statements++
		if err != nil {
			return st, tm, fmt.Errorf("count stale attribution rows: %w", err)
		}
	}
	q := ReplaceStatement(s.schema.Table("attribution"), source)
	args = append(args, timeParam("window_from", from), timeParam("window_to", to))
	res, err := execOn(ctx, conn, "merge attribution rows", q, args...)
	tm.Statements++
	if err != nil {
		return st, tm, err
	}
	st.Affected, _ = res.RowsAffected()
	tm.Merge = time.Since(t0)
	return st, tm, nil
}

// ReplaceStatement is the MERGE that replaces attribution rows: source is a
// query yielding attribution rows (every column, in DDL order); the
// statement binds :window_from and :window_to (TIMESTAMP, NULL for no
// window) and :date_from, :date_to (DATE), the event dates the rows and the
// window span, which bound every read of the target so Delta can prune.
//
// Delta rejects a MERGE where several source rows match one target row, and
// has no DELETE in the same statement outside MERGE: the source therefore
// holds each (invocation_id, end_user) once, as an upsert of an incoming row
// or as a delete of a stored row the replace removes.
func ReplaceStatement(target, source string) string { return ReplaceStatementWith(target, "", source) }

// ReplaceStatementWith is ReplaceStatement for a source that needs common
// table expressions first: ctes is a list of "name AS (...)," entries (each
// ending in a comma) that source may refer to.
func ReplaceStatementWith(target, ctes, source string) string {
	cols := strings.Join(attributionColumns, ", ")
	prefixed := func(p string) string {
		out := make([]string, len(attributionColumns))
		for i, c := range attributionColumns {
			out[i] = p + c
		}
		return strings.Join(out, ", ")
	}
	set := make([]string, len(attributionColumns))
	for i, c := range attributionColumns {
		set[i] = c + " = s." + c
	}
	return `MERGE INTO ` + target + ` AS t
USING (
  WITH
` + incomingCTEs(target, ctes, source) + `,
  upserts AS (
    SELECT 'upsert' AS merge_op, ` + prefixed("n.") + `
    FROM incoming n
    WHERE NOT EXISTS (SELECT 1 FROM stale x WHERE x.invocation_id = n.invocation_id)
  ),
  -- Stored rows of the replaced invocations and of the window that the
  -- incoming rows do not carry again.
  deletes AS (
    SELECT 'delete' AS merge_op, ` + prefixed("a.") + `
    FROM ` + target + ` a
    WHERE a.event_date BETWEEN :date_from AND :date_to
      AND (EXISTS (SELECT 1 FROM incoming_invocations i WHERE i.invocation_id = a.invocation_id)
           OR (a.event_time >= :window_from AND a.event_time < :window_to))
      AND NOT EXISTS (SELECT 1 FROM stale x WHERE x.invocation_id = a.invocation_id)
      AND NOT EXISTS (SELECT 1 FROM upserts u WHERE u.invocation_id = a.invocation_id AND u.end_user = a.end_user)
  )
  SELECT * FROM upserts
  UNION ALL
  SELECT * FROM deletes
) AS s
ON t.invocation_id = s.invocation_id AND t.end_user = s.end_user
   AND t.event_date BETWEEN :date_from AND :date_to
WHEN MATCHED AND s.merge_op = 'delete' THEN DELETE
WHEN MATCHED THEN UPDATE SET ` + strings.Join(set, ", ") + `
WHEN NOT MATCHED AND s.merge_op = 'upsert' THEN INSERT (` + cols + `) VALUES (` + prefixed("s.") + `)`
}

// incomingCTEs are the common table expressions the MERGE and the stale
// count share: the incoming rows, one per key, their invocations, and those
// the target holds at a higher version (the version guard).
func incomingCTEs(target, ctes, source string) string {
	cols := strings.Join(attributionColumns, ", ")
	return indent(ctes, "  ") + `  incoming_rows AS (
    ` + strings.ReplaceAll(strings.TrimSpace(source), "\n", "\n    ") + `
  ),
  -- Delta rejects a MERGE where two source rows match one target row: keep
  -- one row per key (a staged batch sent twice after a dropped connection
  -- repeats its rows).
  incoming AS (
    SELECT ` + cols + ` FROM (
      SELECT r.*, row_number() OVER (PARTITION BY r.invocation_id, r.end_user ORDER BY r.version DESC) AS key_rank
      FROM incoming_rows r
    ) k
    WHERE k.key_rank = 1
  ),
  incoming_invocations AS (
    SELECT invocation_id, max(version) AS version FROM incoming GROUP BY invocation_id
  ),
  -- Invocations the target holds at a higher version keep their stored rows.
  stale AS (
    SELECT DISTINCT i.invocation_id
    FROM incoming_invocations i
    JOIN ` + target + ` a ON a.invocation_id = i.invocation_id
    WHERE a.event_date BETWEEN :date_from AND :date_to AND a.version > i.version
  )`
}

// StaleStatement counts what the version guard of ReplaceStatement over the
// same source will keep out: incoming rows, and their invocations, that the
// target holds at a higher version. It binds :date_from and :date_to.
func StaleStatement(target, source string) string {
	return `WITH
` + incomingCTEs(target, "", source) + `
SELECT count(*) AS stale_rows, count(DISTINCT n.invocation_id) AS stale_invocations
FROM incoming n JOIN stale x ON x.invocation_id = n.invocation_id`
}

func indent(s, by string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = by + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// emptySource yields no rows with the attribution columns' types, for a
// window replace that writes nothing.
func emptySource(target string) string {
	return `SELECT ` + strings.Join(attributionColumns, ", ") + ` FROM ` + target + ` WHERE 1 = 0`
}

// rowChunks is rows held in chunks.
type rowChunks [][]schemas.Attribution

func (c rowChunks) len() int {
	n := 0
	for _, ch := range c {
		n += len(ch)
	}
	return n
}

// each calls fn with every row and its position, stopping at an error.
func (c rowChunks) each(fn func(i int, r *schemas.Attribution) error) error {
	i := 0
	for _, ch := range c {
		for k := range ch {
			if err := fn(i, &ch[k]); err != nil {
				return err
			}
			i++
		}
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if a.IsZero() || b.After(a) {
		return b
	}
	return a
}

func newStageID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("stage id: %w", err)
	}
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:]), nil
}
