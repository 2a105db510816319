package stream

import (
	"container/heap"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"time"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/schemas"
)

// Config configures the join of one partition.
type Config struct {
	Match  enrich.MatchConfig
	Prices *enrich.PriceList // nil: enrich.DefaultPriceList
	Org    *enrich.Directory // nil: everyone unassigned
	// Served names legacy usage rows' model; nil leaves them unpriced.
	Served *enrich.ServedEntities
	// Grace is how far the watermark must pass a usage event's event_time
	// before the event is attributed: how long it waits for its agent request.
	Grace time.Duration
	// Horizon is how long, in event time, an attributed event stays open for
	// restatement by agent requests that arrive late.
	Horizon time.Duration
	// AgentRetention is how long, in usage event time, agent requests are
	// held behind the watermark, so that usage that arrives later than
	// Horizon (answered at once, not held open) still finds its request; a
	// backfill of one usage source after another is the common case. Held
	// agent records stay in the keyed log's replay range. 0 means Horizon.
	AgentRetention time.Duration
	// Idle is how long, in message-timestamp time, the merged sources may
	// bring a partition no record while events wait: then the watermark
	// moves to the latest event time seen plus Grace, releasing them. It is
	// a timer in the merged order, so a replay fires it at the same place.
	Idle time.Duration
	// RunID is stamped on every row.
	RunID string
	// Clock stamps ProcessedAt; nil means time.Now.
	Clock func() time.Time
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if c.Grace <= 0 {
		return fmt.Errorf("grace %s: must be positive, e.g. 2m", c.Grace)
	}
	if c.Horizon < c.Grace {
		return fmt.Errorf("horizon %s: must be at least the grace period %s", c.Horizon, c.Grace)
	}
	if c.AgentRetention != 0 && c.AgentRetention < c.Horizon {
		return fmt.Errorf("agent retention %s: must be at least the horizon %s", c.AgentRetention, c.Horizon)
	}
	if c.Idle < time.Millisecond {
		return fmt.Errorf("idle %s: must be at least 1ms, e.g. 2s", c.Idle)
	}
	if c.Match.Ambiguity == enrich.PolicyLikely {
		// Its model is learned from the whole window before any call is
		// matched, which a stream never has.
		return fmt.Errorf("match.ambiguity: %s needs a batch run over the window; the stream takes %s, %s or %s", enrich.PolicyLikely, enrich.PolicyUnattributed, enrich.PolicySplit, enrich.PolicyNearest)
	}
	return c.Match.Validate()
}

// Output is one answer for one invocation: all its rows (several under the
// split policy), carrying one version.
type Output struct {
	Rows []schemas.Attribution
	// Restatement marks a changed answer for an invocation attributed before.
	Restatement bool
	// SourceTime is when the record that caused this output was produced.
	SourceTime time.Time
}

// Stats describes a partition's state and what it did.
type Stats struct {
	Watermark time.Time
	// Position is the stamp up to which the sources have been merged.
	Position      time.Time
	Buffered      int // records waiting in the merge for slower sources
	Pending       int // usage events waiting for the watermark
	Open          int // attributed events still open for restatement
	AgentRequests int // agent requests held for matching
	LiveOffsets   int // distinct records the state depends on

	Usage, Agents int64 // records applied by kind
	Timers        int64 // idle timers fired
	Redelivered   int64 // records of a source offset already received
	// Clamped counts records that arrived after every source had claimed
	// past their stamp: the only records whose place in the merged order,
	// and so whose answers, can depend on timing. See doc.go.
	Clamped    int64
	Duplicates int64 // usage events whose invocation id was already held
	TooLate    int64 // usage events older than the horizon on arrival
	NoKey      int64 // agent requests without any id, which cannot be held
	// TimeDisagreements counts agent requests whose sources disagree on
	// their times beyond match.skew (enrich.Index.TimeDisagreements).
	TimeDisagreements int64
	Emitted           int64 // first answers
	Restated          int64 // changed answers
	Suppressed        int64 // answers recomputed during a replay below Checkpoint.Next
}

const noWM = math.MinInt64

// Partition joins the records of one keyed partition. It is not safe for
// concurrent use; each partition gets its own.
type Partition struct {
	cfg    Config
	idx    *enrich.Index
	engine *enrich.Engine
	// traceKeys and requestKeys are the match config's tag keys, prepared.
	traceKeys, requestKeys []enrich.TagKey
	seed                   maphash.Seed

	wm          int64 // watermark, unix nanos, noWM before the first record
	next        int64 // offset after the last record processed
	replayUntil int64 // outputs caused by records below this are suppressed
	snapAt      int64 // records below this only refill the merge buffer
	trigger     int64 // offset of the record being processed
	started     bool

	// The merge: records wait in buf until every source has claimed past
	// their stamp, then are applied in (stamp, source, source offset) order.
	buf      bufHeap
	bufLive  liveSet // offsets of buffered records
	srcs     map[uint32]*source
	nsrc     uint32 // how many sources there are; 0 before any reported
	pos      int64  // stamp of the last record or timer applied, unix millis
	lastData int64  // stamp of the last record applied
	armed    bool   // the idle timer fires at lastData + Idle

	pending pendingHeap
	byID    map[string]*entry    // invocation id → pending or open event
	open    map[string]*openList // service principal → open events by time
	idRefs  map[string][]*entry  // id tag value → open events carrying it
	agents  map[string]*agentTrack
	agentsQ trackHeap // agent tracks by end time
	live    liveSet

	snaps   []snapshot // resume points, oldest first
	maxSeen int64      // latest usage event time seen

	lastEvict int64 // agent eviction runs when its cut crosses a new evictStep
	lastOpen  int64 // open-event eviction runs when its cut crosses a new openStep

	stats   Stats
	scratch []schemas.Attribution
	cands   []*entry
	mark    uint64
}

type entry struct {
	ev      schemas.UsageEvent
	t       int64 // event_time, unix nanos
	offset  int64
	src     time.Time
	open    bool
	hash    uint64 // of the last answer, without version and run columns
	byTime  bool   // the last answer depends on which requests were running
	version int64
	anchors []int64 // offsets of the agent records the last answer used
	ids     []string
	mark    uint64
}

// agentTrack follows the records of one agent request key: the first one's
// offset must stay live while the request is held.
type agentTrack struct {
	key    string
	first  int64 // offset of the request's first record
	end    int64
	ids    [3]string // agent request id, client request id, normalised trace id
	heapAt int
}

// NewPartition returns the join state for a partition that resumes at from
// (the zero Checkpoint starts at offset 0 with nothing held).
func NewPartition(cfg Config, from Checkpoint) (*Partition, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	idx := enrich.NewIndex()
	idx.SetMergeTolerance(cfg.Match.Skew)
	engine, err := enrich.NewEngine(cfg.Match, idx, cfg.Prices, cfg.Org)
	if err != nil {
		return nil, err
	}
	if cfg.Served != nil {
		engine.SetServedEntities(cfg.Served)
	}
	p := &Partition{
		cfg: cfg, idx: idx, engine: engine, seed: maphash.MakeSeed(),
		traceKeys: enrich.NewTagKeys(cfg.Match.TraceTagKeys), requestKeys: enrich.NewTagKeys(cfg.Match.RequestTagKeys),
		wm: noWM, next: from.Resume, replayUntil: from.Next, snapAt: from.Snapshot,
		byID:     make(map[string]*entry),
		open:     make(map[string]*openList),
		idRefs:   make(map[string][]*entry),
		agents:   make(map[string]*agentTrack),
		live:     newLiveSet(),
		bufLive:  newLiveSet(),
		srcs:     make(map[uint32]*source, len(from.Sources)),
		nsrc:     from.NumSources,
		maxSeen:  noWM,
		pos:      math.MinInt64,
		lastData: math.MinInt64,
	}
	if !from.fresh() {
		p.wm, p.maxSeen, p.pos, p.lastData, p.armed = from.Watermark, from.MaxSeen, from.Position, from.LastData, from.Armed
	}
	for _, s := range from.Sources {
		p.srcs[s.Source] = &source{claim: s.Claim, received: s.Applied, applied: s.Applied}
	}
	if p.wm != noWM {
		// Evictions run when the watermark crosses a step; starting from the
		// steps the watermark had reached makes a replay evict exactly where
		// the original run did.
		p.lastOpen = p.wm - int64(cfg.Horizon)
		p.lastEvict = p.agentCut()
	}
	// Until the replay reaches the snapshot, a checkpoint is the one it started from.
	p.snaps = []snapshot{{off: from.Snapshot, minBuf: from.Resume, cp: p.state()}}
	return p, nil
}

func (p *Partition) advance(t int64) {
	if t > p.wm {
		p.wm = t
	}
}

// observe is a usage event's event time. The records come in the merged
// order, so the watermark they build is the same in every run.
//
// Agent requests do not move the watermark. Agent logs often run ahead of
// usage (a backfill sends them first, or an agent's log is consumed faster):
// had their end times moved it, the usage events they were logged for would
// arrive "too late" and the requests would already be evicted. The usage side
// alone says how far event time has got.
func (p *Partition) observe(t int64) { p.advance(t) }

// emitting reports whether outputs caused now are new: a replay suppresses
// those caused by records whose outputs were already durable.
func (p *Partition) emitting() bool { return p.trigger >= p.replayUntil }

func (p *Partition) usage(dst []Output, r *Record, off int64) []Output {
	t := r.Usage.EventTime.UnixNano()
	p.maxSeen = max(p.maxSeen, t)
	if _, dup := p.byID[r.Usage.InvocationID]; dup {
		p.stats.Duplicates++
		p.observe(t)
		return dst
	}
	e := &entry{ev: r.Usage, t: t, offset: off, src: r.SourceTime}
	switch {
	case p.wm != noWM && t < p.wm-int64(p.cfg.Horizon):
		// Too late to be held open: answer now, under a version below any
		// the normal path gives (those are watermarks ≥ event_time + grace),
		// so a duplicate of an invocation answered and forgotten long ago
		// cannot overwrite that answer.
		p.stats.TooLate++
		dst = p.answer(dst, e, t/1e3)
	case t+int64(p.cfg.Grace) <= p.wm:
		// Late but within the horizon: answer now and hold it open.
		p.hold(e)
		dst = p.answer(dst, e, p.version())
		p.addOpen(e)
	default:
		p.hold(e)
		heap.Push(&p.pending, e)
	}
	p.observe(t)
	return dst
}

func (p *Partition) hold(e *entry) {
	p.byID[e.ev.InvocationID] = e
	p.live.add(e.offset)
}

// version is the version of an answer given now: the watermark in
// microseconds, which a replay reproduces exactly.
func (p *Partition) version() int64 { return p.wm / 1e3 }

func (p *Partition) agent(dst []Output, r *Record, off int64) []Output {
	a := r.Agent
	end := a.End().UnixNano()
	key := a.Key()
	if key == "" || a.StartTime.IsZero() || a.GatewayLinkID != "" {
		// A gateway span's link is a batch join path only: its usage row
		// may already be answered when it comes, and nothing would evict it.
		p.stats.NoKey++
		return dst
	}
	ids := [3]string{a.AgentRequestID, a.ClientRequestID, enrich.NormalizeTraceID(a.TraceID)}
	// What the index held for this request before, if anything: a merge
	// may move its times (a payload row overrides a trace's), and events
	// that only the old interval covered need their answers redone too.
	var before schemas.AgentRequest
	var had bool
	if held := p.held(ids); held != nil {
		before, had = *held, true
	}
	p.idx.Add(a)
	tr := p.agents[key]
	if tr == nil {
		tr = &agentTrack{key: key, first: off, end: end, ids: ids}
		p.agents[key] = tr
		p.live.add(off)
		heap.Push(&p.agentsQ, tr)
	} else {
		fill := func(dst *string, v string) {
			if *dst == "" {
				*dst = v
			}
		}
		for i, id := range ids {
			fill(&tr.ids[i], id)
		}
		if end > tr.end {
			tr.end = end
			heap.Fix(&p.agentsQ, tr.heapAt)
		}
	}
	if held := p.held(tr.ids); held != nil {
		// The old interval matters only where the merge moved it.
		var moved *schemas.AgentRequest
		if had && (before.ServicePrincipal != held.ServicePrincipal || !before.StartTime.Equal(held.StartTime) || !before.End().Equal(held.End())) {
			moved = &before
		}
		dst = p.restate(dst, held, moved, r.SourceTime)
	}
	return dst
}

// held returns the index's (possibly merged) entry for a request's ids.
func (p *Partition) held(ids [3]string) *schemas.AgentRequest {
	for _, id := range ids[:2] {
		if r, ok := p.idx.ByRequestID(id); ok {
			return r
		}
	}
	if r, ok := p.idx.ByTraceID(ids[2]); ok {
		return r
	}
	return nil
}

// restate re-attributes the open events an agent request could change:
// those its interval covers now, those it covered before this merge moved
// it (before; nil when nothing moved), and those whose tags name it.
func (p *Partition) restate(dst []Output, req, before *schemas.AgentRequest, src time.Time) []Output {
	p.mark++
	cands := p.cands[:0]
	margin := p.margin()
	for _, r := range [...]*schemas.AgentRequest{req, before} {
		if r == nil || !p.cfg.Match.TimeWindow {
			continue
		}
		l := p.open[r.ServicePrincipal]
		if l == nil {
			continue
		}
		for _, e := range l.between(r.StartTime.UnixNano()-margin, r.End().UnixNano()+margin) {
			// An answer that came from an id does not depend on which other
			// requests ran at the time; the id lookup below finds it if
			// this request is the one it names.
			if e.byTime && e.mark != p.mark {
				e.mark = p.mark
				cands = append(cands, e)
			}
		}
	}
	for _, id := range [...]string{req.AgentRequestID, req.ClientRequestID, enrich.NormalizeTraceID(req.TraceID)} {
		if id == "" {
			continue
		}
		for _, e := range p.idRefs[id] {
			if e.mark != p.mark {
				e.mark = p.mark
				cands = append(cands, e)
			}
		}
	}
	for _, e := range cands {
		v := max(e.version+1, p.version())
		rows := p.engine.Attribute(p.scratch[:0], &e.ev, p.run(v))
		p.scratch = rows
		h := p.hash(rows)
		if h == e.hash {
			continue
		}
		p.stats.Restated++
		e.hash, e.version, e.byTime = h, v, timeSensitive(rows)
		p.setAnchors(e, rows)
		dst = p.out(dst, rows, true, src)
	}
	clear(cands)
	p.cands = cands[:0]
	return dst
}

// timeSensitive reports whether an answer came from time-window matching,
// or found no request by time, so that another request running at the same
// time could change it.
func timeSensitive(rows []schemas.Attribution) bool {
	switch r := rows[0]; r.MatchMethod {
	case schemas.MethodTimeWindow, schemas.MethodTimeWindowSplit, schemas.MethodTimeWindowNearest:
		return true
	case schemas.MethodUnattributed:
		return r.Reason == enrich.ReasonNoCandidate || r.Reason == enrich.ReasonAmbiguous
	default:
		return false
	}
}

func (p *Partition) run(version int64) enrich.Run {
	return enrich.Run{ID: p.cfg.RunID, Version: version, ProcessedAt: p.cfg.Clock()}
}

// answer gives an event its first answer; a held event keeps the agent
// records the answer used live.
func (p *Partition) answer(dst []Output, e *entry, version int64) []Output {
	rows := p.engine.Attribute(p.scratch[:0], &e.ev, p.run(version))
	p.scratch = rows
	e.hash, e.version, e.byTime = p.hash(rows), version, timeSensitive(rows)
	if p.byID[e.ev.InvocationID] == e {
		p.setAnchors(e, rows)
	}
	p.stats.Emitted++
	return p.out(dst, rows, false, e.src)
}

func (p *Partition) out(dst []Output, rows []schemas.Attribution, restated bool, src time.Time) []Output {
	if !p.emitting() {
		p.stats.Suppressed++
		return dst
	}
	return append(dst, Output{Rows: slices.Clone(rows), Restatement: restated, SourceTime: src})
}

// answerKey holds the columns of an answer that can change between two
// attributions of the same event; the rest come from the event itself.
type answerKey struct {
	endUser, method, reason, agentEndpoint, traceID, agentRequestID, session, team, costCenter, priceVersion string
	confidence, weight, cost                                                                                 float64
	candidates                                                                                               int32
	tokens                                                                                                   [6]int64
}

// hash identifies an answer regardless of version and run columns.
func (p *Partition) hash(rows []schemas.Attribution) uint64 {
	var h uint64
	for i := range rows {
		r := &rows[i]
		k := answerKey{r.EndUser, r.MatchMethod, r.Reason, r.AgentEndpoint, r.TraceID, r.AgentRequestID, r.Session, r.Team, r.CostCenter, r.PriceListVersion,
			r.MatchConfidence, r.Weight, r.CostUSD, r.Candidates,
			[6]int64{r.InputTokens, r.OutputTokens, r.TotalTokens, r.CacheReadInputTokens, r.CacheCreationInputTokens, r.OutputReasoningTokens}}
		h = h*1099511628211 ^ maphash.Comparable(p.seed, k)
	}
	return h
}

// setAnchors keeps the records of the agent requests an answer used live
// while the event is: a replay must see them to reproduce the answer, even
// if the index would by then have let them go.
func (p *Partition) setAnchors(e *entry, rows []schemas.Attribution) {
	old := e.anchors
	e.anchors = nil
	for i := range rows {
		for _, id := range [...]string{rows[i].AgentRequestID, rows[i].TraceID} {
			if tr := p.agents[id]; id != "" && tr != nil && !slices.Contains(e.anchors, tr.first) {
				e.anchors = append(e.anchors, tr.first)
				p.live.add(tr.first)
			}
		}
	}
	for _, off := range old {
		p.live.remove(off)
	}
}

// release answers the pending events the watermark has passed by the grace period.
func (p *Partition) release(dst []Output) []Output {
	for len(p.pending) > 0 && p.pending[0].t+int64(p.cfg.Grace) <= p.wm {
		e := heap.Pop(&p.pending).(*entry)
		dst = p.answer(dst, e, p.version())
		p.addOpen(e)
	}
	return dst
}

func (p *Partition) addOpen(e *entry) {
	e.open = true
	l := p.open[e.ev.Requester]
	if l == nil {
		l = &openList{}
		p.open[e.ev.Requester] = l
	}
	l.insert(e)
	e.ids = p.tagIDs(e.ev.RequestTags)
	for _, id := range e.ids {
		p.idRefs[id] = append(p.idRefs[id], e)
	}
}

// tagIDs lists the agent ids an event's tags carry, as the index spells them.
func (p *Partition) tagIDs(tags map[string]string) []string {
	var ids []string
	r := enrich.ReadTags(tags, p.cfg.Match.ExactTagKeys)
	for _, k := range p.traceKeys {
		if v := enrich.NormalizeTraceID(r.Value(k)); v != "" && !slices.Contains(ids, v) {
			ids = append(ids, v)
		}
	}
	for _, k := range p.requestKeys {
		if v := r.Value(k); v != "" && !slices.Contains(ids, v) {
			ids = append(ids, v)
		}
	}
	return ids
}

// evictStep spaces out agent eviction, which walks the whole index. It is
// keyed to the watermark, not to record counts, so that a replay evicts at
// the same points as the original run.
const evictStep = int64(10 * time.Second)

// openStep spaces out the eviction of open events, which visits every
// service principal of the partition.
const openStep = int64(time.Second)

func (p *Partition) evict() {
	if p.wm == noWM {
		return
	}
	cut := p.wm - int64(p.cfg.Horizon)
	if cut/openStep != p.lastOpen/openStep {
		p.lastOpen = cut
		for sp, l := range p.open {
			for {
				e := l.first()
				if e == nil || e.t >= cut {
					break
				}
				l.popFirst()
				p.forget(e)
			}
			if l.len() == 0 {
				delete(p.open, sp)
			}
		}
	}
	acut := p.agentCut()
	if acut/evictStep == p.lastEvict/evictStep {
		return
	}
	p.lastEvict = acut
	if len(p.agentsQ) == 0 || p.agentsQ[0].end >= acut {
		return
	}
	p.idx.Evict(time.Unix(0, acut))
	for len(p.agentsQ) > 0 && p.agentsQ[0].end < acut {
		tr := p.agentsQ[0]
		if r := p.held(tr.ids); r != nil && r.End().UnixNano() >= acut {
			// Merged into an entry that lives longer.
			tr.end = r.End().UnixNano()
			heap.Fix(&p.agentsQ, 0)
			continue
		}
		heap.Pop(&p.agentsQ)
		delete(p.agents, tr.key)
		p.live.remove(tr.first)
	}
}

// agentCut is the end time below which agent requests are let go: none is
// dropped while an open event, or one that arrives up to AgentRetention
// late, could still match it in time (its end plus skew and crowd margin).
func (p *Partition) agentCut() int64 {
	return p.wm - int64(max(p.cfg.Horizon, p.cfg.AgentRetention)) - p.margin()
}

func (p *Partition) margin() int64 { return int64(p.cfg.Match.Skew + p.cfg.Match.CrowdMargin) }

func (p *Partition) forget(e *entry) {
	delete(p.byID, e.ev.InvocationID)
	p.live.remove(e.offset)
	for _, off := range e.anchors {
		p.live.remove(off)
	}
	for _, id := range e.ids {
		refs := p.idRefs[id]
		if i := slices.Index(refs, e); i >= 0 {
			refs[i] = refs[len(refs)-1]
			refs[len(refs)-1] = nil
			refs = refs[:len(refs)-1]
		}
		if len(refs) == 0 {
			delete(p.idRefs, id)
		} else {
			p.idRefs[id] = refs
		}
	}
}

// Stats returns the partition's counters and state sizes.
func (p *Partition) Stats() Stats {
	s := p.stats
	if p.wm != noWM {
		s.Watermark = time.Unix(0, p.wm).UTC()
	}
	if p.pos != math.MinInt64 {
		s.Position = time.UnixMilli(p.pos).UTC()
	}
	s.Buffered = len(p.buf)
	s.Pending = len(p.pending)
	s.Open = len(p.byID) - len(p.pending)
	s.AgentRequests = p.idx.Len()
	s.TimeDisagreements = p.idx.TimeDisagreements()
	s.LiveOffsets = p.live.len()
	return s
}

// Watermark is the partition's watermark (zero before the first record).
func (p *Partition) Watermark() time.Time {
	if p.wm == noWM {
		return time.Time{}
	}
	return time.Unix(0, p.wm).UTC()
}

// Next is the offset after the last record processed.
func (p *Partition) Next() int64 { return p.next }

// pendingHeap orders waiting events by event time, then offset, so release
// order depends only on the log.
type pendingHeap []*entry

func (h pendingHeap) Len() int { return len(h) }
func (h pendingHeap) Less(i, j int) bool {
	if h[i].t != h[j].t {
		return h[i].t < h[j].t
	}
	return h[i].offset < h[j].offset
}
func (h pendingHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pendingHeap) Push(x any)   { *h = append(*h, x.(*entry)) }
func (h *pendingHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

type trackHeap []*agentTrack

func (h trackHeap) Len() int           { return len(h) }
func (h trackHeap) Less(i, j int) bool { return h[i].end < h[j].end }
func (h trackHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapAt, h[j].heapAt = i, j
}
func (h *trackHeap) Push(x any) {
	t := x.(*agentTrack)
	t.heapAt = len(*h)
	*h = append(*h, t)
}
func (h *trackHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}

// openList holds one service principal's open events ordered by event time
// and offset. Events are answered nearly in time order, so inserts land at
// or near the end and evictions take from the front.
type openList struct {
	evs  []*entry
	head int
}

func (l *openList) len() int { return len(l.evs) - l.head }

func (l *openList) first() *entry {
	if l.head < len(l.evs) {
		return l.evs[l.head]
	}
	return nil
}

func (l *openList) popFirst() {
	l.evs[l.head] = nil
	l.head++
	if l.head > 1024 && l.head > len(l.evs)/2 {
		n := copy(l.evs, l.evs[l.head:])
		clear(l.evs[n:])
		l.evs = l.evs[:n]
		l.head = 0
	}
}

func less(a, b *entry) bool {
	if a.t != b.t {
		return a.t < b.t
	}
	return a.offset < b.offset
}

func (l *openList) insert(e *entry) {
	i := len(l.evs)
	for i > l.head && less(e, l.evs[i-1]) {
		i--
	}
	l.evs = slices.Insert(l.evs, i, e)
}

// between returns the events with lo ≤ t ≤ hi.
func (l *openList) between(lo, hi int64) []*entry {
	evs := l.evs[l.head:]
	i, _ := slices.BinarySearchFunc(evs, lo, func(e *entry, t int64) int {
		if e.t < t {
			return -1
		}
		return 1
	})
	j := i
	for j < len(evs) && evs[j].t <= hi {
		j++
	}
	return evs[i:j]
}
