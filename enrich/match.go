package enrich

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/obolus/obolus/schemas"
)

// Ambiguity policies: what the time-window rule does when more than one
// agent request of the service principal was running.
const (
	PolicyUnattributed = "unattributed"
	PolicySplit        = "split"
	PolicyNearest      = "nearest"
	// PolicyLikely picks the candidate the learned timing model finds most
	// likely, when it clears MatchConfig.LikelihoodRatio (see timing.go).
	PolicyLikely = "likely"
)

// Reasons a row stays unattributed.
const (
	ReasonNoCandidate = "no_candidate"    // nothing of the service principal was running
	ReasonAmbiguous   = "ambiguous"       // several were running and the policy is unattributed
	ReasonIDNotFound  = "id_not_found"    // the tags carry an id no agent request has (yet)
	ReasonNoRule      = "no_rule_matched" // every rule that could apply is switched off
	// ReasonLowConfidence: a time-window pick whose calibrated confidence
	// was below match.min_confidence.
	ReasonLowConfidence = "low_confidence"
)

// MatchConfig says which rules run and where they look.
type MatchConfig struct {
	// Tag keys, tried in order. A traceparent value is accepted wherever a
	// trace id is.
	UserTagKeys    []string
	TraceTagKeys   []string
	RequestTagKeys []string

	TagUser    bool
	TraceID    bool
	RequestID  bool
	TimeWindow bool

	// Skew is the clock difference tolerated between agent and gateway: an
	// event matches a request whose [start−Skew, end+Skew] contains it.
	Skew time.Duration
	// CrowdMargin widens the window when judging how crowded it was; see
	// Confidence in the README.
	CrowdMargin time.Duration
	// Ambiguity is PolicyUnattributed, PolicySplit, PolicyNearest or
	// PolicyLikely.
	Ambiguity string
	// LikelihoodRatio is how many times likelier than the runner-up the
	// likely policy's pick must be; below it the call stays unattributed.
	LikelihoodRatio float64
	// MaxSplitUsers bounds a split: an event whose running requests belong
	// to more end users is unattributed (ReasonAmbiguous), its cost kept by
	// the service principal, rather than spread thin over all of them (one
	// busy agent spread each call over 70 users, 9.45 million rows from
	// 137k calls).
	MaxSplitUsers int
	// Calibrate sets the confidence of time-window matches from how often
	// the rule picks the right user for the run's id-linked calls (see
	// Calibrate). Batch runs only; the stream keeps the rule's confidence.
	Calibrate bool
	// MinConfidence, with Calibrate, turns time-window picks whose
	// calibrated confidence is below it into unattributed rows (reason
	// low_confidence): precision is kept at the price of recall. 0 is off.
	MinConfidence float64
	// ExactTagKeys turns off forgiving tag keys (see TagValue): a tag is
	// found only under the key exactly as configured.
	ExactTagKeys bool
	// GatewayLinkColumn is the usage column (request_id or invocation_id)
	// that gateway spans of the unified trace table name a call by
	// (schemas.SpanKeys.GatewayLink); a call with no id in its tags is then
	// matched through its gateway span's trace id. Empty turns it off.
	GatewayLinkColumn string
	// UntrustedIDFallback lets an event whose tags carry an id that matches
	// no agent request fall back to time-window matching. Off by default: the
	// request it names is usually just late, and the window would pick a
	// neighbour instead.
	UntrustedIDFallback bool
}

// DefaultMatchConfig is the configuration obolus ships with.
func DefaultMatchConfig() MatchConfig {
	return MatchConfig{
		UserTagKeys:    []string{"end_user", "user", schemas.TraceUserKey},
		TraceTagKeys:   []string{"trace_id", "mlflow_trace_id", "traceparent"},
		RequestTagKeys: []string{"agent_request_id", "databricks_request_id", "client_request_id"},
		TagUser:        true,
		TraceID:        true,
		RequestID:      true,
		TimeWindow:     true,
		Skew:           2 * time.Second,
		CrowdMargin:    10 * time.Second,
		Ambiguity:      PolicyUnattributed,
		MaxSplitUsers:  DefaultMaxSplitUsers,
		Calibrate:      true,
		// Not confirmed which id a gateway span carries; see docs/sources.md.
		GatewayLinkColumn: LinkRequestID,
		// Only read by the likely policy.
		LikelihoodRatio: DefaultLikelihoodRatio,
	}
}

// SplitLimit is MaxSplitUsers, or its default when zero.
func (c MatchConfig) SplitLimit() int {
	if c.MaxSplitUsers == 0 {
		return DefaultMaxSplitUsers
	}
	return c.MaxSplitUsers
}

// Usage columns a gateway span can name a call by (GatewayLinkColumn).
const (
	LinkRequestID    = "request_id"
	LinkInvocationID = "invocation_id"
)

// DefaultMaxSplitUsers is the default MaxSplitUsers: a share below 10% says
// little about who spent it.
const DefaultMaxSplitUsers = 10

// Validate reports the first setting that cannot work, naming its key.
func (c MatchConfig) Validate() error {
	switch c.Ambiguity {
	case PolicyUnattributed, PolicySplit, PolicyNearest, PolicyLikely:
	default:
		return fmt.Errorf("match.ambiguity: %q is not a policy; use %s, %s, %s or %s", c.Ambiguity, PolicyUnattributed, PolicySplit, PolicyNearest, PolicyLikely)
	}
	if c.Ambiguity == PolicyLikely && !(c.LikelihoodRatio >= 1) {
		return fmt.Errorf("match.likelihood_ratio: %v; the likely policy needs a ratio of at least 1 (default %d)", c.LikelihoodRatio, DefaultLikelihoodRatio)
	}
	switch c.GatewayLinkColumn {
	case "", LinkRequestID, LinkInvocationID:
	default:
		return fmt.Errorf("otel.gateway_link_column: %q; use %s or %s (or empty to not link usage through gateway spans)", c.GatewayLinkColumn, LinkRequestID, LinkInvocationID)
	}
	if c.MaxSplitUsers < 0 || c.MaxSplitUsers == 1 {
		return fmt.Errorf("match.max_split_users: %d; a split needs at least 2 users (default %d)", c.MaxSplitUsers, DefaultMaxSplitUsers)
	}
	if c.MinConfidence < 0 || c.MinConfidence >= 1 || c.MinConfidence != c.MinConfidence {
		return fmt.Errorf("match.min_confidence: %v; use a confidence from 0 (off) up to, not including, 1", c.MinConfidence)
	}
	if c.MinConfidence > 0 && !c.Calibrate {
		return errors.New("match.min_confidence needs match.calibrate: the minimum applies to calibrated confidence")
	}
	if c.Skew < 0 {
		return fmt.Errorf("match.skew: %s is negative; use a duration such as 2s", c.Skew)
	}
	if c.CrowdMargin < 0 {
		return fmt.Errorf("match.crowd_margin: %s is negative; use a duration such as 10s", c.CrowdMargin)
	}
	for name, keys := range map[string][]string{"match.user_tag_keys": c.UserTagKeys, "match.trace_tag_keys": c.TraceTagKeys, "match.request_tag_keys": c.RequestTagKeys} {
		for _, k := range keys {
			if k == "" {
				return fmt.Errorf("%s: empty tag key; remove it or name the tag", name)
			}
		}
	}
	return nil
}

// Candidate is an agent request chosen for an event, with its share.
type Candidate struct {
	Request *schemas.AgentRequest
	Weight  float64
}

// Match is the engine's answer for one usage event.
type Match struct {
	Method     string
	Confidence float64
	// Candidates counts the agent requests that could have made the call.
	Candidates int
	// EndUser is set when the tags name the user directly (MethodTagUser).
	EndUser string
	// Chosen holds one request for id and single-candidate matches, several
	// for a split, none when unattributed or when a tag_user match found no
	// request to enrich it with.
	Chosen []Candidate
	Reason string
}

// Matcher applies the match rules against an Index.
type Matcher struct {
	cfg                              MatchConfig
	idx                              *Index
	userKeys, traceKeys, requestKeys []TagKey
	scratch                          []*schemas.AgentRequest
	wide                             []*schemas.AgentRequest
	// timing is the likely policy's model (Engine.FitTiming); without one
	// the policy leaves ambiguous calls unattributed.
	timing *TimingModel
}

// NewMatcher returns a matcher over idx. cfg must be valid.
func NewMatcher(cfg MatchConfig, idx *Index) *Matcher {
	return &Matcher{cfg: cfg, idx: idx, userKeys: NewTagKeys(cfg.UserTagKeys), traceKeys: NewTagKeys(cfg.TraceTagKeys),
		requestKeys: NewTagKeys(cfg.RequestTagKeys)}
}

// Time-window confidence: see the README's "Confidence" section.
const (
	windowBaseConfidence = 0.95
	skewEdgeFactor       = 0.75
)

// Match attributes one event. It never fails: an event it cannot place is
// returned as MethodUnattributed with a Reason.
func (m *Matcher) Match(ev *schemas.UsageEvent) Match {
	tags := ReadTags(ev.RequestTags, m.cfg.ExactTagKeys)
	linked, linkedBy, idSeen := m.link(ev, tags)
	if m.cfg.TagUser {
		for _, k := range m.userKeys {
			if u := tags.Value(k); u != "" {
				match := Match{Method: schemas.MethodTagUser, Confidence: 1, Candidates: 1, EndUser: u}
				if linked != nil {
					match.Chosen = []Candidate{{Request: linked, Weight: 1}}
				}
				return match
			}
		}
	}
	if linked != nil {
		return Match{Method: linkedBy, Confidence: 1, Candidates: 1, Chosen: []Candidate{{Request: linked, Weight: 1}}}
	}
	if idSeen && !m.cfg.UntrustedIDFallback {
		return Match{Method: schemas.MethodUnattributed, Reason: ReasonIDNotFound}
	}
	if !m.cfg.TimeWindow {
		return Match{Method: schemas.MethodUnattributed, Reason: ReasonNoRule}
	}
	return m.window(ev)
}

// link finds the request the tags name by trace id, else by request id,
// else the request of the trace a gateway span puts the call in, and how;
// idSeen reports whether any id named the call's request at all.
func (m *Matcher) link(ev *schemas.UsageEvent, tags *TagReader) (linked *schemas.AgentRequest, by string, idSeen bool) {
	for _, rule := range [...]struct {
		on     bool
		keys   []TagKey
		lookup func(*Index, string) (*schemas.AgentRequest, bool) // a method expression: no closure per call
		method string
	}{{m.cfg.TraceID, m.traceKeys, (*Index).ByTraceID, schemas.MethodTraceID}, {m.cfg.RequestID, m.requestKeys, (*Index).ByRequestID, schemas.MethodRequestID}} {
		if !rule.on {
			continue
		}
		for _, k := range rule.keys {
			if v := tags.Value(k); v != "" {
				idSeen = true
				if r, ok := rule.lookup(m.idx, v); ok {
					return r, rule.method, true
				}
			}
		}
	}
	if m.cfg.TraceID && m.cfg.GatewayLinkColumn != "" {
		id := ev.RequestID
		if m.cfg.GatewayLinkColumn == LinkInvocationID {
			id = ev.InvocationID
		}
		if trace, ok := m.idx.ByGatewayLink(id); ok {
			if r, ok := m.idx.ByTraceID(trace); ok {
				return r, schemas.MethodTraceID, true
			}
			idSeen = true // the trace is known; its agent request has not landed
		}
	}
	return nil, "", idSeen
}

func (m *Matcher) window(ev *schemas.UsageEvent) Match {
	m.scratch = m.idx.Running(m.scratch[:0], ev.Requester, ev.EventTime, m.cfg.Skew)
	cands := m.scratch
	switch n := len(cands); {
	case n == 0:
		return Match{Method: schemas.MethodUnattributed, Reason: ReasonNoCandidate}
	case n == 1:
		return Match{
			Method:     schemas.MethodTimeWindow,
			Confidence: m.singleConfidence(ev, cands[0]),
			Candidates: 1,
			Chosen:     []Candidate{{Request: cands[0], Weight: 1}},
		}
	default:
		switch m.cfg.Ambiguity {
		case PolicySplit:
			chosen := make([]Candidate, n)
			for i, c := range cands {
				chosen[i] = Candidate{Request: c, Weight: 1 / float64(n)}
			}
			// Canonical order keeps reruns byte-identical.
			slices.SortFunc(chosen, func(a, b Candidate) int { return compareRequests(a.Request, b.Request) })
			if chosen = byUser(chosen); len(chosen) > m.cfg.SplitLimit() {
				return Match{Method: schemas.MethodUnattributed, Candidates: n, Reason: ReasonAmbiguous}
			}
			return Match{Method: schemas.MethodTimeWindowSplit, Confidence: windowBaseConfidence / float64(n), Candidates: n, Chosen: chosen}
		case PolicyNearest:
			best := nearest(cands, ev.EventTime)
			return Match{Method: schemas.MethodTimeWindowNearest, Confidence: windowBaseConfidence / float64(n), Candidates: n, Chosen: []Candidate{{Request: best, Weight: 1}}}
		case PolicyLikely:
			if m.timing != nil {
				best, top, second, sum := m.timing.likely(ev.Requester, ev.EventTime, cands, m.cfg.Skew)
				if top > 0 && top >= m.cfg.LikelihoodRatio*second {
					return Match{Method: schemas.MethodTimeWindowLikely, Confidence: likelyConfidence(posteriorPercent(top, sum)), Candidates: n,
						Chosen: []Candidate{{Request: best, Weight: 1}}}
				}
			}
			return Match{Method: schemas.MethodUnattributed, Candidates: n, Reason: ReasonAmbiguous}
		default:
			return Match{Method: schemas.MethodUnattributed, Candidates: n, Reason: ReasonAmbiguous}
		}
	}
}

// byUser folds candidates of the same end user into one share (the user's
// first request in canonical order carries it): a user with two requests
// running is one person to bill, and an invocation has one row per user.
func byUser(chosen []Candidate) []Candidate {
	out := chosen[:0]
	for _, c := range chosen {
		merged := false
		for i := range out {
			if out[i].Request.EndUser == c.Request.EndUser {
				out[i].Weight += c.Weight
				merged = true
				break
			}
		}
		if !merged {
			out = append(out, c)
		}
	}
	return out
}

// singleConfidence discounts a lone candidate by how crowded the widened
// window was and by whether the event fell only inside the skew allowance.
func (m *Matcher) singleConfidence(ev *schemas.UsageEvent, c *schemas.AgentRequest) float64 {
	m.wide = m.idx.Running(m.wide[:0], ev.Requester, ev.EventTime, m.cfg.Skew+m.cfg.CrowdMargin)
	return loneConfidence(len(m.wide), skewOnly(ev, c))
}

// loneConfidence is the rule's confidence in a lone candidate among wide
// requests within crowd_margin (itself included), discounted when the
// event fell only inside the skew allowance. Calibration decodes its
// buckets with it, so both compute the same double.
func loneConfidence(wide int, skewOnly bool) float64 {
	conf := windowBaseConfidence / float64(max(wide, 1))
	if skewOnly {
		conf *= skewEdgeFactor
	}
	return conf
}

// skewOnly reports whether ev fell outside c's own interval, inside the
// skew allowance only.
func skewOnly(ev *schemas.UsageEvent, c *schemas.AgentRequest) bool {
	return ev.EventTime.Before(c.StartTime) || ev.EventTime.After(c.End())
}

// nearest picks the candidate whose start is closest to t; ties go to the
// canonical order so the answer does not depend on input order.
func nearest(cands []*schemas.AgentRequest, t time.Time) *schemas.AgentRequest {
	best := cands[0]
	bestD := absDuration(t.Sub(best.StartTime))
	for _, c := range cands[1:] {
		d := absDuration(t.Sub(c.StartTime))
		if d < bestD || d == bestD && compareRequests(c, best) < 0 {
			best, bestD = c, d
		}
	}
	return best
}

func compareRequests(a, b *schemas.AgentRequest) int {
	if c := a.StartTime.Compare(b.StartTime); c != 0 {
		return c
	}
	switch ka, kb := a.Key(), b.Key(); {
	case ka < kb:
		return -1
	case ka > kb:
		return 1
	}
	return 0
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
