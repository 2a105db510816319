package enrich

import (
	"math/bits"
	"time"

	"github.com/obolus/obolus/schemas"
)

// The likely policy ranks the requests running at a call by a timing model
// learned, per run, from the calls whose request is known: id-linked calls,
// and calls that fell inside exactly one request with no other within
// crowd_margin (so that a deployment without any tags still teaches it). Per
// service principal, the model knows
//   - where in a request its calls fall: the share of calls in each
//     twentieth of the request's own interval, and in the skew allowance
//     before its start and after its end;
//   - how many calls a request makes for its duration (doubling buckets):
//     known calls in requests of the bucket over the requests held of the
//     bucket. A long request makes more calls, spread thinner; the gaps
//     between an agent's calls are what this rate measures.
//
// A candidate's likelihood is the density of calls at the event's time,
// rate(duration) × share(bin) / width of the bin. Only ratios between
// candidates of one service principal matter, so the share of calls that is
// known (tagged, or alone) cancels out. The most likely candidate is picked
// when its likelihood is at least MatchConfig.LikelihoodRatio times the
// runner-up's; otherwise the call stays unattributed (ambiguous). The pick's
// confidence is its posterior, its likelihood over all candidates', which
// calibration then measures against the id-linked calls like any other
// time-window pick.

const (
	timingInside = 20               // bins over the request's own interval
	timingBins   = timingInside + 2 // and the skew allowance on each side
	timingEarly  = 0
	timingLate   = timingBins - 1
	durBuckets   = 32 // bits.Len of a duration in milliseconds
	// timingPrior weighs, in calls, the pooled shape of all service
	// principals in one service principal's own.
	timingPrior = 50
	// ratePrior weighs, in requests, a service principal's mean rate in
	// each duration bucket's.
	ratePrior = 5
)

// DefaultLikelihoodRatio is MatchConfig.LikelihoodRatio's default.
const DefaultLikelihoodRatio = 4

// timingBin places t relative to r: its bin, and the bin's width in
// seconds of absolute time. ok is false when t is outside r's interval
// widened by skew.
func timingBin(t time.Time, r *schemas.AgentRequest, skew time.Duration) (bin int, width float64, ok bool) {
	d := time.Duration(r.DurationMS) * time.Millisecond
	edge := max(skew, time.Millisecond).Seconds()
	switch off := t.Sub(r.StartTime); {
	case off < -skew || off > d+skew:
		return 0, 0, false
	case off < 0:
		return timingEarly, edge, true
	case off > d:
		return timingLate, edge, true
	case d <= 0:
		return 1, time.Millisecond.Seconds(), true
	default:
		b := min(int(int64(off)*timingInside/int64(d)), timingInside-1)
		return 1 + b, max(d/timingInside, time.Microsecond).Seconds(), true
	}
}

func durBucket(r *schemas.AgentRequest) int {
	return min(bits.Len64(uint64(max(r.DurationMS, 0))), durBuckets-1)
}

type timingCounts struct {
	bins        [timingBins]int64
	calls, reqs [durBuckets]int64
	known       int64 // calls counted, in bins and by duration bucket alike
	held        int64 // requests held
}

func (c *timingCounts) add(o *timingCounts) {
	for i := range c.bins {
		c.bins[i] += o.bins[i]
	}
	for i := range c.calls {
		c.calls[i] += o.calls[i]
		c.reqs[i] += o.reqs[i]
	}
	c.known += o.known
	c.held += o.held
}

// timingShape is one service principal's fitted model.
type timingShape struct {
	share [timingBins]float64 // of calls, per bin
	rate  [durBuckets]float64 // relative to the service principal's mean
}

// TimingModel is the fitted model of all service principals.
type TimingModel struct {
	bySP   map[string]*timingShape
	pooled timingShape
	// Known is the number of calls it was learned from.
	Known int64
}

// timingLearner counts known calls while the engine learns.
type timingLearner struct {
	bySP map[string]*timingCounts
}

func (l *timingLearner) counts(sp string) *timingCounts {
	c := l.bySP[sp]
	if c == nil {
		c = &timingCounts{}
		l.bySP[sp] = c
	}
	return c
}

// Learn counts ev towards the timing model if its request is known: it is
// id-linked, or it fell inside one request of its service principal with no
// other within crowd_margin. Call it for every usage event of the window,
// in any order, then FitTiming.
func (e *Engine) Learn(ev *schemas.UsageEvent) {
	m := e.matcher
	if e.learner == nil {
		e.learner = &timingLearner{bySP: map[string]*timingCounts{}}
	}
	r, _, idSeen := m.link(ev, ReadTags(ev.RequestTags, m.cfg.ExactTagKeys))
	if r == nil && !idSeen {
		m.wide = m.idx.Running(m.wide[:0], ev.Requester, ev.EventTime, m.cfg.Skew+m.cfg.CrowdMargin)
		if len(m.wide) == 1 {
			r = m.wide[0]
		}
	}
	if r == nil || r.ServicePrincipal != ev.Requester {
		return
	}
	bin, _, ok := timingBin(ev.EventTime, r, m.cfg.Skew)
	if !ok {
		return
	}
	c := e.learner.counts(ev.Requester)
	c.bins[bin]++
	c.known++
	c.calls[durBucket(r)]++
}

// FitTiming fits the timing model from the calls Learn counted and the
// requests held, and has the likely policy use it. It returns the model.
func (e *Engine) FitTiming() *TimingModel {
	l := e.learner
	if l == nil {
		l = &timingLearner{bySP: map[string]*timingCounts{}}
	}
	e.learner = nil
	ix := e.matcher.idx
	for _, h := range ix.held.all() {
		if !h.live {
			continue
		}
		r := &h.req
		c := l.counts(r.ServicePrincipal)
		c.reqs[durBucket(r)]++
		c.held++
	}
	var pooled timingCounts
	for _, c := range l.bySP {
		pooled.add(c)
	}
	m := &TimingModel{bySP: make(map[string]*timingShape, len(l.bySP)), Known: pooled.known}
	for i := range m.pooled.share {
		m.pooled.share[i] = (float64(pooled.bins[i]) + 1) / (float64(pooled.known) + timingBins)
	}
	m.pooled.rate = relativeRate(&pooled, nil)
	for sp, c := range l.bySP {
		s := &timingShape{}
		for i := range s.share {
			s.share[i] = (float64(c.bins[i]) + timingPrior*m.pooled.share[i]) / (float64(c.known) + timingPrior)
		}
		s.rate = relativeRate(c, &m.pooled.rate)
		m.bySP[sp] = s
	}
	e.matcher.timing = m
	return m
}

// relativeRate is c's calls per request in each duration bucket relative
// to its mean, each bucket smoothed towards prior (nil: 1) with ratePrior
// requests.
func relativeRate(c *timingCounts, prior *[durBuckets]float64) (rate [durBuckets]float64) {
	mean := 0.0
	if c.held > 0 {
		mean = float64(c.known) / float64(c.held)
	}
	for k := range rate {
		p := 1.0
		if prior != nil {
			p = prior[k]
		}
		if mean == 0 {
			rate[k] = p
			continue
		}
		rate[k] = (float64(c.calls[k]) + ratePrior*p*mean) / (float64(c.reqs[k]) + ratePrior) / mean
	}
	return rate
}

// likelihood is the density, per second, of sp's calls at t that r makes.
func (m *TimingModel) likelihood(sp string, t time.Time, r *schemas.AgentRequest, skew time.Duration) float64 {
	bin, width, ok := timingBin(t, r, skew)
	if !ok {
		return 0
	}
	s, found := m.bySP[sp]
	if !found {
		s = &m.pooled
	}
	return s.rate[durBucket(r)] * s.share[bin] / width
}

// likely ranks cands by the timing model: the most likely (ties to the
// canonical order), its likelihood, the runner-up's, and the sum of all.
func (m *TimingModel) likely(sp string, t time.Time, cands []*schemas.AgentRequest, skew time.Duration) (best *schemas.AgentRequest, top, second, sum float64) {
	for _, c := range cands {
		l := m.likelihood(sp, t, c, skew)
		sum += l
		switch {
		case best == nil || l > top || l == top && compareRequests(c, best) < 0:
			if best != nil {
				second = max(second, top)
			}
			best, top = c, l
		default:
			second = max(second, l)
		}
	}
	return best, top, second, sum
}

// likelyConfidence is a likely pick's posterior in hundredths, from 0.01
// to 0.99: the rule confidence calibration buckets it by.
func likelyConfidence(pct int) float64 { return float64(pct) / 100 }

func posteriorPercent(top, sum float64) int {
	if sum <= 0 {
		return 1
	}
	return min(max(int(top/sum*100), 1), 99)
}
