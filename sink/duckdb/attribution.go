package duckdbsink

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/obolus/obolus/schemas"
)

// WriteStats counts what ReplaceAttributions did.
type WriteStats struct {
	// Rows is the number of incoming rows, Invocations the distinct
	// invocation ids among them.
	Rows        int64
	Invocations int64
	// Inserted rows were written; Deleted stored rows were removed, either
	// replaced by incoming rows or no longer produced for the window.
	Inserted int64
	Deleted  int64
	// Stale incoming rows were not written, because the store already holds
	// their invocation at a higher version; StaleInvocations counts those invocations.
	Stale            int64
	StaleInvocations int64
}

// attributionColumns are the attribution table's columns in DDL order, which
// is also schemas.Attribution's field order (a test holds all three equal).
const attributionColumns = `invocation_id, request_id, event_time, event_date, account_id, workspace_id,
	endpoint_id, endpoint_name, destination_model, requester, status_code, usage_source,
	end_user, team, cost_center, agent_endpoint, trace_id, agent_request_id, session,
	match_method, match_confidence, candidates, weight, reason,
	input_tokens, output_tokens, total_tokens, cache_read_input_tokens,
	cache_creation_input_tokens, output_reasoning_tokens,
	cost_usd, price_list_version, version, run_id, processed_at`

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
func (s *Store) ReplaceAttributions(ctx context.Context, from, to time.Time, rows []schemas.Attribution) (WriteStats, error) {
	return s.ReplaceAttributionChunks(ctx, from, to, [][]schemas.Attribution{rows})
}

// ReplaceAttributionChunks is ReplaceAttributions for rows held in several
// slices, so a caller with millions of rows never builds one contiguous copy.
// Row numbers in errors count across chunks.
func (s *Store) ReplaceAttributionChunks(ctx context.Context, from, to time.Time, chunks [][]schemas.Attribution) (WriteStats, error) {
	var st WriteStats
	for _, rows := range chunks {
		st.Rows += int64(len(rows))
	}
	windowed := !from.IsZero() || !to.IsZero()
	if windowed && (from.IsZero() || to.IsZero() || !to.After(from)) {
		return st, fmt.Errorf("duckdbsink: replace attributions: window [%s, %s) is not a window: set both ends, from before to, or neither", fmtTime(from), fmtTime(to))
	}
	dates := make([][]time.Time, len(chunks))
	base := 0
	for c, rows := range chunks {
		dates[c] = make([]time.Time, len(rows))
		for i := range rows {
			d, err := validateAttribution(&rows[i])
			if err != nil {
				return st, fmt.Errorf("duckdbsink: attribution row %d (invocation_id %q, end_user %q): %w", base+i, rows[i].InvocationID, rows[i].EndUser, err)
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
		return st, fmt.Errorf("duckdbsink: replace attributions: %w", err)
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
		return st, fmt.Errorf("duckdbsink: replace attributions: %w", err)
	}
	if err := checkStagedInvocations(ctx, conn, &st); err != nil {
		return st, fmt.Errorf("duckdbsink: replace attributions: %w", err)
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
		res, err = tx.ExecContext(ctx, `INSERT INTO attribution SELECT * FROM `+stageAttribution+` WHERE `+notKept)
		if err != nil {
			return fmt.Errorf("insert rows: %w", err)
		}
		if st.Inserted, err = res.RowsAffected(); err != nil {
			return fmt.Errorf("insert rows: %w", err)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("duckdbsink: replace attributions: %w", err)
	}
	return st, nil
}

// checkStagedInvocations builds the per-invocation table of the staged rows
// and rejects repeated keys and mixed versions, naming the first offender.
func checkStagedInvocations(ctx context.Context, conn *sql.Conn, st *WriteStats) error {
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
	vals := make([]driver.Value, 0, 35)
	for i := range rows {
		if i%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		r := &rows[i]
		vals = append(vals[:0],
			r.InvocationID, r.RequestID, r.EventTime.UTC(), dates[i], r.AccountID, r.WorkspaceID,
			r.EndpointID, r.EndpointName, r.DestinationModel, r.Requester, r.StatusCode, r.UsageSource,
			r.EndUser, r.Team, r.CostCenter, r.AgentEndpoint, r.TraceID, r.AgentRequestID, r.Session,
			r.MatchMethod, r.MatchConfidence, r.Candidates, r.Weight, r.Reason,
			r.InputTokens, r.OutputTokens, r.TotalTokens, r.CacheReadInputTokens,
			r.CacheCreationInputTokens, r.OutputReasoningTokens,
			r.CostUSD, r.PriceListVersion, r.Version, r.RunID, timeOrNil(r.ProcessedAt),
		)
		if err := ap.AppendRow(vals...); err != nil {
			return fmt.Errorf("append attribution row %d (invocation_id %q): %w", i, r.InvocationID, err)
		}
	}
	return nil
}

// validateAttribution checks what DuckDB would reject with an unhelpful
// message, or store and then mis-sum: it returns the row's event_date.
func validateAttribution(r *schemas.Attribution) (time.Time, error) {
	if r.InvocationID == "" {
		return time.Time{}, errors.New("invocation_id is empty")
	}
	if r.EventTime.IsZero() {
		return time.Time{}, errors.New("event_time is zero")
	}
	y, m, d := r.EventTime.UTC().Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	if r.EventDate != "" {
		var buf [16]byte
		if string(day.AppendFormat(buf[:0], time.DateOnly)) != r.EventDate {
			return time.Time{}, fmt.Errorf("event_date %q is not the UTC date of event_time %s", r.EventDate, fmtTime(r.EventTime))
		}
	}
	if r.MatchMethod == "" {
		return time.Time{}, errors.New("match_method is empty")
	}
	for _, f := range [...]struct {
		name string
		v    float64
	}{{"weight", r.Weight}, {"match_confidence", r.MatchConfidence}, {"cost_usd", r.CostUSD}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return time.Time{}, fmt.Errorf("%s is %v", f.name, f.v)
		}
	}
	if r.Weight < 0 || r.Weight > 1 {
		return time.Time{}, fmt.Errorf("weight %v is outside [0, 1]", r.Weight)
	}
	for _, f := range [...]struct{ name, v string }{
		{"invocation_id", r.InvocationID}, {"request_id", r.RequestID}, {"account_id", r.AccountID},
		{"workspace_id", r.WorkspaceID}, {"endpoint_id", r.EndpointID}, {"endpoint_name", r.EndpointName},
		{"destination_model", r.DestinationModel}, {"requester", r.Requester}, {"usage_source", r.UsageSource},
		{"end_user", r.EndUser}, {"team", r.Team}, {"cost_center", r.CostCenter},
		{"agent_endpoint", r.AgentEndpoint}, {"trace_id", r.TraceID}, {"agent_request_id", r.AgentRequestID},
		{"session", r.Session}, {"match_method", r.MatchMethod}, {"reason", r.Reason},
		{"price_list_version", r.PriceListVersion}, {"run_id", r.RunID},
	} {
		if !utf8.ValidString(f.v) {
			return time.Time{}, fmt.Errorf("%s is not valid UTF-8: %q", f.name, f.v)
		}
	}
	return day, nil
}

// Attributions reads back the rows whose event_time is in [from,to) (both
// zero: all rows), ordered by event_time, invocation_id and end_user.
func (s *Store) Attributions(ctx context.Context, from, to time.Time) ([]schemas.Attribution, error) {
	q := `SELECT ` + attributionColumns + ` FROM attribution`
	var args []any
	switch {
	case from.IsZero() && to.IsZero():
	case from.IsZero() || to.IsZero() || !to.After(from):
		return nil, fmt.Errorf("duckdbsink: read attributions: window [%s, %s) is not a window: set both ends, from before to, or neither", fmtTime(from), fmtTime(to))
	default:
		q += ` WHERE event_time >= make_timestamp(?::BIGINT) AND event_time < make_timestamp(?::BIGINT)`
		args = append(args, micros(from), micros(to))
	}
	q += ` ORDER BY event_time, invocation_id, end_user`
	rs, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("duckdbsink: read attributions: %w", err)
	}
	defer rs.Close()
	var out []schemas.Attribution
	for rs.Next() {
		var (
			r         schemas.Attribution
			date      time.Time
			processed sql.NullTime
		)
		err := rs.Scan(&r.InvocationID, &r.RequestID, &r.EventTime, &date, &r.AccountID, &r.WorkspaceID,
			&r.EndpointID, &r.EndpointName, &r.DestinationModel, &r.Requester, &r.StatusCode, &r.UsageSource,
			&r.EndUser, &r.Team, &r.CostCenter, &r.AgentEndpoint, &r.TraceID, &r.AgentRequestID, &r.Session,
			&r.MatchMethod, &r.MatchConfidence, &r.Candidates, &r.Weight, &r.Reason,
			&r.InputTokens, &r.OutputTokens, &r.TotalTokens, &r.CacheReadInputTokens,
			&r.CacheCreationInputTokens, &r.OutputReasoningTokens,
			&r.CostUSD, &r.PriceListVersion, &r.Version, &r.RunID, &processed)
		if err != nil {
			return nil, fmt.Errorf("duckdbsink: read attributions: %w", err)
		}
		r.EventTime = r.EventTime.UTC()
		r.EventDate = date.Format(time.DateOnly)
		r.ProcessedAt = fromNullTime(processed)
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("duckdbsink: read attributions: %w", err)
	}
	return out, nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "zero"
	}
	return t.UTC().Format(time.RFC3339Nano)
}
