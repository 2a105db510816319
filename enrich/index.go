package enrich

import (
	"sort"
	"time"

	"github.com/obolus/obolus/schemas"
)

// Index holds agent requests for lookup by id and by service principal and
// time. Requests that describe the same agent request (a payload row and the
// MLflow trace of the same call) are merged into one entry.
//
// An Index is not safe for concurrent use.
type Index struct {
	reqs     []schemas.AgentRequest
	live     []bool
	byKey    map[string]int32 // AgentRequest.Key() → position
	byTrace  map[string]int32 // normalised trace id → position
	byReqID  map[string]int32 // agent request id and client request id → position
	timeline map[string]*timeline
	size     int
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{
		byKey:    make(map[string]int32),
		byTrace:  make(map[string]int32),
		byReqID:  make(map[string]int32),
		timeline: make(map[string]*timeline),
	}
}

// Len is the number of distinct agent requests held.
func (ix *Index) Len() int { return ix.size }

// Add indexes agent requests. A request whose key, trace id or request id is
// already held is merged into the held entry: empty fields are filled, set
// fields are kept, so the first source to name an end user wins.
func (ix *Index) Add(reqs ...schemas.AgentRequest) {
	for i := range reqs {
		ix.add(&reqs[i])
	}
}

func (ix *Index) add(r *schemas.AgentRequest) {
	key := r.Key()
	if key == "" {
		return
	}
	trace := NormalizeTraceID(r.TraceID)
	if pos, ok := ix.find(key, trace, r.AgentRequestID, r.ClientRequestID); ok {
		ix.merge(pos, r)
		return
	}
	pos := int32(len(ix.reqs))
	ix.reqs = append(ix.reqs, *r)
	ix.live = append(ix.live, true)
	ix.size++
	ix.byKey[key] = pos
	ix.link(pos)
	if r.ServicePrincipal != "" && !r.StartTime.IsZero() {
		tl := ix.timeline[r.ServicePrincipal]
		if tl == nil {
			tl = &timeline{}
			ix.timeline[r.ServicePrincipal] = tl
		}
		tl.add(pos, r)
	}
}

func (ix *Index) find(key, trace, reqID, clientID string) (int32, bool) {
	if pos, ok := ix.byKey[key]; ok {
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

// link records a held request's ids; an id already taken keeps its owner.
func (ix *Index) link(pos int32) {
	r := &ix.reqs[pos]
	if t := NormalizeTraceID(r.TraceID); t != "" {
		if _, taken := ix.byTrace[t]; !taken {
			ix.byTrace[t] = pos
		}
	}
	for _, id := range [...]string{r.AgentRequestID, r.ClientRequestID} {
		if id == "" {
			continue
		}
		if _, taken := ix.byReqID[id]; !taken {
			ix.byReqID[id] = pos
		}
	}
}

func (ix *Index) merge(pos int32, r *schemas.AgentRequest) {
	held := &ix.reqs[pos]
	fill := func(dst *string, src string) {
		if *dst == "" {
			*dst = src
		}
	}
	fill(&held.AgentRequestID, r.AgentRequestID)
	fill(&held.TraceID, r.TraceID)
	fill(&held.ClientRequestID, r.ClientRequestID)
	fill(&held.EndUser, r.EndUser)
	fill(&held.Session, r.Session)
	fill(&held.AgentEndpoint, r.AgentEndpoint)
	fill(&held.Status, r.Status)
	hadTimeline := held.ServicePrincipal != "" && !held.StartTime.IsZero()
	fill(&held.ServicePrincipal, r.ServicePrincipal)
	if held.StartTime.IsZero() {
		held.StartTime = r.StartTime
	}
	if held.DurationMS < r.DurationMS {
		// The longer of two observations of one request covers both.
		held.DurationMS = r.DurationMS
		if tl := ix.timeline[held.ServicePrincipal]; hadTimeline && tl != nil {
			tl.widen(held)
		}
	}
	ix.link(pos)
	if !hadTimeline && held.ServicePrincipal != "" && !held.StartTime.IsZero() {
		tl := ix.timeline[held.ServicePrincipal]
		if tl == nil {
			tl = &timeline{}
			ix.timeline[held.ServicePrincipal] = tl
		}
		tl.add(pos, held)
	}
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

// ByRequestID returns the request whose agent request id or client request id is id.
func (ix *Index) ByRequestID(id string) (*schemas.AgentRequest, bool) {
	if id == "" {
		return nil, false
	}
	return ix.get(ix.byReqID, id)
}

func (ix *Index) get(m map[string]int32, k string) (*schemas.AgentRequest, bool) {
	pos, ok := m[k]
	if !ok || !ix.live[pos] {
		return nil, false
	}
	return &ix.reqs[pos], true
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
	for pos := range ix.reqs {
		r := &ix.reqs[pos]
		if ix.live[pos] && (r.ServicePrincipal == "" || r.StartTime.IsZero()) && !r.StartTime.IsZero() && r.End().UnixNano() < cut {
			ix.drop(int32(pos))
			n++
		}
	}
	if ix.size < len(ix.reqs)/2 {
		ix.compact()
	}
	return n
}

func (ix *Index) drop(pos int32) {
	if !ix.live[pos] {
		return
	}
	ix.live[pos] = false
	ix.size--
	r := &ix.reqs[pos]
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
// memory follows the live set, not everything ever seen.
func (ix *Index) compact() {
	live := make([]schemas.AgentRequest, 0, ix.size)
	for pos := range ix.reqs {
		if ix.live[pos] {
			live = append(live, ix.reqs[pos])
		}
	}
	*ix = *NewIndex()
	ix.Add(live...)
}

// timeline is one service principal's requests ordered by start time.
// Entries are appended and sorted lazily, because batch loads arrive
// unordered and streams nearly ordered.
type timeline struct {
	entries []tlEntry
	sorted  bool
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

func (tl *timeline) widen(r *schemas.AgentRequest) {
	start, end := r.StartTime.UnixNano(), r.End().UnixNano()
	for i := range tl.entries {
		if tl.entries[i].start == start && tl.entries[i].end < end {
			tl.entries[i].end = end
		}
	}
	if d := end - start; d > tl.maxDur {
		tl.maxDur = d
	}
}

func (tl *timeline) sort() {
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
	tl.sort()
	hi := sort.Search(len(tl.entries), func(i int) bool { return tl.entries[i].start > t+skew })
	floor := t - skew - tl.maxDur
	first := len(dst)
	for i := hi - 1; i >= 0; i-- {
		e := tl.entries[i]
		if e.start < floor {
			break
		}
		if e.end+skew >= t && ix.live[e.pos] {
			dst = append(dst, &ix.reqs[e.pos])
		}
	}
	// Walking back produced descending start order; callers expect ascending.
	for i, j := first, len(dst)-1; i < j; i, j = i+1, j-1 {
		dst[i], dst[j] = dst[j], dst[i]
	}
	return dst
}

func (tl *timeline) evict(ix *Index, cut int64) int {
	tl.sort()
	n := 0
	kept := tl.entries[:0]
	for _, e := range tl.entries {
		if e.end < cut {
			if ix.live[e.pos] {
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
