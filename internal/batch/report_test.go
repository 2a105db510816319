package batch

import (
	"math"
	"strings"
	"testing"
)

// A token sum that would pass int64 makes the run unreconciled instead of
// wrapping to a negative total that still matches.
func TestReportTokenOverflow(t *testing.T) {
	tests := []struct {
		name     string
		in       []int64
		overflow bool
	}{
		{"small", []int64{1, 2, 3}, false},
		{"at the edge", []int64{math.MaxInt64 - 1, 1}, false},
		{"past the edge", []int64{math.MaxInt64, 1}, true},
		{"two halves", []int64{math.MaxInt64/2 + 1, math.MaxInt64/2 + 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Report{UsageRows: int64(len(tt.in)), Invocations: int64(len(tt.in)), Attributed: int64(len(tt.in))}
			for _, n := range tt.in {
				r.AddTokens(&r.TokensIn, n)
				r.AddTokens(&r.TokensOut, n)
			}
			if r.TokensIn < 0 {
				t.Errorf("sum wrapped to %d", r.TokensIn)
			}
			if r.TokenOverflow != tt.overflow || r.Reconciled() == tt.overflow {
				t.Errorf("overflow %v, reconciled %v; want overflow %v", r.TokenOverflow, r.Reconciled(), tt.overflow)
			}
			if got := strings.HasPrefix(r.Summary(), "NOT RECONCILED") && strings.Contains(r.Summary(), "overflow"); got != tt.overflow {
				t.Errorf("summary %q", r.Summary())
			}
		})
	}
}
