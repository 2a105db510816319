package report

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/budget"
)

var testThresholds = budget.Thresholds{Warn: 0.8, Critical: 1.0}

// hoursOf spreads usd evenly over n hours from start, for one user.
func hoursOf(user, team, cc string, start time.Time, n int, usd float64) []spendHour {
	out := make([]spendHour, n)
	for i := range out {
		out[i] = spendHour{user: user, team: team, costCenter: cc, hour: start.Add(time.Duration(i) * time.Hour), usd: usd / float64(n)}
	}
	return out
}

func TestBudgetEvaluate(t *testing.T) {
	nov := mustBudgetPeriod(t, "2026-11")
	day := mustBudgetPeriod(t, "2026-11-10")
	d := func(n int) time.Time { return time.Date(2026, 11, n, 0, 0, 0, 0, time.UTC) }
	type want struct {
		scope, name, level, forecastLevel string
		spend, forecast                   float64
	}
	for _, tc := range []struct {
		name  string
		p     BudgetPeriod
		asOf  time.Time
		hours []spendHour
		opt   BudgetOptions
		want  []want
	}{
		{
			name: "over, near, on course and fine; most severe first",
			p:    nov, asOf: d(16),
			hours: concat(
				hoursOf("alice", "platform", "CC-1", d(1), 24*15, 150), // 150 of 100: critical
				hoursOf("bob", "platform", "CC-1", d(1), 24*15, 85),    // 85 of 100: warn
				hoursOf("carol", "research", "CC-2", d(1), 24*15, 60),  // 60 of 100, forecast 120: on course
				hoursOf("dave", "research", "CC-2", d(1), 24*15, 10),   // 10 of 100: not listed
			),
			opt: BudgetOptions{DefaultUserMonth: 100, Limits: []BudgetLimit{{Scope: ScopeTeam, Name: "platform", Month: 1000}, {Scope: ScopeCostCenter, Name: "CC-2", Month: 50}}},
			want: []want{
				{ScopeUser, "alice", "critical", "critical", 150, 300},
				{ScopeCostCenter, "CC-2", "critical", "critical", 70, 140},
				{ScopeUser, "bob", "warn", "critical", 85, 170},
				{ScopeUser, "carol", "ok", "critical", 60, 120},
			},
		},
		{
			name: "an explicit user budget overrides the default",
			p:    nov, asOf: d(16),
			hours: hoursOf("alice", "platform", "CC-1", d(1), 24*15, 150),
			opt:   BudgetOptions{DefaultUserMonth: 100, Limits: []BudgetLimit{{Scope: ScopeUser, Name: "alice", Month: 1000}}},
			want:  nil,
		},
		{
			name: "daily budgets ignore monthly amounts; spend before the day counts only for the trend",
			p:    day, asOf: d(10).Add(12 * time.Hour),
			hours: concat(hoursOf("alice", "platform", "CC-1", d(3), 24*7, 70), hoursOf("alice", "platform", "CC-1", d(10), 12, 9)),
			opt:   BudgetOptions{Limits: []BudgetLimit{{Scope: ScopeUser, Name: "alice", Day: 10, Month: 1}}},
			want:  []want{{ScopeUser, "alice", "warn", "critical", 9, 18}},
		},
		{
			name: "closed period: the forecast is the spend",
			p:    nov, asOf: d(1).AddDate(0, 1, 5),
			hours: hoursOf("alice", "platform", "CC-1", d(1), 24*30, 90),
			opt:   BudgetOptions{Limits: []BudgetLimit{{Scope: ScopeUser, Name: "alice", Month: 100}}},
			want:  []want{{ScopeUser, "alice", "warn", "warn", 90, 90}},
		},
		{
			name: "--all lists a budget with no spend",
			p:    nov, asOf: d(16),
			opt:  BudgetOptions{All: true, Limits: []BudgetLimit{{Scope: ScopeTeam, Name: "idle", Month: 5}}},
			want: []want{{ScopeTeam, "idle", "ok", "ok", 0, 0}},
		},
		{
			name: "the default applies to users with spend only, never to the empty user",
			p:    nov, asOf: d(16),
			hours: hoursOf("", "", "", d(1), 24, 500),
			opt:   BudgetOptions{DefaultUserMonth: 1},
			want:  nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opt.Period, tc.opt.Thresholds = tc.p, testThresholds
			asOf := tc.asOf
			if asOf.After(tc.p.End) {
				asOf = tc.p.End
			}
			rep := &BudgetReport{Period: tc.p, AsOf: asOf, Thresholds: testThresholds}
			evaluate(rep, tc.opt, tc.hours)
			var got []want
			for _, l := range rep.Lines {
				got = append(got, want{l.Scope, l.Name, l.Level.String(), l.ForecastLevel.String(), round2(l.Spend), round2(l.Forecast)})
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("lines\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

func concat(hs ...[]spendHour) []spendHour {
	var out []spendHour
	for _, h := range hs {
		out = append(out, h...)
	}
	return out
}

func mustBudgetPeriod(t testing.TB, s string) BudgetPeriod {
	t.Helper()
	p, err := ParseBudgetPeriod(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseBudgetPeriod(t *testing.T) {
	for _, tc := range []struct {
		in    string
		ok    bool
		daily bool
		end   string
	}{
		{"2026-11", true, false, "2026-12-01"},
		{"2026-11-30", true, true, "2026-12-01"},
		{"2026-11-01..2026-11-16", false, false, ""},
		{"november", false, false, ""},
	} {
		p, err := ParseBudgetPeriod(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (p.Daily != tc.daily || p.End.Format(time.DateOnly) != tc.end)) {
			t.Errorf("ParseBudgetPeriod(%q) = %+v, %v", tc.in, p, err)
		}
	}
}

// TestBudgetGolden renders a report with hostile names in every format.
func TestBudgetGolden(t *testing.T) {
	nov := mustBudgetPeriod(t, "2026-11")
	d := func(n int) time.Time { return time.Date(2026, 11, n, 0, 0, 0, 0, time.UTC) }
	hours := concat(
		hoursOf("=HYPERLINK(\"http://evil\")", "platform", "CC-1", d(1), 24*20, 120),
		hoursOf("[click](http://evil) | <b>x</b>", "platform", "CC-1", d(1), 24*20, 82),
		hoursOf("carol@example.com", "research\u202e", "CC-2", d(10), 24*11, 40),
	)
	rep := &BudgetReport{Period: nov, AsOf: d(21), Basis: BasisList, Thresholds: testThresholds,
		Notes: []string{"No allocation is persisted for 2026-11: spend is at list price instead."}}
	evaluate(rep, BudgetOptions{DefaultUserMonth: 100, Limits: []BudgetLimit{{Scope: ScopeTeam, Name: "research\u202e", Month: 45}}}, hours)
	for _, f := range []struct {
		file  string
		write func(*BudgetReport, *bytes.Buffer) error
	}{
		{"budgets.md", func(r *BudgetReport, b *bytes.Buffer) error { return r.WriteMarkdown(b) }},
		{"budgets.csv", func(r *BudgetReport, b *bytes.Buffer) error { return r.WriteCSV(b) }},
		{"budgets.json", func(r *BudgetReport, b *bytes.Buffer) error { return r.WriteJSON(b) }},
		{"budgets.html", func(r *BudgetReport, b *bytes.Buffer) error { return r.WriteHTML(b) }},
	} {
		var b bytes.Buffer
		if err := f.write(rep, &b); err != nil {
			t.Fatalf("%s: %v", f.file, err)
		}
		golden(t, f.file, b.Bytes())
	}
	// Every cell of the page is escaped: no hostile name becomes markup or
	// a control character.
	var page bytes.Buffer
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<b>x</b>", "\u202e", "<a ", "http://evil\"<"} {
		if strings.Contains(page.String(), bad) {
			t.Errorf("budgets HTML holds %q", bad)
		}
	}
	for _, want := range []string{"&lt;b&gt;x&lt;/b&gt;", `research\u202e`, `class="critical"`} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("budgets HTML lacks %q", want)
		}
	}
}

// TestBuildBudgetsDuckDB reads the fixture store on both bases: allocated
// falls back to list, with a note, while no allocation is persisted.
func TestBuildBudgetsDuckDB(t *testing.T) {
	s := fixtureStore(t)
	ctx := context.Background()
	opt := BudgetOptions{Period: mustBudgetPeriod(t, "2026-11"), AsOf: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), Thresholds: testThresholds,
		Limits: []BudgetLimit{{Scope: ScopeUser, Name: "alice@example.com", Month: 5}, {Scope: ScopeTeam, Name: "research", Month: 10}}, All: true}
	for _, basis := range []string{BasisList, BasisAllocated} {
		opt.Basis = basis
		rep, err := BuildBudgets(ctx, NewDuckDBSource(s.DB()), opt)
		if err != nil {
			t.Fatalf("%s: %v", basis, err)
		}
		// alice: 6.7375 of 5 (the fixture store scales its costs by 100).
		if len(rep.Lines) != 2 || rep.Lines[0].Name != "alice@example.com" || rep.Lines[0].Level != budget.Critical ||
			fmt.Sprintf("%.6f", rep.Lines[0].Spend) != "6.737500" || rep.Lines[1].Level != budget.OK || !rep.Critical() {
			t.Errorf("%s: lines %+v", basis, rep.Lines)
		}
		if fellBack := len(rep.Notes) == 1 && strings.Contains(rep.Notes[0], "list price"); fellBack != (basis == BasisAllocated) || rep.Basis != BasisList {
			t.Errorf("%s: basis %s, notes %q", basis, rep.Basis, rep.Notes)
		}
	}
	opt.AsOf = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	if _, err := BuildBudgets(ctx, NewDuckDBSource(s.DB()), opt); err == nil {
		t.Error("a period after the as-of time: no error")
	}
}
