package enrich

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/obolus/obolus/schemas"
)

// timingWorld is a service principal whose requests each make one call per
// ten seconds, early in the request: taught by id-linked calls, the likely
// policy should pick, among overlapping requests, the one whose early part
// the call falls in.
func timingWorld() (reqs []schemas.AgentRequest, teach []schemas.UsageEvent) {
	for i := range 40 {
		start := float64(i * 1000)
		r := req(fmt.Sprintf("t%02d", i), fmt.Sprintf("u%02d", i), spA, start, 40)
		reqs = append(reqs, r)
		// Calls in the first tenth of each quarter of the request.
		for q := range 4 {
			teach = append(teach, event(fmt.Sprintf("teach-%02d-%d", i, q), spA, start+float64(q)*10+1.5, map[string]string{"agent_request_id": r.AgentRequestID}))
		}
	}
	return reqs, teach
}

func likelyEngine(t *testing.T, ratio float64, reqs []schemas.AgentRequest, teach []schemas.UsageEvent) *Engine {
	t.Helper()
	idx := NewIndex()
	idx.Add(reqs...)
	cfg := DefaultMatchConfig()
	cfg.Ambiguity, cfg.LikelihoodRatio = PolicyLikely, ratio
	e, err := NewEngine(cfg, idx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range teach {
		e.Learn(&teach[i])
	}
	e.FitTiming()
	return e
}

func TestLikelyPolicy(t *testing.T) {
	reqs, teach := timingWorld()
	// Two requests overlap the call at 50_001.5 s: "early" started 0.5 s
	// before it, where the model has seen calls; "mid" started 18.5 s before
	// it, in a part of the request where it has seen none.
	reqs = append(reqs, req("early", "erin", spA, 50_001, 40), req("mid", "mia", spA, 49_983, 40))
	ambiguous := event("amb", spA, 50_001.5, nil)
	for _, tt := range []struct {
		ratio      float64
		wantMethod string
		wantUser   string
	}{
		{DefaultLikelihoodRatio, schemas.MethodTimeWindowLikely, "erin"},
		{1e6, schemas.MethodUnattributed, spA},
	} {
		e := likelyEngine(t, tt.ratio, reqs, teach)
		rows := e.Attribute(nil, &ambiguous, Run{})
		if len(rows) != 1 || rows[0].MatchMethod != tt.wantMethod || rows[0].EndUser != tt.wantUser || rows[0].Candidates != 2 {
			t.Fatalf("ratio %v: %+v, want one %s row for %s of 2 candidates", tt.ratio, rows, tt.wantMethod, tt.wantUser)
		}
		if tt.wantMethod == schemas.MethodTimeWindowLikely && !(rows[0].MatchConfidence > 0.5 && rows[0].MatchConfidence < 1) {
			t.Errorf("likely pick's confidence %v, want its posterior above a half", rows[0].MatchConfidence)
		}
		if tt.wantMethod == schemas.MethodUnattributed && rows[0].Reason != ReasonAmbiguous {
			t.Errorf("below the ratio: reason %q, want %q", rows[0].Reason, ReasonAmbiguous)
		}
	}
}

// Without a fitted model (the stream, or FitTiming never called) the
// policy leaves ambiguous calls alone.
func TestLikelyWithoutModelIsUnattributed(t *testing.T) {
	idx := NewIndex()
	idx.Add(req("a", "ana", spA, 0, 10), req("b", "ben", spA, 1, 10))
	cfg := DefaultMatchConfig()
	cfg.Ambiguity = PolicyLikely
	e, err := NewEngine(cfg, idx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := event("e", spA, 5, nil)
	if rows := e.Attribute(nil, &ev, Run{}); rows[0].MatchMethod != schemas.MethodUnattributed {
		t.Errorf("no model: %+v", rows[0])
	}
}

// The model is a sum over the calls it learns from, so the order they are
// read in cannot change it.
func TestTimingModelIsOrderIndependent(t *testing.T) {
	reqs, teach := timingWorld()
	// Untagged lone calls teach too.
	teach = append(teach, event("lone", spA, 2_030, nil))
	a := likelyEngine(t, DefaultLikelihoodRatio, reqs, teach).matcher.timing
	rev := make([]schemas.UsageEvent, len(teach))
	for i := range teach {
		rev[len(teach)-1-i] = teach[i]
	}
	b := likelyEngine(t, DefaultLikelihoodRatio, reqs, rev).matcher.timing
	if !reflect.DeepEqual(a, b) {
		t.Error("the timing model depends on the order calls are learned in")
	}
	if a.Known != int64(len(teach)) {
		t.Errorf("learned from %d calls, want %d", a.Known, len(teach))
	}
}

// A likely pick's masked outcome decodes to the bucket its real picks are
// calibrated in: the same method, candidates and rule confidence.
func TestMaskedLikelyDecodes(t *testing.T) {
	reqs, teach := timingWorld()
	reqs = append(reqs, req("early", "erin", spA, 50_001, 40), req("mid", "mia", spA, 49_983, 40))
	e := likelyEngine(t, DefaultLikelihoodRatio, reqs, teach)
	tagged := event("tagged", spA, 50_001.5, map[string]string{"agent_request_id": "early"})
	rows := e.Attribute(nil, &tagged, Run{})
	code := e.Masked(&tagged, rows)
	untagged := event("untagged", spA, 50_001.5, nil)
	pick := e.Attribute(nil, &untagged, Run{})[0]
	method, cands, rule, ok := maskedKey(code - code%10)
	if !ok || method != pick.MatchMethod || cands != pick.Candidates || rule != pick.MatchConfidence || code%10 != 1 {
		t.Errorf("masked %d decodes to %s/%d/%v, want %s/%d/%v and correct", code, method, cands, rule, pick.MatchMethod, pick.Candidates, pick.MatchConfidence)
	}
}

func TestTimingBin(t *testing.T) {
	r := req("r", "u", spA, 10, 20)
	for _, tt := range []struct {
		at    float64
		bin   int
		width float64
		ok    bool
	}{
		{7.9, 0, 0, false},
		{8.5, timingEarly, 2, true},
		{10, 1, 1, true},
		{19.99, 10, 1, true},
		{30, timingInside, 1, true},
		{31, timingLate, 2, true},
		{32.1, 0, 0, false},
	} {
		ev := event("e", spA, tt.at, nil)
		bin, width, ok := timingBin(ev.EventTime, &r, DefaultMatchConfig().Skew)
		if bin != tt.bin || width != tt.width || ok != tt.ok {
			t.Errorf("at %vs: bin %d width %v ok %v, want %d %v %v", tt.at, bin, width, ok, tt.bin, tt.width, tt.ok)
		}
	}
}
