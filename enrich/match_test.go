package enrich

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/schemas"
)

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

const (
	spA   = "sp-a"
	spB   = "sp-b"
	trHex = "4bf92f3577b34da6a3ce929d0e0e4736"
)

func req(id, user, sp string, startSec, durSec float64) schemas.AgentRequest {
	return schemas.AgentRequest{
		AgentRequestID:   id,
		EndUser:          user,
		AgentEndpoint:    "agent-" + sp,
		ServicePrincipal: sp,
		StartTime:        t0.Add(time.Duration(startSec * float64(time.Second))),
		DurationMS:       int64(durSec * 1000),
	}
}

func event(id, sp string, atSec float64, tags map[string]string) schemas.UsageEvent {
	return schemas.UsageEvent{
		InvocationID:     id,
		RequestID:        "gw-" + id,
		EventTime:        t0.Add(time.Duration(atSec * float64(time.Second))),
		Requester:        sp,
		RequestTags:      tags,
		DestinationModel: "gpt-5-mini",
		InputTokens:      1000,
		OutputTokens:     101,
		TotalTokens:      1101,
	}
}

func TestMatchRules(t *testing.T) {
	traced := req("r-traced", "tracy@example.com", spA, 100, 10)
	traced.TraceID = "tr-" + trHex
	client := req("r-client", "clara@example.com", spA, 200, 10)
	client.ClientRequestID = "client-77"
	reqs := []schemas.AgentRequest{
		req("r-solo", "solo@example.com", spA, 0, 10),
		traced,
		client,
		req("r-busy1", "b1@example.com", spB, 0, 30),
		req("r-busy2", "b2@example.com", spB, 5, 30),
		req("r-busy3", "b3@example.com", spB, 60, 5),
		req("r-near", "near@example.com", spB, 75, 5),
		req("r-anon", "", spA, 400, 5),
	}
	type want struct {
		method, user, reqID, reason string
		candidates                  int
		conf                        float64 // 0: don't check; exact otherwise
	}
	tests := []struct {
		name string
		cfg  func(*MatchConfig)
		ev   schemas.UsageEvent
		want want
	}{
		{"tag names the user", nil, event("e1", spA, 5, map[string]string{"end_user": "tagged@example.com"}),
			want{method: schemas.MethodTagUser, user: "tagged@example.com", candidates: 1, conf: 1}},
		{"tag user wins and trace enriches", nil, event("e2", spA, 105, map[string]string{"end_user": "tagged@example.com", "trace_id": "tr-" + trHex}),
			want{method: schemas.MethodTagUser, user: "tagged@example.com", reqID: "r-traced", candidates: 1, conf: 1}},
		{"mlflow trace id", nil, event("e3", spA, 500, map[string]string{"mlflow_trace_id": "tr-" + trHex}),
			want{method: schemas.MethodTraceID, user: "tracy@example.com", reqID: "r-traced", candidates: 1, conf: 1}},
		{"traceparent", nil, event("e4", spA, 500, map[string]string{"traceparent": "00-" + trHex + "-00f067aa0ba902b7-01"}),
			want{method: schemas.MethodTraceID, user: "tracy@example.com", reqID: "r-traced", candidates: 1, conf: 1}},
		{"agent request id", nil, event("e5", spB, 3, map[string]string{"agent_request_id": "r-solo"}),
			want{method: schemas.MethodRequestID, user: "solo@example.com", reqID: "r-solo", candidates: 1, conf: 1}},
		{"client request id", nil, event("e6", spA, 900, map[string]string{"client_request_id": "client-77"}),
			want{method: schemas.MethodRequestID, user: "clara@example.com", reqID: "r-client", candidates: 1, conf: 1}},
		{"unknown id is not guessed by time", nil, event("e7", spA, 5, map[string]string{"trace_id": "tr-ffffffffffffffffffffffffffffffff"}),
			want{method: schemas.MethodUnattributed, user: spA, reason: ReasonIDNotFound}},
		{"unknown id falls back when allowed", func(c *MatchConfig) { c.UntrustedIDFallback = true }, event("e8", spA, 5, map[string]string{"trace_id": "nope"}),
			want{method: schemas.MethodTimeWindow, user: "solo@example.com", reqID: "r-solo", candidates: 1}},
		{"trace rule off falls to window", func(c *MatchConfig) { c.TraceID = false }, event("e9", spA, 105, map[string]string{"trace_id": "tr-" + trHex}),
			want{method: schemas.MethodTimeWindow, user: "tracy@example.com", reqID: "r-traced", candidates: 1}},
		{"lone candidate", nil, event("e10", spA, 5, nil),
			want{method: schemas.MethodTimeWindow, user: "solo@example.com", reqID: "r-solo", candidates: 1, conf: windowBaseConfidence}},
		{"lone candidate inside skew before start", nil, event("e11", spA, -1.5, nil),
			want{method: schemas.MethodTimeWindow, user: "solo@example.com", reqID: "r-solo", candidates: 1, conf: windowBaseConfidence * skewEdgeFactor}},
		{"lone candidate inside skew after end", nil, event("e12", spA, 11.9, nil),
			want{method: schemas.MethodTimeWindow, user: "solo@example.com", reqID: "r-solo", candidates: 1, conf: windowBaseConfidence * skewEdgeFactor}},
		{"just outside skew", nil, event("e13", spA, 12.1, nil),
			want{method: schemas.MethodUnattributed, user: spA, reason: ReasonNoCandidate}},
		{"crowded lone candidate is discounted", nil, event("e14", spB, 64, nil),
			want{method: schemas.MethodTimeWindow, user: "b3@example.com", reqID: "r-busy3", candidates: 1, conf: windowBaseConfidence / 2}},
		{"other service principal's requests are not candidates", nil, event("e15", "sp-other", 5, nil),
			want{method: schemas.MethodUnattributed, user: "sp-other", reason: ReasonNoCandidate}},
		{"ambiguous stays unattributed", nil, event("e16", spB, 10, nil),
			want{method: schemas.MethodUnattributed, user: spB, reason: ReasonAmbiguous, candidates: 2}},
		{"ambiguous nearest", func(c *MatchConfig) { c.Ambiguity = PolicyNearest }, event("e17", spB, 6, nil),
			want{method: schemas.MethodTimeWindowNearest, user: "b2@example.com", reqID: "r-busy2", candidates: 2, conf: windowBaseConfidence / 2}},
		{"window off", func(c *MatchConfig) { c.TimeWindow = false }, event("e18", spA, 5, nil),
			want{method: schemas.MethodUnattributed, user: spA, reason: ReasonNoRule}},
		{"request without a user", nil, event("e19", spA, 401, nil),
			want{method: schemas.MethodUnattributed, user: spA, reason: ReasonNoUser, candidates: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultMatchConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			idx := NewIndex()
			idx.Add(reqs...)
			e, err := NewEngine(cfg, idx, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			rows := e.Attribute(nil, &tt.ev, Run{ID: "run-1", Version: 1})
			if len(rows) != 1 {
				t.Fatalf("got %d rows, want 1", len(rows))
			}
			r := rows[0]
			if r.MatchMethod != tt.want.method || r.EndUser != tt.want.user || r.AgentRequestID != tt.want.reqID || r.Reason != tt.want.reason {
				t.Errorf("got method=%s user=%s req=%s reason=%q, want %+v", r.MatchMethod, r.EndUser, r.AgentRequestID, r.Reason, tt.want)
			}
			if int(r.Candidates) != tt.want.candidates {
				t.Errorf("candidates = %d, want %d", r.Candidates, tt.want.candidates)
			}
			if tt.want.conf != 0 && math.Abs(r.MatchConfidence-tt.want.conf) > 1e-9 {
				t.Errorf("confidence = %v, want %v", r.MatchConfidence, tt.want.conf)
			}
			if r.MatchMethod == schemas.MethodUnattributed && r.MatchConfidence != 0 {
				t.Errorf("unattributed row has confidence %v", r.MatchConfidence)
			}
			if r.Team != schemas.UnassignedTeam {
				t.Errorf("team = %q without a directory, want %q", r.Team, schemas.UnassignedTeam)
			}
		})
	}
}

func TestSplitWeightsSumToOneAndTokensReconcile(t *testing.T) {
	cfg := DefaultMatchConfig()
	cfg.Ambiguity = PolicySplit
	idx := NewIndex()
	idx.Add(req("a", "a@x", spB, 0, 30), req("b", "b@x", spB, 1, 30), req("c", "c@x", spB, 2, 30))
	e, err := NewEngine(cfg, idx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := event("e", spB, 10, nil)
	ev.TokenDetails.CacheReadInputTokens = 100
	rows := e.Attribute(nil, &ev, Run{})
	if len(rows) != 3 {
		t.Fatalf("got %d rows, want 3", len(rows))
	}
	var w float64
	var in, out, total, cache int64
	users := map[string]bool{}
	for _, r := range rows {
		if r.MatchMethod != schemas.MethodTimeWindowSplit || r.Candidates != 3 {
			t.Errorf("row %+v: want method %s with 3 candidates", r, schemas.MethodTimeWindowSplit)
		}
		w += r.Weight
		in, out, total, cache = in+r.InputTokens, out+r.OutputTokens, total+r.TotalTokens, cache+r.CacheReadInputTokens
		users[r.EndUser] = true
	}
	if math.Abs(w-1) > 1e-12 {
		t.Errorf("weights sum to %v, want 1", w)
	}
	if in != ev.InputTokens || out != ev.OutputTokens || total != ev.TotalTokens || cache != 100 {
		t.Errorf("split tokens %d/%d/%d/%d do not reconcile with %d/%d/%d/100", in, out, total, cache, ev.InputTokens, ev.OutputTokens, ev.TotalTokens)
	}
	if len(users) != 3 {
		t.Errorf("split users = %v, want 3 distinct", users)
	}
	// Order must not depend on insertion order.
	idx2 := NewIndex()
	idx2.Add(req("c", "c@x", spB, 2, 30), req("a", "a@x", spB, 0, 30), req("b", "b@x", spB, 1, 30))
	e2, _ := NewEngine(cfg, idx2, nil, nil)
	rows2 := e2.Attribute(nil, &ev, Run{})
	for i := range rows {
		if rows[i] != rows2[i] {
			t.Errorf("row %d differs with insertion order: %+v vs %+v", i, rows[i], rows2[i])
		}
	}
}

func TestApportionCountsSumsExactly(t *testing.T) {
	tests := []struct {
		total  int64
		counts []int64
		want   []int64
	}{
		{10, []int64{1, 1, 1}, []int64{4, 3, 3}},
		{0, []int64{1, 1}, []int64{0, 0}},
		{1, []int64{1, 1}, []int64{1, 0}},
		{7, []int64{1, 9}, []int64{1, 6}},
		{5, []int64{0, 0}, []int64{5, 0}},
		{5, nil, []int64{}},
	}
	for _, tt := range tests {
		got := ApportionCounts(tt.total, tt.counts)
		if len(got) != len(tt.want) {
			t.Fatalf("ApportionCounts(%d, %v) = %v, want %v", tt.total, tt.counts, got, tt.want)
		}
		var sum int64
		for i := range got {
			sum += got[i]
			if got[i] != tt.want[i] {
				t.Errorf("ApportionCounts(%d, %v) = %v, want %v", tt.total, tt.counts, got, tt.want)
				break
			}
		}
		if len(got) > 0 && sum != tt.total {
			t.Errorf("ApportionCounts(%d, %v) sums to %d", tt.total, tt.counts, sum)
		}
	}
}

func TestDedupCountsInvocationOnce(t *testing.T) {
	a := event("inv-1", spA, 5, nil)
	b := event("inv-2", spA, 1, nil)
	dup := a
	got, dropped := Dedup([]schemas.UsageEvent{a, b, dup, a})
	if dropped != 2 || len(got) != 2 {
		t.Fatalf("kept %d dropped %d, want 2 and 2", len(got), dropped)
	}
	if got[0].InvocationID != "inv-2" || got[1].InvocationID != "inv-1" {
		t.Errorf("not in event-time order: %s, %s", got[0].InvocationID, got[1].InvocationID)
	}
}

// A payload row and the trace of one request merge into one entry, and the
// entry is the same whichever is added first: fields from the payload row
// where it has them, the trace filling the rest, and the payload row's times
// (the serving layer writes them) even where the trace's are longer.
func TestIndexMergesPayloadAndTrace(t *testing.T) {
	payload := schemas.PayloadRow{DatabricksRequestID: "dbr-1", RequestTime: t0, ExecutionDurationMS: 4000, Requester: "pat@example.com", StatusCode: 200}.AgentRequest("support-bot", spA)
	trace := schemas.TraceRow{TraceID: "tr-" + trHex, ClientRequestID: "dbr-1", RequestTime: t0.Add(-3 * time.Second), ExecutionDurationMS: 9000,
		TraceMetadata: map[string]string{schemas.TraceSessionKey: "s-9", schemas.TraceUserKey: "someone-else@example.com"}}.AgentRequest("trace-endpoint", spA)
	var first schemas.AgentRequest
	for i, order := range [][]schemas.AgentRequest{{payload, trace}, {trace, payload}} {
		idx := NewIndex()
		idx.SetMergeTolerance(2 * time.Second)
		idx.Add(order...)
		if idx.Len() != 1 {
			t.Fatalf("order %d: Len = %d, want 1 merged request", i, idx.Len())
		}
		r, ok := idx.ByTraceID("00-" + trHex + "-00f067aa0ba902b7-01")
		if !ok {
			t.Fatalf("order %d: merged request not found by traceparent", i)
		}
		if r.EndUser != "pat@example.com" || r.Session != "s-9" || r.AgentEndpoint != "support-bot" ||
			!r.StartTime.Equal(t0) || r.DurationMS != 4000 || r.Source != schemas.SourcePayload {
			t.Errorf("order %d: merged request = %+v", i, r)
		}
		if i == 0 {
			first = *r
		} else if *r != first {
			t.Errorf("the merge depends on order:\n %+v\n %+v", first, *r)
		}
		if got := idx.Running(nil, spA, t0.Add(3500*time.Millisecond), 0); len(got) != 1 {
			t.Errorf("order %d: the payload row's interval is not visible to the window: %d candidates", i, len(got))
		}
		for _, at := range []time.Duration{-2 * time.Second, 5 * time.Second} {
			if got := idx.Running(nil, spA, t0.Add(at), 0); len(got) != 0 {
				t.Errorf("order %d: the trace's wider interval still matches at %s", i, at)
			}
		}
		if got := idx.TimeDisagreements(); got != 1 {
			t.Errorf("order %d: TimeDisagreements = %d, want 1", i, got)
		}
	}
}

// Sources of one rank merge to the earliest start, the longest duration and
// the smallest value of each field, in any order; agreeing times are not a
// disagreement.
func TestIndexMergeIsOrderIndependent(t *testing.T) {
	a := schemas.AgentRequest{AgentRequestID: "r1", EndUser: "b@example.com", ServicePrincipal: spA, StartTime: t0.Add(time.Second), DurationMS: 2000, Source: schemas.SourceTrace}
	b := schemas.AgentRequest{AgentRequestID: "r1", EndUser: "a@example.com", Session: "s1", ServicePrincipal: spA, StartTime: t0, DurationMS: 1500, Source: schemas.SourceTrace}
	c := schemas.AgentRequest{AgentRequestID: "r1", ServicePrincipal: spA, StartTime: t0.Add(500 * time.Millisecond), DurationMS: 2500, Source: schemas.SourceTrace}
	want := schemas.AgentRequest{AgentRequestID: "r1", EndUser: "a@example.com", Session: "s1", ServicePrincipal: spA, StartTime: t0, DurationMS: 2500, Source: schemas.SourceTrace}
	for _, order := range [][]schemas.AgentRequest{{a, b, c}, {a, c, b}, {b, a, c}, {b, c, a}, {c, a, b}, {c, b, a}} {
		idx := NewIndex()
		idx.SetMergeTolerance(2 * time.Second)
		idx.Add(order...)
		r, ok := idx.ByRequestID("r1")
		if !ok || *r != want {
			t.Errorf("order %s %s %s: got %+v, want %+v", order[0].EndUser, order[1].EndUser, order[2].EndUser, r, want)
		}
		if got := idx.Running(nil, spA, t0.Add(2400*time.Millisecond), 0); len(got) != 1 {
			t.Errorf("merged interval not visible: %d candidates", len(got))
		}
		if idx.TimeDisagreements() != 0 {
			t.Errorf("TimeDisagreements = %d within tolerance, want 0", idx.TimeDisagreements())
		}
	}
}

func TestIndexEvict(t *testing.T) {
	idx := NewIndex()
	for i := 0; i < 100; i++ {
		idx.Add(req(string(rune('a'+i%26))+string(rune('0'+i/26)), "u@x", spA, float64(i*10), 5))
	}
	n := idx.Evict(t0.Add(500 * time.Second))
	if n != 50 || idx.Len() != 50 {
		t.Fatalf("evicted %d, left %d; want 50 and 50", n, idx.Len())
	}
	if _, ok := idx.ByRequestID("a0"); ok {
		t.Error("evicted request still found by id")
	}
	if got := idx.Running(nil, spA, t0.Add(502*time.Second), 0); len(got) != 1 {
		t.Errorf("after evict, %d running at 502s, want 1", len(got))
	}
}

func TestMatchConfigValidate(t *testing.T) {
	c := DefaultMatchConfig()
	c.Ambiguity = "guess"
	if err := c.Validate(); err == nil {
		t.Error("unknown policy accepted")
	}
	c = DefaultMatchConfig()
	c.Skew = -time.Second
	if err := c.Validate(); err == nil {
		t.Error("negative skew accepted")
	}
	c = DefaultMatchConfig()
	c.Ambiguity, c.LikelihoodRatio = PolicyLikely, 0.5
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "match.likelihood_ratio") {
		t.Errorf("likelihood ratio below 1: %v", err)
	}
}

func TestSplitFoldsOneUsersRequestsAndKeepsNobodysShareWithThePrincipal(t *testing.T) {
	cfg := DefaultMatchConfig()
	cfg.Ambiguity = PolicySplit
	idx := NewIndex()
	idx.Add(req("a1", "a@x", spB, 0, 30), req("b", "b@x", spB, 1, 30), req("a2", "a@x", spB, 2, 30), req("anon", "", spB, 3, 30))
	e, err := NewEngine(cfg, idx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := event("e", spB, 10, nil)
	rows := e.Attribute(nil, &ev, Run{})
	if len(rows) != 3 {
		t.Fatalf("got %d rows, want one per user (a, b, nobody)", len(rows))
	}
	want := []struct {
		user, req, reason string
		weight            float64
	}{{"a@x", "a1", "", 0.5}, {"b@x", "b", "", 0.25}, {spB, "anon", ReasonNoUser, 0.25}}
	var tokens int64
	for i, w := range want {
		r := rows[i]
		if r.EndUser != w.user || r.AgentRequestID != w.req || r.Reason != w.reason || math.Abs(r.Weight-w.weight) > 1e-12 || r.Candidates != 4 {
			t.Errorf("row %d = user %s req %s reason %q weight %v candidates %d, want %+v", i, r.EndUser, r.AgentRequestID, r.Reason, r.Weight, r.Candidates, w)
		}
		tokens += r.TotalTokens
	}
	if tokens != ev.TotalTokens || rows[0].TotalTokens != 551 {
		t.Errorf("tokens %d (first row %d), want %d with the folded user holding half (551)", tokens, rows[0].TotalTokens, ev.TotalTokens)
	}
}

func TestApportionCounts(t *testing.T) {
	tests := []struct {
		total  int64
		counts []int64
		want   []int64
	}{
		{10, []int64{1, 1, 1}, []int64{4, 3, 3}},
		{1101, []int64{2, 1, 1}, []int64{551, 275, 275}},
		{7, []int64{1, 9}, []int64{1, 6}},
		{5, []int64{0, 0}, []int64{5, 0}},
		{0, []int64{3, 1}, []int64{0, 0}},
		{2, []int64{1, 2}, []int64{1, 1}},
	}
	for _, tt := range tests {
		got := ApportionCounts(tt.total, tt.counts)
		if !slices.Equal(got, tt.want) {
			t.Errorf("ApportionCounts(%d, %v) = %v, want %v", tt.total, tt.counts, got, tt.want)
		}
	}
}

// A split over more end users than match.max_split_users is unattributed
// (ambiguous): its cost stays with the service principal. Requests of one
// user count once.
func TestSplitLimit(t *testing.T) {
	idx := NewIndex()
	idx.Add(req("a", "a@x", spB, 0, 30), req("b", "b@x", spB, 1, 30), req("c", "c@x", spB, 2, 30), req("a2", "a@x", spB, 3, 30))
	tests := []struct {
		limit  int
		method string
		rows   int
	}{
		{0, schemas.MethodTimeWindowSplit, 3}, // the default, 10
		{3, schemas.MethodTimeWindowSplit, 3}, // a@x's two requests are one user
		{2, schemas.MethodUnattributed, 1},
	}
	for _, tt := range tests {
		cfg := DefaultMatchConfig()
		cfg.Ambiguity, cfg.MaxSplitUsers = PolicySplit, tt.limit
		e, err := NewEngine(cfg, idx, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ev := event("e", spB, 10, nil)
		rows := e.Attribute(nil, &ev, Run{})
		if len(rows) != tt.rows || rows[0].MatchMethod != tt.method || rows[0].Candidates != 4 {
			t.Fatalf("limit %d: %d rows, first %+v", tt.limit, len(rows), rows[0])
		}
		if tt.method == schemas.MethodUnattributed && (rows[0].Reason != ReasonAmbiguous || rows[0].EndUser != spB || rows[0].Weight != 1) {
			t.Errorf("limit %d: row %+v, want ambiguous, kept by the service principal", tt.limit, rows[0])
		}
	}
	cfg := DefaultMatchConfig()
	cfg.MaxSplitUsers = 1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "match.max_split_users") {
		t.Errorf("limit 1: %v", err)
	}
}

// match.min_confidence is a confidence below 1, and needs calibration.
func TestValidateMinConfidence(t *testing.T) {
	for _, tt := range []struct {
		min       float64
		calibrate bool
		want      string
	}{
		{0, false, ""}, {0.9, true, ""}, {-0.1, true, "match.min_confidence"}, {1, true, "match.min_confidence"},
		{0.5, false, "match.calibrate"},
	} {
		cfg := DefaultMatchConfig()
		cfg.MinConfidence, cfg.Calibrate = tt.min, tt.calibrate
		err := cfg.Validate()
		if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("min %v calibrate %v: %v, want an error naming %q", tt.min, tt.calibrate, err, tt.want)
		}
	}
}

// A time-window pick's fallback is the call left with its service
// principal; other rows have none.
func TestFallback(t *testing.T) {
	idx := NewIndex()
	idx.Add(req("r1", "ana", spA, 0, 10))
	e, err := NewEngine(DefaultMatchConfig(), idx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := event("e1", spA, 5, nil)
	rows := e.Attribute(nil, &ev, Run{})
	f, ok := e.Fallback(&ev, rows)
	if !ok || f.MatchMethod != schemas.MethodUnattributed || f.Reason != ReasonLowConfidence || f.EndUser != spA ||
		f.AgentRequestID != "" || f.TotalTokens != rows[0].TotalTokens || f.CostUSD != rows[0].CostUSD {
		t.Errorf("fallback of %+v: %+v, %v", rows[0], f, ok)
	}
	tagged := event("e2", spA, 5, map[string]string{"agent_request_id": "r1"})
	if _, ok := e.Fallback(&tagged, e.Attribute(nil, &tagged, Run{})); ok {
		t.Error("an id match has a fallback")
	}
}
