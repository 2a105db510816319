package stream

import (
	"math"
	"time"
)

// source is what a partition knows of one input partition.
type source struct {
	claim    int64 // every record still to come has a stamp ≥ claim (unix millis)
	received int64 // source offset after the last record received
	applied  int64 // source offset after the last record applied
}

type buffered struct {
	rec   Record
	stamp int64 // unix millis
	at    int64 // when the record says it happened, unix nanos
}

// arrival is when a record's row was written, as the record itself tells:
// a usage row when its call ended, an agent log when its request ended.
func arrival(r *Record) int64 {
	if r.Kind == KindAgent {
		return r.Agent.End().UnixNano()
	}
	return r.Usage.EventTime.UnixNano() + r.Usage.LatencyMS*int64(time.Millisecond)
}

// bufHeap orders waiting records by (stamp, arrival, source, source offset):
// an order fixed by the records and their input partitions alone, whatever
// the interleaving of the sources in the keyed partition. Arrival breaks
// ties among records stamped in the same millisecond, which batching
// producers make common, in the order the rows were written.
type bufHeap []*buffered

// The heap is typed rather than container/heap's: Less and Swap through
// an interface were a tenth of the join's CPU. The order is total (source
// and source offset tell any two records apart), so which records come out
// when does not depend on how the heap is laid out.
func (h bufHeap) less(i, j int) bool {
	a, b := h[i], h[j]
	if a.stamp != b.stamp {
		return a.stamp < b.stamp
	}
	if a.at != b.at {
		return a.at < b.at
	}
	if a.rec.Source != b.rec.Source {
		return a.rec.Source < b.rec.Source
	}
	return a.rec.SourceOffset < b.rec.SourceOffset
}

func (h *bufHeap) push(b *buffered) {
	*h = append(*h, b)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if !s.less(i, parent) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *bufHeap) pop() *buffered {
	s := *h
	top, n := s[0], len(s)-1
	s[0], s[n] = s[n], nil
	s = s[:n]
	*h = s
	for i := 0; ; {
		least, l := i, 2*i+1
		if l < n && s.less(l, least) {
			least = l
		}
		if r := l + 1; r < n && s.less(r, least) {
			least = r
		}
		if least == i {
			break
		}
		s[i], s[least] = s[least], s[i]
		i = least
	}
	return top
}

func stampOf(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return t.UnixMilli()
}

// Process takes one record of the keyed partition, in offset order, and
// appends the outputs it causes to dst. A record at or below an offset
// already processed (a redelivery) is ignored, and so is a usage or agent
// record whose source offset was already received (a re-keying stage that
// restarted forwards some records twice).
//
// Usage and agent records are not applied on arrival: they wait until every
// source has claimed past their stamp, and are then applied in (stamp,
// arrival, source, source offset) order (bufHeap). That order, and so every answer and its
// version, depends only on the input partitions, never on how the sources
// interleaved in the keyed partition.
func (p *Partition) Process(dst []Output, r *Record) []Output {
	if p.started && r.Offset < p.next {
		return dst
	}
	p.started = true
	p.next = r.Offset + 1
	p.trigger = r.Offset
	// Below the snapshot a replay only refills the buffer: everything else
	// these records did is in the snapshot's state.
	refill := r.Offset < p.snapAt
	switch r.Kind {
	case KindUsage, KindAgent:
		s := p.source(r.Source)
		if r.SourceOffset < s.received {
			p.stats.Redelivered++
			return dst
		}
		s.received = r.SourceOffset + 1
		stamp := stampOf(r.Stamp)
		// The source forwards in offset order and its stamps never
		// decrease: this record is itself a claim.
		s.claim = max(s.claim, stamp)
		if !refill && stamp < p.pos {
			// Every source had claimed past this record when it arrived
			// (a producer slower than the claims allowed for): it is
			// applied at once, at the current position.
			p.stats.Clamped++
			dst = p.apply(dst, r, p.pos)
			return p.drain(dst)
		}
		b := &buffered{rec: *r, stamp: stamp, at: arrival(r)}
		p.buf.push(b)
		p.bufLive.add(r.Offset)
	case KindProgress:
		pr := &r.Progress
		s := p.source(pr.Source)
		s.claim = max(s.claim, stampOf(pr.Time))
		p.nsrc = max(p.nsrc, pr.Sources)
	case KindMarker:
		if !refill {
			p.takeSnapshot(r.Offset)
		}
	}
	if refill {
		return dst
	}
	return p.drain(dst)
}

func (p *Partition) source(id uint32) *source {
	s := p.srcs[id]
	if s == nil {
		s = &source{claim: math.MinInt64}
		p.srcs[id] = s
	}
	return s
}

// frontier is the least claim over all sources: every record with a lower
// stamp has arrived. ok is false until every source has been heard from.
func (p *Partition) frontier() (int64, bool) {
	if p.nsrc == 0 || uint32(len(p.srcs)) < p.nsrc {
		return 0, false
	}
	f := int64(math.MaxInt64)
	for _, s := range p.srcs {
		f = min(f, s.claim)
	}
	return f, true
}

// drain applies, in merged order, the buffered records and idle timers
// that lie below the frontier.
func (p *Partition) drain(dst []Output) []Output {
	f, ok := p.frontier()
	if !ok {
		return dst
	}
	for {
		timer := p.lastData + int64(p.cfg.Idle/time.Millisecond)
		fire := p.armed && timer <= f
		if len(p.buf) > 0 && p.buf[0].stamp < f && (!fire || p.buf[0].stamp < timer) {
			b := p.buf.pop()
			p.bufLive.remove(b.rec.Offset)
			dst = p.apply(dst, &b.rec, b.stamp)
			continue
		}
		if !fire {
			return dst
		}
		// The sources moved Idle past the last record without bringing this
		// partition another: release what waits, as if the watermark had
		// reached the latest event seen plus the grace period.
		p.pos, p.armed = max(p.pos, timer), false
		p.stats.Timers++
		if len(p.pending) > 0 {
			p.advance(p.maxSeen + int64(p.cfg.Grace))
		}
		dst = p.release(dst)
		p.evict()
	}
}

// apply runs one record through the join, at merged position stamp.
func (p *Partition) apply(dst []Output, r *Record, stamp int64) []Output {
	s := p.srcs[r.Source]
	// Records of one stamp are applied together, in an order of their own:
	// between drains, what a source has had applied is a prefix of it.
	s.applied = max(s.applied, r.SourceOffset+1)
	p.pos = max(p.pos, stamp)
	p.lastData, p.armed = p.pos, true
	switch r.Kind {
	case KindUsage:
		p.stats.Usage++
		dst = p.usage(dst, r, r.Offset)
	case KindAgent:
		p.stats.Agents++
		dst = p.agent(dst, r, r.Offset)
	}
	dst = p.release(dst)
	p.evict()
	return dst
}
