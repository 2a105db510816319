// Package workload loads a generated workload (obolus gen) into the local
// warehouse as the Databricks tables it stands for, with their Databricks types.
package workload

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/synth"
	"github.com/obolus/obolus/schemas"
)

// Where the loaded tables live, in Databricks names.
const (
	UsageTable       = "system.ai_gateway.usage"
	LegacyUsageTable = "system.serving.endpoint_usage"
	ServedTable      = "system.serving.served_entities"
	AgentSchema      = "lakehouse.agents"
)

// duckCatalogs maps the catalogs the local warehouse keeps under another
// name in DuckDB (see warehouse.Server.DB).
var duckCatalogs = map[string]string{"system": "system_catalog", "main": "main_catalog", "temp": "temp_catalog"}

// Column lists in Databricks order, with the DuckDB types that stand for the
// Databricks ones (MAP(VARCHAR, VARCHAR) is map<string,string>).
const (
	tMap    = "MAP(VARCHAR, VARCHAR)"
	tTokens = "STRUCT(cache_read_input_tokens BIGINT, cache_creation_input_tokens BIGINT, output_reasoning_tokens BIGINT)"
)

type column struct{ name, typ string }

var kindColumns = map[string][]column{
	config.KindUsage: {
		{"account_id", "VARCHAR"}, {"workspace_id", "VARCHAR"}, {"request_id", "VARCHAR"}, {"schema_version", "INTEGER"},
		{"endpoint_id", "VARCHAR"}, {"endpoint_name", "VARCHAR"}, {"endpoint_tags", tMap}, {"event_time", "TIMESTAMP"},
		{"latency_ms", "BIGINT"}, {"time_to_first_byte_ms", "BIGINT"}, {"destination_type", "VARCHAR"},
		{"destination_name", "VARCHAR"}, {"destination_id", "VARCHAR"}, {"destination_model", "VARCHAR"},
		{"requester", "VARCHAR"}, {"requester_type", "VARCHAR"}, {"ip_address", "VARCHAR"}, {"url", "VARCHAR"},
		{"user_agent", "VARCHAR"}, {"api_type", "VARCHAR"}, {"request_tags", tMap}, {"input_tokens", "BIGINT"},
		{"output_tokens", "BIGINT"}, {"total_tokens", "BIGINT"}, {"token_details", tTokens},
		{"response_content_type", "VARCHAR"}, {"status_code", "INTEGER"}, {"invocation_id", "VARCHAR"},
	},
	config.KindLegacyUsage: {
		{"workspace_id", "VARCHAR"}, {"account_id", "VARCHAR"}, {"client_request_id", "VARCHAR"},
		{"databricks_request_id", "VARCHAR"}, {"requester", "VARCHAR"}, {"status_code", "INTEGER"},
		{"request_time", "TIMESTAMP"}, {"input_token_count", "BIGINT"}, {"output_token_count", "BIGINT"},
		{"input_character_count", "BIGINT"}, {"output_character_count", "BIGINT"}, {"usage_context", tMap},
		{"request_streaming", "BOOLEAN"}, {"served_entity_id", "VARCHAR"},
	},
	config.KindPayload: {
		{"databricks_request_id", "VARCHAR"}, {"request_date", "DATE"}, {"client_request_id", "VARCHAR"},
		{"request_time", "TIMESTAMP"}, {"status_code", "INTEGER"}, {"sampling_fraction", "DOUBLE"},
		{"execution_duration_ms", "BIGINT"}, {"request", "VARCHAR"}, {"response", "VARCHAR"},
		{"served_entity_id", "VARCHAR"}, {"requester", "VARCHAR"},
	},
	config.KindTrace: {
		{"trace_id", "VARCHAR"}, {"client_request_id", "VARCHAR"}, {"request_time", "TIMESTAMP"},
		{"execution_duration_ms", "BIGINT"}, {"state", "VARCHAR"}, {"trace_metadata", tMap}, {"tags", tMap},
	},
	config.KindServedEntities: {
		{"served_entity_id", "VARCHAR"}, {"account_id", "VARCHAR"}, {"workspace_id", "VARCHAR"}, {"created_by", "VARCHAR"},
		{"endpoint_name", "VARCHAR"}, {"endpoint_id", "VARCHAR"}, {"served_entity_name", "VARCHAR"}, {"entity_type", "VARCHAR"},
		{"entity_name", "VARCHAR"}, {"entity_version", "VARCHAR"}, {"endpoint_config_version", "INTEGER"}, {"task", "VARCHAR"},
		{"change_time", "TIMESTAMP"}, {"endpoint_delete_time", "TIMESTAMP"},
	},
	spansV1: spanColumns(tMap),
	// v2's VARIANT columns stand as JSON text, which is how a warehouse
	// result carries a VARIANT to a client.
	spansV2: append([]column{{"record_id", "VARCHAR"}, {"time", "TIMESTAMP"}, {"date", "DATE"}, {"service_name", "VARCHAR"}},
		spanColumns("VARCHAR")...),
}

// Span tables load as one of two layouts, told apart by v2's record_id.
const (
	spansV1 = config.KindOTelSpans + "_v1"
	spansV2 = config.KindOTelSpans + "_v2"
)

// spanColumns are the span columns both layouts share, attributes typed attrs.
func spanColumns(attrs string) []column {
	return []column{
		{"trace_id", "VARCHAR"}, {"span_id", "VARCHAR"}, {"trace_state", "VARCHAR"}, {"parent_span_id", "VARCHAR"},
		{"flags", "INTEGER"}, {"name", "VARCHAR"}, {"kind", "VARCHAR"},
		{"start_time_unix_nano", "BIGINT"}, {"end_time_unix_nano", "BIGINT"}, {"attributes", attrs},
		{"dropped_attributes_count", "INTEGER"}, {"status", "STRUCT(message VARCHAR, code VARCHAR)"},
		{"resource", "STRUCT(attributes " + attrs + ", dropped_attributes_count INTEGER)"},
	}
}

// Layout says which tables a loaded workload occupies.
type Layout struct {
	Usage, LegacyUsage string
	Served             string
	Payloads, Traces   []config.DatabricksAgentTable
	OTelSpans          []config.DatabricksAgentTable
	// Truth and Org are the workload's ground truth and org directory files.
	Truth, Org string
	// Rows counts the rows loaded per table (Databricks name).
	Rows map[string]int64

	late []load
}

type load struct {
	table, kind, path string
}

// Load reads the workload that obolus gen wrote to dir (its obolus.yaml names
// the files) and loads it through db, the local warehouse's DuckDB: gateway
// usage as system.ai_gateway.usage and system.serving.endpoint_usage, agent
// payload and trace files as lakehouse.agents.<endpoint>_payload and
// _traces. Existing tables are replaced. Agent logs the workload marks late
// (agents_late/) are held back for LoadLate.
func Load(ctx context.Context, db *sql.DB, dir string) (*Layout, error) {
	cfg, err := config.Load(config.New(), filepath.Join(dir, synth.ConfigFile))
	if err != nil {
		return nil, fmt.Errorf("workload: %w", err)
	}
	l := &Layout{Truth: filepath.Join(dir, synth.TruthFile), Org: cfg.Org, Rows: map[string]int64{}}
	var now []load
	seen := map[string]bool{}
	for _, s := range cfg.Sources {
		var table string
		switch s.Kind {
		case config.KindUsage:
			table, l.Usage = UsageTable, UsageTable
		case config.KindLegacyUsage:
			table, l.LegacyUsage = LegacyUsageTable, LegacyUsageTable
		case config.KindServedEntities:
			table, l.Served = ServedTable, ServedTable
		case config.KindPayload, config.KindTrace:
			suffix := "_payload"
			if s.Kind == config.KindTrace {
				suffix = "_traces"
			}
			table = AgentSchema + "." + tableWord(s.AgentEndpoint) + suffix
			if !seen[table] {
				seen[table] = true
				t := config.DatabricksAgentTable{Table: table, AgentEndpoint: s.AgentEndpoint, ServicePrincipal: s.ServicePrincipal}
				if s.Kind == config.KindPayload {
					l.Payloads = append(l.Payloads, t)
				} else {
					l.Traces = append(l.Traces, t)
				}
			}
		case config.KindOTelSpans:
			table = AgentSchema + "." + tableWord(s.AgentEndpoint) + "_otel_spans"
			if !seen[table] {
				seen[table] = true
				l.OTelSpans = append(l.OTelSpans, config.DatabricksAgentTable{Table: table, AgentEndpoint: s.AgentEndpoint, ServicePrincipal: s.ServicePrincipal})
			}
		default:
			return nil, fmt.Errorf("workload: source kind %q is unknown", s.Kind)
		}
		ld := load{table: table, kind: s.Kind, path: s.Path}
		if s.Kind == config.KindOTelSpans {
			var err error
			if ld.kind, err = spanLayout(ctx, db, s.Path); err != nil {
				return nil, err
			}
		}
		if strings.Contains(filepath.ToSlash(s.Path), "/agents_late/") {
			l.late = append(l.late, ld)
			continue
		}
		now = append(now, ld)
	}
	created := map[string]bool{}
	for _, ld := range append(now, l.late...) {
		if created[ld.table] {
			continue
		}
		created[ld.table] = true
		if err := createTable(ctx, db, ld.table, ld.kind); err != nil {
			return nil, err
		}
	}
	for _, ld := range now {
		if err := l.insert(ctx, db, ld); err != nil {
			return nil, err
		}
	}
	if err := createBilling(ctx, db); err != nil {
		return nil, err
	}
	return l, nil
}

// Billing system tables, which every workspace has; the workload has no bill,
// so they start empty (a report then estimates at list price).
const (
	BillingUsageTable = "system.billing.usage"
	ListPricesTable   = "system.billing.list_prices"
)

// createBilling creates the billing system tables with the columns obolus
// reads, in the shape of the embedded store's copies of them.
func createBilling(ctx context.Context, db *sql.DB) error {
	stmts, err := schemas.DDL("duckdb")
	if err != nil {
		return err
	}
	for _, t := range []struct{ store, table string }{{"billing_usage", BillingUsageTable}, {"billing_list_prices", ListPricesTable}} {
		i := slices.IndexFunc(stmts, func(s schemas.Statement) bool { return s.Name == t.store })
		if i < 0 {
			return fmt.Errorf("workload: no DDL for %s", t.store)
		}
		cat, sch, name := duckName(t.table)
		full := quote(cat) + "." + quote(sch) + "." + quote(name)
		// The file's first statement creates the table; the rest comment it.
		first := stmts[i].Parts()[0]
		create := strings.Replace(first, "CREATE TABLE IF NOT EXISTS "+t.store+" (", "CREATE TABLE IF NOT EXISTS "+full+" (", 1)
		if create == first {
			return fmt.Errorf("workload: DDL of %s does not start as expected", t.store)
		}
		for _, q := range []string{"ATTACH IF NOT EXISTS ':memory:' AS " + quote(cat), "CREATE SCHEMA IF NOT EXISTS " + quote(cat) + "." + quote(sch), create} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("workload: create %s: %w", t.table, err)
			}
		}
	}
	return nil
}

// LoadLate appends the agent logs the workload marked late, as if they had
// just landed.
func (l *Layout) LoadLate(ctx context.Context, db *sql.DB) error {
	for _, ld := range l.late {
		if err := l.insert(ctx, db, ld); err != nil {
			return err
		}
	}
	l.late = nil
	return nil
}

// Configure points the databricks section at the loaded tables.
func (l *Layout) Configure(d *config.Databricks) {
	d.Usage, d.LegacyUsage, d.ServedEntities = l.Usage, l.LegacyUsage, l.Served
	d.Payloads = append([]config.DatabricksAgentTable(nil), l.Payloads...)
	d.Traces = append([]config.DatabricksAgentTable(nil), l.Traces...)
	d.OTelSpans = append([]config.DatabricksAgentTable(nil), l.OTelSpans...)
}

// spanLayout tells a span file's layout: v2 has record_id.
func spanLayout(ctx context.Context, db *sql.DB, path string) (string, error) {
	reader := "read_json_auto(?, format = 'newline_delimited')"
	if strings.EqualFold(filepath.Ext(path), ".parquet") {
		reader = "read_parquet(?)"
	}
	var n int
	err := db.QueryRowContext(ctx, "SELECT count(*) FROM (DESCRIBE SELECT * FROM "+reader+") WHERE column_name = 'record_id'", path).Scan(&n)
	if err != nil {
		return "", fmt.Errorf("workload: read the columns of %s: %w", path, err)
	}
	if n > 0 {
		return spansV2, nil
	}
	return spansV1, nil
}

var nonWord = regexp.MustCompile(`[^a-z0-9_]+`)

func tableWord(s string) string { return nonWord.ReplaceAllString(strings.ToLower(s), "_") }

// duckName is the quoted DuckDB name of a Databricks catalog.schema.table.
func duckName(table string) (catalog, schema, name string) {
	parts := strings.Split(table, ".")
	catalog = parts[0]
	if d, ok := duckCatalogs[catalog]; ok {
		catalog = d
	}
	return catalog, parts[1], parts[2]
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func createTable(ctx context.Context, db *sql.DB, table, kind string) error {
	cat, sch, name := duckName(table)
	// ATTACH and CREATE SCHEMA take no parameters; the names are ours.
	stmts := []string{
		"ATTACH IF NOT EXISTS ':memory:' AS " + quote(cat),
		"CREATE SCHEMA IF NOT EXISTS " + quote(cat) + "." + quote(sch),
	}
	var defs []string
	for _, c := range kindColumns[kind] {
		defs = append(defs, quote(c.name)+" "+c.typ)
	}
	stmts = append(stmts, "CREATE OR REPLACE TABLE "+quote(cat)+"."+quote(sch)+"."+quote(name)+" ("+strings.Join(defs, ", ")+")")
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("workload: create %s: %w", table, err)
		}
	}
	return nil
}

func (l *Layout) insert(ctx context.Context, db *sql.DB, ld load) error {
	cat, sch, name := duckName(ld.table)
	var reader string
	switch ext := strings.ToLower(filepath.Ext(ld.path)); ext {
	case ".parquet":
		reader = "read_parquet(?)"
	case ".jsonl", ".ndjson", ".json":
		var cols []string
		for _, c := range kindColumns[ld.kind] {
			if c.name != "request_date" {
				cols = append(cols, "'"+c.name+"': '"+c.typ+"'")
			}
		}
		reader = "read_json(?, format = 'newline_delimited', columns = {" + strings.Join(cols, ", ") + "})"
	default:
		return fmt.Errorf("workload: %s: unsupported file type %q (generate jsonl or parquet)", ld.path, ext)
	}
	q := "INSERT INTO " + quote(cat) + "." + quote(sch) + "." + quote(name) + " BY NAME SELECT * FROM " + reader
	if ld.kind == config.KindPayload {
		// Payload tables carry request_date, the UTC date they are clustered by.
		q = "INSERT INTO " + quote(cat) + "." + quote(sch) + "." + quote(name) + " BY NAME SELECT *, CAST(request_time AS DATE) AS request_date FROM " + reader
	}
	res, err := db.ExecContext(ctx, q, ld.path)
	if err != nil {
		return fmt.Errorf("workload: load %s into %s: %w", ld.path, ld.table, err)
	}
	n, _ := res.RowsAffected()
	l.Rows[ld.table] += n
	return nil
}
