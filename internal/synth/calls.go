package synth

import (
	"math"
	"math/rand/v2"
)

// call is one gateway invocation: a row of system.ai_gateway.usage, or of
// system.serving.endpoint_usage when legacy is set.
type call struct {
	inv     id128 // invocation_id; databricks_request_id on the legacy path
	gwReq   id128 // request_id, shared by a call and its retries
	eventUS int64
	req     *request
	ep      *gatewayEndpoint
	span    uint64 // traceparent parent id
	legacy  bool
	tag     uint8 // tag* kind carrying an id, tagNone if untagged
	// keyVariant spells the id tag's key another way (keyVariants), 0 not.
	keyVariant uint8
	// harmless adds tags that name no one (project, team).
	harmless  bool
	stream    bool
	dup       uint8 // dupNone, dupSameFile, dupNextFile
	status    int32
	in, out   int64
	cacheRead int64
	cacheNew  int64
	reasoning int64
	latencyMS int64
	ttfbMS    int64
	inChars   int64
	outChars  int64
}

const (
	dupNone = iota
	dupSameFile
	dupNextFile
)

// tagged reports whether the call carries an id the engine can follow.
func (c *call) tagged() bool { return c.tag != tagNone }

// tagScheme picks which id an agent's instrumentation sends. Agents that log
// only a payload table cannot send a trace id anyone could resolve, so they
// send their request id; traced agents mostly send trace ids.
func tagScheme(r *rand.Rand, logs int) uint8 {
	x := r.Float64()
	switch logs {
	case logPayload:
		return tagRequestID
	case logTraces:
		switch {
		case x < 0.5:
			return tagTraceID
		case x < 0.8:
			return tagTraceparent
		}
		return tagRequestID
	default:
		switch {
		case x < 0.35:
			return tagTraceID
		case x < 0.6:
			return tagTraceparent
		}
		return tagRequestID
	}
}

// afterAnswerShare is the share of requests that make a call after answering.
const afterAnswerShare = 0.04

// endUserTagShare is the share of tagged calls that name the end user
// instead of an id.
const endUserTagShare = 0.05

// requestCalls appends the invocations of one agent request to dst, in the
// order they happen. Each request draws from its own stream, so requests can
// be generated in any order and still come out the same.
func (w *world) requestCalls(dst []call, q *request, idx int) []call {
	cfg := &w.cfg
	r := streamRand(cfg.Seed, purposeCalls, uint64(idx))
	ag := w.agents[q.agent]
	n := int(q.calls)
	var us [20]float64
	for i := range n {
		us[i] = uniform(r, 0.01, 0.97)
	}
	sortSmall(us[:n])
	endUS := q.endUS()
	durUS := float64(q.durMS) * 1000
	// Some agents make one more call after answering (a session title, a
	// memory write): it falls after the logged end of the request, often
	// beyond any skew allowance, where a time window sees a neighbour or
	// nothing.
	afterUS := int64(-1)
	if n > 1 && bernoulli(r, afterAnswerShare) {
		afterUS = endUS + int64(uniform(r, 0.2, 6)*1e6)
	}
	for i := range n {
		c := call{req: q, eventUS: q.startUS + int64(us[i]*durUS), gwReq: newUUID(r), inv: newUUID(r), span: r.Uint64()}
		if i == n-1 && afterUS >= 0 {
			c.eventUS = afterUS
		}
		mi := ag.models[ag.modelIdxs.pick(r)]
		m := &models[mi]
		c.ep = w.endpoints[mi]
		if !bernoulli(r, ag.untagged) {
			if bernoulli(r, endUserTagShare) {
				c.tag = tagEndUser
			} else {
				c.tag = tagScheme(r, ag.logs)
			}
			// Drawn only when asked for, so that other workloads keep their bytes.
			if cfg.TagKeyVariantShare > 0 && bernoulli(r, cfg.TagKeyVariantShare) {
				c.keyVariant = uint8(1 + r.IntN(len(keyVariants)))
			}
		}
		c.harmless = bernoulli(r, ag.harmless)
		c.legacy = bernoulli(r, cfg.LegacyShare)
		c.stream = !m.embedding && bernoulli(r, ag.streamShare)
		c.status = 200
		fillTokens(r, &c, m, i)
		// The call returns before the agent answers; a clock that says
		// otherwise is the agent's skew, not the call's.
		if room := (endUS - c.eventUS) / 1000; c.latencyMS > room && c.eventUS < endUS {
			c.latencyMS = max(30, room)
			c.ttfbMS = min(c.ttfbMS, c.latencyMS)
		}
		if bernoulli(r, 0.002) {
			// A rejected request (bad parameters, content filter): no
			// tokens, no retry.
			c.status, c.in, c.out, c.cacheRead, c.cacheNew, c.reasoning = 400, 0, 0, 0, 0, 0
			c.latencyMS, c.ttfbMS, c.outChars = int64(uniform(r, 20, 200)), 0, 0
		}
		if c.status == 200 && bernoulli(r, cfg.RetryShare) {
			f := c
			f.inv = newUUID(r)
			f.span = r.Uint64()
			f.in, f.out, f.cacheRead, f.cacheNew, f.reasoning, f.outChars = 0, 0, 0, 0, 0, 0
			f.stream = false
			if bernoulli(r, 0.6) {
				f.status, f.latencyMS = 429, int64(uniform(r, 15, 150))
			} else {
				f.status, f.latencyMS = 503, int64(uniform(r, 300, 4000))
			}
			f.ttfbMS = f.latencyMS
			backoffMS := int64(uniform(r, 200, 2000))
			f.eventUS = max(q.startUS, c.eventUS-(f.latencyMS+backoffMS)*1000)
			f.dup = dupFor(r, cfg.DuplicateShare, f.legacy)
			dst = append(dst, f)
		}
		c.dup = dupFor(r, cfg.DuplicateShare, c.legacy)
		dst = append(dst, c)
	}
	return dst
}

func dupFor(r *rand.Rand, share float64, legacy bool) uint8 {
	if legacy || !bernoulli(r, share) {
		return dupNone
	}
	if r.IntN(2) == 0 {
		return dupSameFile
	}
	return dupNextFile
}

// fillTokens draws token counts, cache use and latency for the step-th call
// of a request: context grows with each step, later steps hit the cache.
func fillTokens(r *rand.Rand, c *call, m *model, step int) {
	if m.embedding {
		c.in = int64(clamp(logNormal(r, 350, 0.7), 8, 8192))
		c.latencyMS = int64(25 + float64(c.in)*0.05*uniform(r, 0.7, 1.5))
		c.ttfbMS = c.latencyMS
		c.inChars = int64(float64(c.in) * uniform(r, 3.6, 4.4))
		return
	}
	in := logNormal(r, 1500, 0.6) + float64(step)*logNormal(r, 600, 0.5)
	c.in = int64(clamp(in, 20, 180_000))
	outMedian := 220.0
	if c.stream {
		outMedian = 450
	}
	if m.reasoning > 0.3 {
		outMedian *= 2 // reasoning models think out loud, billed as output
	}
	c.out = int64(clamp(logNormal(r, outMedian, 0.9), 1, 16_000))
	if m.reasoning > 0 && (m.reasoning > 0.15 || bernoulli(r, 0.15)) {
		share := clamp(m.reasoning*uniform(r, 0.5, 1.5), 0, 0.9)
		c.reasoning = int64(float64(c.out) * share)
	}
	if step > 0 && bernoulli(r, m.cacheRead) {
		cached := float64(c.in) * uniform(r, 0.4, 0.9)
		if !m.cacheCreate {
			// OpenAI-style automatic caching works in 128-token blocks
			// past the first 1024.
			cached = math.Floor(cached/128) * 128
			if c.in < 1024 {
				cached = 0
			}
		}
		c.cacheRead = int64(cached)
	}
	if m.cacheCreate && step == 0 && bernoulli(r, 0.6) {
		c.cacheNew = int64(float64(c.in) * uniform(r, 0.3, 0.7))
	}
	prefill := float64(c.in-c.cacheRead) * 0.015
	decode := float64(c.out) * m.msPerToken * uniform(r, 0.8, 1.3)
	if c.stream {
		c.ttfbMS = int64(250 + prefill + uniform(r, 0, 400))
		// The gateway's latency covers the whole stream.
		c.latencyMS = c.ttfbMS + int64(decode*1.15)
	} else {
		c.latencyMS = int64(180 + prefill + decode)
		c.ttfbMS = int64(float64(c.latencyMS) * uniform(r, 0.93, 0.99))
	}
	c.inChars = int64(float64(c.in) * uniform(r, 3.6, 4.4))
	c.outChars = int64(float64(c.out-c.reasoning) * uniform(r, 3.6, 4.4))
}

func sortSmall(a []float64) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}
