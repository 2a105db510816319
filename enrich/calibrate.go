package enrich

import (
	"cmp"
	"math"
	"slices"

	"github.com/obolus/obolus/schemas"
)

// Calibration turns the time-window rule's confidence into a measured one.
//
// Every id-linked call (matched by trace id or request id) is a labelled
// example the deployment already has: with its ids masked, the time-window
// rule would have picked some request, right or wrong (Engine.Masked). The
// store counts those outcomes over the calls it keeps, per service principal
// and per bucket of what the rule saw: its method, the candidates, and the
// rule's own confidence, which encodes how crowded the window was and
// whether the call fell only inside the skew allowance. Calibrate turns the
// counts into the confidence real time-window matches in each bucket get:
// the bucket's precision, smoothed towards the pooled bucket of all service
// principals and that towards the rule's own confidence (the prior) with
// CalibrationPrior calls each, and discounted by the share of the service
// principal's id-tagged calls whose request was found at all: an untagged
// call whose request was never logged can only be matched to a wrong one.
// The store applies it (schemas.CalibratedConfidenceSQL); pull and pushdown
// count alike, so both give the same confidences.

// CalibrationPrior is the weight, in calls, of the prior in each smoothing
// step: a bucket with this many examples is half measured, half prior.
const CalibrationPrior = 20

// Masked is the masked outcome of an id-linked call (schemas.MaskedCode):
// what the time-window rule answers for ev with its ids masked, given the
// rows Attribute returned for it. 0 when the call is not id-linked, when
// the rule would pick nobody or split, or when the request it picks names
// no end user (such a match is not a time-window row either).
func (e *Engine) Masked(ev *schemas.UsageEvent, rows []schemas.Attribution) int64 {
	if len(rows) != 1 || rows[0].EndUser == "" || !e.matcher.cfg.TimeWindow {
		return 0
	}
	if m := rows[0].MatchMethod; m != schemas.MethodTraceID && m != schemas.MethodRequestID {
		return 0
	}
	w := e.matcher.window(ev)
	if len(w.Chosen) != 1 || w.Chosen[0].Request.EndUser == "" {
		return 0
	}
	correct := w.Chosen[0].Request.EndUser == rows[0].EndUser
	switch w.Method {
	case schemas.MethodTimeWindow:
		return schemas.MaskedCode(schemas.MaskedTimeWindow, len(e.matcher.wide), skewOnly(ev, w.Chosen[0].Request), correct)
	case schemas.MethodTimeWindowNearest:
		return schemas.MaskedCode(schemas.MaskedNearest, w.Candidates, false, correct)
	case schemas.MethodTimeWindowLikely:
		return schemas.MaskedCode(schemas.MaskedLikely, w.Candidates*100+int(math.Round(w.Confidence*100)), false, correct)
	}
	return 0
}

// Fallback is the row that replaces a time-window pick (rows, the rows
// Attribute returned for ev) when its calibrated confidence falls below
// MatchConfig.MinConfidence: the call left with its service principal,
// reason low_confidence. ok is false when rows are no such pick.
func (e *Engine) Fallback(ev *schemas.UsageEvent, rows []schemas.Attribution) (row schemas.Attribution, ok bool) {
	if len(rows) != 1 || !schemas.CalibratedMethod(rows[0].MatchMethod) {
		return row, false
	}
	row = rows[0]
	row.MatchMethod, row.Reason, row.MatchConfidence = schemas.MethodUnattributed, ReasonLowConfidence, 0
	return e.finish(row, ev, TokensOf(ev)), true
}

// maskedKey decodes a masked code (its correct digit zero) into the method,
// candidates and rule confidence of the answers it stands for, computed as
// the matcher computes them.
func maskedKey(code int64) (method string, candidates int32, rule float64, ok bool) {
	count := code / 1000
	edge := code/100%10 == 1
	if count <= 0 {
		return "", 0, 0, false
	}
	switch code / 10 % 10 {
	case schemas.MaskedTimeWindow:
		return schemas.MethodTimeWindow, 1, loneConfidence(int(count), edge), true
	case schemas.MaskedNearest:
		return schemas.MethodTimeWindowNearest, int32(count), windowBaseConfidence / float64(count), true
	case schemas.MaskedLikely:
		// count is candidates×100 + the posterior in hundredths.
		return schemas.MethodTimeWindowLikely, int32(count / 100), likelyConfidence(int(count % 100)), true
	}
	return "", 0, 0, false
}

type calKey struct {
	sp, method string
	candidates int32
	rule       float64
}

// Calibrate makes run runID's calibration table from the counts: a row per
// bucket seen, per pooled bucket (service principal ""), and a presence row
// per service principal (method ""). Sorted by key.
func Calibrate(runID string, s schemas.CalibrationStats) []schemas.Calibration {
	buckets := map[calKey][2]int64{}
	pooled := map[calKey][2]int64{}
	for _, m := range s.Masked {
		method, cands, rule, ok := maskedKey(m.Code)
		if !ok {
			continue
		}
		k := calKey{m.ServicePrincipal, method, cands, rule}
		b := buckets[k]
		buckets[k] = [2]int64{b[0] + m.Calls, b[1] + m.Correct}
		k.sp = ""
		p := pooled[k]
		pooled[k] = [2]int64{p[0] + m.Calls, p[1] + m.Correct}
	}
	present := map[string]float64{}
	var out []schemas.Calibration
	for _, p := range s.Presence {
		present[p.ServicePrincipal] = Presence(p.Linked, p.NotFound)
		out = append(out, schemas.Calibration{RunID: runID, ServicePrincipal: p.ServicePrincipal,
			Calls: p.Linked + p.NotFound, Correct: p.Linked, Present: present[p.ServicePrincipal], Confidence: present[p.ServicePrincipal]})
	}
	for k, b := range pooled {
		out = append(out, schemas.Calibration{RunID: runID, Method: k.method, Candidates: k.candidates, Rule: k.rule,
			Calls: b[0], Correct: b[1], Present: 1, Confidence: smooth(b, k.rule)})
	}
	for k, b := range buckets {
		pk := k
		pk.sp = ""
		pr, ok := present[k.sp]
		if !ok {
			pr = 1
		}
		out = append(out, schemas.Calibration{RunID: runID, ServicePrincipal: k.sp, Method: k.method, Candidates: k.candidates, Rule: k.rule,
			Calls: b[0], Correct: b[1], Present: pr, Confidence: smooth(b, smooth(pooled[pk], k.rule)) * pr})
	}
	slices.SortFunc(out, func(a, b schemas.Calibration) int {
		if c := cmp.Compare(a.ServicePrincipal, b.ServicePrincipal); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Method, b.Method); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Candidates, b.Candidates); c != 0 {
			return c
		}
		return cmp.Compare(b.Rule, a.Rule)
	})
	return out
}

// smooth is a bucket's precision with CalibrationPrior calls of prior.
func smooth(b [2]int64, prior float64) float64 {
	return (float64(b[1]) + CalibrationPrior*prior) / (float64(b[0]) + CalibrationPrior)
}

// Presence is the share of a service principal's id-tagged calls whose
// request was found, with one found call of prior.
func Presence(linked, notFound int64) float64 {
	return (float64(linked) + 1) / (float64(linked+notFound) + 1)
}
