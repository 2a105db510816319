package databricks_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/obolus/obolus/ingest"
	databricksingest "github.com/obolus/obolus/ingest/databricks"
	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/warehouse"
	"github.com/obolus/obolus/schemas"
)

// TestOTelSpanTables reads span tables through the local warehouse: v1 with
// MAP attributes, v2 with the VARIANT as JSON text (how a warehouse result
// carries it), the window bound in nanoseconds on start_time_unix_nano.
func TestOTelSpanTables(t *testing.T) {
	wh := dbsqltest.Start(t, warehouse.Config{PageSize: 2})
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	ns := func(d time.Duration) string { return fmt.Sprint(t0.Add(d).UnixNano()) }
	// end_time_unix_nano is text here, to hold a bad value.
	end := func(d time.Duration) string { return "'" + ns(d) + "'" }
	rows := func(user, child, early, resSP string) string {
		return `('0af7651916cd43dd8448eb211c80319c', 'a1', NULL, 'agent', ` + ns(0) + `, ` + end(1500*time.Millisecond) + `, ` + user + `, {'message': '', 'code': 'STATUS_CODE_OK'}, ` + resSP + `),
			('0af7651916cd43dd8448eb211c80319c', 'a2', 'a1', 'llm', ` + ns(100*time.Millisecond) + `, ` + end(time.Second) + `, ` + child + `, NULL, ` + resSP + `),
			('1bf7651916cd43dd8448eb211c80319c', 'b1', '', 'agent', ` + ns(-time.Hour) + `, ` + end(-time.Hour+time.Second) + `, ` + early + `, NULL, ` + resSP + `),
			('2cf7651916cd43dd8448eb211c80319c', 'c1', '', 'agent', ` + ns(time.Minute) + `, 'soon', ` + early + `, NULL, ` + resSP + `)`
	}
	for _, q := range []string{
		`ATTACH IF NOT EXISTS ':memory:' AS lakehouse`,
		`CREATE SCHEMA lakehouse.traces`,
		`CREATE TABLE lakehouse.traces.v1_otel_spans (trace_id VARCHAR, span_id VARCHAR, parent_span_id VARCHAR, name VARCHAR,
			start_time_unix_nano BIGINT, end_time_unix_nano VARCHAR, attributes MAP(VARCHAR, VARCHAR), status STRUCT(message VARCHAR, code VARCHAR),
			resource STRUCT(attributes MAP(VARCHAR, VARCHAR), dropped_attributes_count INTEGER))`,
		`INSERT INTO lakehouse.traces.v1_otel_spans VALUES ` + rows(
			`MAP {'enduser.id': 'ann@example.com', 'mlflow.trace.session': '"s-1"', 'client_request_id': 'dbr-1'}`,
			`MAP {'mlflow.spanType': '"LLM"'}`, `MAP {'enduser.id': 'early@example.com'}`,
			`{'attributes': MAP {'obolus.service_principal': 'sp-res', 'service.name': 'bot'}, 'dropped_attributes_count': 0}`),
		`CREATE TABLE lakehouse.traces.v2_otel_spans (record_id VARCHAR, trace_id VARCHAR, span_id VARCHAR, parent_span_id VARCHAR, name VARCHAR,
			start_time_unix_nano BIGINT, end_time_unix_nano VARCHAR, attributes VARCHAR, status STRUCT(message VARCHAR, code VARCHAR),
			resource STRUCT(attributes VARCHAR, dropped_attributes_count INTEGER))`,
		`INSERT INTO lakehouse.traces.v2_otel_spans SELECT 'r', * FROM (VALUES ` + rows(
			`'{"enduser.id": "ann@example.com", "mlflow.trace.session": "\"s-1\"", "client_request_id": "dbr-1", "n": 2}'`,
			`'{"mlflow.spanType": "\"LLM\"", "gen_ai.usage.input_tokens": 7}'`, `'{"enduser.id": "early@example.com"}'`,
			`{'attributes': '{"obolus.service_principal": "sp-res", "service.name": "bot"}', 'dropped_attributes_count': 0}`) + `)`,
	} {
		if _, err := wh.Server.DB().Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db := dbsqltest.Open(t, wh.Config)
	want := []schemas.AgentRequest{{AgentRequestID: "dbr-1", TraceID: "0af7651916cd43dd8448eb211c80319c", ClientRequestID: "dbr-1",
		EndUser: "ann@example.com", Session: "s-1", AgentEndpoint: "bot", ServicePrincipal: "sp-res", StartTime: t0, DurationMS: 1500,
		Status: "OK", Source: schemas.SourceOTelSpan}}
	for _, table := range []string{"lakehouse.traces.v1_otel_spans", "lakehouse.traces.v2_otel_spans"} {
		t.Run(table, func(t *testing.T) {
			s, err := databricksingest.NewSource(db, databricksingest.Table{Name: table, Spec: ingest.Spec{Kind: ingest.KindOTelSpans}})
			if err != nil {
				t.Fatal(err)
			}
			agents, _, dead, st := collect(t, s, ingest.Window{From: t0, To: t0.Add(time.Hour)})
			// b1 is before the window, left out by the warehouse; a2 is skipped.
			if st.Rows != 3 || st.Skipped != 1 || st.Dead != 1 || !st.Balanced() || !reflect.DeepEqual(agents, want) {
				t.Fatalf("stats %+v\nagents %+v\ndead %+v", st, agents, dead)
			}
			if dead[0].Field != "end_time_unix_nano" || dead[0].Source != table {
				t.Errorf("dead letter %+v", dead[0])
			}
		})
	}
}
