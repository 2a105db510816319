// Package pushdown generates the SQL that attributes one window inside the
// warehouse, with the Go engine's rules, and MERGEs the result into attribution.
//
// The SQL stays in the subset that Databricks SQL and DuckDB (the local
// warehouse) both run, and is laid out to be read: it is what a user debugs.
// Every value is a bound parameter; names from configuration are validated
// and quoted. Literals in the text are the engine's own constants.
package pushdown

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	databricks "github.com/databricks/databricks-sql-go"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/ingest"
	databricksingest "github.com/obolus/obolus/ingest/databricks"
	"github.com/obolus/obolus/internal/dbsql"
	"github.com/obolus/obolus/schemas"
	databrickssink "github.com/obolus/obolus/sink/databricks"
)

// Table is a source table as pushdown reads it.
type Table struct {
	// Name is catalog.schema.table.
	Name string
	Kind ingest.Kind
	// Columns says which table column provides each obolus column the table
	// has (databricksingest.Source.Columns after Resolve).
	Columns map[string]string
	// AgentEndpoint and ServicePrincipal label agent log rows.
	AgentEndpoint, ServicePrincipal string
}

// Config is what one pushdown statement needs besides the window.
type Config struct {
	// Target is where attribution and the price and org tables live.
	Target dbsql.Schema
	// Usage holds usage and legacy_usage tables; Agents payload tables, then
	// trace tables, in the order pull mode reads them (which decides how
	// rows of one request merge).
	Usage, Agents []Table
	Match         enrich.MatchConfig
	// Prices and Org must have been loaded with Load (their digests key the
	// rows the statement joins). Org holds the org directory's entries (see
	// OrgEntries); nil puts everyone in schemas.UnassignedTeam.
	Prices *enrich.PriceList
	Org    []enrich.OrgEntry
	// Limits bound what a row may claim, as in pull mode: usage rows beyond
	// them are invalid (counted as dead-lettered), agent rows left out.
	// Zero fields mean ingest.DefaultLimits.
	Limits ingest.Limits
	// Served is the served_entities table (system.serving.served_entities)
	// legacy usage rows take their model and endpoint name from, as
	// enrich.ServedEntities resolves them; nil leaves them without.
	Served *Table
	// Calibrated makes Build set the confidence of time-window rows from
	// the calibration rows of the run (Target's calibration table), which
	// the caller wrote from CalibrationStats.
	Calibrated bool
}

// Windows are the time ranges of one run, as batch.Job computes them.
type Windows struct {
	// Usage is the processed event-time window; a zero From reads all
	// earlier usage.
	Usage ingest.Window
	// Agents is the request-time window of agent logs; a zero From reads all
	// earlier logs.
	Agents ingest.Window
	// Replace is the event-time window whose stored rows are replaced: both
	// ends set.
	Replace ingest.Window
}

// Statement is SQL with its bound parameters.
type Statement struct {
	SQL  string
	Args []any
}

// Validate reports what pushdown cannot express for cfg.
func (c *Config) Validate() error {
	if err := c.Match.Validate(); err != nil {
		return err
	}
	if c.Match.Ambiguity == enrich.PolicyLikely {
		return fmt.Errorf("match.ambiguity: %s is not in pushdown mode yet; use databricks.mode pull (--mode pull), or another policy", enrich.PolicyLikely)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"match.skew", c.Match.Skew}, {"match.crowd_margin", c.Match.CrowdMargin}} {
		if d.v%time.Microsecond != 0 {
			return fmt.Errorf("%s: %s is finer than a microsecond, which warehouse timestamps cannot hold; round it for pushdown mode", d.key, d.v)
		}
	}
	if len(c.Usage) == 0 {
		return errors.New("pushdown: no usage table")
	}
	if c.Prices == nil {
		return errors.New("pushdown: no price list")
	}
	tables := append(append([]Table(nil), c.Usage...), c.Agents...)
	if c.Served != nil {
		tables = append(tables, *c.Served)
	}
	for _, t := range tables {
		if _, err := dbsql.Name(t.Name); err != nil {
			return fmt.Errorf("pushdown: %s table: %w", t.Kind, err)
		}
		for canon, col := range t.Columns {
			if _, err := dbsql.Ident(col); err != nil {
				return fmt.Errorf("pushdown: table %s column %s: %w", t.Name, canon, err)
			}
		}
		need := map[ingest.Kind][]string{
			ingest.KindUsage:          {"invocation_id", "event_time", "requester"},
			ingest.KindLegacyUsage:    {"databricks_request_id", "request_time", "requester"},
			ingest.KindPayload:        {"databricks_request_id", "request_time"},
			ingest.KindTrace:          {"trace_id", "request_time"},
			ingest.KindServedEntities: {"served_entity_id", "entity_type", "entity_name", "change_time"},
		}[t.Kind]
		if need == nil {
			return fmt.Errorf("pushdown: table %s: kind %q cannot be pushed down", t.Name, t.Kind)
		}
		for _, n := range need {
			if _, ok := t.Columns[n]; !ok {
				return fmt.Errorf("pushdown: table %s has no column %q as a TIMESTAMP or id column (older names such as timestamp_ms are read in pull mode only)", t.Name, n)
			}
		}
		if _, ok := t.Columns["execution_duration"]; ok && t.Kind == ingest.KindTrace {
			if _, canon := t.Columns["execution_duration_ms"]; !canon {
				return fmt.Errorf("pushdown: table %s: execution_duration as text is read in pull mode only", t.Name)
			}
		}
	}
	return nil
}

// params collects named parameters as they are used.
type params struct {
	args []any
	seen map[string]bool
}

func (p *params) bind(name string, v any) string {
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	if !p.seen[name] {
		p.seen[name] = true
		switch v := v.(type) {
		case time.Time:
			p.args = append(p.args, databricks.Parameter{Name: name, Type: databricks.SqlTimestamp, Value: v.UTC().Format("2006-01-02T15:04:05.999999Z07:00")})
		case string:
			p.args = append(p.args, databricks.Parameter{Name: name, Type: databricks.SqlString, Value: v})
		case int64:
			p.args = append(p.args, databricks.Parameter{Name: name, Type: databricks.SqlBigInt, Value: fmt.Sprint(v)})
		case float64:
			p.args = append(p.args, databricks.Parameter{Name: name, Type: databricks.SqlDouble, Value: strconv.FormatFloat(v, 'g', -1, 64)})
		default:
			p.args = append(p.args, databricks.Parameter{Name: name, Value: v})
		}
	}
	return ":" + name
}

// Names of the literal sources in the output.
const (
	usageSource  = schemas.SourceAIGateway
	legacySource = schemas.SourceServingEndpoint
)

// col is a source column reference, or fallback when the table lacks it.
func col(t Table, alias, canon, fallback string) string {
	c, ok := t.Columns[canon]
	if !ok {
		return fallback
	}
	return alias + ".`" + c + "`"
}

// firstCol is col for the first of canons the table has.
func firstCol(t Table, alias string, fallback string, canons ...string) string {
	for _, c := range canons {
		if _, ok := t.Columns[c]; ok {
			return col(t, alias, c, fallback)
		}
	}
	return fallback
}

// Durations are bound as whole seconds plus the remaining microseconds:
// DuckDB multiplies an interval by a 32-bit integer only, which would cap a
// single microsecond count at 35 minutes.
const (
	skewInterval = "(:skew_s * INTERVAL '1' SECOND + :skew_us * INTERVAL '0.000001' SECOND)"
	wideInterval = "(:wide_s * INTERVAL '1' SECOND + :wide_us * INTERVAL '0.000001' SECOND)"
)

func bindDuration(p *params, name string, d time.Duration) {
	p.bind(name+"_s", int64(d/time.Second))
	p.bind(name+"_us", (d % time.Second).Microseconds())
}

// msInterval is the SQL for a BIGINT count of milliseconds as an interval,
// split like the bound durations.
func msInterval(ms string) string {
	return "(CAST((" + ms + " - " + ms + " % 1000) / 1000 AS BIGINT) * INTERVAL '1' SECOND + (" + ms + " % 1000) * INTERVAL '0.001' SECOND)"
}

func windowPredicate(b *strings.Builder, p *params, column string, w ingest.Window, prefix string) {
	var conds []string
	if !w.From.IsZero() {
		conds = append(conds, column+" >= "+p.bind(prefix+"_from", w.From))
	}
	if !w.To.IsZero() {
		conds = append(conds, column+" < "+p.bind(prefix+"_to", w.To))
	}
	if len(conds) > 0 {
		b.WriteString("  WHERE " + strings.Join(conds, " AND ") + "\n")
	}
}

// writeSelectList writes "expr AS name" lines, comma-separated.
func writeSelectList(b *strings.Builder, fields [][2]string) {
	for j, f := range fields {
		sep := ","
		if j == len(fields)-1 {
			sep = ""
		}
		b.WriteString("    " + f[0] + " AS " + f[1] + sep + "\n")
	}
}

func tableName(t Table) string { return dbsql.MustName(t.Name) }

// tagKeys binds the configured request_tags keys of one rule.
type tagKeys struct {
	prefix string // user, trace or request
	keys   []string
}

func (c *Config) tagKeys() []tagKeys {
	var out []tagKeys
	if c.Match.TagUser {
		out = append(out, tagKeys{"user", c.Match.UserTagKeys})
	}
	if c.Match.TraceID {
		out = append(out, tagKeys{"trace", c.Match.TraceTagKeys})
	}
	if c.Match.RequestID {
		out = append(out, tagKeys{"request", c.Match.RequestTagKeys})
	}
	return out
}

func tagColumns(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s_tag_%d", prefix, i)
	}
	return out
}

// usageRows writes the usage_rows CTE: every usage row of the window in the
// engine's shape, with valid saying whether pull mode would have used it
// rather than dead-lettered it.
// servedVersions writes served_versions: each served entity's versions with
// the time each is in force, [valid_from, valid_to), the first from the
// beginning of time, as enrich.ServedEntities.At picks them (ties on
// change_time to the last in entity_name, served_entity_name order), and the
// model as schemas.ServedEntity.Model derives it. Rows pull mode
// dead-letters (a required column NULL) are left out.
func (c *Config) servedVersions(b *strings.Builder) {
	t, a := *c.Served, "s"
	id, typ, name := col(t, a, "served_entity_id", "NULL"), col(t, a, "entity_type", "NULL"), col(t, a, "entity_name", "NULL")
	change := col(t, a, "change_time", "NULL")
	order := "OVER (PARTITION BY served_entity_id ORDER BY change_time, entity_name, served_entity_name)"
	b.WriteString("-- " + t.Name + " (" + string(t.Kind) + "): the version of each served entity in force over time.\n")
	b.WriteString("served_versions AS (\n  SELECT served_entity_id, model, endpoint_name,\n")
	b.WriteString("    CASE WHEN row_number() " + order + " = 1 THEN NULL ELSE change_time END AS valid_from,\n")
	b.WriteString("    lead(change_time) " + order + " AS valid_to\n  FROM (\n")
	b.WriteString("    SELECT " + id + " AS served_entity_id,\n")
	b.WriteString("      CASE WHEN " + typ + " = '" + schemas.EntityTypeExternal + "' OR " + name + " NOT LIKE '%.%.%' THEN " + name +
		" ELSE regexp_extract(" + name + ", '^[^.]*[.][^.]*[.](.*)$', 1) END AS model,\n")
	b.WriteString("      coalesce(" + col(t, a, "endpoint_name", "''") + ", '') AS endpoint_name, " + change + " AS change_time,\n")
	b.WriteString("      " + name + " AS entity_name, coalesce(" + col(t, a, "served_entity_name", "''") + ", '') AS served_entity_name\n")
	b.WriteString("    FROM " + tableName(t) + " " + a + "\n")
	b.WriteString("    WHERE " + id + " IS NOT NULL AND " + typ + " IS NOT NULL AND " + name + " IS NOT NULL AND " + change + " IS NOT NULL\n  ) v\n),\n")
}

func (c *Config) usageRows(b *strings.Builder, p *params, w Windows) {
	if c.Served != nil {
		c.servedVersions(b)
	}
	b.WriteString("-- Gateway usage of the window, one row per table row, in the engine's shape.\n")
	b.WriteString("-- valid is false where pull mode dead-letters the row (missing ids, unknown\n")
	b.WriteString("-- schema_version, counts negative or beyond the limit, times before 2000);\n")
	b.WriteString("-- request_tags values under the configured keys become one column each.\n")
	if c.Served != nil {
		b.WriteString("-- Legacy rows take the model and endpoint of their served entity.\n")
	}
	b.WriteString("usage_rows AS (\n")
	limits := c.Limits.OrDefault()
	maxTokens := p.bind("max_tokens", limits.MaxTokens)
	served := func(f string) string {
		if c.Served == nil {
			return "''"
		}
		return "coalesce(sv." + f + ", '')"
	}
	earliest := p.bind("earliest_time", ingest.EarliestEventTime)
	for i, t := range c.Usage {
		if i > 0 {
			b.WriteString("  UNION ALL\n")
		}
		a := "u"
		b.WriteString("  -- " + t.Name + " (" + string(t.Kind) + ")\n  SELECT\n")
		var fields [][2]string
		var valid []string
		count := func(canon string) string {
			c := col(t, a, canon, "")
			if c == "" {
				return "0"
			}
			valid = append(valid, "coalesce("+c+", 0) BETWEEN 0 AND "+maxTokens)
			return "coalesce(" + c + ", 0)"
		}
		str := func(canon string) string { return "coalesce(" + col(t, a, canon, "''") + ", '')" }
		timeCol := col(t, a, "event_time", "NULL")
		if t.Kind == ingest.KindLegacyUsage {
			timeCol = col(t, a, "request_time", "NULL")
		}
		valid = append(valid, "coalesce("+timeCol+" >= "+earliest+", false)")
		switch t.Kind {
		case ingest.KindUsage:
			inv := col(t, a, "invocation_id", "NULL")
			valid = append(valid, "coalesce("+inv+", '') <> ''", str("requester")+" <> ''")
			if sv := col(t, a, "schema_version", ""); sv != "" {
				valid = append(valid, fmt.Sprintf("(%s IS NULL OR %s BETWEEN 1 AND %d)", sv, sv, ingest.MaxUsageSchemaVersion))
			}
			td := func(f string) string {
				c := col(t, a, "token_details", "")
				if c == "" {
					return "0"
				}
				valid = append(valid, "coalesce("+c+"."+f+", 0) BETWEEN 0 AND "+maxTokens)
				return "coalesce(" + c + "." + f + ", 0)"
			}
			fields = [][2]string{
				{inv, "invocation_id"}, {str("request_id"), "request_id"}, {str("account_id"), "account_id"},
				{str("workspace_id"), "workspace_id"}, {col(t, a, "event_time", "NULL"), "event_time"},
				{str("endpoint_id"), "endpoint_id"}, {str("endpoint_name"), "endpoint_name"},
				{str("destination_name"), "destination_name"}, {str("destination_model"), "destination_model"},
				{str("requester"), "requester"}, {"coalesce(" + col(t, a, "status_code", "0") + ", 0)", "status_code"},
				{count("input_tokens"), "input_tokens"}, {count("output_tokens"), "output_tokens"},
				{count("total_tokens"), "total_tokens"}, {td("cache_read_input_tokens"), "cache_read_input_tokens"},
				{td("cache_creation_input_tokens"), "cache_creation_input_tokens"},
				{td("output_reasoning_tokens"), "output_reasoning_tokens"}, {"'" + usageSource + "'", "usage_source"},
			}
		case ingest.KindLegacyUsage:
			id := col(t, a, "databricks_request_id", "NULL")
			valid = append(valid, "coalesce("+id+", '') <> ''", str("requester")+" <> ''")
			in, out := count("input_token_count"), count("output_token_count")
			for _, chars := range []string{"input_character_count", "output_character_count"} {
				if c := col(t, a, chars, ""); c != "" {
					valid = append(valid, "coalesce("+c+", 0) >= 0")
				}
			}
			fields = [][2]string{
				{id, "invocation_id"}, {str("databricks_request_id"), "request_id"}, {str("account_id"), "account_id"},
				{str("workspace_id"), "workspace_id"}, {col(t, a, "request_time", "NULL"), "event_time"},
				{str("served_entity_id"), "endpoint_id"}, {served("endpoint_name"), "endpoint_name"},
				{"''", "destination_name"}, {served("model"), "destination_model"},
				{str("requester"), "requester"}, {"coalesce(" + col(t, a, "status_code", "0") + ", 0)", "status_code"},
				{in, "input_tokens"}, {out, "output_tokens"}, {in + " + " + out, "total_tokens"},
				{"0", "cache_read_input_tokens"}, {"0", "cache_creation_input_tokens"}, {"0", "output_reasoning_tokens"},
				{"'" + legacySource + "'", "usage_source"},
			}
		}
		// Tag columns: request_tags, or for legacy rows usage_context plus
		// client_request_id under its own key (schemas.LegacyUsage.UsageEvent).
		// Forgiving lookups test the row's folded keys, computed once in a
		// subquery over the table (FoldedTagKeysSQL).
		tagCol := "request_tags"
		if t.Kind == ingest.KindLegacyUsage {
			tagCol = "usage_context"
		}
		from := tableName(t) + " " + a
		folded := ""
		if inner := col(t, "t0", tagCol, ""); inner != "" && !c.Match.ExactTagKeys {
			folded = a + "." + foldedTagKeysColumn
			from = "(SELECT t0.*, " + FoldedTagKeysSQL(inner) + " AS " + foldedTagKeysColumn + " FROM " + tableName(t) + " t0) " + a
		}
		for _, tk := range c.tagKeys() {
			for j, k := range tk.keys {
				l := newTagLookup(p, fmt.Sprintf("%s_key_%d", tk.prefix, j), k, c.Match.ExactTagKeys)
				var v string
				switch t.Kind {
				case ingest.KindUsage:
					v = "CAST(NULL AS STRING)"
					if tags := col(t, a, "request_tags", ""); tags != "" {
						v = l.inMap(tags, folded)
					}
				default:
					v = l.inLegacy(col(t, a, "usage_context", ""), folded, col(t, a, "client_request_id", "''"), k)
				}
				fields = append(fields, [2]string{v, fmt.Sprintf("%s_tag_%d", tk.prefix, j)})
			}
		}
		fields = append(fields, [2]string{strings.Join(valid, "\n      AND "), "valid"})
		writeSelectList(b, fields)
		b.WriteString("  FROM " + from + "\n")
		if t.Kind == ingest.KindLegacyUsage && c.Served != nil {
			b.WriteString("  LEFT JOIN served_versions sv ON sv.served_entity_id = " + col(t, a, "served_entity_id", "NULL") +
				"\n    AND (sv.valid_from IS NULL OR " + timeCol + " >= sv.valid_from) AND (sv.valid_to IS NULL OR " + timeCol + " < sv.valid_to)\n")
		}
		windowPredicate(b, p, timeCol, w.Usage, "usage")
	}
	b.WriteString("),\n")
}

// foldedTagKeysColumn holds a usage row's FoldedTagKeysSQL in usage_rows'
// per-table subquery.
const foldedTagKeysColumn = "obolus_folded_tag_keys"

// events writes the deduplicated events: one row per invocation_id, chosen
// as enrich.Dedup does (earliest event_time, then most total_tokens).
func events(b *strings.Builder) {
	b.WriteString(`-- One row per invocation: duplicates describe one call (enrich.Dedup keeps the
-- earliest, then the one with most tokens).
events AS (
  SELECT * FROM (
    SELECT r.*, row_number() OVER (
      PARTITION BY r.invocation_id
      ORDER BY r.event_time, r.total_tokens DESC, r.usage_source, r.request_id, r.requester) AS dup_rank
    FROM usage_rows r
    WHERE r.valid
  ) d
  WHERE d.dup_rank = 1
),
`)
}

// agentRows writes agent_rows: every usable agent log row of the window as
// an agent request, numbered in the order pull mode reads them.
func (c *Config) agentRows(b *strings.Builder, p *params, w Windows) {
	b.WriteString(`-- Agent log rows of the window as agent requests, numbered (source_no, row_no)
-- in the order pull mode reads them: tables in configuration order, rows by
-- time and id. Where several rows describe one request, the first to name a
-- field wins.
agent_rows AS (
`)
	if len(c.Agents) == 0 {
		b.WriteString("  SELECT 0 AS source_no, 0 AS row_no, 0 AS kind_rank, '' AS agent_request_id, '' AS trace_id, '' AS client_request_id,\n" +
			"    '' AS end_user, '' AS session, '' AS agent_endpoint, '' AS service_principal,\n" +
			"    CAST(NULL AS TIMESTAMP) AS start_time, CAST(0 AS BIGINT) AS duration_ms\n  WHERE 1 = 0\n),\n")
		return
	}
	limits := c.Limits.OrDefault()
	maxDuration := p.bind("max_duration_ms", limits.MaxRequestDuration.Milliseconds())
	earliest := p.bind("earliest_time", ingest.EarliestEventTime)
	for i, t := range c.Agents {
		if i > 0 {
			b.WriteString("  UNION ALL\n")
		}
		a := "p"
		if t.Kind == ingest.KindTrace {
			a = "t"
		}
		var order []string
		for _, oc := range databricksingest.OrderColumns(t.Kind, t.Columns) {
			order = append(order, col(t, a, oc, "")+" ASC NULLS FIRST")
		}
		ep := p.bind(fmt.Sprintf("agent_endpoint_%d", i), t.AgentEndpoint)
		sp := p.bind(fmt.Sprintf("service_principal_%d", i), t.ServicePrincipal)
		str := func(canon string) string { return "coalesce(" + col(t, a, canon, "''") + ", '')" }
		dur := firstCol(t, a, "", "execution_duration_ms", "execution_time_ms")
		var fields [][2]string
		var where []string
		switch t.Kind {
		case ingest.KindPayload:
			id := col(t, a, "databricks_request_id", "NULL")
			where = append(where, "coalesce("+id+", '') <> ''")
			fields = [][2]string{
				{id, "agent_request_id"}, {"''", "trace_id"}, {str("client_request_id"), "client_request_id"},
				{str("requester"), "end_user"}, {"''", "session"}, {ep, "agent_endpoint"},
			}
		case ingest.KindTrace:
			md := firstCol(t, a, "", "trace_metadata", "request_metadata")
			meta := func(key string) string {
				if md == "" {
					return "''"
				}
				return "coalesce(" + md + "['" + key + "'], '')"
			}
			id := firstCol(t, a, "NULL", "trace_id", "request_id")
			where = append(where, "coalesce("+id+", '') <> ''")
			endpoint := ep
			if t.AgentEndpoint == "" {
				endpoint = meta(schemas.TraceEndpointKey)
			}
			fields = [][2]string{
				{str("client_request_id"), "agent_request_id"}, {id, "trace_id"}, {str("client_request_id"), "client_request_id"},
				{meta(schemas.TraceUserKey), "end_user"}, {meta(schemas.TraceSessionKey), "session"}, {endpoint, "agent_endpoint"},
			}
		}
		durExpr := "CAST(0 AS BIGINT)"
		if dur != "" {
			durExpr = "coalesce(" + dur + ", 0)"
			where = append(where, durExpr+" BETWEEN 0 AND "+maxDuration)
		}
		where = append(where, col(t, a, "request_time", "NULL")+" >= "+earliest)
		fields = append(fields, [2]string{sp, "service_principal"}, [2]string{col(t, a, "request_time", "NULL"), "start_time"},
			[2]string{durExpr, "duration_ms"})
		rank := schemas.SourceRank(schemas.SourcePayload)
		if t.Kind == ingest.KindTrace {
			rank = schemas.SourceRank(schemas.SourceTrace)
		}
		fmt.Fprintf(b, "  -- %s (%s)\n  SELECT\n    %d AS source_no,\n    row_number() OVER (ORDER BY %s) AS row_no,\n    %d AS kind_rank,\n",
			t.Name, t.Kind, i, strings.Join(order, ", "), rank)
		writeSelectList(b, fields)
		b.WriteString("  FROM " + tableName(t) + " " + a + "\n")
		var sb strings.Builder
		windowPredicate(&sb, p, col(t, a, "request_time", ""), w.Agents, "agent")
		cond := strings.TrimPrefix(strings.TrimSpace(sb.String()), "WHERE ")
		if cond != "" {
			where = append([]string{cond}, where...)
		}
		b.WriteString("  WHERE " + strings.Join(where, "\n    AND ") + "\n")
	}
	b.WriteString("),\n")
}

// agentRequests merges the rows of one request, keyed like
// schemas.AgentRequest.Key, as enrich.Index does, whatever the order of the
// tables: each field from the most trusted kind of row that has it
// (schemas.SourceRank: payload, then trace), the smallest value among rows
// of one kind; the times from the most trusted kind only, its earliest
// start and longest duration.
func agentRequests(b *strings.Builder) {
	best := func(f string) string {
		// kind_rank is one digit, so the smallest rank||value is the
		// smallest value of the most trusted kind.
		return fmt.Sprintf("    coalesce(substr(min(CAST(kind_rank AS STRING) || %s) FILTER (WHERE %s <> ''), 2), '') AS %s,\n", f, f, f)
	}
	b.WriteString(`-- One row per agent request: rows with the same key (agent request id, else
-- trace id, else client request id) merge as enrich.Index merges them, the
-- same whatever the order of the tables: a field from the most trusted kind
-- of row that has it (kind_rank: payload 0, trace 1), the smallest value
-- within a kind; times from the most trusted kind only.
agent_requests AS (
  SELECT
    req_key,
    min(arrival) AS created,
`)
	for _, f := range []string{"agent_request_id", "trace_id", "client_request_id", "end_user", "session", "agent_endpoint", "service_principal"} {
		b.WriteString(best(f))
	}
	b.WriteString(`    min(start_time) FILTER (WHERE kind_rank = best_rank) AS start_time,
    max(duration_ms) FILTER (WHERE kind_rank = best_rank) AS duration_ms
  FROM (
    SELECT x.*, min(x.kind_rank) OVER (PARTITION BY x.req_key) AS best_rank
    FROM (
      SELECT a.*,
        a.source_no * 1000000000000 + a.row_no AS arrival,
        coalesce(nullif(a.agent_request_id, ''), nullif(a.trace_id, ''), a.client_request_id) AS req_key
      FROM agent_rows a
    ) x
  ) y
  GROUP BY req_key
),
-- Request intervals: [start, end] for the running test; [lo_time, hi_time]
-- widened by skew + crowd_margin for the crowd test.
request_spans AS (
  SELECT r.*,
    r.start_time + ` + msInterval("r.duration_ms") + ` AS end_time,
    r.start_time - ` + wideInterval + ` AS lo_time,
    r.start_time + ` + msInterval("r.duration_ms") + ` + ` + wideInterval + ` AS hi_time
  FROM agent_requests r
  WHERE r.service_principal <> ''
),
-- Lookup by trace id (any spelling enrich.NormalizeTraceID accepts) and by
-- agent or client request id; an id two requests share belongs to the one
-- created first.
` + traceKeyCTE("request_trace_keys", "agent_requests", "trace_id") + `trace_index AS (
  SELECT trace_key, min_by(req_key, created) AS req_key
  FROM request_trace_keys
  WHERE trace_id <> '' AND trace_key <> ''
  GROUP BY trace_key
),
request_index AS (
  SELECT request_key, min_by(req_key, created) AS req_key
  FROM (
    SELECT r.agent_request_id AS request_key, r.req_key, r.created FROM agent_requests r
    UNION ALL
    SELECT r.client_request_id AS request_key, r.req_key, r.created FROM agent_requests r
  ) x
  WHERE request_key <> ''
  GROUP BY request_key
),
`)
}

// Build returns the MERGE statement that attributes the usage of w.Usage
// with the rules of cfg and replaces the result into the attribution table.
func Build(cfg Config, w Windows, run enrich.Run) (Statement, error) {
	if err := cfg.Validate(); err != nil {
		return Statement{}, err
	}
	if w.Replace.From.IsZero() || w.Replace.To.IsZero() || !w.Replace.To.After(w.Replace.From) {
		return Statement{}, fmt.Errorf("pushdown: replace window [%s, %s) needs both ends, from before to", w.Replace.From, w.Replace.To)
	}
	p := &params{}
	var b strings.Builder
	b.WriteString(header(w, run))
	ctes, final := cfg.attribute(p, w, run)
	b.WriteString(databrickssink.ReplaceStatementWith(cfg.Target.Table("attribution"), ctes, final))
	b.WriteString("\n")
	// The replace window and the dates it and the events span (for pruning).
	p.bind("window_from", w.Replace.From)
	p.bind("window_to", w.Replace.To)
	p.args = append(p.args,
		databricks.Parameter{Name: "date_from", Type: databricks.SqlDate, Value: w.Replace.From.UTC().Format(time.DateOnly)},
		databricks.Parameter{Name: "date_to", Type: databricks.SqlDate, Value: w.Replace.To.Add(-time.Microsecond).UTC().Format(time.DateOnly)})
	return Statement{SQL: b.String(), Args: p.args}, nil
}

func header(w Windows, run enrich.Run) string {
	f := func(t time.Time) string {
		if t.IsZero() {
			return "open"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("-- obolus pushdown: attribute gateway usage of [%s, %s) with agent logs of\n-- [%s, %s) and replace attribution rows of [%s, %s).\n",
		f(w.Usage.From), f(w.Usage.To), f(w.Agents.From), f(w.Agents.To), f(w.Replace.From), f(w.Replace.To))
}

// sortedKeys is for stable output where maps are iterated.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CalibrationStats returns the query that counts, for the windows w, what
// calibration needs (schemas.CalibrationStats), as the store counts it in
// pull mode: rows ('m', requester, code, calls, correct) of the masked
// outcomes of id-linked events, and ('p', requester, 0, linked, not_found).
func CalibrationStats(cfg Config, w Windows) (Statement, error) {
	if err := cfg.Validate(); err != nil {
		return Statement{}, err
	}
	p := &params{}
	var b strings.Builder
	b.WriteString("-- obolus pushdown: calibration counts of the window.\nWITH\n")
	b.WriteString(cfg.attributeCTEs(p, w, true))
	q := strings.TrimSuffix(b.String(), ",\n") + `
SELECT 'm' AS kind, requester, code, count(*) AS calls, CAST(sum(correct) AS BIGINT) AS correct
FROM masked_outcomes GROUP BY requester, code
UNION ALL
SELECT 'p', requester, 0, linked, not_found FROM (
` + presenceFromDecisions + `
) presence
`
	return Statement{SQL: q, Args: p.args}, nil
}

// presenceFromDecisions is schemas.PresenceSQL over the rows the run would
// write, counted from the decisions instead: an event decided by a trace or
// request id is written as that method exactly when its request names an end
// user (otherwise as unattributed, request_has_no_user), and one decided
// id_not_found is written as unattributed with that reason. Counting here
// leaves the time-window chain of every event, the outcomes and the pricing
// out of the statement (a database computes only the CTEs a statement
// reads); only the masked chain of the id-linked events remains.
const presenceFromDecisions = `SELECT d.requester,
  count(*) FILTER (WHERE d.decision IN ('` + schemas.MethodTraceID + `', '` + schemas.MethodRequestID + `')) AS linked,
  count(*) FILTER (WHERE d.decision = 'id_not_found') AS not_found
FROM decided d
LEFT JOIN agent_requests r ON r.req_key = d.link
WHERE d.decision IN ('` + schemas.MethodTraceID + `', '` + schemas.MethodRequestID + `') AND coalesce(r.end_user, '') <> ''
   OR d.decision = 'id_not_found'
GROUP BY d.requester`

// ScanCalibrationStats reads the rows of CalibrationStats.
func ScanCalibrationStats(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
}) (schemas.CalibrationStats, error) {
	var s schemas.CalibrationStats
	for rows.Next() {
		var kind, sp string
		var code, a, b int64
		if err := rows.Scan(&kind, &sp, &code, &a, &b); err != nil {
			return s, err
		}
		if kind == "m" {
			s.Masked = append(s.Masked, schemas.MaskedStat{ServicePrincipal: sp, Code: code, Calls: a, Correct: b})
		} else {
			s.Presence = append(s.Presence, schemas.PresenceStat{ServicePrincipal: sp, Linked: a, NotFound: b})
		}
	}
	return s, rows.Err()
}

// Summary returns the query that counts, for the windows w, what the
// attribution statement reads: usage rows, the ones pull mode would
// dead-letter, invocations after deduplication and their tokens, the first
// event time, and agent log rows and requests. One row.
func Summary(cfg Config, w Windows) (Statement, error) {
	if err := cfg.Validate(); err != nil {
		return Statement{}, err
	}
	p := &params{}
	var b strings.Builder
	b.WriteString("-- obolus pushdown: what the window holds, for the run's reconciliation.\nWITH\n")
	cfg.usageRows(&b, p, w)
	events(&b)
	cfg.agentRows(&b, p, w)
	q := strings.TrimSuffix(b.String(), ",\n") + `
SELECT
  (SELECT count(*) FROM usage_rows) AS rows_read,
  (SELECT count(*) FROM usage_rows WHERE NOT valid) AS dead_lettered,
  (SELECT count(*) FROM events) AS invocations,
  (SELECT coalesce(sum(input_tokens), 0) FROM events) AS input_tokens_in,
  (SELECT coalesce(sum(total_tokens), 0) FROM events) AS total_tokens_in,
  (SELECT min(event_time) FROM events) AS first_event,
  (SELECT count(*) FROM agent_rows) AS agent_rows,
  (SELECT count(DISTINCT coalesce(nullif(agent_request_id, ''), nullif(trace_id, ''), client_request_id)) FROM agent_rows) AS agent_requests
`
	return Statement{SQL: q, Args: p.args}, nil
}
