package stream

import (
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/internal/synth"
	"github.com/obolus/obolus/schemas"
)

var (
	benchOnce sync.Once
	benchW    *workload
)

func benchWorkload(b *testing.B) *workload {
	benchOnce.Do(func() {
		benchW = genWorkload(b, synth.Config{Seed: 11, AgentRequests: 8000, Duration: 12 * time.Hour})
	})
	return benchW
}

// BenchmarkJoin streams a generated workload through one partition and
// reports records/s, against the batch engine attributing the same events
// with every agent request known up front (the ceiling: the join adds the
// waiting, holding and restating around the same engine).
func BenchmarkJoin(b *testing.B) {
	w := benchWorkload(b)
	cfg := streamConfig()
	batch := batchRate(b, w, cfg)
	recs := sourced(w.recs, 50, 1000)
	b.ResetTimer()
	start := time.Now()
	var outs []Output
	for range b.N {
		p, _ := NewPartition(cfg, Checkpoint{})
		for i := range recs {
			outs = p.Process(outs[:0], &recs[i])
		}
	}
	rate := float64(b.N*len(w.usage)) / time.Since(start).Seconds()
	b.ReportMetric(rate, "usage_events/s")
	b.ReportMetric(rate/batch, "x_of_batch_engine")
}

// batchRate is the batch engine's events/s over the workload's usage, with
// the index built beforehand.
func batchRate(b *testing.B, w *workload, cfg Config) float64 {
	idx := enrich.NewIndex()
	idx.Add(w.agents...)
	engine, _ := enrich.NewEngine(cfg.Match, idx, cfg.Prices, cfg.Org)
	events, _ := enrich.Dedup(slices.Clone(w.usage))
	var rows []schemas.Attribution
	start := time.Now()
	for i := range events {
		rows = engine.Attribute(rows[:0], &events[i], enrich.Run{})
	}
	return float64(len(events)) / time.Since(start).Seconds()
}

// BenchmarkStateMemory measures the heap held per pending usage event, per
// open (attributed, restatable) event and per agent request, from events of
// a generated workload.
func BenchmarkStateMemory(b *testing.B) {
	w := benchWorkload(b)
	var usage, agents []Record
	for _, r := range w.recs {
		switch r.Kind {
		case KindUsage:
			usage = append(usage, r)
		case KindAgent:
			agents = append(agents, r)
		}
	}
	const n = 20000
	usage, agents = usage[:min(n, len(usage))], agents[:min(n, len(agents))]
	// Shift every record into one minute so nothing is released or evicted.
	base := usage[0].Usage.EventTime
	for i := range usage {
		usage[i].Usage.EventTime = base.Add(time.Duration(i) * time.Millisecond)
	}
	for i := range agents {
		agents[i].Agent.StartTime = base.Add(time.Duration(i) * time.Millisecond)
		agents[i].Agent.DurationMS = 1000
	}
	cfg := streamConfig()
	var pending, open, agent float64
	for range b.N {
		pending = heapPer(func() any {
			p, _ := NewPartition(cfg, Checkpoint{})
			feed(p, usage)
			return p
		}, len(usage))
		open = heapPer(func() any {
			p, _ := NewPartition(cfg, Checkpoint{})
			feed(p, usage)
			idle := Record{Kind: KindProgress, Offset: int64(len(usage)) + 1, Progress: Progress{Sources: 1, Time: base.Add(time.Hour)}}
			p.Process(nil, &idle)
			if s := p.Stats(); s.Open+int(s.Duplicates) != len(usage) {
				b.Fatalf("%d open, want %d", s.Open, len(usage))
			}
			return p
		}, len(usage))
		agent = heapPer(func() any {
			p, _ := NewPartition(cfg, Checkpoint{})
			feed(p, agents)
			return p
		}, len(agents))
	}
	b.ReportMetric(pending, "B/pending_event")
	b.ReportMetric(open, "B/open_event")
	b.ReportMetric(agent, "B/agent_request")
}

// feed applies records as one source's, all stamped at base, then claims
// base: everything is applied, no idle timer fires.
func feed(p *Partition, recs []Record) {
	var base time.Time
	for i := range recs {
		r := recs[i]
		r.Offset, r.SourceOffset = int64(i), int64(i)
		base = r.Usage.EventTime
		if r.Kind == KindAgent {
			base = r.Agent.StartTime
		}
		r.Stamp = base
		p.Process(nil, &r)
	}
	claim := Record{Kind: KindProgress, Offset: int64(len(recs)), Progress: Progress{Sources: 1, Time: base.Add(time.Millisecond)}}
	p.Process(nil, &claim)
}

// heapPer returns the live heap that build's result holds, per item.
func heapPer(build func() any, items int) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	keep := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(keep)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(items)
}
