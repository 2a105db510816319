package report

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/obolus/obolus/schemas"
)

func TestParsePeriod(t *testing.T) {
	tests := []struct {
		in, start, end, err string
	}{
		{in: "2026-11", start: "2026-11-01", end: "2026-12-01"},
		{in: "2026-12", start: "2026-12-01", end: "2027-01-01"},
		{in: "2026-11-01..2026-11-16", start: "2026-11-01", end: "2026-11-16"},
		{in: "2026-11-16..2026-11-01", err: "end (exclusive) after the start"},
		{in: "November", err: "want YYYY-MM"},
		{in: "2026-13", err: "want YYYY-MM"},
	}
	for _, tc := range tests {
		p, err := ParsePeriod(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParsePeriod(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || p.Start.Format("2006-01-02") != tc.start || p.End.Format("2006-01-02") != tc.end || p.Label != tc.in {
			t.Errorf("ParsePeriod(%q) = %+v, %v", tc.in, p, err)
		}
	}
}

func TestParseDimensions(t *testing.T) {
	tests := []struct {
		in   string
		want []Dimension
		err  string
	}{
		{in: "team", want: []Dimension{ByTeam}},
		{in: "team, user,model", want: []Dimension{ByTeam, ByUser, ByModel}},
		{in: "cost_center,agent", want: []Dimension{ByCostCenter, ByAgent}},
		{in: "team,team", err: "appears twice"},
		{in: "department", err: "not one of"},
		{in: "", err: "not one of"},
	}
	for _, tc := range tests {
		got, err := ParseDimensions(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseDimensions(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(dims(got), ",") != strings.Join(dims(tc.want), ",") {
			t.Errorf("ParseDimensions(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func dims(ds []Dimension) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d)
	}
	return out
}

// TestGolden renders the fixture workload against the testdata bill in each
// text format and compares with testdata/*.golden.
func TestGolden(t *testing.T) {
	s := fixtureStore(t)
	ctx := context.Background()
	tests := []struct {
		name, by, focus string
		write           func(*Report, *bytes.Buffer) error
	}{
		{"chargeback_team_user.md", "team,user", "", func(r *Report, b *bytes.Buffer) error { return r.WriteMarkdown(b) }},
		{"chargeback_team_user.csv", "team,user", "", func(r *Report, b *bytes.Buffer) error { return r.WriteCSV(b) }},
		{"chargeback_agent_request.md", "agent,agent_request", "", func(r *Report, b *bytes.Buffer) error { return r.WriteMarkdown(b) }},
		{"chargeback_agent_session.csv", "agent,session", "", func(r *Report, b *bytes.Buffer) error { return r.WriteCSV(b) }},
		{"distribution.csv", "team", "", func(r *Report, b *bytes.Buffer) error { return r.WriteDistributionCSV(b) }},
		{"chargeback_model_agent.md", "model,agent", "", func(r *Report, b *bytes.Buffer) error { return r.WriteMarkdown(b) }},
		{"focus.csv", "team", Focus12, func(r *Report, b *bytes.Buffer) error { return r.WriteFocusCSV(b) }},
		{"focus_1.3.csv", "team", Focus13, func(r *Report, b *bytes.Buffer) error { return r.WriteFocusCSV(b) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			by, err := ParseDimensions(tc.by)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Build(ctx, NewDuckDBSource(s.DB()), Options{Period: mustPeriod(t, "2026-11"), By: by, FocusVersion: tc.focus})
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := tc.write(rep, &b); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, b.Bytes())
		})
	}
}

// TestEmptyPeriod: a period with neither usage nor billing still renders
// every format (FOCUS aside, which needs a bill) without dividing by zero.
func TestEmptyPeriod(t *testing.T) {
	s := openStore(t, nil)
	rep, err := Build(context.Background(), NewDuckDBSource(s.DB()), Options{Period: mustPeriod(t, "2026-11-01..2026-11-03"), By: []Dimension{ByTeam, ByUser}})
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range map[string]func(*bytes.Buffer) error{
		"markdown": func(b *bytes.Buffer) error { return rep.WriteMarkdown(b) },
		"csv":      func(b *bytes.Buffer) error { return rep.WriteCSV(b) },
		"parquet":  func(b *bytes.Buffer) error { return rep.WriteParquet(b) },
		"html":     func(b *bytes.Buffer) error { return rep.WriteHTML(b) },
	} {
		var b bytes.Buffer
		if err := w(&b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if strings.Contains(b.String(), "NaN") || strings.Contains(b.String(), "Inf") {
			t.Errorf("%s: NaN or Inf in the output", name)
		}
	}
	if len(rep.Days) != 2 || rep.Total.Rows != 0 {
		t.Errorf("days %d rows %d", len(rep.Days), rep.Total.Rows)
	}
}

// --by session gives one line per conversation, its cost the sum of its
// calls; calls of no session share one line.
func TestBySession(t *testing.T) {
	rows := fixtureRows()
	for i := range rows {
		rows[i].Session = []string{"conv-a", "conv-b", ""}[i%3]
	}
	s := openStore(t, rows)
	by, err := ParseDimensions("agent,session")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Build(context.Background(), NewDuckDBSource(s.DB()), Options{Period: mustPeriod(t, "2026-11"), By: by})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for _, r := range rows {
		if r.MatchMethod != schemas.MethodUnattributed {
			want[r.AgentEndpoint+"/"+r.Session] += r.TotalTokens
		}
	}
	got := map[string]int64{}
	for _, l := range rep.Lines {
		got[l.Keys[0]+"/"+l.Keys[1]] += l.TotalTokens
	}
	if len(got) != len(want) {
		t.Fatalf("lines %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %d tokens, want %d", k, got[k], v)
		}
	}
}

// A model named by a legacy row's served entity (the pay-per-token
// endpoint, databricks-<model>) and by a gateway row (<model>) is one model:
// one line in the models table and under --by model, holding both rows.
func TestModelNamesMerge(t *testing.T) {
	rows := fixtureRows()
	want := map[string]int64{}
	for i := range rows {
		if i%2 == 0 {
			rows[i].DestinationModel = "databricks-" + rows[i].DestinationModel
		}
		want[modelKey(rows[i].DestinationModel)] += rows[i].TotalTokens
	}
	s := openStore(t, rows)
	by, err := ParseDimensions("model")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Build(context.Background(), NewDuckDBSource(s.DB()), Options{Period: mustPeriod(t, "2026-11"), By: by})
	if err != nil {
		t.Fatal(err)
	}
	tables := []struct {
		name  string
		lines []Line
	}{{"models table", rep.Models}}
	for _, tc := range tables {
		got := map[string]int64{}
		for _, l := range tc.lines {
			if _, dup := got[l.Keys[0]]; dup {
				t.Errorf("%s: model %q has two lines", tc.name, l.Keys[0])
			}
			got[l.Keys[0]] += l.TotalTokens
		}
		if len(got) != len(want) {
			t.Fatalf("%s: lines %v, want %v", tc.name, got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s: %d tokens, want %d", tc.name, k, got[k], v)
			}
		}
	}
	// --by model: attributed rows only, one line per model.
	seen := map[string]bool{}
	for _, l := range rep.Lines {
		if seen[l.Keys[0]] {
			t.Errorf("--by model: model %q has two lines", l.Keys[0])
		}
		seen[l.Keys[0]] = true
		if strings.HasPrefix(l.Keys[0], "databricks-") {
			t.Errorf("--by model: line %q keeps the endpoint prefix", l.Keys[0])
		}
	}
}
