package report

import (
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
	if strings.Contains(svg, "2026-11-02") {
		t.Errorf("the day without usage has a point:\n%s", svg)
	}
}
