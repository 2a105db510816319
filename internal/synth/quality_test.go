package synth

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/score"
	"github.com/obolus/obolus/schemas"
)

// TestDefaultsAreAttainable checks the promise made about the defaults: an
// engine doing id matching plus unique-candidate time-window matching with
// a 2s skew tolerance reaches recall ≥ 0.95 and precision ≥ 0.99 once every
// agent log has arrived.
func TestDefaultsAreAttainable(t *testing.T) {
	if testing.Short() {
		t.Skip("generates the default workload")
	}
	dir := t.TempDir()
	res, err := Generate(context.Background(), Config{Seed: 7}, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	wl := loadWorkload(t, dir)
	all := newRefMatcher(wl.requests, func(*schemas.AgentRequest) bool { return true }, 2*time.Second)
	rep, amb := scoreWith(wl, all)
	rep.WriteText(os.Stdout)
	t.Logf("all logs: precision %.4f recall %.4f; untagged calls: %d, ambiguous %.3f, no candidate %.3f", rep.Precision, rep.Recall, amb.untagged, amb.ambiguousShare(), amb.noneShare())
	if rep.Recall < 0.95 || rep.Precision < 0.99 {
		t.Errorf("reference matcher: recall %.4f (want ≥ 0.95), precision %.4f (want ≥ 0.99)", rep.Recall, rep.Precision)
	}
	onTime := newRefMatcher(wl.requests, func(r *schemas.AgentRequest) bool { return wl.onTime[r.AgentRequestID] }, 2*time.Second)
	rep2, _ := scoreWith(wl, onTime)
	t.Logf("on-time logs only: precision %.4f recall %.4f", rep2.Precision, rep2.Recall)
}

type ambiguity struct{ untagged, ambiguous, none int }

func (a ambiguity) ambiguousShare() float64 { return float64(a.ambiguous) / float64(max(1, a.untagged)) }
func (a ambiguity) noneShare() float64      { return float64(a.none) / float64(max(1, a.untagged)) }

func scoreWith(wl *workload, m *refMatcher) (score.Report, ambiguity) {
	var rows []score.Row
	var amb ambiguity
	for i := range wl.usage {
		ev := &wl.usage[i]
		user, method, n := m.match(ev)
		if !wl.truth[ev.InvocationID].Tagged {
			amb.untagged++
			switch {
			case n > 1:
				amb.ambiguous++
			case n == 0:
				amb.none++
			}
		}
		rows = append(rows, score.Row{InvocationID: ev.InvocationID, EndUser: user, MatchMethod: method, Weight: 1})
	}
	return score.Score(wl.truth, rows), amb
}
