package databricks_test

import (
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/ingest"
	databricksingest "github.com/obolus/obolus/ingest/databricks"
	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/warehouse"
	"github.com/obolus/obolus/schemas"
)

// fixture is a local warehouse with a payload table whose columns are named
// the team's way (req_id, ts, user_email), a trace table, and usage.
func fixture(t *testing.T) *dbsqltest.Warehouse {
	t.Helper()
	wh := dbsqltest.Start(t, warehouse.Config{PageSize: 2})
	for _, q := range []string{
		`ATTACH IF NOT EXISTS ':memory:' AS lakehouse`,
		`CREATE SCHEMA lakehouse.agents`,
		`CREATE TABLE lakehouse.agents.bot_payload (req_id VARCHAR, ts TIMESTAMP, user_email VARCHAR, execution_duration_ms BIGINT, client_request_id VARCHAR)`,
		`INSERT INTO lakehouse.agents.bot_payload VALUES
			('r2', '2026-11-01 10:00:02', 'b@example.com', 1000, NULL),
			('r1', '2026-11-01 10:00:01', 'a@example.com', 2000, 'ui-1'),
			('r0', '2026-10-31 09:00:00', 'early@example.com', 10, NULL),
			('r3', '2026-11-01 10:00:03', 'x''); DROP TABLE lakehouse.agents.bot_payload; --', 5, NULL),
			('', '2026-11-01 10:00:04', 'nobody@example.com', 5, NULL)`,
		`CREATE SCHEMA system_catalog.ai_gateway`,
		`CREATE TABLE system_catalog.ai_gateway.usage (invocation_id VARCHAR, event_time TIMESTAMP, requester VARCHAR,
			request_tags MAP(VARCHAR, VARCHAR), token_details STRUCT(cache_read_input_tokens BIGINT), input_tokens BIGINT, schema_version INTEGER)`,
		`INSERT INTO system_catalog.ai_gateway.usage VALUES
			('i1', '2026-11-01 10:00:01.5', 'sp', MAP {'end_user': 'a@example.com', 'note': 'it''s \ fine'}, {'cache_read_input_tokens': 3}, 10, 1),
			('i2', '2026-11-01 10:00:02.5', 'sp', MAP {}, NULL, -1, 1),
			('i3', '2026-11-01 10:00:03.5', 'sp', NULL, NULL, 5, 9)`,
	} {
		if _, err := wh.Server.DB().Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return wh
}

func collect(t *testing.T, s *databricksingest.Source, w ingest.Window) ([]schemas.AgentRequest, []schemas.UsageEvent, []schemas.DeadLetter, ingest.Stats) {
	t.Helper()
	var agents []schemas.AgentRequest
	var usage []schemas.UsageEvent
	var dead []schemas.DeadLetter
	st, err := s.Read(dbsqltest.Context(t), w, ingest.Emit{
		Agents: func(rs []schemas.AgentRequest) error { agents = append(agents, rs...); return nil },
		Usage:  func(evs []schemas.UsageEvent) error { usage = append(usage, evs...); return nil },
		Dead:   func(d schemas.DeadLetter) error { dead = append(dead, d); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return agents, usage, dead, st
}

func TestColumnMappingWindowAndOrder(t *testing.T) {
	wh := fixture(t)
	db := dbsqltest.Open(t, wh.Config)
	s, err := databricksingest.NewSource(db, databricksingest.Table{
		Name:    "lakehouse.agents.bot_payload",
		Spec:    ingest.Spec{Kind: ingest.KindPayload, AgentEndpoint: "bot", ServicePrincipal: "sp"},
		Columns: map[string]string{"databricks_request_id": "req_id", "request_time": "ts", "requester": "user_email"},
	})
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	agents, _, dead, st := collect(t, s, ingest.Window{From: day, To: day.Add(24 * time.Hour)})
	// The window is applied in the warehouse: r0 is never read.
	if st.Rows != 4 || st.Emitted != 3 || st.Dead != 1 {
		t.Errorf("stats %+v, want 4 rows read, 3 emitted, 1 dead", st)
	}
	var ids []string
	for _, a := range agents {
		ids = append(ids, a.AgentRequestID)
	}
	if strings.Join(ids, ",") != "r1,r2,r3" {
		t.Errorf("requests %v, want r1,r2,r3 in time order", ids)
	}
	if agents[0].EndUser != "a@example.com" || agents[0].ClientRequestID != "ui-1" || agents[0].DurationMS != 2000 || agents[0].AgentEndpoint != "bot" {
		t.Errorf("first request %+v", agents[0])
	}
	// A value that looks like SQL is just a value.
	if agents[2].EndUser != "x'); DROP TABLE lakehouse.agents.bot_payload; --" {
		t.Errorf("end user %q", agents[2].EndUser)
	}
	if len(dead) != 1 || dead[0].Field != "databricks_request_id" || dead[0].Source != "lakehouse.agents.bot_payload" {
		t.Errorf("dead letters %+v", dead)
	}
	// The table is still there.
	if _, _, _, st := collect(t, s, ingest.Window{}); st.Rows != 5 {
		t.Errorf("second read saw %d rows, want 5", st.Rows)
	}
}

func TestUsageDecodesMapsStructsAndDeadLetters(t *testing.T) {
	wh := fixture(t)
	db := dbsqltest.Open(t, wh.Config)
	s, err := databricksingest.NewSource(db, databricksingest.Table{Name: "system.ai_gateway.usage", Spec: ingest.Spec{Kind: ingest.KindUsage}})
	if err != nil {
		t.Fatal(err)
	}
	_, usage, dead, _ := collect(t, s, ingest.Window{})
	if len(usage) != 1 || usage[0].RequestTags["end_user"] != "a@example.com" || usage[0].RequestTags["note"] != `it's \ fine` ||
		usage[0].TokenDetails.CacheReadInputTokens != 3 || usage[0].Source != schemas.SourceAIGateway {
		t.Fatalf("usage %+v", usage)
	}
	reasons := map[string]string{}
	for _, d := range dead {
		reasons[d.Field] = d.Reason
	}
	if !strings.Contains(reasons["input_tokens"], "negative") || !strings.Contains(reasons["schema_version"], "unknown schema_version 9") {
		t.Errorf("dead letters %+v", dead)
	}
}

func TestMissingAndBadColumnsAreNamed(t *testing.T) {
	wh := fixture(t)
	db := dbsqltest.Open(t, wh.Config)
	ctx := dbsqltest.Context(t)
	tests := []struct {
		name    string
		table   databricksingest.Table
		wantNew string // error from NewSource
		want    string // error from Resolve
	}{
		{"required column missing", databricksingest.Table{Name: "lakehouse.agents.bot_payload", Spec: ingest.Spec{Kind: ingest.KindPayload}},
			"", `has no column "databricks_request_id"`},
		{"mapped column missing", databricksingest.Table{Name: "lakehouse.agents.bot_payload", Spec: ingest.Spec{Kind: ingest.KindPayload},
			Columns: map[string]string{"databricks_request_id": "request_uuid"}}, "", `no column "request_uuid" (databricks columns mapping of databricks_request_id)`},
		{"table missing", databricksingest.Table{Name: "lakehouse.agents.nope", Spec: ingest.Spec{Kind: ingest.KindPayload}}, "", "nope"},
		{"table injection", databricksingest.Table{Name: "lakehouse.agents.bot_payload; DROP TABLE x", Spec: ingest.Spec{Kind: ingest.KindPayload}},
			"not a plain identifier", ""},
		{"mapping injection", databricksingest.Table{Name: "lakehouse.agents.bot_payload", Spec: ingest.Spec{Kind: ingest.KindPayload},
			Columns: map[string]string{"requester": "user_email` FROM x; --"}}, "not a plain identifier", ""},
		{"unknown mapping", databricksingest.Table{Name: "lakehouse.agents.bot_payload", Spec: ingest.Spec{Kind: ingest.KindPayload},
			Columns: map[string]string{"user": "user_email"}}, "obolus reads no such payload column", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := databricksingest.NewSource(db, tt.table)
			if tt.wantNew != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantNew) {
					t.Fatalf("NewSource error = %v, want %q", err, tt.wantNew)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = s.Resolve(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Resolve error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
