package synth

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// request is one end-user request to an agent.
type request struct {
	id      id128 // databricks_request_id of the agent's serving request
	trace   id128 // MLflow trace id (hex part); its OpenTelemetry trace id
	session id128
	startUS int64 // true start on the gateway's clock, Unix microseconds
	durMS   int64
	skewUS  int64 // agent clock minus gateway clock for this request
	user    int32
	agent   int16
	calls   int16 // logical gateway calls, retries not counted
	late    bool
	failed  bool
}

func (r *request) endUS() int64 { return r.startUS + r.durMS*1000 }

// matchSkew is the clock tolerance the acceptance bar assumes of the engine;
// the planner uses it to judge how crowded an agent's timeline is.
const matchSkew = 2 * time.Second

// diurnal is the relative request rate at t: a European and an American
// business-hours peak over a quiet night, and quieter weekends.
func diurnal(t time.Time) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60 + float64(t.Second())/3600
	g := func(mu, sd float64) float64 { d := (h - mu) / sd; return math.Exp(-0.5 * d * d) }
	r := 0.3 + 0.8*g(10, 2.2) + 1.0*g(16, 2.8)
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		r *= 0.4
	}
	return r
}

const diurnalMax = 0.3 + 0.8 + 1.0 + 0.1 // bounds diurnal() from above

// plan draws the agent requests: sessions of consecutive requests by one user
// to one agent, starting at diurnal times, and sorts them by start.
func plan(w *world) []request {
	cfg := w.cfg
	r := streamRand(cfg.Seed, purposePlan, 0)
	startUS := cfg.Start.UnixMicro()
	endUS := startUS + cfg.Duration.Microseconds()
	agentPick := newWeighted(w.agentShares())
	reqs := make([]request, 0, cfg.AgentRequests)
	for len(reqs) < cfg.AgentRequests {
		u := int32(w.userWeights.pick(r))
		a := int16(agentPick.pick(r))
		ag := w.agents[a]
		t := sessionStart(r, startUS, endUS)
		session := newUUID(r)
		// Sessions run 1 to 15 requests, 2.5 on average.
		n := 1
		for n < 15 && r.Float64() < 0.6 {
			n++
		}
		for range n {
			if t >= endUS || len(reqs) == cfg.AgentRequests {
				break
			}
			dur := clamp(logNormal(r, ag.medianS, ag.sigma), 0.8, 240)
			req := request{
				id: newUUID(r), trace: newHex(r), session: session,
				startUS: t, durMS: int64(dur * 1000), user: u, agent: a,
			}
			req.calls = int16(min(20, 1+poisson(r, dur/ag.callGapS)))
			req.skewUS = ag.offset.Microseconds() + int64(uniform(r, -0.2, 0.2)*float64(cfg.MaxSkew.Microseconds()))
			reqs = append(reqs, req)
			// The user reads the answer and thinks before asking again.
			t = req.endUS() + int64(clamp(logNormal(r, 45, 1.0), 3, 1800)*1e6)
		}
	}
	slices.SortFunc(reqs, func(a, b request) int {
		if a.startUS != b.startUS {
			return cmpInt(a.startUS, b.startUS)
		}
		if a.id.hi != b.id.hi {
			return cmpInt(a.id.hi, b.id.hi)
		}
		return cmpInt(a.id.lo, b.id.lo)
	})
	for i := range reqs {
		reqs[i].late = bernoulli(r, cfg.LateShare)
		reqs[i].failed = bernoulli(r, 0.01)
	}
	assignTagging(w, reqs)
	return reqs
}

func cmpInt[T int64 | uint64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sessionStart(r *rand.Rand, startUS, endUS int64) int64 {
	span := float64(endUS - startUS)
	for {
		us := startUS + int64(r.Float64()*span)
		if r.Float64()*diurnalMax < diurnal(time.UnixMicro(us).UTC()) {
			return us
		}
	}
}

// assignTagging decides, per agent, the share of calls that carry no id.
//
// Instrumentation is not uniform in real fleets: the big production agents
// propagate trace ids, small internal tools often do not. The untagged share
// of an agent is proportional to 1/crowding², where crowding is how many of
// its requests are running at once on average (with the matcher's skew
// allowance), capped at 1, and scaled so that calls carry ids at the
// configured TaggedShare overall. Hot agents therefore tag almost every call,
// and time-window matching is left mostly to agents where it can work.
func assignTagging(w *world, reqs []request) {
	n := len(w.agents)
	calls := make([]float64, n)
	busy := make([]float64, n) // request-seconds, widened by the skew
	for i := range reqs {
		q := &reqs[i]
		calls[q.agent] += float64(q.calls)
		busy[q.agent] += float64(q.durMS)/1000 + 2*matchSkew.Seconds()
	}
	span := w.cfg.Duration.Seconds()
	alpha := make([]float64, n)
	var total float64
	for a := range n {
		crowd := busy[a]/span + 0.02
		alpha[a] = 1 / (crowd * crowd)
		total += calls[a]
	}
	want := (1 - w.cfg.TaggedShare) * total
	untagged := func(k float64) float64 {
		var s float64
		for a := range n {
			s += math.Min(1, k*alpha[a]) * calls[a]
		}
		return s
	}
	var k float64
	switch {
	case want <= 0:
		k = 0
	case want >= total:
		k = math.Inf(1)
	default:
		lo, hi := 0.0, 1.0
		for untagged(hi) < want {
			hi *= 2
		}
		for range 100 {
			mid := (lo + hi) / 2
			if untagged(mid) < want {
				lo = mid
			} else {
				hi = mid
			}
		}
		k = hi
	}
	for a, ag := range w.agents {
		ag.untagged = math.Min(1, k*alpha[a])
	}
}
