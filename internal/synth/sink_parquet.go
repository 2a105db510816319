package synth

import (
	"context"
	"database/sql/driver"
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
	ctx  context.Context
	w    *world
	dir  string
	conn driver.Conn
	exec driver.ExecerContext

	cur    *duckTable
	leg    *duckTable
	agents map[string]*duckTable
	order  []*duckTable // tables other than usage, in creation order
	rels   []string
	vals   []driver.Value
}

type duckTable struct {
	name string
	rel  string
	app  *duckdb.Appender
}

func newParquetSink(ctx context.Context, w *world, dir string) (*parquetSink, error) {
	connector, err := duckdb.NewConnector("", nil)
	if err != nil {
		return nil, fmt.Errorf("synth: open duckdb: %w", err)
	}
	conn, err := connector.Connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("synth: connect duckdb: %w", err)
	}
	exec, ok := conn.(driver.ExecerContext)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("synth: duckdb connection cannot execute statements")
	}
	return &parquetSink{ctx: ctx, w: w, dir: dir, conn: conn, exec: exec, agents: make(map[string]*duckTable)}, nil
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
	if err := s.run(fmt.Sprintf("COPY %s TO %s (FORMAT parquet)", t.name, sqlString(p))); err != nil {
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

func (s *parquetSink) openUsage(k int) error {
	t, err := s.create(fmt.Sprintf("usage_%03d", k), usageFile(k, FormatParquet), usageColumns)
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
	w := s.w
	ag := w.agents[c.req.agent]
	ep := c.ep
	var kv [3][2]string
	n := w.requestTagPairs(&kv, c, false)
	s.vals = append(s.vals[:0],
		c.inv.uuid(), c.gwReq.uuid(), w.accountID, w.workspaceID, int32(1), ts(c.eventUS),
		ep.id, ep.name, pairsMap(ep.tags), ep.destType, ep.destName, ep.destID, ep.model.name,
		ag.sp, "SERVICE_PRINCIPAL", ep.model.apiType, ag.userAgent, pairsMap(kv[:n]),
		c.in, c.out, c.in+c.out,
		map[string]any{"cache_read_input_tokens": c.cacheRead, "cache_creation_input_tokens": c.cacheNew, "output_reasoning_tokens": c.reasoning},
		c.status, c.latencyMS, c.ttfbMS, contentType(c))
	return s.append(s.cur, s.vals)
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
}
