package report

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestRank: nearest-rank percentiles are always one of the values.
func TestRank(t *testing.T) {
	for _, tc := range []struct{ n, p, want int }{
		{1, 50, 0}, {1, 95, 0}, {2, 50, 0}, {2, 95, 1}, {3, 50, 1}, {10, 50, 4}, {10, 95, 9}, {20, 95, 18}, {100, 95, 94}, {100, 50, 49},
	} {
		if got := rank(tc.n, tc.p); got != tc.want {
			t.Errorf("rank(%d, %d) = %d, want %d", tc.n, tc.p, got, tc.want)
		}
	}
}

// TestSpreads: turns and sessions per agent, the runaway agent first.
func TestSpreads(t *testing.T) {
	s := spreads{}
	row := func(agent, turn, session string, weight float64) *usageRow {
		return &usageRow{agent: agent, agentRequest: turn, session: session, weight: weight}
	}
	// A steady agent: ten turns of 1.00 in two sessions.
	for i := range 10 {
		s.add(row("steady", "s-"+string(rune('a'+i)), "conv-"+string(rune('a'+i%2)), 1), 1_000_000)
	}
	// A runaway agent: 39 turns of 0.10, one of 5.00 made of 50 calls.
	for i := range 39 {
		s.add(row("loop", fmt.Sprintf("l-%02d", i), "conv-l", 1), 100_000)
	}
	for range 50 {
		s.add(row("loop", "l-z", "conv-z", 1), 100_000)
	}
	// No ids: not counted.
	s.add(row("steady", "", "", 1), 9_000_000)
	got := s.build()
	if len(got) != 2 || got[0].Agent != "loop" {
		t.Fatalf("agents %+v, want loop first", got)
	}
	loop, steady := got[0], got[1]
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"loop turns", loop.Turns, Spread{Count: 40, P50: 100_000, P95: 100_000, Max: 5_000_000, MaxID: "l-z"}},
		{"loop calls", [2]float64{loop.CallsP50, loop.CallsMax}, [2]float64{1, 50}},
		{"loop runaway", loop.Runaway() >= RunawayFactor, true},
		{"loop sessions", loop.Sessions, Spread{Count: 2, P50: 3_900_000, P95: 5_000_000, Max: 5_000_000, MaxID: "conv-z"}},
		{"steady turns", steady.Turns, Spread{Count: 10, P50: 1_000_000, P95: 1_000_000, Max: 1_000_000, MaxID: "s-a"}},
		{"steady sessions", steady.Sessions, Spread{Count: 2, P50: 5_000_000, P95: 5_000_000, Max: 5_000_000, MaxID: "conv-a"}},
		{"steady runaway", steady.Runaway() >= RunawayFactor, false},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, tc.got, tc.want)
		}
	}
}

// TestDistributionEscaped: agent names and turn ids come from request
// metadata, so every format escapes them.
func TestDistributionEscaped(t *testing.T) {
	rep := &Report{Currency: "USD", Agents: []AgentSpread{{Agent: "=HYPERLINK(\"http://x\")", Turns: Spread{Count: 1, P50: 10, P95: 10, Max: 10, MaxID: "<script>alert(1)</script>|x"}}}}
	var csvOut, md bytes.Buffer
	if err := rep.WriteDistributionCSV(&csvOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(csvOut.String(), `'=HYPERLINK`) {
		t.Errorf("CSV formula not neutralised:\n%s", csvOut.String())
	}
	rep.writeDistributionMarkdown(func(f string, a ...any) { fmt.Fprintf(&md, f, a...) })
	if strings.Contains(md.String(), "<script>") || strings.Contains(md.String(), "</script>|x") {
		t.Errorf("Markdown not escaped:\n%s", md.String())
	}
	var pg htmlPage
	rep.distributionHTML(&pg)
	var page strings.Builder
	if err := pageTemplate.ExecuteTemplate(&page, "report", htmlPage{R: &Report{Currency: "USD"}, AgentHead: pg.AgentHead, Agents: pg.Agents, AgentNote: pg.AgentNote}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page.String(), "<script>alert") {
		t.Errorf("HTML not escaped")
	}
}

// TestSessionGrouping: --by session and agent_request group the fixture's
// conversations and turns, and the lines still add up to the bill.
func TestSessionGrouping(t *testing.T) {
	s := fixtureStore(t)
	for _, by := range []string{"session", "agent_request", "agent,session"} {
		dims, err := ParseDimensions(by)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Build(context.Background(), NewDuckDBSource(s.DB()), Options{Period: mustPeriod(t, "2026-11"), By: dims})
		if err != nil {
			t.Fatal(err)
		}
		sum := rep.Unattributed.AllocatedMicros
		for _, l := range rep.Lines {
			sum += l.AllocatedMicros
		}
		if sum != rep.Rec.BilledMicros {
			t.Errorf("--by %s: lines sum to %d, bill %d", by, sum, rep.Rec.BilledMicros)
		}
		if len(rep.Lines) < 3 {
			t.Errorf("--by %s: %d lines", by, len(rep.Lines))
		}
	}
}
