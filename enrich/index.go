package enrich

import (
	"iter"
	"sort"
	"time"

	"github.com/obolus/obolus/schemas"
)

// Index holds agent requests for lookup by id and by service principal and
// time. Requests that describe the same agent request (a payload row and the
// MLflow trace of the same call) are merged into one entry, by a rule that
// does not depend on the order they are added in (see Add).
//
// An Index is not safe for concurrent use.
type Index struct {
	held     heldRequests
	byKey    map[string]int32 // AgentRequest.Key() → position
	byTrace  map[string]int32 // normalised trace id → position
	byReqID  map[string]int32 // agent request id and client request id → position
	timeline map[string]*timeline
	// links are gateway spans' links: usage link id → normalised trace id.
	links map[string]string
	size  int

	tolerance     time.Duration
	disagreements int64
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{
		byKey:    make(map[string]int32),
		byTrace:  make(map[string]int32),
		byReqID:  make(map[string]int32),
		timeline: make(map[string]*timeline),
		links:    make(map[string]string),
	}
}

// Len is the number of distinct agent requests held.
func (ix *Index) Len() int { return ix.size }

// Add indexes agent requests. A request whose key, trace id or request id is
// already held is merged into the held entry, so that the result does not
// depend on the order requests are added in:
//   - each field takes the value of the most trusted source that has one
//     (schemas.SourceRank: payload row, then trace), and among sources of
//     one rank the smallest value;
//   - the times (start and duration) come from the most trusted source that
//     has a start; sources of one rank give the earliest start and the
//     longest duration.
//
// Requests whose sources disagree on the times by more than the merge
// tolerance are counted (TimeDisagreements).
func (ix *Index) Add(reqs ...schemas.AgentRequest) {
	for i := range reqs {
		ix.add(&reqs[i])
	}
}

// SetMergeTolerance sets how far two observations of one request may differ
// in start or end before TimeDisagreements counts the request; callers use
// the match skew.
func (ix *Index) SetMergeTolerance(d time.Duration) { ix.tolerance = d }

// TimeDisagreements counts the requests whose sources disagreed on start or
// end by more than the merge tolerance.
func (ix *Index) TimeDisagreements() int64 { return ix.disagreements }

// provenance records, per merged entry, the rank of the source each field
// and the times came from.
type provenance struct {
	fields    [numMergedFields]uint8
	times     uint8
	disagreed bool
}

const numMergedFields = 9

// mergedFields lists the string fields of r that merge by source rank.
func mergedFields(r *schemas.AgentRequest) [numMergedFields]*string {
	return [...]*string{&r.AgentRequestID, &r.TraceID, &r.ClientRequestID, &r.EndUser, &r.Session,
		&r.AgentEndpoint, &r.Status, &r.ServicePrincipal, &r.Source}
}

func provenanceOf(r *schemas.AgentRequest) provenance {
	rank := uint8(schemas.SourceRank(r.Source))
	var p provenance
	for i := range p.fields {
		p.fields[i] = rank
	}
	p.times = rank
	return p
}

func (ix *Index) add(r *schemas.AgentRequest) {
	if r.GatewayLinkID != "" {
		ix.addLink(r)
		return
	}
	key := r.Key()
	if key == "" {
		return
	}
	trace := NormalizeTraceID(r.TraceID)
	if pos, ok := ix.find(key, trace, r.AgentRequestID, r.ClientRequestID); ok {
		ix.merge(pos, r)
		return
	}
	ix.insert(r, provenanceOf(r))
}

// insert holds r as a new entry with its provenance.
func (ix *Index) insert(r *schemas.AgentRequest, p provenance) {
	pos := ix.held.add(heldRequest{req: *r, prov: p, live: true})
	ix.size++
	ix.link(pos)
	ix.place(pos)
}

// place puts a held request on its service principal's timeline, if it has
// what the timeline needs.
func (ix *Index) place(pos int32) {
	r := &ix.held.at(pos).req
	if r.ServicePrincipal == "" || r.StartTime.IsZero() {
		return
	}
	tl := ix.timeline[r.ServicePrincipal]
	if tl == nil {
		tl = &timeline{}
		ix.timeline[r.ServicePrincipal] = tl
	}
	tl.add(pos, r)
}

func (ix *Index) find(key, trace, reqID, clientID string) (int32, bool) {
	if pos, ok := ix.byKey[key]; ok && ix.held.at(pos).live {
		return pos, true
	}
	if trace != "" {
		if pos, ok := ix.byTrace[trace]; ok {
			return pos, true
		}
	}
	for _, id := range [...]string{reqID, clientID} {
		if id != "" {
			if pos, ok := ix.byReqID[id]; ok {
				return pos, true
			}
		}
	}
	return 0, false
}

// link records a held request's key and ids; one already taken by a live
// request keeps its owner. A merge may change the key (a smaller id of the
// same rank): the new one finds the entry too.
func (ix *Index) link(pos int32) {
	r := &ix.held.at(pos).req
	claim := func(m map[string]int32, id string) {
		if owner, taken := m[id]; !taken || !ix.held.at(owner).live {
			m[id] = pos
		}
	}
	if k := r.Key(); k != "" {
		claim(ix.byKey, k)
	}
	if t := NormalizeTraceID(r.TraceID); t != "" {
		claim(ix.byTrace, t)
	}
	for _, id := range [...]string{r.AgentRequestID, r.ClientRequestID} {
		if id != "" {
			claim(ix.byReqID, id)
		}
	}
}

func (ix *Index) merge(pos int32, r *schemas.AgentRequest) {
	h := ix.held.at(pos)
	held, pv := &h.req, &h.prov
	rank := uint8(schemas.SourceRank(r.Source))
	wasPlaced := held.ServicePrincipal != "" && !held.StartTime.IsZero()
	oldSP, oldStart, oldEnd := held.ServicePrincipal, held.StartTime, held.End()

	dst, src := mergedFields(held), mergedFields(r)
	for i := range dst {
		if v := *src[i]; v != "" && (*dst[i] == "" || rank < pv.fields[i] || rank == pv.fields[i] && v < *dst[i]) {
			*dst[i], pv.fields[i] = v, rank
		}
	}
	if !r.StartTime.IsZero() {
		if !pv.disagreed && !held.StartTime.IsZero() && ix.disagree(held, r) {
			pv.disagreed = true
			ix.disagreements++
		}
		switch {
		case held.StartTime.IsZero() || rank < pv.times:
			held.StartTime, held.DurationMS, pv.times = r.StartTime, r.DurationMS, rank
		case rank == pv.times:
			if r.StartTime.Before(held.StartTime) {
				held.StartTime = r.StartTime
			}
			held.DurationMS = max(held.DurationMS, r.DurationMS)
		}
	}
	ix.link(pos)
	switch {
	case !wasPlaced:
		ix.place(pos)
	case held.ServicePrincipal != oldSP:
		ix.timeline[oldSP].remove(pos)
		ix.place(pos)
	case !held.StartTime.Equal(oldStart) || !held.End().Equal(oldEnd):
		ix.timeline[oldSP].changed(held)
	}
}

// disagree reports whether two observations of one request differ in start
// or end by more than the tolerance.
func (ix *Index) disagree(a, b *schemas.AgentRequest) bool {
	return absDuration(a.StartTime.Sub(b.StartTime)) > ix.tolerance || absDuration(a.End().Sub(b.End())) > ix.tolerance
}

// ByTraceID returns the request with the given trace id, in any spelling
// NormalizeTraceID accepts.
func (ix *Index) ByTraceID(id string) (*schemas.AgentRequest, bool) {
	t := NormalizeTraceID(id)
	if t == "" {
		return nil, false
	}
	return ix.get(ix.byTrace, t)
}

// addLink holds a gateway span's link. Two spans linking one usage row to
// different traces keep the smallest trace id, whatever their order.
func (ix *Index) addLink(r *schemas.AgentRequest) {
	t := NormalizeTraceID(r.TraceID)
	if t == "" {
		return
	}
	if old, ok := ix.links[r.GatewayLinkID]; !ok || t < old {
		ix.links[r.GatewayLinkID] = t
	}
}

// ByGatewayLink returns the trace a gateway span links usage link id to.
func (ix *Index) ByGatewayLink(id string) (trace string, ok bool) {
	if id == "" {
		return "", false
	}
	trace, ok = ix.links[id]
	return trace, ok
}

// Links is the number of gateway links held.
func (ix *Index) Links() int { return len(ix.links) }

// ByRequestID returns the request whose agent request id or client request id is id.
func (ix *Index) ByRequestID(id string) (*schemas.AgentRequest, bool) {
	if id == "" {
		return nil, false
	}
	return ix.get(ix.byReqID, id)
}

func (ix *Index) get(m map[string]int32, k string) (*schemas.AgentRequest, bool) {
	pos, ok := m[k]
	if !ok {
		return nil, false
	}
	h := ix.held.at(pos)
	if !h.live {
		return nil, false
	}
	return &h.req, true
}

// Running returns the requests of a service principal whose interval
// [start−skew, end+skew] contains t, appended to dst, in start-time order.
func (ix *Index) Running(dst []*schemas.AgentRequest, servicePrincipal string, t time.Time, skew time.Duration) []*schemas.AgentRequest {
	tl := ix.timeline[servicePrincipal]
	if tl == nil {
		return dst
	}
	return tl.stab(dst, ix, t.UnixNano(), int64(skew))
}

// Evict drops requests that ended before t, to bound the index of a
// long-running stream. It returns how many were dropped.
func (ix *Index) Evict(before time.Time) int {
	cut := before.UnixNano()
	n := 0
	for sp, tl := range ix.timeline {
		n += tl.evict(ix, cut)
		if len(tl.entries) == 0 {
			delete(ix.timeline, sp)
		}
	}
	// Requests without a timeline entry are dropped by their own end time.
	for pos, h := range ix.held.all() {
		r := &h.req
		if h.live && (r.ServicePrincipal == "" || r.StartTime.IsZero()) && !r.StartTime.IsZero() && r.End().UnixNano() < cut {
			ix.drop(pos)
			n++
		}
	}
	if ix.size < int(ix.held.n)/2 {
		ix.compact()
	}
	return n
}

func (ix *Index) drop(pos int32) {
	h := ix.held.at(pos)
	if !h.live {
		return
	}
	h.live = false
	ix.size--
	r := &h.req
	unlink := func(m map[string]int32, k string) {
		if k != "" && m[k] == pos {
			delete(m, k)
		}
	}
	unlink(ix.byKey, r.Key())
	unlink(ix.byTrace, NormalizeTraceID(r.TraceID))
	unlink(ix.byReqID, r.AgentRequestID)
	unlink(ix.byReqID, r.ClientRequestID)
}

// compact rebuilds the index from its live requests so that a stream's
// memory follows the live set, not everything ever seen. Entries keep their
// provenance, so later merges decide as they would have without compaction.
func (ix *Index) compact() {
	old := *ix
	*ix = *NewIndex()
	ix.tolerance, ix.disagreements = old.tolerance, old.disagreements
	for _, h := range old.held.all() {
		if h.live {
			ix.insert(&h.req, h.prov)
		}
	}
}

// timeline is one service principal's requests ordered by start time.
// Entries are appended and sorted lazily, because batch loads arrive
// unordered and streams nearly ordered; a merge that moves a request's times
// marks the timeline stale, and the next lookup re-reads the times.
type timeline struct {
	entries []tlEntry
	sorted  bool
	stale   bool  // some entry's times changed since it was added
	maxDur  int64 // longest duration held, bounds how far back a stab must look
}

type tlEntry struct {
	start, end int64
	pos        int32
}

func (tl *timeline) add(pos int32, r *schemas.AgentRequest) {
	e := tlEntry{start: r.StartTime.UnixNano(), end: r.End().UnixNano(), pos: pos}
	if n := len(tl.entries); n == 0 || (tl.sorted && tl.entries[n-1].start <= e.start) {
		tl.sorted = true
	} else {
		tl.sorted = false
	}
	tl.entries = append(tl.entries, e)
	if d := e.end - e.start; d > tl.maxDur {
		tl.maxDur = d
	}
}

// changed notes that a held request's times moved.
func (tl *timeline) changed(r *schemas.AgentRequest) {
	tl.stale, tl.sorted = true, false
	if d := r.End().UnixNano() - r.StartTime.UnixNano(); d > tl.maxDur {
		tl.maxDur = d
	}
}

// remove drops the entry of pos: its request moved to another service
// principal, which two sources of one request almost never disagree on.
func (tl *timeline) remove(pos int32) {
	if tl == nil {
		return
	}
	for i, e := range tl.entries {
		if e.pos == pos {
			tl.entries = append(tl.entries[:i], tl.entries[i+1:]...)
			return
		}
	}
}

// prepare re-reads stale times and sorts.
func (tl *timeline) prepare(ix *Index) {
	if tl.stale {
		tl.maxDur = 0
		for i := range tl.entries {
			e := &tl.entries[i]
			r := &ix.held.at(e.pos).req
			e.start, e.end = r.StartTime.UnixNano(), r.End().UnixNano()
			tl.maxDur = max(tl.maxDur, e.end-e.start)
		}
		tl.stale = false
	}
	if tl.sorted {
		return
	}
	sort.Slice(tl.entries, func(i, j int) bool {
		a, b := tl.entries[i], tl.entries[j]
		if a.start != b.start {
			return a.start < b.start
		}
		return a.pos < b.pos
	})
	tl.sorted = true
}

// stab finds the entries whose [start−skew, end+skew] contains t: a binary
// search for the last start ≤ t+skew, then a walk back while start could
// still reach t given the longest duration held.
func (tl *timeline) stab(dst []*schemas.AgentRequest, ix *Index, t, skew int64) []*schemas.AgentRequest {
	tl.prepare(ix)
	hi := sort.Search(len(tl.entries), func(i int) bool { return tl.entries[i].start > t+skew })
	floor := t - skew - tl.maxDur
	first := len(dst)
	for i := hi - 1; i >= 0; i-- {
		e := tl.entries[i]
		if e.start < floor {
			break
		}
		if h := ix.held.at(e.pos); e.end+skew >= t && h.live {
			dst = append(dst, &h.req)
		}
	}
	// Walking back produced descending start order; callers expect ascending.
	for i, j := first, len(dst)-1; i < j; i, j = i+1, j-1 {
		dst[i], dst[j] = dst[j], dst[i]
	}
	return dst
}

func (tl *timeline) evict(ix *Index, cut int64) int {
	tl.prepare(ix)
	n := 0
	kept := tl.entries[:0]
	for _, e := range tl.entries {
		if e.end < cut {
			if ix.held.at(e.pos).live {
				ix.drop(e.pos)
				n++
			}
			continue
		}
		kept = append(kept, e)
	}
	tl.entries = kept
	return n
}

// heldRequests holds an index's requests in blocks of a fixed size. Adding
// one never moves the others: a growing slice would copy every request at
// each growth and keep both copies until the next collection, which at two
// million requests is most of a batch run's peak memory.
type heldRequests struct {
	blocks [][]heldRequest
	n      int32
}

// heldRequest is a held request with its provenance; a dropped one stays in
// its block, not live, until the index is compacted.
type heldRequest struct {
	req  schemas.AgentRequest
	prov provenance
	live bool
}

const heldBlockBits = 8

func (h *heldRequests) add(r heldRequest) int32 {
	if h.n&(1<<heldBlockBits-1) == 0 {
		h.blocks = append(h.blocks, make([]heldRequest, 0, 1<<heldBlockBits))
	}
	b := &h.blocks[len(h.blocks)-1]
	*b = append(*b, r)
	h.n++
	return h.n - 1
}

func (h *heldRequests) at(pos int32) *heldRequest {
	return &h.blocks[pos>>heldBlockBits][pos&(1<<heldBlockBits-1)]
}

// all yields every held request, live or not, in the order added.
func (h *heldRequests) all() iter.Seq2[int32, *heldRequest] {
	return func(yield func(int32, *heldRequest) bool) {
		for bi := range h.blocks {
			b := h.blocks[bi]
			for i := range b {
				if !yield(int32(bi<<heldBlockBits+i), &b[i]) {
					return
				}
			}
		}
	}
}
