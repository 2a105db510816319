package synth

import (
	"context"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
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
	seed := int64(7)
	if v := os.Getenv("OBOLUS_SYNTH_SEED"); v != "" {
		seed, _ = strconv.ParseInt(v, 10, 64)
	}
	res, err := Generate(context.Background(), Config{Seed: seed}, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	wl := loadWorkload(t, dir)
	all := newRefMatcher(wl.requests, func(*schemas.AgentRequest) bool { return true }, 2*time.Second)
	rep, amb := scoreWith(wl, all)
	var text strings.Builder
	rep.WriteText(&text)
	t.Log("\n" + text.String())
	for _, ag := range slices.Sorted(maps.Keys(amb.byAgent)) {
		a := amb.byAgent[ag]
		t.Logf("%-18s calls %6d window-ambiguous %.3f | untagged %6d: ambiguous %.3f, no candidate %.3f, %.2f candidates on average",
			ag, a.calls, float64(a.windowAmbiguous)/float64(a.calls), a.untagged, a.ambiguousShare(), a.noneShare(), float64(a.candidates)/float64(max(1, a.untagged)))
	}
	mix := map[string]int{}
	tagged := 0
	for _, ev := range wl.usage {
		for _, k := range []string{"mlflow_trace_id", "traceparent", "agent_request_id", "end_user", schemas.LegacyClientRequestIDTag} {
			if ev.RequestTags[k] != "" {
				mix[k]++
				tagged++
				break
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(mix)) {
		t.Logf("tag mix: %-18s %.3f of tagged calls", k, float64(mix[k])/float64(tagged))
	}
	t.Logf("tagged share %.3f; window-ambiguous share of all calls %.3f", float64(tagged)/float64(len(wl.usage)), float64(amb.windowAmbiguous)/float64(amb.calls))
	t.Logf("all logs: precision %.4f recall %.4f; untagged calls: %d, ambiguous %.3f, no candidate %.3f", rep.Precision, rep.Recall, amb.untagged, amb.ambiguousShare(), amb.noneShare())
	if rep.Recall < 0.95 || rep.Precision < 0.99 {
		t.Errorf("reference matcher: recall %.4f (want ≥ 0.95), precision %.4f (want ≥ 0.99)", rep.Recall, rep.Precision)
	}
	onTime := newRefMatcher(wl.requests, func(r *schemas.AgentRequest) bool { return wl.onTime[r.AgentRequestID] }, 2*time.Second)
	rep2, _ := scoreWith(wl, onTime)
	t.Logf("on-time logs only: precision %.4f recall %.4f", rep2.Precision, rep2.Recall)
}

type ambiguity struct {
	calls, untagged, ambiguous, none, candidates int
	// windowAmbiguous counts calls, tagged or not, whose time window holds
	// several requests: how ambiguous the agent is structurally.
	windowAmbiguous int
	byAgent         map[string]*ambiguity
}

func (a ambiguity) ambiguousShare() float64 {
	return float64(a.ambiguous) / float64(max(1, a.untagged))
}
func (a ambiguity) noneShare() float64 { return float64(a.none) / float64(max(1, a.untagged)) }

func scoreWith(wl *workload, m *refMatcher) (score.Report, ambiguity) {
	var rows []score.Row
	amb := ambiguity{byAgent: map[string]*ambiguity{}}
	endpoint := make(map[string]string, len(wl.rawTruth))
	for _, l := range wl.rawTruth {
		endpoint[l.InvocationID] = l.AgentEndpoint
	}
	for i := range wl.usage {
		ev := &wl.usage[i]
		user, method, _ := m.match(ev)
		ag := amb.byAgent[endpoint[ev.InvocationID]]
		if ag == nil {
			ag = &ambiguity{}
			amb.byAgent[endpoint[ev.InvocationID]] = ag
		}
		_, _, n := m.matchWindow(ev)
		for _, a := range []*ambiguity{&amb, ag} {
			a.calls++
			if n > 1 {
				a.windowAmbiguous++
			}
			if wl.truth[ev.InvocationID].Tagged {
				continue
			}
			a.untagged++
			a.candidates += n
			switch {
			case n > 1:
				a.ambiguous++
			case n == 0:
				a.none++
			}
		}
		rows = append(rows, score.Row{InvocationID: ev.InvocationID, EndUser: user, MatchMethod: method, Weight: 1})
	}
	return score.Score(wl.truth, rows), amb
}
