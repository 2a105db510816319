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
	// Close drops the stage; after Commit it only releases resources.
	Close() error
}

// stageCopyColumns follow the attribution columns in a stage.
var stageCopyColumns = [...]string{"copy_seq", "copy_event_ns", "copy_total_tokens", "copy_input_tokens"}

// StageColumns lists a stage's columns: the attribution columns in DDL
// order, then the copy columns (BIGINT each), the order of AppendValues.
func StageColumns() []string {
	return append(AttributionColumns(), stageCopyColumns[:]...)
}

// AppendValues appends the row's values in StageColumns order.
func (s *Staged) AppendValues(dst []any, day time.Time) []any {
	dst = s.Attribution.AppendValues(dst, day)
	return append(dst, s.Copy.Seq, s.Copy.EventNanos, s.Copy.TotalTokens, s.Copy.InputTokens)
}

// WinnersSQL is a query over stage (a relation with StageColumns) yielding
// the rows of each invocation's winning copy, in StageColumns order. It is
// written in the SQL that DuckDB and Databricks share.
func WinnersSQL(stage string) string {
	cols := StageColumns()
	for i, c := range cols {
		cols[i] = "s." + c
	}
	return `SELECT ` + strings.Join(cols, ", ") + `
FROM ` + stage + ` s
JOIN (
  SELECT invocation_id, copy_seq FROM (
    SELECT invocation_id, copy_seq,
           row_number() OVER (PARTITION BY invocation_id ORDER BY copy_event_ns, copy_total_tokens DESC, copy_seq) AS copy_rank
    FROM (SELECT DISTINCT invocation_id, copy_seq, copy_event_ns, copy_total_tokens FROM ` + stage + ` d) c
  ) r
  WHERE copy_rank = 1
) w ON s.invocation_id = w.invocation_id AND s.copy_seq = w.copy_seq`
}

// TotalsSQL yields, over the rows of the query kept (WinnersSQL's rows), one
// row: rows, invocations and attributed invocations, the token sums
// TokensIn, InputTokensIn and TokensOut as decimal strings (a sum may pass
// int64), and the cost. ScanTotals reads it.
func TotalsSQL(kept string) string {
	return `WITH kept AS (` + kept + `),
  copies AS (SELECT DISTINCT invocation_id, copy_seq, copy_total_tokens, copy_input_tokens FROM kept)
SELECT
  (SELECT count(*) FROM kept),
  (SELECT count(DISTINCT invocation_id) FROM kept),
  (SELECT count(DISTINCT CASE WHEN match_method <> '` + MethodUnattributed + `' THEN invocation_id END) FROM kept),
  (SELECT CAST(coalesce(sum(CAST(copy_total_tokens AS DECIMAL(38,0))), 0) AS STRING) FROM copies),
  (SELECT CAST(coalesce(sum(CAST(copy_input_tokens AS DECIMAL(38,0))), 0) AS STRING) FROM copies),
  (SELECT CAST(coalesce(sum(CAST(total_tokens AS DECIMAL(38,0))), 0) AS STRING) FROM kept),
  (SELECT coalesce(sum(cost_usd), 0) FROM kept)`
}

// ByMethodSQL yields (match_method, weighted invocations) over the rows of
// the query kept.
func ByMethodSQL(kept string) string {
	return `WITH kept AS (` + kept + `)
SELECT match_method, sum(weight) FROM kept GROUP BY match_method ORDER BY match_method`
}

// BadKeySQL yields, over the rows of the query kept, the first invocation
// that breaks the key rules — (invocation_id, end_user) unique, one version
// per invocation — as (invocation_id, rows, distinct end users, lowest and
// highest version), or no row. KeyError words it.
func BadKeySQL(kept string) string {
	return `WITH kept AS (` + kept + `)
SELECT invocation_id, count(*), count(DISTINCT end_user), min(version), max(version)
FROM kept GROUP BY invocation_id
HAVING count(*) <> count(DISTINCT end_user) OR min(version) <> max(version)
ORDER BY invocation_id LIMIT 1`
}

// KeyError words a row of BadKeySQL.
func KeyError(id string, n, users, lo, hi int64) error {
	if n != users {
		return fmt.Errorf("invocation_id %q: %d rows for %d distinct end_user: (invocation_id, end_user) must be unique", id, n, users)
	}
	return fmt.Errorf("invocation_id %q: rows carry versions %d to %d: all rows of one invocation must share its version", id, lo, hi)
}

// ScanTotals reads the row of TotalsSQL.
func ScanTotals(scan func(dest ...any) error) (StagedTotals, error) {
	var t StagedTotals
	var in, inputIn, out string
	if err := scan(&t.Rows, &t.Invocations, &t.Attributed, &in, &inputIn, &out, &t.CostUSD); err != nil {
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
