package dbxrun_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/internal/batch"
	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/synth"
	"github.com/obolus/obolus/schemas"
)

// Agent logs that disagree and tags written in other spellings: pull and
// pushdown give the same rows, whatever the order of the trace tables in the
// configuration. A payload row and two traces describe each request R with
// three different intervals and end users; two traces alone describe each
// request Q. The gateway calls name their requests under keys such as
// Agent-Request-Id and MLFLOW.TRACE.ID, or carry no tag at all.
func TestMergeAndTagKeysAgreeInBothOrders(t *testing.T) {
	if testing.Short() {
		t.Skip("runs both modes over a workload twice")
	}
	e := newEnv(t, smallWorkload(11), nil)
	ctx := dbsqltest.Context(t)
	const sp = "sp-merge"
	base := synth.DefaultStart.Add(time.Hour)
	ts := func(at time.Time) string { return at.UTC().Format("2006-01-02 15:04:05.000") }
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := e.wh.Server.DB().ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`ATTACH IF NOT EXISTS ':memory:' AS lakehouse`)
	exec(`CREATE SCHEMA lakehouse.merge`)
	exec(`CREATE TABLE lakehouse.merge.payload (databricks_request_id VARCHAR, client_request_id VARCHAR, request_time TIMESTAMP,
		status_code INTEGER, execution_duration_ms BIGINT, requester VARCHAR)`)
	for _, tbl := range []string{"trace_a", "trace_b"} {
		exec(`CREATE TABLE lakehouse.merge.` + tbl + ` (trace_id VARCHAR, client_request_id VARCHAR, request_time TIMESTAMP,
			execution_duration_ms BIGINT, state VARCHAR, trace_metadata MAP(VARCHAR, VARCHAR))`)
	}
	inv := 0
	usage := func(at time.Time, tags string) {
		t.Helper()
		inv++
		exec(`INSERT INTO system_catalog.ai_gateway.usage BY NAME
			SELECT ? AS invocation_id, ? AS request_id, CAST(? AS TIMESTAMP) AS event_time, ? AS requester,
			       `+tags+` AS request_tags, 'databricks-claude-sonnet-4' AS destination_model,
			       10 AS input_tokens, 5 AS output_tokens, 15 AS total_tokens, 1 AS schema_version`,
			fmt.Sprintf("merge-%03d", inv), fmt.Sprintf("merge-%03d", inv), ts(at), sp)
	}
	const nR, nQ = 12, 6
	for i := range nR {
		id, trace := fmt.Sprintf("r-%02d", i), fmt.Sprintf("tr-%032x", 0xa000+i)
		start := base.Add(time.Duration(i) * time.Minute)
		exec(`INSERT INTO lakehouse.merge.payload VALUES (?, NULL, CAST(? AS TIMESTAMP), 200, 10000, ?)`, id, ts(start), fmt.Sprintf("u%02d@example.com", i))
		exec(`INSERT INTO lakehouse.merge.trace_a VALUES (?, ?, CAST(? AS TIMESTAMP), 20000, 'OK', MAP {'mlflow.trace.user': ?, 'mlflow.trace.session': ?})`,
			trace, id, ts(start.Add(-4*time.Second)), fmt.Sprintf("trace-a-%02d@example.com", i), fmt.Sprintf("sa-%02d", i))
		exec(`INSERT INTO lakehouse.merge.trace_b VALUES (?, ?, CAST(? AS TIMESTAMP), 15000, 'OK', MAP {'mlflow.trace.user': ?, 'mlflow.trace.session': ?})`,
			trace, id, ts(start.Add(-2*time.Second)), fmt.Sprintf("trace-b-%02d@example.com", i), fmt.Sprintf("sb-%02d", i))
		usage(start.Add(5*time.Second), `MAP {'project': 'x'}`)                          // inside every interval
		usage(start.Add(-3500*time.Millisecond), `MAP {}`)                               // inside trace_a's only
		usage(start.Add(6*time.Second), `MAP {'Agent-Request-Id': '`+id+`'}`)            // request id, other spelling
		usage(start.Add(7*time.Second), `MAP {'MLFLOW.TRACE.ID': '`+trace+`'}`)          // trace id, other spelling
		usage(start.Add(8*time.Second), `MAP {'End_User': 'tagged@example.com'}`)        // end user, other spelling
		usage(start.Add(9*time.Second), `MAP {'trace_id': '', 'Trace-Id': '`+trace+`'}`) // empty exact key, spelled one
	}
	for j := range nQ {
		id, trace := fmt.Sprintf("q-%02d", j), fmt.Sprintf("tr-%032x", 0xb000+j)
		start := base.Add(30*time.Minute + time.Duration(j)*time.Minute)
		exec(`INSERT INTO lakehouse.merge.trace_a VALUES (?, ?, CAST(? AS TIMESTAMP), 10000, 'OK', MAP {'mlflow.trace.user': ?})`,
			trace, id, ts(start), fmt.Sprintf("qa-%02d@example.com", j))
		exec(`INSERT INTO lakehouse.merge.trace_b VALUES (?, ?, CAST(? AS TIMESTAMP), 20000, 'OK', MAP {'mlflow.trace.user': ?})`,
			trace, id, ts(start.Add(time.Second)), fmt.Sprintf("qb-%02d@example.com", j))
		usage(start.Add(15*time.Second), `MAP {}`) // inside the merged interval only: a's start, b's length
	}

	a := config.DatabricksAgentTable{Table: "lakehouse.merge.trace_a", ServicePrincipal: sp, AgentEndpoint: "merge-bot"}
	b := config.DatabricksAgentTable{Table: "lakehouse.merge.trace_b", ServicePrincipal: sp, AgentEndpoint: "merge-bot"}
	var results [][]schemas.Attribution
	var names []string
	for _, order := range []struct {
		name   string
		traces []config.DatabricksAgentTable
	}{{"ab", []config.DatabricksAgentTable{a, b}}, {"ba", []config.DatabricksAgentTable{b, a}}} {
		cfg := *e.cfg
		cfg.Databricks.Payloads = append(append([]config.DatabricksAgentTable(nil), cfg.Databricks.Payloads...),
			config.DatabricksAgentTable{Table: "lakehouse.merge.payload", ServicePrincipal: sp, AgentEndpoint: "merge-bot"})
		cfg.Databricks.Traces = append(append([]config.DatabricksAgentTable(nil), cfg.Databricks.Traces...), order.traces...)
		for _, r := range runners(t, e, &cfg, "merge_"+order.name) {
			rep, err := r.run(batch.Options{From: synth.DefaultStart, To: synth.DefaultStart.Add(6 * time.Hour)})
			if err != nil {
				t.Fatalf("%s %s: %v", order.name, r.name, err)
			}
			t.Logf("%s %s: %s", order.name, r.name, rep.Summary())
			rows, err := r.store.Attributions(ctx, time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			results = append(results, rows)
			names = append(names, order.name+" "+r.name)
		}
	}
	for i := 1; i < len(results); i++ {
		sameRows(t, names[0]+" against "+names[i], results[0], results[i])
	}

	methods := map[string]int{}
	for _, r := range results[0] {
		if r.Requester != sp {
			continue
		}
		n := 0
		fmt.Sscanf(r.InvocationID, "merge-%d", &n)
		n--
		if n >= 6*nR { // the Q calls
			q := n - 6*nR
			if want := fmt.Sprintf("qa-%02d@example.com", q); r.EndUser != want || r.MatchMethod != schemas.MethodTimeWindow {
				t.Errorf("%s: %s by %s, want %s by time window (trace a's start, trace b's length)", r.InvocationID, r.EndUser, r.MatchMethod, want)
			}
			continue
		}
		i, kind := n/6, n%6
		user := fmt.Sprintf("u%02d@example.com", i)
		want := map[int]struct{ user, method string }{
			0: {user, schemas.MethodTimeWindow},
			1: {sp, schemas.MethodUnattributed},
			2: {user, schemas.MethodRequestID},
			3: {user, schemas.MethodTraceID},
			4: {"tagged@example.com", schemas.MethodTagUser},
			5: {user, schemas.MethodTraceID},
		}[kind]
		if r.EndUser != want.user || r.MatchMethod != want.method {
			t.Errorf("%s (request r-%02d, call kind %d): %s by %s, want %s by %s", r.InvocationID, i, kind, r.EndUser, r.MatchMethod, want.user, want.method)
		}
		if kind == 1 && r.Reason != enrich.ReasonNoCandidate {
			t.Errorf("%s: reason %q, want %s: the traces' wider intervals must not count", r.InvocationID, r.Reason, enrich.ReasonNoCandidate)
		}
		if kind == 3 && r.Session != fmt.Sprintf("sa-%02d", i) {
			t.Errorf("%s: session %q, want the smaller of the traces' (sa-%02d)", r.InvocationID, r.Session, i)
		}
		methods[r.MatchMethod]++
	}
	if methods[schemas.MethodRequestID] != nR || methods[schemas.MethodTagUser] != nR {
		t.Errorf("methods %v: want %d by request id and by tag user", methods, nR)
	}
}
