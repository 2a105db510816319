package schemas

import (
	"fmt"
	"time"
)

// attributionColumns are the attribution table's columns in DDL order, which
// is also Attribution's field order; a test holds the DDL of every dialect,
// the struct and this list equal.
var attributionColumns = [...]string{
	"invocation_id", "request_id", "event_time", "event_date", "account_id", "workspace_id",
	"endpoint_id", "endpoint_name", "destination_model", "requester", "status_code", "usage_source",
	"end_user", "team", "cost_center", "agent_endpoint", "trace_id", "agent_request_id", "session",
	"match_method", "match_confidence", "candidates", "weight", "reason",
	"input_tokens", "output_tokens", "total_tokens", "cache_read_input_tokens",
	"cache_creation_input_tokens", "output_reasoning_tokens",
	"cost_usd", "price_list_version", "version", "run_id", "processed_at",
}

// AttributionColumns lists the attribution table's columns in DDL order:
// the order of AppendValues and ScanTargets.
func AttributionColumns() []string { return append([]string(nil), attributionColumns[:]...) }

// NumAttributionColumns is len(AttributionColumns()).
const NumAttributionColumns = len(attributionColumns)

// AppendValues appends the row's values in column order, as database
// drivers and DuckDB's Appender take them: times in UTC, event_date as its
// midnight UTC (day, from Validate), processed_at nil when zero.
func (a *Attribution) AppendValues(dst []any, day time.Time) []any {
	var processed any
	if !a.ProcessedAt.IsZero() {
		processed = a.ProcessedAt.UTC()
	}
	return append(dst,
		a.InvocationID, a.RequestID, a.EventTime.UTC(), day, a.AccountID, a.WorkspaceID,
		a.EndpointID, a.EndpointName, a.DestinationModel, a.Requester, a.StatusCode, a.UsageSource,
		a.EndUser, a.Team, a.CostCenter, a.AgentEndpoint, a.TraceID, a.AgentRequestID, a.Session,
		a.MatchMethod, a.MatchConfidence, a.Candidates, a.Weight, a.Reason,
		a.InputTokens, a.OutputTokens, a.TotalTokens, a.CacheReadInputTokens,
		a.CacheCreationInputTokens, a.OutputReasoningTokens,
		a.CostUSD, a.PriceListVersion, a.Version, a.RunID, processed,
	)
}

// ScanTargets returns, in column order, the destinations a database/sql
// Rows.Scan fills the row from: times come back in UTC, event_date as
// YYYY-MM-DD, a NULL processed_at as the zero time.
func (a *Attribution) ScanTargets() []any {
	return []any{
		&a.InvocationID, &a.RequestID, utcTime{&a.EventTime}, dateText{&a.EventDate}, &a.AccountID, &a.WorkspaceID,
		&a.EndpointID, &a.EndpointName, &a.DestinationModel, &a.Requester, &a.StatusCode, &a.UsageSource,
		&a.EndUser, &a.Team, &a.CostCenter, &a.AgentEndpoint, &a.TraceID, &a.AgentRequestID, &a.Session,
		&a.MatchMethod, &a.MatchConfidence, &a.Candidates, &a.Weight, &a.Reason,
		&a.InputTokens, &a.OutputTokens, &a.TotalTokens, &a.CacheReadInputTokens,
		&a.CacheCreationInputTokens, &a.OutputReasoningTokens,
		&a.CostUSD, &a.PriceListVersion, &a.Version, &a.RunID, utcTime{&a.ProcessedAt},
	}
}

// utcTime scans a TIMESTAMP (NULL: the zero time) in UTC. It implements
// database/sql's Scanner without importing it.
type utcTime struct{ t *time.Time }

func (s utcTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*s.t = time.Time{}
	case time.Time:
		*s.t = v.UTC()
	default:
		return fmt.Errorf("scan %T into a timestamp", src)
	}
	return nil
}

// nullZero scans a BIGINT that may be NULL (a column a migration added to
// rows written before it) as 0.
type nullZero struct{ n *int64 }

func (z nullZero) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*z.n = 0
	case int64:
		*z.n = v
	case int32:
		*z.n = int64(v)
	default:
		return fmt.Errorf("scan %T into a count", src)
	}
	return nil
}

// dateText scans a DATE, or its YYYY-MM-DD text, into YYYY-MM-DD.
type dateText struct{ s *string }

func (d dateText) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.s = ""
	case time.Time:
		*d.s = v.UTC().Format(time.DateOnly)
	case string:
		*d.s = v
	case []byte:
		*d.s = string(v)
	default:
		return fmt.Errorf("scan %T into a date", src)
	}
	return nil
}

// DeadLetterColumns are the dead_letters table's columns, in ScanTargets order.
const DeadLetterColumns = "source, location, kind, field, reason, record, run_id, dead_lettered_at"

// ScanTargets returns the destinations Rows.Scan fills a dead letter from,
// in DeadLetterColumns order.
func (d *DeadLetter) ScanTargets() []any {
	return []any{&d.Source, &d.Location, &d.Kind, &d.Field, &d.Reason, &d.Record, &d.RunID, utcTime{&d.DeadLetteredAt}}
}

// RunColumns are the runs table's columns, in ScanTargets order.
const RunColumns = `run_id, job, started_at, finished_at, window_from, window_to,
  rows_read, outside_window, duplicates, dead_lettered, attributed, unattributed,
  input_tokens_in, total_tokens_in, total_tokens_out, status, error, stale, stale_invocations`

// ScanTargets returns the destinations Rows.Scan fills a run from, in
// RunColumns order; NULL times come back zero.
func (r *Run) ScanTargets() []any {
	return []any{&r.RunID, &r.Job, utcTime{&r.StartedAt}, utcTime{&r.FinishedAt}, utcTime{&r.WindowFrom}, utcTime{&r.WindowTo},
		&r.RowsRead, &r.OutsideWindow, &r.Duplicates, &r.DeadLettered, &r.Attributed, &r.Unattributed,
		&r.InputTokensIn, &r.TotalTokensIn, &r.TotalTokensOut, &r.Status, &r.Error, nullZero{&r.Stale}, nullZero{&r.StaleInvocations}}
}
