package synth

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/obolus/obolus/schemas"
)

// TestFormatsReadableByDuckDB reads every format back with DuckDB's own
// readers and checks row counts and column types against what Generate
// reported.
func TestFormatsReadableByDuckDB(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		format, reader string
	}{
		{FormatJSONL, "read_json_auto"},
		{FormatCSV, "read_csv_auto"},
		{FormatParquet, "read_parquet"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			dir := t.TempDir()
			res, err := Generate(context.Background(), Config{Seed: 3, AgentRequests: 1500, Users: 80, Format: tc.format}, dir)
			if err != nil {
				t.Fatal(err)
			}
			countWith := func(reader, glob string) int {
				t.Helper()
				var n int
				q := fmt.Sprintf("SELECT count(*) FROM %s(%s)", reader, sqlString(filepath.Join(dir, glob)))
				if err := db.QueryRow(q).Scan(&n); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				return n
			}
			count := func(glob string) int { t.Helper(); return countWith(tc.reader, glob) }
			ext := tc.format
			if got := count("usage/ai_gateway_usage-*." + ext); got != res.UsageRows {
				t.Errorf("usage rows: read %d, generated %d", got, res.UsageRows)
			}
			if got := count("usage/endpoint_usage-*." + ext); got != res.LegacyRows {
				t.Errorf("legacy rows: read %d, generated %d", got, res.LegacyRows)
			}
			var distinct int
			q := fmt.Sprintf("SELECT count(DISTINCT invocation_id) FROM %s(%s)", tc.reader, sqlString(filepath.Join(dir, "usage/ai_gateway_usage-*."+ext)))
			if err := db.QueryRow(q).Scan(&distinct); err != nil {
				t.Fatal(err)
			}
			if distinct+res.LegacyRows != res.Invocations || res.UsageRows-distinct != res.Duplicates {
				t.Errorf("distinct usage invocations %d + legacy %d, want %d; duplicates %d, want %d",
					distinct, res.LegacyRows, res.Invocations, res.UsageRows-distinct, res.Duplicates)
			}
			// Agent logs: every request logged once per log kind, on time or late.
			payloads := count("agents*/*_payload." + ext)
			traces := count("agents*/*_traces." + ext)
			w := newWorld(Config{Seed: 3, AgentRequests: 1500, Users: 80}.WithDefaults())
			reqs := plan(w)
			var wantP, wantT int
			for i := range reqs {
				switch w.agents[reqs[i].agent].logs {
				case logPayload:
					wantP++
				case logTraces:
					wantT++
				default:
					wantP++
					wantT++
				}
			}
			if payloads != wantP || traces != wantT {
				t.Errorf("agent logs: payload %d traces %d, want %d and %d", payloads, traces, wantP, wantT)
			}
			if got := countWith("read_json_auto", TruthFile); got != res.Invocations {
				t.Errorf("truth lines %d, want %d", got, res.Invocations)
			}
			if tc.format == FormatParquet {
				// Databricks-like types survive into the file.
				var tt, rt, td string
				q := fmt.Sprintf("SELECT typeof(event_time), typeof(request_tags), typeof(token_details) FROM read_parquet(%s) LIMIT 1",
					sqlString(filepath.Join(dir, "usage/ai_gateway_usage-000.parquet")))
				if err := db.QueryRow(q).Scan(&tt, &rt, &td); err != nil {
					t.Fatal(err)
				}
				if tt != "TIMESTAMP" || rt != "MAP(VARCHAR, VARCHAR)" || td[:6] != "STRUCT" {
					t.Errorf("parquet types: event_time %s, request_tags %s, token_details %s", tt, rt, td)
				}
			}
		})
	}
}

// TestParquetAgreesWithJSONL reads the Parquet files through DuckDB into the
// canonical records and compares them with the JSONL of the same seed.
func TestParquetAgreesWithJSONL(t *testing.T) {
	cfg := small(FormatJSONL)
	cfg.AgentRequests = 600
	jdir, _ := generate(t, cfg)
	cfg.Format = FormatParquet
	pdir, _ := generate(t, cfg)
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	query := func(file string, cols []column) [][]any {
		t.Helper()
		var names []string
		for _, c := range cols {
			names = append(names, c.name)
		}
		rows, err := db.Query(fmt.Sprintf("SELECT %s FROM read_parquet(%s)", strings.Join(names, ", "), sqlString(filepath.Join(pdir, file))))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out [][]any
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out = append(out, vals)
		}
		return out
	}
	strMap := func(v any) map[string]string {
		if v == nil {
			return nil
		}
		m := map[string]string{}
		om := v.(duckdb.OrderedMap)
		for i, k := range om.Keys() {
			m[k.(string)] = om.Values()[i].(string)
		}
		return m
	}
	u := query("usage/ai_gateway_usage-000.parquet", usageColumns)
	want := readJSONL[schemas.UsageEvent](t, filepath.Join(jdir, "usage/ai_gateway_usage-000.jsonl"))
	if len(u) != len(want) {
		t.Fatalf("parquet has %d usage rows, JSONL %d", len(u), len(want))
	}
	// The columns obolus does not read, which UsageEvent leaves out, must
	// agree too.
	type unreadCols struct {
		EndpointTags    map[string]string `json:"endpoint_tags"`
		DestinationType string            `json:"destination_type"`
		DestinationID   string            `json:"destination_id"`
		RequesterType   string            `json:"requester_type"`
		APIType         string            `json:"api_type"`
		UserAgent       string            `json:"user_agent"`
	}
	wantUnread := readJSONL[unreadCols](t, filepath.Join(jdir, "usage/ai_gateway_usage-000.jsonl"))
	for i, r := range u {
		gotUnread := unreadCols{strMap(r[8]), r[9].(string), r[11].(string), r[14].(string), r[15].(string), r[16].(string)}
		if !reflect.DeepEqual(gotUnread, wantUnread[i]) {
			t.Fatalf("usage row %d, unread columns:\nparquet %+v\njsonl   %+v", i, gotUnread, wantUnread[i])
		}
		td := r[21].(map[string]any)
		got := schemas.UsageEvent{
			InvocationID: r[0].(string), RequestID: r[1].(string), AccountID: r[2].(string), WorkspaceID: r[3].(string),
			SchemaVersion: r[4].(int32), EventTime: r[5].(time.Time), EndpointID: r[6].(string), EndpointName: r[7].(string),
			DestinationName: r[10].(string), DestinationModel: r[12].(string), Requester: r[13].(string),
			RequestTags: strMap(r[17]), InputTokens: r[18].(int64), OutputTokens: r[19].(int64),
			TotalTokens: r[20].(int64),
			TokenDetails: schemas.TokenDetails{CacheReadInputTokens: td["cache_read_input_tokens"].(int64),
				CacheCreationInputTokens: td["cache_creation_input_tokens"].(int64), OutputReasoningTokens: td["output_reasoning_tokens"].(int64)},
			StatusCode: r[22].(int32), LatencyMS: r[23].(int64),
		}
		if !reflect.DeepEqual(got, want[i]) {
			t.Fatalf("usage row %d:\nparquet %+v\njsonl   %+v", i, got, want[i])
		}
	}
	l := query("usage/endpoint_usage-000.parquet", legacyColumns)
	wantL := readJSONL[schemas.LegacyUsage](t, filepath.Join(jdir, "usage/endpoint_usage-000.jsonl"))
	if len(l) != len(wantL) {
		t.Fatalf("parquet has %d legacy rows, JSONL %d", len(l), len(wantL))
	}
	for i, r := range l {
		got := schemas.LegacyUsage{WorkspaceID: r[0].(string), AccountID: r[1].(string), ClientRequestID: r[2].(string),
			DatabricksRequestID: r[3].(string), Requester: r[4].(string), StatusCode: r[5].(int32), RequestTime: r[6].(time.Time),
			InputTokenCount: r[7].(int64), OutputTokenCount: r[8].(int64), InputCharacterCount: r[9].(int64),
			OutputCharacterCount: r[10].(int64), UsageContext: strMap(r[11]), RequestStreaming: r[12].(bool), ServedEntityID: r[13].(string)}
		if !reflect.DeepEqual(got, wantL[i]) {
			t.Fatalf("legacy row %d:\nparquet %+v\njsonl   %+v", i, got, wantL[i])
		}
	}
	tr := query("agents/research-agent_traces.parquet", traceColumns)
	wantT := readJSONL[schemas.TraceRow](t, filepath.Join(jdir, "agents/research-agent_traces.jsonl"))
	if len(tr) != len(wantT) {
		t.Fatalf("parquet has %d traces, JSONL %d", len(tr), len(wantT))
	}
	for i, r := range tr {
		got := schemas.TraceRow{TraceID: r[0].(string), ClientRequestID: r[1].(string), RequestTime: r[2].(time.Time),
			ExecutionDurationMS: r[3].(int64), State: r[4].(string), TraceMetadata: strMap(r[5]), Tags: strMap(r[6])}
		if !reflect.DeepEqual(got, wantT[i]) {
			t.Fatalf("trace %d:\nparquet %+v\njsonl   %+v", i, got, wantT[i])
		}
	}
	p := query("agents/research-agent_payload.parquet", payloadColumns)
	wantP := readJSONL[schemas.PayloadRow](t, filepath.Join(jdir, "agents/research-agent_payload.jsonl"))
	for i, r := range p {
		got := schemas.PayloadRow{DatabricksRequestID: r[0].(string), ClientRequestID: r[1].(string), RequestTime: r[2].(time.Time),
			StatusCode: r[3].(int32), ExecutionDurationMS: r[4].(int64), Requester: r[5].(string), ServedEntityID: r[6].(string)}
		if !reflect.DeepEqual(got, wantP[i]) {
			t.Fatalf("payload %d:\nparquet %+v\njsonl   %+v", i, got, wantP[i])
		}
	}
}
