package report

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/obolus/obolus/schemas"
	"github.com/obolus/obolus/sink/duckdb"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fixtureRows is a small, fixed workload covering every line a report can
// have: every match method, a split invocation, an unattributed call, a user
// with no team, an unpriced model, usage in an hour the bill does not cover,
// and usage on both sides of a price change.
func fixtureRows() []schemas.Attribution {
	at := func(day, hour, minute int) time.Time { return time.Date(2026, 11, day, hour, minute, 0, 0, time.UTC) }
	type r struct {
		inv, ep, epName, model, user, team, cc, agent, method string
		when                                                  time.Time
		weight, conf                                          float64
		in, out                                               int64
		cost                                                  float64
	}
	chat, code := [2]string{"e-chat", "chat-gw"}, [2]string{"e-code", "code-gw"}
	rows := []r{
		{"inv-001", chat[0], chat[1], "gpt-5", "alice@example.com", "platform", "CC-100", "agent-support", schemas.MethodTagUser, at(3, 10, 1), 1, 1, 1000, 500, 0.00625},
		{"inv-002", chat[0], chat[1], "gpt-5", "bob@example.com", "platform", "CC-100", "agent-support", schemas.MethodTraceID, at(3, 10, 2), 1, 1, 2000, 1000, 0.0125},
		{"inv-003", chat[0], chat[1], "gpt-5", "carol@example.com", "research", "CC-200", "agent-support", schemas.MethodTimeWindowSplit, at(3, 10, 3), 0.5, 0.5, 500, 250, 0.003125},
		{"inv-003", chat[0], chat[1], "gpt-5", "alice@example.com", "platform", "CC-100", "agent-support", schemas.MethodTimeWindowSplit, at(3, 10, 3), 0.5, 0.5, 500, 250, 0.003125},
		{"inv-004", chat[0], chat[1], "gpt-5", "sp-agent-1", schemas.UnassignedTeam, "", "", schemas.MethodUnattributed, at(3, 10, 4), 1, 0, 1600, 800, 0.01},
		{"inv-005", chat[0], chat[1], "claude-sonnet-4-5", "alice@example.com", "platform", "CC-100", "agent-support", schemas.MethodTimeWindow, at(3, 10, 5), 1, 0.9, 1000, 1000, 0.018},
		{"inv-006", code[0], code[1], "claude-sonnet-4-5", "carol@example.com", "research", "CC-200", "agent-coder", schemas.MethodRequestID, at(3, 11, 6), 1, 1, 5000, 1000, 0.03},
		{"inv-007", code[0], code[1], "claude-sonnet-4-5", "dave@example.com", schemas.UnassignedTeam, "", "agent-coder", schemas.MethodTimeWindowNearest, at(3, 11, 7), 1, 0.6, 1000, 400, 0.009},
		{"inv-008", chat[0], chat[1], "gpt-5", "bob@example.com", "platform", "CC-100", "agent-support", schemas.MethodTagUser, at(20, 9, 8), 1, 1, 1800, 900, 0.011},
		{"inv-009", chat[0], chat[1], "gpt-5", "carol@example.com", "research", "CC-200", "agent-support", schemas.MethodTagUser, at(20, 9, 9), 1, 1, 3600, 1800, 0.022},
		{"inv-010", chat[0], chat[1], "mystery-1", "alice@example.com", "platform", "CC-100", "agent-support", schemas.MethodTagUser, at(20, 9, 10), 1, 1, 200, 100, 0},
		{"inv-011", code[0], code[1], "claude-sonnet-4-5", "alice@example.com", "platform", "CC-100", "agent-coder", schemas.MethodTraceID, at(20, 10, 11), 1, 1, 8000, 1000, 0.04},
	}
	// Agent requests (one user turn each, inv-001 and inv-005 being one
	// turn fanned out into two calls) and sessions (conversations).
	turns := map[string][2]string{
		"inv-001": {"turn-a1", "sess-a"}, "inv-005": {"turn-a1", "sess-a"}, "inv-003": {"turn-a2", "sess-a"},
		"inv-002": {"turn-b1", "sess-b"}, "inv-008": {"turn-b2", "sess-b"}, "inv-009": {"turn-c1", "sess-c"},
		"inv-006": {"turn-k1", "sess-k1"}, "inv-007": {"turn-k2", "sess-k2"}, "inv-011": {"turn-k3", "sess-k3"},
	}
	out := make([]schemas.Attribution, len(rows))
	for i, x := range rows {
		requester := "sp-agent-1"
		if x.ep == code[0] {
			requester = "sp-agent-2"
		}
		out[i] = schemas.Attribution{
			InvocationID: x.inv, RequestID: "req-" + x.inv, EventTime: x.when, EventDate: x.when.Format(time.DateOnly),
			AccountID: "acct-1", WorkspaceID: "ws-1", EndpointID: x.ep, EndpointName: x.epName, DestinationModel: x.model,
			Requester: requester, StatusCode: 200, UsageSource: "ai_gateway",
			EndUser: x.user, Team: x.team, CostCenter: x.cc, AgentEndpoint: x.agent, MatchMethod: x.method,
			MatchConfidence: x.conf, Candidates: 1, Weight: x.weight,
			InputTokens: 100 * x.in, OutputTokens: 100 * x.out, TotalTokens: 100 * (x.in + x.out),
			CostUSD: 100 * x.cost, PriceListVersion: "2026-10-01", Version: 1, RunID: "run-1",
		}
		if x.method == schemas.MethodUnattributed {
			out[i].Reason = "no_candidate"
		}
		out[i].AgentRequestID, out[i].Session = turns[x.inv][0], turns[x.inv][1]
	}
	return out
}

// openStore opens a fresh DuckDB store holding rows.
func openStore(t testing.TB, rows []schemas.Attribution) *duckdb.Store {
	t.Helper()
	s, err := duckdb.Open(context.Background(), filepath.Join(t.TempDir(), "obolus.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if len(rows) > 0 {
		if _, err := s.ReplaceAttributions(context.Background(), time.Time{}, time.Time{}, rows); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// fixtureStore is the fixture workload with the testdata bill loaded.
func fixtureStore(t testing.TB) *duckdb.Store {
	t.Helper()
	s := openStore(t, fixtureRows())
	loadBill(t, s, filepath.Join("testdata", "billing_usage.jsonl"), filepath.Join("testdata", "billing_list_prices.jsonl"))
	return s
}

// generateAndLoadBill generates a demo bill for the store's usage and loads it.
func generateAndLoadBill(t testing.TB, s *duckdb.Store, cfg BillingGenConfig) {
	t.Helper()
	bill, err := GenerateBilling(context.Background(), NewDuckDBSource(s.DB()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := bill.WriteJSONL(filepath.Join(dir, "u.jsonl"), filepath.Join(dir, "p.jsonl")); err != nil {
		t.Fatal(err)
	}
	loadBill(t, s, filepath.Join(dir, "u.jsonl"), filepath.Join(dir, "p.jsonl"))
}

func loadBill(t testing.TB, s *duckdb.Store, usage, prices string) {
	t.Helper()
	ctx := context.Background()
	if _, err := LoadListPrices(ctx, s.DB(), prices); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadBillingUsage(ctx, s.DB(), usage); err != nil {
		t.Fatal(err)
	}
}

func mustPeriod(t testing.TB, s string) Period {
	t.Helper()
	p, err := ParsePeriod(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file (go test ./sink/report -run %s -update rewrites it):\n--- got ---\n%s", name, t.Name(), got)
	}
}
