package duckdbtable

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/obolus/obolus/ingest"
	"github.com/obolus/obolus/schemas"
)

// TestOTelSpanTables reads span tables of both layouts from DuckDB, with
// the window pushed into SQL on start_time_unix_nano (nanoseconds), and the
// same rows from the Parquet file DuckDB writes of them.
func TestOTelSpanTables(t *testing.T) {
	ns := func(d time.Duration) string { return fmt.Sprint(t0.Add(d).UnixNano()) }
	for _, tc := range []struct {
		layout, attrs, resource          string
		user, child, early, bad, resOnly string // attribute values of each row
		resSP                            string // a resource naming the service principal
	}{
		{
			layout: "v1", attrs: "MAP(VARCHAR, VARCHAR)", resource: "STRUCT(attributes MAP(VARCHAR, VARCHAR))",
			user:    `MAP {'mlflow.trace.user': '"ann@example.com"', 'session.id': 's-1', 'client_request_id': 'dbr-1'}`,
			child:   `MAP {'mlflow.spanType': '"LLM"'}`,
			early:   `MAP {'enduser.id': 'early@example.com'}`,
			bad:     `MAP {'enduser.id': 'bad@example.com'}`,
			resOnly: `MAP {'user.id': 'bob@example.com'}`,
			resSP:   `{'attributes': MAP {'obolus.service_principal': 'sp-res', 'service.name': 'agent-r'}}`,
		},
		{
			layout: "v2", attrs: "JSON", resource: "STRUCT(attributes JSON)",
			user:    `'{"mlflow.trace.user": "\"ann@example.com\"", "session.id": "s-1", "client_request_id": "dbr-1", "tokens": 12}'`,
			child:   `'{"mlflow.spanType": "\"LLM\"", "gen_ai.usage.input_tokens": 40}'`,
			early:   `'{"enduser.id": "early@example.com"}'`,
			bad:     `'{"enduser.id": "bad@example.com"}'`,
			resOnly: `'{"user.id": "bob@example.com", "nested": {"a": [1]}}'`,
			resSP:   `{'attributes': '{"obolus.service_principal": "sp-res", "service.name": "agent-r"}'}`,
		},
	} {
		t.Run(tc.layout, func(t *testing.T) {
			db := openDB(t, "")
			exec(t, db, `CREATE TABLE spans (trace_id VARCHAR, span_id VARCHAR, parent_span_id VARCHAR, name VARCHAR, kind VARCHAR,
				start_time_unix_nano BIGINT, end_time_unix_nano BIGINT, attributes `+tc.attrs+`,
				status STRUCT(message VARCHAR, code VARCHAR), resource `+tc.resource+`)`,
				`INSERT INTO spans VALUES
				('0af7651916cd43dd8448eb211c80319c', 'a1', '', 'agent', 'SPAN_KIND_SERVER', `+ns(0)+`, `+ns(4200*time.Millisecond)+`, `+tc.user+`, {'message': '', 'code': 'STATUS_CODE_OK'}, NULL),
				('0af7651916cd43dd8448eb211c80319c', 'a2', 'a1', 'llm', 'SPAN_KIND_CLIENT', `+ns(time.Second)+`, `+ns(2*time.Second)+`, `+tc.child+`, NULL, NULL),
				('1bf7651916cd43dd8448eb211c80319c', 'b1', NULL, 'agent', NULL, `+ns(-time.Hour)+`, `+ns(-time.Hour+time.Second)+`, `+tc.early+`, NULL, NULL),
				('2cf7651916cd43dd8448eb211c80319c', 'c1', NULL, 'agent', NULL, `+ns(time.Minute)+`, `+ns(time.Minute-time.Second)+`, `+tc.bad+`, NULL, NULL),
				('3df7651916cd43dd8448eb211c80319c', 'd1', 'x9', 'tool', NULL, `+ns(2*time.Minute)+`, `+ns(2*time.Minute+500*time.Millisecond)+`, `+tc.resOnly+`, {'message': 'boom', 'code': 'STATUS_CODE_ERROR'}, `+tc.resSP+`)`)
			w := ingest.Window{From: t0, To: t0.Add(time.Hour)}
			spec := ingest.Spec{Kind: ingest.KindOTelSpans, AgentEndpoint: ""}
			r := readTable(t, db, "spans", spec, w)
			want := []schemas.AgentRequest{
				// No service principal configured and none in the resource: dead.
				{TraceID: "3df7651916cd43dd8448eb211c80319c", EndUser: "bob@example.com", AgentEndpoint: "agent-r", ServicePrincipal: "sp-res",
					StartTime: t0.Add(2 * time.Minute), DurationMS: 500, Status: "ERROR", Source: schemas.SourceOTelSpan},
			}
			// The early root is left out by SQL; the child is skipped; the
			// first root names no service principal and c1 ends before it starts.
			if r.stats.Rows != 4 || r.stats.Skipped != 1 || r.stats.Dead != 2 || !reflect.DeepEqual(r.agent, want) {
				t.Fatalf("stats %+v\nagents %+v\ndead %+v", r.stats, r.agent, r.dead)
			}
			if r.dead[0].Field != "resource.attributes.obolus.service_principal" || r.dead[1].Field != "end_time_unix_nano" || r.dead[1].Location != "row 3" {
				t.Errorf("dead letters %+v", r.dead)
			}

			// With the service principal configured, the root is a request.
			spec.ServicePrincipal = "sp-agent"
			r = readTable(t, db, "spans", spec, w)
			root := schemas.AgentRequest{AgentRequestID: "dbr-1", TraceID: "0af7651916cd43dd8448eb211c80319c", ClientRequestID: "dbr-1",
				EndUser: "ann@example.com", Session: "s-1", ServicePrincipal: "sp-agent", StartTime: t0, DurationMS: 4200, Status: "OK",
				Source: schemas.SourceOTelSpan}
			want[0].ServicePrincipal = "sp-agent" // the source's wins over the resource's
			want = append([]schemas.AgentRequest{root}, want...)
			if !reflect.DeepEqual(r.agent, want) {
				t.Fatalf("agents\n%+v\nwant\n%+v", r.agent, want)
			}

			// The same table as Parquet, read as a file: the same requests;
			// the early root is now read, and left out by the window.
			path := filepath.Join(t.TempDir(), "spans.parquet")
			exec(t, db, `COPY spans TO '`+path+`' (FORMAT parquet)`)
			var f result
			spec.Path = path
			st, err := ingest.ReadFiles(context.Background(), spec, w, f.emit())
			if err != nil {
				t.Fatal(err)
			}
			if !st.Balanced() || st.OutsideWindow != 1 || st.Skipped != 1 || st.Dead != 1 || !reflect.DeepEqual(f.agent, want) {
				t.Errorf("Parquet: stats %+v\nagents %+v\ndead %+v", st, f.agent, f.dead)
			}
		})
	}
}
