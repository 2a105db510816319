package report

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// A day with billed hours but no gateway usage gets no coverage point: there
// was nothing to attribute, and a 0% point read as failure.
func TestCoverageChartSkipsDaysWithoutUsage(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }
	r := &Report{Currency: "USD", Days: []Day{
		{Date: day(1), Invocations: 10, AttributedInvocations: 9, CostMicros: 100, AttributedMicros: 90},
		{Date: day(2), CostMicros: 50}, // billed, no usage
		{Date: day(3), Invocations: 4, AttributedInvocations: 4, CostMicros: 40, AttributedMicros: 40},
	}}
	svg := r.coverageChart()
	if n := strings.Count(svg, "<circle"); n != 4 {
		t.Errorf("%d points, want 4 (two series × the two days with usage)", n)
	}
	if strings.Contains(svg, "2026-11-02 · requests") || strings.Contains(svg, "2026-11-02 · cost") {
		t.Errorf("the day without usage has a point:\n%s", svg)
	}
	// It is shown as billed without usage instead, with a legend entry.
	if n := strings.Count(svg, `class="nousage"`); n != 1 || !strings.Contains(svg, "2026-11-02 · billed") || !strings.Contains(svg, "billed, no gateway usage") {
		t.Errorf("%d no-usage bands; want one for 2026-11-02 with a legend:\n%s", n, svg)
	}
}

// TestIdleDaysShowInCoverage: a generated bill with IdleDays bills the days
// without usage, and the report's coverage chart marks each of them as
// billed without usage, not as 0% coverage.
func TestIdleDaysShowInCoverage(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, syntheticRows(300, 5, mustPeriod(t, "2026-11-01..2026-11-04")))
	src := NewDuckDBSource(s.DB())
	p := mustPeriod(t, "2026-11-01..2026-11-08")
	generateAndLoadBill(t, s, BillingGenConfig{Seed: 3, Period: p, IdleShare: -1, IdleDays: true})
	rep, err := Build(ctx, src, Options{Period: p})
	if err != nil {
		t.Fatal(err)
	}
	var idle []string
	for _, d := range rep.Days {
		if d.Invocations == 0 && d.CostMicros > 0 {
			idle = append(idle, d.Date.Format(time.DateOnly))
		}
	}
	if want := []string{"2026-11-04", "2026-11-05", "2026-11-06", "2026-11-07"}; !slices.Equal(idle, want) {
		t.Errorf("billed days without usage %v, want %v", idle, want)
	}
	svg := rep.coverageChart()
	for _, d := range idle {
		if !strings.Contains(svg, d+" · billed") || strings.Contains(svg, d+" · cost attributed") {
			t.Errorf("%s: not shown as billed without usage", d)
		}
	}
}
