package batch

import (
	"time"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/schemas"
)

// attributor attributes usage events as they arrive, counting each
// invocation once however many rows repeat it.
//
// Which copy of a repeated invocation wins must not depend on the order the
// files were read in, or two runs over the same data could disagree: the
// rule is enrich.CompareCopies (the one enrich.Dedup applies), ties to the
// copy seen first. A losing copy's
// rows are tombstoned and dropped by finish.
type attributor struct {
	engine   *enrich.Engine
	run      enrich.Run
	rows     rowChunks
	scratch  []schemas.Attribution
	seen     map[string]kept
	dups     int64
	earliest time.Time
	strs     interner
}

type kept struct {
	at          int64 // event_time, unix nanoseconds
	totalTokens int64
	inputTokens int64
	first, n    int32 // the invocation's rows
}

func newAttributor(e *enrich.Engine, run enrich.Run) *attributor {
	return &attributor{engine: e, run: run, seen: make(map[string]kept), strs: interner{}}
}

func (a *attributor) add(evs []schemas.UsageEvent) {
	for i := range evs {
		ev := &evs[i]
		a.strs.usage(ev)
		at := ev.EventTime.UnixNano()
		prev, dup := a.seen[ev.InvocationID]
		if dup {
			a.dups++
			if enrich.CompareCopies(at, ev.TotalTokens, prev.at, prev.totalTokens) >= 0 {
				continue
			}
			for k := prev.first; k < prev.first+prev.n; k++ {
				a.rows.at(int(k)).InvocationID = "" // tombstone
			}
		}
		a.scratch = a.engine.Attribute(a.scratch[:0], ev, a.run)
		first := a.rows.len()
		for k := range a.scratch {
			a.strs.row(&a.scratch[k])
			a.rows.push(&a.scratch[k])
		}
		a.seen[ev.InvocationID] = kept{at: at, totalTokens: ev.TotalTokens, inputTokens: ev.InputTokens, first: int32(first), n: int32(len(a.scratch))}
		if a.earliest.IsZero() || ev.EventTime.Before(a.earliest) {
			a.earliest = ev.EventTime
		}
	}
}

// finish drops tombstones, fills the report's counts and returns the rows.
func (a *attributor) finish(rep *Report) [][]schemas.Attribution {
	chunks := a.rows.compact()
	rep.Duplicates = a.dups
	rep.Invocations = int64(len(a.seen))
	for _, k := range a.seen {
		rep.AddTokens(&rep.TokensIn, k.totalTokens)
		rep.AddTokens(&rep.InputTokensIn, k.inputTokens)
	}
	prev := ""
	for _, rows := range chunks {
		for i := range rows {
			r := &rows[i]
			if r.InvocationID != prev {
				if r.MatchMethod == schemas.MethodUnattributed {
					rep.Unattributed++
				} else {
					rep.Attributed++
				}
				prev = r.InvocationID
			}
			rep.AddTokens(&rep.TokensOut, r.TotalTokens)
			rep.CostUSD += r.CostUSD
			rep.ByMethod[r.MatchMethod] += r.Weight
		}
		rep.OutputRows += int64(len(rows))
	}
	a.rows, a.seen = rowChunks{}, nil
	return chunks
}

// rowChunks stores rows in fixed-size chunks: a single slice of millions of
// rows would be copied whole each time append outgrew it, holding two or
// three copies at the peak.
type rowChunks struct{ chunks [][]schemas.Attribution }

const rowChunkSize = 1 << 16

func (c *rowChunks) len() int {
	if len(c.chunks) == 0 {
		return 0
	}
	return (len(c.chunks)-1)*rowChunkSize + len(c.chunks[len(c.chunks)-1])
}

func (c *rowChunks) push(r *schemas.Attribution) {
	if n := len(c.chunks); n == 0 || len(c.chunks[n-1]) == rowChunkSize {
		c.chunks = append(c.chunks, make([]schemas.Attribution, 0, rowChunkSize))
	}
	last := &c.chunks[len(c.chunks)-1]
	*last = append(*last, *r)
}

func (c *rowChunks) at(i int) *schemas.Attribution {
	return &c.chunks[i/rowChunkSize][i%rowChunkSize]
}

// compact drops tombstoned rows in place, chunk by chunk.
func (c *rowChunks) compact() [][]schemas.Attribution {
	out := c.chunks[:0]
	for _, ch := range c.chunks {
		kept := ch[:0]
		for i := range ch {
			if ch[i].InvocationID != "" {
				kept = append(kept, ch[i])
			}
		}
		clear(ch[len(kept):])
		if len(kept) > 0 {
			out = append(out, kept)
		}
	}
	return out
}

// interner shares the few distinct values of low-cardinality columns
// (workspace, endpoint, model, service principal, date) between rows: at
// millions of rows, a private copy per row is most of the run's memory.
type interner map[string]string

func (in interner) of(s string) string {
	if v, ok := in[s]; ok {
		return v
	}
	if len(in) > 1<<16 {
		return s // not low-cardinality after all: stop growing
	}
	in[s] = s
	return s
}

func (in interner) usage(ev *schemas.UsageEvent) {
	ev.AccountID = in.of(ev.AccountID)
	ev.WorkspaceID = in.of(ev.WorkspaceID)
	ev.EndpointID = in.of(ev.EndpointID)
	ev.EndpointName = in.of(ev.EndpointName)
	ev.DestinationModel = in.of(ev.DestinationModel)
	ev.Requester = in.of(ev.Requester)
	ev.Source = in.of(ev.Source)
}

func (in interner) row(r *schemas.Attribution) {
	r.EventDate = in.of(r.EventDate)
	r.EndUser = in.of(r.EndUser)
}
