// Package databricks reads gateway usage and agent log tables from a
// Databricks SQL warehouse by time window, decoding rows with ingest's rules.
package databricks

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	databricks "github.com/databricks/databricks-sql-go"

	"github.com/obolus/obolus/ingest"
	"github.com/obolus/obolus/internal/dbsql"
)

// Table is one table to read.
type Table struct {
	// Name is catalog.schema.table.
	Name string
	// Spec says what the table holds (Kind) and, for agent logs, the agent
	// endpoint and service principal its rows belong to. Path and Format are unused.
	Spec ingest.Spec
	// Columns maps obolus's column names to the table's, for tables whose
	// columns are named differently; unmapped columns keep their names.
	Columns map[string]string
}

// Querier is what a Source reads through; *sql.DB is one.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Source reads one table window by window. It satisfies batch.Source.
type Source struct {
	db     Querier
	table  Table
	quoted string

	once sync.Once
	plan plan
	err  error
}

// plan is the resolved SELECT: which table columns feed which obolus columns.
type plan struct {
	selects  []string          // `actual` AS `canonical`
	source   map[string]string // canonical → actual column
	timeCol  string            // quoted actual time column the window applies to; "" = none
	epoch    time.Duration     // the time column holds integers of this unit since the epoch; 0: a TIMESTAMP
	orderBy  string            // deterministic row order for agent logs
	columns  []string          // canonical columns read
	problems []string          // optional columns missing (for doctor)
}

// NewSource validates the table's identifiers; nothing is sent to the
// warehouse until the first Read or Resolve.
func NewSource(db Querier, t Table) (*Source, error) {
	q, err := dbsql.Name(t.Name)
	if err != nil {
		return nil, fmt.Errorf("databricksingest: %s table: %w", t.Spec.Kind, err)
	}
	if strings.Count(t.Name, ".") != 2 {
		return nil, fmt.Errorf("databricksingest: %s table %q: name it catalog.schema.table", t.Spec.Kind, t.Name)
	}
	if len(t.Spec.Kind.Columns()) == 0 {
		return nil, fmt.Errorf("databricksingest: table %s: kind %q is not one of usage, legacy_usage, payload, trace, otel_spans", t.Name, t.Spec.Kind)
	}
	for canon, actual := range t.Columns {
		if !slices.Contains(t.Spec.Kind.Columns(), canon) {
			return nil, fmt.Errorf("databricksingest: table %s: column mapping %q: obolus reads no such %s column", t.Name, canon, t.Spec.Kind)
		}
		if _, err := dbsql.Ident(actual); err != nil {
			return nil, fmt.Errorf("databricksingest: table %s: column mapping %s: %w", t.Name, canon, err)
		}
	}
	return &Source{db: db, table: t, quoted: q}, nil
}

// Name names the source in logs and dead letters.
func (s *Source) Name() string { return string(s.table.Spec.Kind) + " table " + s.table.Name }

// Table is the source's table.
func (s *Source) Table() Table { return s.table }

// required lists, per kind, the columns a row cannot do without; each entry
// is satisfied by any of its names (canonical first, then aliases).
var required = map[ingest.Kind][][]string{
	ingest.KindUsage:       {{"invocation_id"}, {"event_time"}, {"requester"}},
	ingest.KindLegacyUsage: {{"databricks_request_id"}, {"request_time"}, {"requester"}},
	ingest.KindPayload:     {{"databricks_request_id"}, {"request_time", "timestamp_ms"}},
	ingest.KindTrace:       {{"trace_id", "request_id"}, {"request_time", "timestamp_ms"}},
	ingest.KindOTelSpans:   {{"trace_id"}, {"span_id"}, {"start_time_unix_nano"}, {"end_time_unix_nano"}},
}

// unread are columns a kind's decoder knows that a batch read never needs:
// latency_ms orders usage only in the stream. Pushdown does not read it
// either, so both modes see the same rows.
var unread = map[ingest.Kind][]string{
	ingest.KindUsage: {"latency_ms"},
}

// aliases are older names ingest also reads, and the column each stands for.
var aliases = map[ingest.Kind]map[string]string{
	ingest.KindPayload: {"timestamp_ms": "request_time", "execution_time_ms": "execution_duration_ms"},
	ingest.KindTrace: {"timestamp_ms": "request_time", "execution_time_ms": "execution_duration_ms",
		"execution_duration": "execution_duration_ms", "request_id": "trace_id", "request_metadata": "trace_metadata"},
}

// orderKeys give agent log rows a deterministic order: when a payload row
// and a trace describe one request, the first to name a field wins, so the
// order must not depend on how the warehouse happens to scan.
var orderKeys = map[ingest.Kind][]string{
	ingest.KindPayload: {"databricks_request_id", "client_request_id", "requester"},
	ingest.KindTrace:   {"trace_id", "request_id", "client_request_id"},
	// Spans of one trace: the root (no parent: NULLS FIRST) first.
	ingest.KindOTelSpans: {"trace_id", "parent_span_id", "span_id"},
}

// OrderColumns lists the obolus columns (among those the table provides, as
// in have) that agent log rows are read in order of: the time column, then
// the ids. Usage rows need no order. Pushdown numbers rows the same way.
func OrderColumns(kind ingest.Kind, have map[string]string) []string {
	keys, ok := orderKeys[kind]
	if !ok {
		return nil
	}
	var out []string
	for _, c := range kind.TimeColumns() {
		if _, ok := have[c]; ok {
			out = append(out, c)
			break
		}
	}
	for _, c := range keys {
		if _, ok := have[c]; ok {
			out = append(out, c)
		}
	}
	return out
}

// Columns returns, after Resolve, which table column provides each obolus
// column the table has (aliases included under their own names).
func (s *Source) Columns() map[string]string { return s.plan.source }

// TimeInMillis reports, after Resolve, whether the table's time column holds
// epoch milliseconds rather than a TIMESTAMP.
func (s *Source) TimeInMillis() bool { return s.plan.epoch == time.Millisecond }

// Resolve reads the table's columns (once) and checks that every required
// column is there, naming the first that is not. It returns the obolus
// columns the table provides and the optional ones it lacks.
func (s *Source) Resolve(ctx context.Context) (have, missing []string, err error) {
	s.once.Do(func() { s.plan, s.err = s.resolve(ctx) })
	return s.plan.columns, s.plan.problems, s.err
}

func (s *Source) resolve(ctx context.Context) (plan, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT * FROM "+s.quoted+" LIMIT 0")
	if err != nil {
		return plan{}, fmt.Errorf("databricksingest: read columns of %s: %w", s.table.Name, err)
	}
	types, err := rows.ColumnTypes()
	rows.Close()
	if err != nil {
		return plan{}, fmt.Errorf("databricksingest: read columns of %s: %w", s.table.Name, err)
	}
	actual := make(map[string]string, len(types)) // lower-case name → type
	names := make(map[string]string, len(types))  // lower-case name → name as the table spells it
	var all []string
	for _, t := range types {
		k := strings.ToLower(t.Name())
		actual[k] = strings.ToUpper(t.DatabaseTypeName())
		names[k] = t.Name()
		all = append(all, t.Name())
	}
	sort.Strings(all)
	kind := s.table.Spec.Kind
	var p plan
	source := map[string]string{} // canonical → actual column
	for _, canon := range kind.Columns() {
		if slices.Contains(unread[kind], canon) {
			continue
		}
		col, mapped := s.table.Columns[canon]
		if !mapped {
			col = canon
		}
		real, ok := names[strings.ToLower(col)]
		if !ok {
			if mapped {
				return plan{}, fmt.Errorf("databricksingest: table %s has no column %q (databricks columns mapping of %s); it has: %s",
					s.table.Name, col, canon, strings.Join(all, ", "))
			}
			p.problems = append(p.problems, canon)
			continue
		}
		source[canon] = real
		p.columns = append(p.columns, canon)
		p.selects = append(p.selects, quote(real)+" AS "+quote(canon))
	}
	for _, alts := range required[kind] {
		if !slices.ContainsFunc(alts, func(c string) bool { _, ok := source[c]; return ok }) {
			return plan{}, fmt.Errorf("databricksingest: table %s has no column %q, which %s rows need (map it under databricks columns if the table names it differently); it has: %s",
				s.table.Name, alts[0], kind, strings.Join(all, ", "))
		}
	}
	// An optional column is only missing when no alias of it is there either.
	var missing []string
	for _, c := range p.problems {
		if _, isAlias := aliases[kind][c]; isAlias {
			continue
		}
		provided := false
		for alias, canon := range aliases[kind] {
			if _, ok := source[alias]; ok && canon == c {
				provided = true
			}
		}
		if !provided {
			missing = append(missing, c)
		}
	}
	p.problems = missing
	if tc := p.timeColFrom(source, kind); tc != "" {
		p.timeCol = quote(source[tc])
		switch t := actual[strings.ToLower(source[tc])]; {
		case strings.HasPrefix(t, "TIMESTAMP"):
		case t == "BIGINT" || t == "LONG" || t == "INT" || t == "INTEGER":
			p.epoch = kind.EpochUnit()
		default:
			p.timeCol = "" // a string time column: the window is applied after decoding
		}
	}
	p.source = source
	var order []string
	for _, c := range OrderColumns(kind, source) {
		order = append(order, quote(source[c])+" ASC NULLS FIRST")
	}
	p.orderBy = strings.Join(order, ", ")
	return p, nil
}

func (p *plan) timeColFrom(source map[string]string, kind ingest.Kind) string {
	for _, c := range kind.TimeColumns() {
		if _, ok := source[c]; ok {
			return c
		}
	}
	return ""
}

func quote(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

// Query returns the SELECT that reads window w and its bound parameters.
func (s *Source) Query(ctx context.Context, w ingest.Window) (string, []any, error) {
	if _, _, err := s.Resolve(ctx); err != nil {
		return "", nil, err
	}
	p := &s.plan
	q := "SELECT " + strings.Join(p.selects, ", ") + " FROM " + s.quoted
	var where []string
	var args []any
	bound := func(name string, t time.Time) any {
		switch p.epoch {
		case time.Millisecond:
			return databricks.Parameter{Name: name, Value: t.UnixMilli()}
		case time.Nanosecond:
			return databricks.Parameter{Name: name, Value: t.UnixNano()}
		}
		return databricks.Parameter{Name: name, Type: databricks.SqlTimestamp, Value: t.UTC().Format(time.RFC3339Nano)}
	}
	if p.timeCol != "" && !w.From.IsZero() {
		where = append(where, p.timeCol+" >= :window_from")
		args = append(args, bound("window_from", w.From))
	}
	if p.timeCol != "" && !w.To.IsZero() {
		where = append(where, p.timeCol+" < :window_to")
		args = append(args, bound("window_to", w.To))
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if p.orderBy != "" {
		q += " ORDER BY " + p.orderBy
	}
	return q, args, nil
}

// Read reads the rows of window w and emits them decoded, as
// ingest.ReadFiles does for files; dead letters name the table and the row.
func (s *Source) Read(ctx context.Context, w ingest.Window, emit ingest.Emit) (ingest.Stats, error) {
	q, args, err := s.Query(ctx, w)
	if err != nil {
		return ingest.Stats{}, err
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return ingest.Stats{}, fmt.Errorf("databricksingest: read %s: %w", s.table.Name, err)
	}
	defer rows.Close()
	st, err := ingest.ReadRows(ctx, rows, s.table.Name, s.table.Spec, w, emit)
	if err != nil {
		return st, fmt.Errorf("databricksingest: %w", err)
	}
	return st, nil
}
