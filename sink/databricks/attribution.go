package databricks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

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

// replace runs a staged write of rows, each invocation's rows one copy, so
// none is dropped and a repeated (invocation_id, end_user) is an error.
func (s *Store) replace(ctx context.Context, from, to time.Time, chunks [][]schemas.Attribution) (st schemas.WriteStats, tm timing, err error) {
	if err := checkWindow(from, to); err != nil {
		return st, tm, err
	}
	a, err := s.stageAttributions()
	if err != nil {
		return st, tm, err
	}
	defer func() {
		// The stage is only scaffolding: removing it must not fail the write.
		_ = a.Close()
		tm = a.tm
	}()
	if err := schemas.AppendChunks(ctx, a, chunks); err != nil {
		return st, tm, err
	}
	st, _, err = a.Commit(ctx, from, to)
	return st, tm, err
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
func StaleStatement(target, source string) string { return staleStatementWith(target, "", source) }

// staleStatementWith is StaleStatement with common table expressions first,
// as ReplaceStatementWith takes them.
func staleStatementWith(target, ctes, source string) string {
	return `WITH
` + incomingCTEs(target, ctes, source) + `
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
