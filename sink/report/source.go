package report

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Querier is what the report needs of a database: *sql.DB, *sql.Conn and *sql.Tx all fit.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Dialect is the SQL spelling of one store. The report's queries stay in the
// subset DuckDB and Databricks SQL share, and the dialect supplies the rest.
type Dialect struct {
	name      string
	quoteChar string
	text      string // type name for CAST(x AS text)
	tsParam   string // expression turning a bound int64 of Unix microseconds into a TIMESTAMP
}

// Dialects.
var (
	DuckDB     = Dialect{name: "duckdb", quoteChar: `"`, text: "VARCHAR", tsParam: "make_timestamp(?)"}
	Databricks = Dialect{name: "databricks", quoteChar: "`", text: "STRING", tsParam: "timestamp_micros(?)"}
)

// DialectByName returns the dialect called name: duckdb or databricks.
func DialectByName(name string) (Dialect, error) {
	switch name {
	case DuckDB.name:
		return DuckDB, nil
	case Databricks.name:
		return Databricks, nil
	}
	return Dialect{}, fmt.Errorf("report: unknown SQL dialect %q (have duckdb, databricks)", name)
}

func (d Dialect) String() string { return d.name }

// gatewayField is the gateway billing field f (endpoint_id, endpoint_name,
// destination_model, destination_id) of billing_usage alias u. The DuckDB
// store keeps the flat Beta names, whichever an export had. Databricks'
// system.billing.usage has the GA struct (usage_metadata.ai_gateway.f), the
// Beta's flat usage_metadata.ai_gateway_f, or both; naming a field its
// struct lacks is an error there, so both are read through the struct's
// JSON, where a missing field is NULL.
func (d Dialect) gatewayField(u, f string) string {
	if d.name != Databricks.name {
		return u + ".usage_metadata.ai_gateway_" + f
	}
	js := "to_json(" + u + ".usage_metadata)"
	return "coalesce(get_json_object(" + js + ", '$.ai_gateway." + f + "'), get_json_object(" + js + ", '$.ai_gateway_" + f + "'))"
}

// quote quotes one identifier part, which validIdent has checked.
func (d Dialect) quote(part string) string { return d.quoteChar + part + d.quoteChar }

// ts is the SQL for a timestamp bound as Unix microseconds, which no session
// time zone can shift.
func (d Dialect) ts() string { return d.tsParam }

// Tables names the tables a report reads. Each is a table name, optionally
// qualified (schema.table or catalog.schema.table); every part must be a
// plain identifier.
type Tables struct {
	Attribution  string
	BillingUsage string
	ListPrices   string
	// Calibration is the store's calibration table; "" reads none.
	Calibration string
	// Allocation is the persisted cost_allocation table, read by the
	// budgets report on the allocated basis.
	Allocation string
}

// DefaultTables are the DuckDB store's names.
func DefaultTables() Tables {
	return Tables{Attribution: "attribution", BillingUsage: "billing_usage", ListPrices: "billing_list_prices", Calibration: "calibration", Allocation: "cost_allocation"}
}

// DatabricksTables reads attribution from catalog.schema and billing from the system tables.
func DatabricksTables(catalog, schema string) Tables {
	return Tables{
		Attribution:  catalog + "." + schema + ".attribution",
		Calibration:  catalog + "." + schema + ".calibration",
		Allocation:   catalog + "." + schema + ".cost_allocation",
		BillingUsage: "system.billing.usage",
		ListPrices:   "system.billing.list_prices",
	}
}

// Source is where a report reads from.
type Source struct {
	DB      Querier
	Dialect Dialect
	Tables  Tables
}

// NewDuckDBSource reads the DuckDB store's tables through db.
func NewDuckDBSource(db Querier) Source {
	return Source{DB: db, Dialect: DuckDB, Tables: DefaultTables()}
}

var identPart = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// table validates and quotes a configured table name.
func (s Source) table(field, name string) (string, error) {
	parts := strings.Split(name, ".")
	if name == "" || len(parts) > 3 {
		return "", fmt.Errorf("report: tables.%s %q: want table, schema.table or catalog.schema.table", field, name)
	}
	for i, p := range parts {
		if !identPart.MatchString(p) {
			return "", fmt.Errorf("report: tables.%s %q: part %q is not a plain identifier (letters, digits, _)", field, name, p)
		}
		parts[i] = s.Dialect.quote(p)
	}
	return strings.Join(parts, "."), nil
}

func (s Source) check() error {
	if s.DB == nil {
		return fmt.Errorf("report: source has no database")
	}
	if s.Dialect.name == "" {
		return fmt.Errorf("report: source has no SQL dialect")
	}
	return nil
}

// Period is a span of UTC time, [Start, End).
type Period struct {
	Start, End time.Time
	// Label names it in titles and file names: 2026-11, or 2026-11-01..2026-11-16.
	Label string
}

// ParsePeriod reads a calendar month (2026-11) or a range of UTC dates with
// an exclusive end (2026-11-01..2026-11-16).
func ParsePeriod(s string) (Period, error) {
	if from, to, ok := strings.Cut(s, ".."); ok {
		a, err1 := time.Parse(time.DateOnly, from)
		b, err2 := time.Parse(time.DateOnly, to)
		if err1 != nil || err2 != nil || !b.After(a) {
			return Period{}, fmt.Errorf("period %q: want YYYY-MM or YYYY-MM-DD..YYYY-MM-DD with the end (exclusive) after the start", s)
		}
		return Period{Start: a, End: b, Label: s}, nil
	}
	m, err := time.Parse("2006-01", s)
	if err != nil {
		return Period{}, fmt.Errorf("period %q: want YYYY-MM or YYYY-MM-DD..YYYY-MM-DD", s)
	}
	return Period{Start: m, End: m.AddDate(0, 1, 0), Label: s}, nil
}

// Days lists the UTC dates of the period.
func (p Period) Days() []time.Time {
	var out []time.Time
	for d := p.Start.Truncate(24 * time.Hour); d.Before(p.End); d = d.AddDate(0, 0, 1) {
		out = append(out, d)
	}
	return out
}
