package enrich

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/obolus/obolus/schemas"
)

// benchWorkload builds n agent requests over 8 service principals (one of
// them hot: a quarter of all requests, heavily overlapping) and fanOut usage
// events per request, 80% carrying the trace id.
func benchWorkload(n, fanOut int) ([]schemas.AgentRequest, []schemas.UsageEvent) {
	rng := rand.New(rand.NewPCG(1, 2))
	reqs := make([]schemas.AgentRequest, n)
	evs := make([]schemas.UsageEvent, 0, n*fanOut)
	span := time.Duration(n) * 200 * time.Millisecond
	for i := range reqs {
		sp := fmt.Sprintf("sp-%d", rng.IntN(7))
		if i%4 == 0 {
			sp = "sp-hot"
		}
		start := t0.Add(time.Duration(rng.Int64N(int64(span))))
		dur := time.Duration(1+rng.IntN(60)) * time.Second
		reqs[i] = schemas.AgentRequest{
			AgentRequestID: fmt.Sprintf("dbr-%08d", i), TraceID: fmt.Sprintf("tr-%032x", i+1),
			EndUser: fmt.Sprintf("user%d@example.com", rng.IntN(500)), ServicePrincipal: sp, AgentEndpoint: "agent",
			StartTime: start, DurationMS: dur.Milliseconds(),
		}
		for j := 0; j < fanOut; j++ {
			ev := schemas.UsageEvent{
				InvocationID: fmt.Sprintf("inv-%d-%d", i, j), Requester: sp, DestinationModel: "gpt-5-mini",
				EventTime:   start.Add(time.Duration(rng.Int64N(int64(dur)))),
				InputTokens: 1200, OutputTokens: 300, TotalTokens: 1500,
			}
			if rng.Float64() < 0.8 {
				ev.RequestTags = map[string]string{"mlflow_trace_id": reqs[i].TraceID}
			}
			evs = append(evs, ev)
		}
	}
	return reqs, evs
}

// BenchmarkEngineAttribute measures the engine alone: match, price and place
// one usage event, with the index already built.
func BenchmarkEngineAttribute(b *testing.B) {
	for _, policy := range []string{PolicyUnattributed, PolicySplit, PolicyLikely} {
		b.Run(policy, func(b *testing.B) {
			reqs, evs := benchWorkload(50_000, 6)
			idx := NewIndex()
			idx.Add(reqs...)
			cfg := DefaultMatchConfig()
			cfg.Ambiguity = policy
			e, err := NewEngine(cfg, idx, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			if policy == PolicyLikely {
				for i := range evs {
					e.Learn(&evs[i])
				}
				e.FitTiming()
			}
			rows := make([]schemas.Attribution, 0, 16)
			run := Run{ID: "bench", Version: 1, ProcessedAt: t0}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rows = e.Attribute(rows[:0], &evs[i%len(evs)], run)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkEngineLearn measures the likely policy's learning read: one
// usage event counted towards the timing model.
func BenchmarkEngineLearn(b *testing.B) {
	reqs, evs := benchWorkload(50_000, 6)
	idx := NewIndex()
	idx.Add(reqs...)
	cfg := DefaultMatchConfig()
	cfg.Ambiguity = PolicyLikely
	e, err := NewEngine(cfg, idx, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Learn(&evs[i%len(evs)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIndexAdd measures building the index, per agent request.
func BenchmarkIndexAdd(b *testing.B) {
	reqs, _ := benchWorkload(100_000, 0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(reqs) {
		idx := NewIndex()
		idx.Add(reqs...)
		idx.Running(nil, "sp-hot", t0, 0) // forces the lazy sort
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}
