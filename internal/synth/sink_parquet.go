package synth

import (
	"context"
	"database/sql/driver"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// parquetSink appends rows into in-memory DuckDB tables typed like the
// Databricks ones (TIMESTAMP, MAP, STRUCT, BIGINT, INTEGER) and copies each
// table to a Parquet file when it is complete. Usage files are copied and
// dropped one at a time, so memory holds one usage file, not the workload.
type parquetSink struct {
	ctx       context.Context
	w         *world
	dir       string
	connector *duckdb.Connector
	conn      driver.Conn
	exec      driver.ExecerContext

	cur     *duckTable
	leg     *duckTable
	agents  map[string]*duckTable
	order   []*duckTable // tables other than usage, in creation order
	rels    []string
	vals    []driver.Value
	spanBuf []span
	// usageSQL is usageSelect's result, built once.
	usageSQL string
}

type duckTable struct {
	name string
	rel  string
	app  *duckdb.Appender
	// query selects the file's rows; empty means the table as it is.
	query string
}

func newParquetSink(ctx context.Context, w *world, dir string) (*parquetSink, error) {
	connector, err := duckdb.NewConnector("", nil)
	if err != nil {
		return nil, fmt.Errorf("synth: open duckdb: %w", err)
	}
	conn, err := connector.Connect(ctx)
	if err != nil {
		connector.Close()
		return nil, fmt.Errorf("synth: connect duckdb: %w", err)
	}
	exec, ok := conn.(driver.ExecerContext)
	if !ok {
		conn.Close()
		connector.Close()
		return nil, fmt.Errorf("synth: duckdb connection cannot execute statements")
	}
	return &parquetSink{ctx: ctx, w: w, dir: dir, connector: connector, conn: conn, exec: exec, agents: make(map[string]*duckTable)}, nil
}

func (s *parquetSink) run(query string) error {
	if _, err := s.exec.ExecContext(s.ctx, query, nil); err != nil {
		return fmt.Errorf("synth: duckdb: %w", err)
	}
	return nil
}

func (s *parquetSink) create(name, rel string, cols []column) (*duckTable, error) {
	var ddl strings.Builder
	fmt.Fprintf(&ddl, "CREATE TABLE %s (", name)
	for i, c := range cols {
		if i > 0 {
			ddl.WriteString(", ")
		}
		fmt.Fprintf(&ddl, "%s %s", c.name, c.typ)
	}
	ddl.WriteString(")")
	if err := s.run(ddl.String()); err != nil {
		return nil, err
	}
	app, err := duckdb.NewAppenderFromConn(s.conn, "", name)
	if err != nil {
		return nil, fmt.Errorf("synth: appender for %s: %w", rel, err)
	}
	return &duckTable{name: name, rel: rel, app: app}, nil
}

// copyOut flushes the table to its Parquet file and drops it.
func (s *parquetSink) copyOut(t *duckTable) error {
	if err := t.app.Close(); err != nil {
		return fmt.Errorf("synth: append %s: %w", t.rel, err)
	}
	p := filepath.Join(s.dir, t.rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("synth: create %s: %w", t.rel, err)
	}
	src := t.name
	if t.query != "" {
		src = "(" + t.query + ")"
	}
	if err := s.run(fmt.Sprintf("COPY %s TO %s (FORMAT parquet)", src, sqlString(p))); err != nil {
		return fmt.Errorf("synth: write %s: %w", t.rel, err)
	}
	s.rels = append(s.rels, t.rel)
	return s.run("DROP TABLE " + t.name)
}

// sqlString quotes s as a SQL string literal; COPY takes no parameters.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (s *parquetSink) append(t *duckTable, vals []driver.Value) error {
	if err := t.app.AppendRow(vals...); err != nil {
		return fmt.Errorf("synth: append %s: %w", t.rel, err)
	}
	return nil
}

// Usage rows are staged in a narrow table: ids as UUIDs, the agent and
// endpoint as small numbers, token counts and times as integers. The
// Databricks-shaped row is assembled by the SELECT that copies the stage to
// Parquet, where DuckDB builds strings, maps and structs a vector at a time;
// appending those one value at a time costs a cgo call each and was the
// bottleneck.
var usageStageColumns = []column{
	{"inv", "UUID"},
	{"req", "UUID"},
	{"event_time", tTimestamp},
	{"ep", "UTINYINT"},
	{"ag", "USMALLINT"},
	{"tag", "UTINYINT"},
	{"harmless", tBool},
	{"areq", "UUID"},
	{"trace", "UUID"},
	{"span", "UBIGINT"},
	{"end_user", tVarchar},
	{"input_tokens", tBigint},
	{"output_tokens", tBigint},
	{"cache_read", tBigint},
	{"cache_new", tBigint},
	{"reasoning", tBigint},
	{"status_code", tInt},
	{"latency_ms", tBigint},
	{"ttfb_ms", tBigint},
	{"stream", tBool},
	{"id_key", tVarchar}, // the id tag's key where spelled another way, else NULL
}

// usageSelect is the projection from the stage to usageColumns, reading
// from the table named by the placeholder {{stage}}.
func (s *parquetSink) usageSelect() string {
	w := s.w
	list := func(n int, f func(i int) string) string {
		var b strings.Builder
		b.WriteString("[")
		for i := range n {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(f(i))
		}
		b.WriteString("]")
		return b.String()
	}
	byEp := func(f func(ep *gatewayEndpoint) string) string {
		return list(len(w.endpoints), func(i int) string { return sqlString(f(w.endpoints[i])) }) + "[ep + 1]"
	}
	byAg := func(f func(ag *agent) string) string {
		return list(len(w.agents), func(i int) string { return sqlString(f(w.agents[i])) }) + "[ag + 1]"
	}
	epTags := list(len(w.endpoints), func(i int) string {
		kv := w.endpoints[i].tags
		return "map(" + list(len(kv), func(j int) string { return sqlString(kv[j][0]) }) + ", " +
			list(len(kv), func(j int) string { return sqlString(kv[j][1]) }) + ")"
	}) + "[ep + 1]"
	project := byAg(func(ag *agent) string { return ag.project })
	team := byAg(func(ag *agent) string { return ag.ownerTeam })
	hex := "replace(trace::VARCHAR, '-', '')"
	idKey := fmt.Sprintf("coalesce(id_key, CASE tag WHEN %d THEN 'mlflow_trace_id' WHEN %d THEN 'traceparent' WHEN %d THEN 'agent_request_id' ELSE 'end_user' END)",
		tagTraceID, tagTraceparent, tagRequestID)
	idVal := fmt.Sprintf("CASE tag WHEN %d THEN 'tr-' || %s WHEN %d THEN '00-' || %s || '-' || printf('%%016x', span) || '-01' WHEN %d THEN areq::VARCHAR ELSE end_user END",
		tagTraceID, hex, tagTraceparent, hex, tagRequestID)
	// Keys in sorted order, as the JSON writer has them.
	tags := fmt.Sprintf(`CASE
		WHEN tag = %[1]d AND NOT harmless THEN NULL
		WHEN tag = %[1]d THEN map(['project', 'team'], [%[2]s, %[3]s])
		WHEN NOT harmless THEN map([%[4]s], [%[5]s])
		WHEN tag = %[6]d THEN map(['project', 'team', %[4]s], [%[2]s, %[3]s, %[5]s])
		ELSE map([%[4]s, 'project', 'team'], [%[5]s, %[2]s, %[3]s]) END`,
		tagNone, project, team, idKey, idVal, tagTraceparent)
	return fmt.Sprintf(`SELECT
	inv::VARCHAR AS invocation_id,
	req::VARCHAR AS request_id,
	%s AS account_id,
	%s AS workspace_id,
	1::INTEGER AS schema_version,
	event_time,
	%s AS endpoint_id,
	%s AS endpoint_name,
	%s AS endpoint_tags,
	%s AS destination_type,
	%s AS destination_name,
	%s AS destination_id,
	%s AS destination_model,
	%s AS requester,
	'SERVICE_PRINCIPAL' AS requester_type,
	%s AS api_type,
	%s AS user_agent,
	%s AS request_tags,
	input_tokens,
	output_tokens,
	input_tokens + output_tokens AS total_tokens,
	{'cache_read_input_tokens': cache_read, 'cache_creation_input_tokens': cache_new, 'output_reasoning_tokens': reasoning} AS token_details,
	status_code,
	latency_ms,
	ttfb_ms AS time_to_first_byte_ms,
	CASE WHEN stream THEN %s ELSE %s END AS response_content_type
FROM {{stage}}`,
		sqlString(w.accountID), sqlString(w.workspaceID),
		byEp(func(ep *gatewayEndpoint) string { return ep.id }),
		byEp(func(ep *gatewayEndpoint) string { return ep.name }),
		epTags,
		byEp(func(ep *gatewayEndpoint) string { return ep.destType }),
		byEp(func(ep *gatewayEndpoint) string { return ep.destName }),
		byEp(func(ep *gatewayEndpoint) string { return ep.destID }),
		byEp(func(ep *gatewayEndpoint) string { return ep.model.name }),
		byAg(func(ag *agent) string { return ag.sp }),
		byEp(func(ep *gatewayEndpoint) string { return ep.model.apiType }),
		byAg(func(ag *agent) string { return ag.userAgent }),
		tags,
		sqlString(contentStream), sqlString(contentJSON))
}

func (s *parquetSink) openUsage(k int) error {
	t, err := s.create(fmt.Sprintf("usage_%03d", k), usageFile(k, FormatParquet), usageStageColumns)
	if t != nil {
		if s.usageSQL == "" {
			s.usageSQL = s.usageSelect()
		}
		t.query = strings.Replace(s.usageSQL, "{{stage}}", t.name, 1)
	}
	s.cur = t
	return err
}

func (s *parquetSink) closeUsage() error {
	if s.cur == nil {
		return nil
	}
	err := s.copyOut(s.cur)
	s.cur = nil
	return err
}

func ts(us int64) time.Time { return time.UnixMicro(us).UTC() }

func duckUUID(id id128) duckdb.UUID {
	var u duckdb.UUID
	binary.BigEndian.PutUint64(u[:8], id.hi)
	binary.BigEndian.PutUint64(u[8:], id.lo)
	return u
}

func pairsMap(kv [][2]string) any {
	if len(kv) == 0 {
		return nil
	}
	var m duckdb.OrderedMap
	for _, p := range kv {
		m.Set(p[0], p[1])
	}
	return m
}

func (s *parquetSink) usage(c *call) error {
	q := c.req
	var endUser any
	if c.tag == tagEndUser {
		endUser = s.w.users[q.user].email
	}
	span := c.span
	if span == 0 {
		span = 1 // as appendTraceparent does
	}
	s.vals = append(s.vals[:0],
		duckUUID(c.inv), duckUUID(c.gwReq), ts(c.eventUS), uint8(c.ep.idx), uint16(q.agent), c.tag, c.harmless,
		duckUUID(q.id), duckUUID(q.trace), span, endUser,
		c.in, c.out, c.cacheRead, c.cacheNew, c.reasoning, c.status, c.latencyMS, c.ttfbMS, c.stream, s.idKey(c))
	return s.append(s.cur, s.vals)
}

// idKey is the id tag's key of a call that spells it another way, or nil.
func (s *parquetSink) idKey(c *call) any {
	if c.keyVariant == 0 {
		return nil
	}
	var kv [3][2]string
	n := s.w.requestTagPairs(&kv, c, true)
	for _, p := range kv[:n] {
		if p[1] == "" {
			return p[0]
		}
	}
	return nil
}

func (s *parquetSink) legacy(c *call) error {
	if s.leg == nil {
		t, err := s.create("endpoint_usage", legacyFile(FormatParquet), legacyColumns)
		if err != nil {
			return err
		}
		s.leg = t
		s.order = append(s.order, t)
	}
	w := s.w
	client := ""
	if c.tagged() {
		client = c.req.id.uuid()
	}
	s.vals = append(s.vals[:0],
		w.workspaceID, w.accountID, client, c.inv.uuid(), w.agents[c.req.agent].sp, c.status, ts(c.eventUS),
		c.in, c.out, c.inChars, c.outChars, pairsMap(w.usageContext(c)), c.stream, c.ep.servedEntityID)
	return s.append(s.leg, s.vals)
}

func (s *parquetSink) agentTable(q *request, kind string, cols []column) (*duckTable, error) {
	ag := s.w.agents[q.agent]
	rel := agentFile(ag, q.late, kind, FormatParquet)
	if t, ok := s.agents[rel]; ok {
		return t, nil
	}
	name := fmt.Sprintf("agent_%d_%s", ag.idx, kind)
	if q.late {
		name += "_late"
	}
	t, err := s.create(name, rel, cols)
	if err != nil {
		return nil, err
	}
	s.agents[rel] = t
	s.order = append(s.order, t)
	return t, nil
}

func (s *parquetSink) payload(q *request) error {
	t, err := s.agentTable(q, kindPayload, payloadColumns)
	if err != nil {
		return err
	}
	ag := s.w.agents[q.agent]
	status := int32(200)
	if q.failed {
		status = 500
	}
	s.vals = append(s.vals[:0], q.id.uuid(), clientRequestID(ag, q), ts(agentTimeUS(q)), status, q.durMS,
		s.w.users[q.user].email, ag.servedEntityID)
	return s.append(t, s.vals)
}

func (s *parquetSink) trace(q *request) error {
	t, err := s.agentTable(q, kindTraces, traceColumns)
	if err != nil {
		return err
	}
	s.vals = append(s.vals[:0], q.trace.traceID(), q.id.uuid(), ts(agentTimeUS(q)), q.durMS, traceState(q),
		pairsMap(s.w.traceMetadata(q)), pairsMap(s.w.traceTags(q)))
	return s.append(t, s.vals)
}

func (s *parquetSink) spans(q *request) error {
	layout := s.w.cfg.OTelLayout
	t, err := s.agentTable(q, kindSpans, spanColumns(layout))
	if err != nil {
		return err
	}
	ag := s.w.agents[q.agent]
	res := s.w.resourceAttrs(ag)
	// v2's VARIANT columns are JSON text in Parquet; v1's are MAPs.
	var resAttrs any = pairsMap(attrPairs(res))
	if layout == OTelV2 {
		resAttrs = string(appendAttrs(nil, res, true))
	}
	resource := map[string]any{"attributes": resAttrs, "dropped_attributes_count": int32(0)}
	s.spanBuf = s.w.spans(q, s.spanBuf[:0])
	for i := range s.spanBuf {
		sp := &s.spanBuf[i]
		parent := ""
		if sp.parent != 0 {
			parent = spanHex(sp.parent)
		}
		var attrs any = pairsMap(attrPairs(sp.attrs))
		s.vals = s.vals[:0]
		if layout == OTelV2 {
			attrs = string(appendAttrs(nil, sp.attrs, true))
			start := time.Unix(0, sp.startNS).UTC()
			s.vals = append(s.vals, recordID(q, sp).uuid(), start, start.Truncate(24*time.Hour), ag.endpoint)
		}
		s.vals = append(s.vals, q.trace.hex(), spanHex(sp.id), "", parent, int32(1), sp.name, sp.kind, sp.startNS, sp.endNS,
			attrs, int32(0), map[string]any{"message": "", "code": sp.status}, resource)
		if err := s.append(t, s.vals); err != nil {
			return err
		}
	}
	return nil
}

func (s *parquetSink) finish() ([]string, error) {
	defer s.abort()
	if err := s.closeUsage(); err != nil {
		return nil, err
	}
	for _, t := range s.order {
		if err := s.copyOut(t); err != nil {
			return nil, err
		}
	}
	s.order = nil
	return s.rels, nil
}

func (s *parquetSink) abort() {
	if s.cur != nil {
		s.cur.app.Close()
		s.cur = nil
	}
	for _, t := range s.order {
		t.app.Close()
	}
	s.order = nil
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	if s.connector != nil {
		s.connector.Close()
		s.connector = nil
	}
}
