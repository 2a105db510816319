package schemas

import (
	"strconv"
	"strings"
)

// Calibration is one row of a run's calibration table: how often the
// time-window rule picked the right end user for id-linked calls whose ids
// were masked, in one bucket of what the rule saw, and the confidence real
// time-window matches in that bucket get (see enrich.Calibrate).
//
// ServicePrincipal "" is the pooled bucket of all service principals. A row
// with Method "" is a service principal's presence row: Calls counts its
// id-tagged calls, Correct those whose request was found, and Present the
// smoothed share found.
type Calibration struct {
	RunID            string  `json:"run_id"`
	ServicePrincipal string  `json:"service_principal"`
	Method           string  `json:"method"`
	Candidates       int32   `json:"candidates"`
	Rule             float64 `json:"rule_confidence"`
	Calls            int64   `json:"calls"`
	Correct          int64   `json:"correct"`
	Present          float64 `json:"present"`
	Confidence       float64 `json:"confidence"`
}

// CalibrationColumns are the calibration table's columns in DDL order.
func CalibrationColumns() []string {
	return []string{"run_id", "service_principal", "method", "candidates", "rule_confidence", "calls", "correct", "present", "confidence"}
}

// Values are the row's values in CalibrationColumns order.
func (c *Calibration) Values() []any {
	return []any{c.RunID, c.ServicePrincipal, c.Method, c.Candidates, c.Rule, c.Calls, c.Correct, c.Present, c.Confidence}
}

// ScanTargets are pointers to the row's fields in CalibrationColumns order.
func (c *Calibration) ScanTargets() []any {
	return []any{&c.RunID, &c.ServicePrincipal, &c.Method, &c.Candidates, &c.Rule, &c.Calls, &c.Correct, &c.Present, &c.Confidence}
}

// A masked outcome is what the time-window rule answers for an id-linked
// call with its ids masked, carried with the call's staged rows (copy
// column copy_masked) so that the store counts it over the copies it keeps:
//
//	count*1000 + edge*100 + method*10 + correct
//
// method 1 is time_window (count: the requests within crowd_margin, edge 1
// when the call fell only inside the skew allowance), 2 is
// time_window_nearest (count: the candidates), 3 is time_window_likely
// (count: the candidates×100 + the pick's posterior in hundredths, its rule
// confidence); correct is 1 when the pick
// named the call's end user. 0 means no outcome: the call was not id-linked,
// or the rule would not have picked anyone.
const (
	MaskedTimeWindow = 1
	MaskedNearest    = 2
	MaskedLikely     = 3
)

// MaskedCode packs a masked outcome.
func MaskedCode(method int, count int, edge, correct bool) int64 {
	code := int64(count)*1000 + int64(method)*10
	if edge {
		code += 100
	}
	if correct {
		code++
	}
	return code
}

// MaskedStat is one row of MaskedStatsSQL: a service principal's masked
// outcomes of one code (correct digit zeroed), and how many were correct.
type MaskedStat struct {
	ServicePrincipal string
	Code             int64
	Calls, Correct   int64
}

// PresenceStat is one row of PresenceSQL: a service principal's id-linked
// calls and calls whose tags named a request never found.
type PresenceStat struct {
	ServicePrincipal string
	Linked, NotFound int64
}

// CalibrationStats are what a calibration is computed from.
type CalibrationStats struct {
	Masked   []MaskedStat
	Presence []PresenceStat
}

// MaskedStatsSQL yields MaskedStat rows over kept (a relation with
// StageColumns, one copy per invocation).
func MaskedStatsSQL(kept string) string {
	return `SELECT requester, copy_masked - copy_masked % 10 AS code, count(*) AS calls, CAST(sum(copy_masked % 10) AS BIGINT) AS correct
FROM ` + kept + ` k WHERE copy_masked > 0 GROUP BY requester, copy_masked - copy_masked % 10`
}

// PresenceSQL yields PresenceStat rows over kept.
func PresenceSQL(kept string) string {
	return `SELECT requester,
  count(*) FILTER (WHERE match_method IN ('` + MethodTraceID + `', '` + MethodRequestID + `')) AS linked,
  count(*) FILTER (WHERE match_method = '` + MethodUnattributed + `' AND reason = 'id_not_found') AS not_found
FROM ` + kept + ` k
WHERE match_method IN ('` + MethodTraceID + `', '` + MethodRequestID + `') OR (match_method = '` + MethodUnattributed + `' AND reason = 'id_not_found')
GROUP BY requester`
}

// CalibratedMethod reports whether rows of method get calibrated
// confidence: the time-window picks. A split share is not a pick that is
// right or wrong.
func CalibratedMethod(method string) bool {
	return method == MethodTimeWindow || method == MethodTimeWindowNearest || method == MethodTimeWindowLikely
}

// CalibratedMethodsSQL is the SQL list of the methods CalibratedMethod
// names, for match_method IN.
const CalibratedMethodsSQL = "('" + MethodTimeWindow + "', '" + MethodTimeWindowNearest + "', '" + MethodTimeWindowLikely + "')"

// calibratedConfidenceSQL is the calibrated confidence of the bucket of
// alias a (requester, match_method, candidates and match_confidence, a
// time-window row's) against the calibration rows in table cal, of the run
// bound as runParam (a marker, or "" when cal holds one run's rows only):
// the service principal's row, else the pooled row times the service
// principal's presence, else the rule's confidence times it, as
// enrich.Calibrate defines them.
func calibratedConfidenceSQL(a, cal, runParam string) string {
	run := func(alias string) string {
		if runParam == "" {
			return ""
		}
		return alias + ".run_id = " + runParam + " AND "
	}
	// Scalar subqueries are aggregated, as Spark requires of correlated ones.
	present := "coalesce((SELECT max(p.present) FROM " + cal + " p WHERE " + run("p") +
		"p.service_principal = " + a + ".requester AND p.method = ''), 1e0)"
	bucket := func(alias, sp string) string {
		return "(SELECT max(" + alias + ".confidence) FROM " + cal + " " + alias + " WHERE " + run(alias) +
			alias + ".service_principal = " + sp + " AND " + alias + ".method = " + a + ".match_method AND " +
			alias + ".candidates = " + a + ".candidates AND " + alias + ".rule_confidence = " + a + ".match_confidence)"
	}
	return "coalesce(" + bucket("cs", a+".requester") + ", " + bucket("cp", "''") + " * " + present + ", " + a + ".match_confidence * " + present + ")"
}

// CalibrationMapSQL yields one row per bucket that the time-window rows
// of rel fall in: requester, match_method, candidates, rule (the rows'
// match_confidence) and conf, the calibrated confidence
// (calibratedConfidenceSQL). A few hundred rows: the scalar subqueries run
// per bucket, and the rows take their confidence through CalibratedJoin.
func CalibrationMapSQL(rel, cal, runParam string) string {
	return "SELECT b.requester, b.match_method, b.candidates, b.match_confidence AS rule, " +
		calibratedConfidenceSQL("b", cal, runParam) + " AS conf\nFROM (SELECT DISTINCT requester, match_method, candidates, match_confidence FROM " + rel +
		" WHERE match_method IN " + CalibratedMethodsSQL + ") b"
}

// CalibratedJoin joins map m (CalibrationMapSQL's rows, in relation
// mapRel) to the rows of alias a.
func CalibratedJoin(a, mapRel, m string) string {
	return "LEFT JOIN " + mapRel + " " + m + " ON " + m + ".requester = " + a + ".requester AND " + m + ".match_method = " + a + ".match_method AND " +
		m + ".candidates = " + a + ".candidates AND " + m + ".rule = " + a + ".match_confidence"
}

// CalibratedSelect is the attribution columns of alias a, in DDL order,
// with match_confidence from map alias m (CalibratedJoin) where it has the
// row's bucket.
func CalibratedSelect(a, m string) string {
	cols := AttributionColumns()
	for i, c := range cols {
		if c == "match_confidence" {
			cols[i] = "coalesce(" + m + ".conf, " + a + ".match_confidence) AS match_confidence"
		} else {
			cols[i] = a + "." + c
		}
	}
	return strings.Join(cols, ", ")
}

// MaskedFallback marks, in copy_masked, the staged row that replaces a
// time-window pick whose calibrated confidence falls below the run's
// minimum: the same call left unattributed (reason low_confidence). The
// commit keeps either the pick or its fallback (GatedKeptSQL).
const MaskedFallback = -1

// CalibrationResult is what a stage's calibrate function returns: the
// run's calibration rows, and the minimum calibrated confidence a
// time-window pick must reach to stand (0: no minimum).
type CalibrationResult struct {
	RunID         string
	Rows          []Calibration
	MinConfidence float64
}

// GatedSQL yields (invocation_id, copy_seq) of the time-window picks of rel
// whose calibrated confidence (through map relation mapRel) is below the
// bound marker minParam.
func GatedSQL(rel, mapRel, minParam string) string {
	return "SELECT s.invocation_id, s.copy_seq FROM " + rel + " s " + CalibratedJoin("s", mapRel, "m") +
		"\nWHERE s.match_method IN " + CalibratedMethodsSQL + " AND s.copy_masked <> " + fmtInt(MaskedFallback) +
		" AND coalesce(m.conf, s.match_confidence) < " + minParam
}

// GatedKeptSQL yields the rows of rel (with StageColumns) the gate keeps:
// a gated pick's fallback instead of the pick, and no other fallback.
func GatedKeptSQL(rel, gated string) string {
	return "SELECT k.* FROM " + rel + " k LEFT JOIN " + gated + " g ON g.invocation_id = k.invocation_id AND g.copy_seq = k.copy_seq\n" +
		"WHERE (k.copy_masked = " + fmtInt(MaskedFallback) + ") = (g.invocation_id IS NOT NULL)"
}

func fmtInt(v int) string { return strconv.Itoa(v) }
