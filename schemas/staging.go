package schemas

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"
)

// Copy names the usage row an attribution row was made from. A window may
// hold several rows of one invocation (an export read twice, a table and a
// file that overlap): a staged write keeps the rows of the copy that sorts
// first by (event time, total tokens descending, Seq) — the order of
// enrich.CompareCopies, ties to the copy read first — and drops the rest,
// so the answer does not depend on the order the inputs were read in.
type Copy struct {
	Seq         int64 // read order within the run; unique per copy
	EventNanos  int64 // the usage row's event_time, unix nanoseconds
	TotalTokens int64 // the usage row's total_tokens
	InputTokens int64 // the usage row's input_tokens
	// Masked is the time-window rule's outcome for the call with its ids
	// masked (MaskedCode), or 0; the store counts it for calibration.
	Masked int64
}

// Staged is an attribution row on its way into a store, with its copy.
type Staged struct {
	Attribution
	Copy Copy
}

// StagedTotals is what a staged write kept: the figures a batch run
// reconciles, computed by the store over the winning copies, so the run
// itself never holds a set of every invocation.
type StagedTotals struct {
	Rows, Invocations, Attributed int64
	// TokensIn and InputTokensIn sum total_tokens and input_tokens over the
	// kept usage rows, TokensOut total_tokens over the rows written.
	TokensIn, InputTokensIn, TokensOut int64
	// TokenOverflow is set when a token sum does not fit in int64; the
	// sums are then 0.
	TokenOverflow bool
	CostUSD       float64
	// ByMethod is the weighted invocation count per match method.
	ByMethod map[string]float64
}

// AttributionStage is a window replace written in chunks: Append stages rows
// as a run produces them, Commit replaces the window with the winning copies
// in one transaction. Nothing is visible before Commit, and Close after a
// failure leaves the store as it was. Stores implement it; the batch job
// consumes it.
type AttributionStage interface {
	Append(ctx context.Context, rows []Staged) error
	// Commit replaces like ReplaceAttributions, from and to bounding the
	// window (both zero: only the staged invocations).
	Commit(ctx context.Context, from, to time.Time) (WriteStats, StagedTotals, error)
	// Calibrate, called before Commit, makes Commit calibrate: it counts
	// the kept rows' CalibrationStats (MaskedStatsSQL, PresenceSQL), records
	// the rows fn makes of them in the calibration table, replacing those of
	// their run, and writes time-window rows with the calibrated confidence
	// (CalibratedSelect); with a minimum confidence, a pick below it gives
	// way to its fallback row (GatedKeptSQL), before anything is counted.
	Calibrate(fn func(CalibrationStats) CalibrationResult)
	// Close drops the stage; after Commit it only releases resources.
	Close() error
}

// stageCopyColumns follow the attribution columns in a stage.
var stageCopyColumns = [...]string{"copy_seq", "copy_event_ns", "copy_total_tokens", "copy_input_tokens", "copy_masked"}

// StageColumns lists a stage's columns: the attribution columns in DDL
// order, then the copy columns (BIGINT each), the order of AppendValues.
func StageColumns() []string {
	return append(AttributionColumns(), stageCopyColumns[:]...)
}

// AppendValues appends the row's values in StageColumns order.
func (s *Staged) AppendValues(dst []any, day time.Time) []any {
	dst = s.Attribution.AppendValues(dst, day)
	return s.Copy.AppendValues(dst)
}

// AppendValues appends the copy's values in the order of the stage's copy
// columns.
func (c *Copy) AppendValues(dst []any) []any {
	return append(dst, c.Seq, c.EventNanos, c.TotalTokens, c.InputTokens, c.Masked)
}

// A staged write is committed in these steps, the same SQL in DuckDB and
// Databricks: LosersSQL finds the copies that lose, KeptSQL drops their rows
// (or the store deletes them), InvocationsSQL sums the kept rows per
// invocation, RepeatedKeySQL and MixedVersionSQL check the key rules, and
// TotalsSQL and MethodsSQL count what is kept.

// LosersSQL yields (invocation_id, copy_seq) of every copy that loses to
// another copy of its invocation in the stage, a relation with
// StageColumns. Only invocations staged more than once are ranked.
func LosersSQL(stage string) string {
	return `SELECT invocation_id, copy_seq FROM (
  SELECT invocation_id, copy_seq,
         row_number() OVER (PARTITION BY invocation_id ORDER BY copy_event_ns, copy_total_tokens DESC, copy_seq) AS copy_rank
  FROM (
    SELECT DISTINCT invocation_id, copy_seq, copy_event_ns, copy_total_tokens FROM ` + stage + ` d
    WHERE invocation_id IN (SELECT invocation_id FROM ` + stage + ` m GROUP BY invocation_id HAVING min(copy_seq) <> max(copy_seq))
  ) c
) r
WHERE copy_rank > 1`
}

// KeptSQL yields the stage's rows whose copy is not among losers, in
// StageColumns order.
func KeptSQL(stage, losers string) string {
	cols := StageColumns()
	for i, c := range cols {
		cols[i] = "s." + c
	}
	return `SELECT ` + strings.Join(cols, ", ") + ` FROM ` + stage + ` s
WHERE NOT EXISTS (SELECT 1 FROM ` + losers + ` l WHERE l.invocation_id = s.invocation_id AND l.copy_seq = s.copy_seq)`
}

// InvocationsSQL yields one row per invocation of kept (a relation of kept
// rows): invocation_id, version and min_version, n rows, attributed (1 or
// 0), the copy's total and input tokens, and tokens_out, the rows'
// total_tokens summed as DECIMAL(38,0). It uses no DISTINCT aggregate,
// which DuckDB cannot spill to disk.
func InvocationsSQL(kept string) string {
	return `SELECT invocation_id, max(version) AS version, min(version) AS min_version,
       count(*) AS n,
       max(CASE WHEN match_method <> '` + MethodUnattributed + `' THEN 1 ELSE 0 END) AS attributed,
       max(copy_total_tokens) AS copy_total_tokens, max(copy_input_tokens) AS copy_input_tokens,
       sum(CAST(total_tokens AS DECIMAL(38,0))) AS tokens_out
FROM ` + kept + ` k GROUP BY invocation_id`
}

// TotalsSQL yields, over invocations (InvocationsSQL's rows), one row:
// rows, invocations, attributed invocations, and the token sums TokensIn,
// InputTokensIn and TokensOut as decimal strings (a sum may pass int64).
// ScanTotals reads it.
func TotalsSQL(invocations string) string {
	return `SELECT CAST(coalesce(sum(n), 0) AS BIGINT), count(*), CAST(coalesce(sum(attributed), 0) AS BIGINT),
  CAST(coalesce(sum(CAST(copy_total_tokens AS DECIMAL(38,0))), 0) AS STRING),
  CAST(coalesce(sum(CAST(copy_input_tokens AS DECIMAL(38,0))), 0) AS STRING),
  CAST(coalesce(sum(tokens_out), 0) AS STRING)
FROM ` + invocations + ` i`
}

// MethodsSQL yields (match_method, weighted invocations, cost) over kept.
func MethodsSQL(kept string) string {
	return `SELECT match_method, sum(weight), sum(cost_usd) FROM ` + kept + ` k GROUP BY match_method ORDER BY match_method`
}

// RepeatedKeySQL yields the first (invocation_id, end_user) that more than
// one kept row carries, with its count, or no row: the key must be unique.
// Only invocations with several rows (per invocations) are grouped, so the
// check costs little when, as usual, most invocations have one row.
func RepeatedKeySQL(kept, invocations string) string {
	return `SELECT k.invocation_id, k.end_user, count(*) FROM ` + kept + ` k
WHERE k.invocation_id IN (SELECT i.invocation_id FROM ` + invocations + ` i WHERE i.n > 1)
GROUP BY k.invocation_id, k.end_user HAVING count(*) > 1
ORDER BY k.invocation_id, k.end_user LIMIT 1`
}

// MixedVersionSQL yields, from invocations, the first invocation whose
// rows carry different versions, with the lowest and highest, or no row.
func MixedVersionSQL(invocations string) string {
	return `SELECT invocation_id, min_version, version FROM ` + invocations + ` i
WHERE min_version <> version ORDER BY invocation_id LIMIT 1`
}

// RepeatedKeyError words a row of RepeatedKeySQL.
func RepeatedKeyError(id, user string, n int64) error {
	return fmt.Errorf("invocation_id %q, end_user %q: %d rows: (invocation_id, end_user) must be unique", id, user, n)
}

// MixedVersionError words a row of MixedVersionSQL.
func MixedVersionError(id string, lo, hi int64) error {
	return fmt.Errorf("invocation_id %q: rows carry versions %d to %d: all rows of one invocation must share its version", id, lo, hi)
}

// AppendChunks stages rows held in chunks, each invocation's rows as one
// copy, so that Commit drops none and a repeated (invocation_id, end_user)
// is an error: ReplaceAttributions on top of a stage.
func AppendChunks(ctx context.Context, stage AttributionStage, chunks [][]Attribution) error {
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	buf := make([]Staged, 0, min(n, appendChunk))
	for _, rows := range chunks {
		for i := range rows {
			buf = append(buf, Staged{Attribution: rows[i]})
			if len(buf) == cap(buf) {
				if err := stage.Append(ctx, buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
	}
	return stage.Append(ctx, buf)
}

// appendChunk is how many rows AppendChunks stages at a time.
const appendChunk = 1 << 14

// ScanMethod adds a row of MethodsSQL to t.
func (t *StagedTotals) ScanMethod(scan func(dest ...any) error) error {
	var m string
	var w, cost float64
	if err := scan(&m, &w, &cost); err != nil {
		return err
	}
	t.ByMethod[m] += w
	t.CostUSD += cost
	return nil
}

// ScanTotals reads the row of TotalsSQL; ByMethod comes back empty, for
// ScanMethod to fill.
func ScanTotals(scan func(dest ...any) error) (StagedTotals, error) {
	t := StagedTotals{ByMethod: map[string]float64{}}
	var in, inputIn, out string
	if err := scan(&t.Rows, &t.Invocations, &t.Attributed, &in, &inputIn, &out); err != nil {
		return t, err
	}
	for _, f := range []struct {
		s   string
		dst *int64
	}{{in, &t.TokensIn}, {inputIn, &t.InputTokensIn}, {out, &t.TokensOut}} {
		n, ok := new(big.Int).SetString(strings.TrimSuffix(strings.TrimSpace(f.s), ".0"), 10)
		if !ok {
			return t, fmt.Errorf("token sum %q is not an integer", f.s)
		}
		if !n.IsInt64() || n.Int64() == math.MinInt64 {
			t.TokenOverflow = true
			continue
		}
		*f.dst = n.Int64()
	}
	if t.TokenOverflow {
		t.TokensIn, t.InputTokensIn, t.TokensOut = 0, 0, 0
	}
	return t, nil
}
