package dbxrun

import (
	"fmt"
	"time"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/internal/batch"
	"github.com/obolus/obolus/schemas"
)

// SurveyRows bounds how many usage rows obolus doctor reads for its survey.
const SurveyRows = 200_000

// SurveyChecks turns what a survey of the sources found into doctor checks:
// tag keys spelled almost like a configured key, and agent requests whose
// logs disagree on their times.
func SurveyChecks(s *batch.Survey, match enrich.MatchConfig) []Check {
	var configured []string
	for _, ks := range [][]string{match.UserTagKeys, match.TraceTagKeys, match.RequestTagKeys} {
		configured = append(configured, ks...)
	}
	var out []Check
	notes := enrich.NearTagKeys(s.TagKeys, configured, match.ExactTagKeys)
	for _, n := range notes {
		status := CheckOK
		if !n.Matched {
			status = CheckWarn
		}
		out = append(out, Check{Name: "tag key " + n.Seen, Status: status, Detail: n.String()})
	}
	if len(notes) == 0 {
		out = append(out, Check{Name: "tag keys", Status: CheckOK,
			Detail: fmt.Sprintf("%d keys on %d sampled usage rows; none is a near miss of a configured key", len(s.TagKeys), s.UsageRows)})
	}
	if s.GatewayLinks > 0 {
		// A sampled row whose link leads to no agent request is either
		// early (its log has not landed) or not an agent's call at all.
		out = append(out, Check{Name: "gateway spans", Status: CheckOK,
			Detail: fmt.Sprintf("%d of %d sampled usage rows (%.1f%%) are in a trace through their %s (otel.gateway_link_column), %d of them in a trace whose agent request was read; %d gateway spans",
				s.GatewayLinked, s.UsageRows, 100*float64(s.GatewayLinked)/float64(max(s.UsageRows, 1)), match.GatewayLinkColumn, s.GatewayLinkedRequests, s.GatewayLinks)})
	}
	switch {
	case s.LegacyRows == 0:
	case !s.Served:
		out = append(out, Check{Name: "served entities", Status: CheckWarn,
			Detail: fmt.Sprintf("%d sampled legacy usage rows carry no model and stay unpriced: configure a served_entities source (databricks.served_entities: system.serving.served_entities)", s.LegacyRows)})
	case s.LegacyUnpriced > 0:
		out = append(out, Check{Name: "served entities", Status: CheckWarn,
			Detail: fmt.Sprintf("%d of %d sampled legacy usage rows name a served entity the served_entities source does not hold: they stay unpriced", s.LegacyUnpriced, s.LegacyRows)})
	default:
		out = append(out, Check{Name: "served entities", Status: CheckOK,
			Detail: fmt.Sprintf("all %d sampled legacy usage rows name a known served entity", s.LegacyRows)})
	}
	c := Check{Name: "agent logs", Status: CheckOK,
		Detail: fmt.Sprintf("%d agent requests; their logs agree on the times within match.skew (%s)", s.AgentRequests, match.Skew)}
	if s.TimeDisagreements > 0 {
		c.Status = CheckWarn
		c.Detail = fmt.Sprintf("%d of %d agent requests have logs (payload row, traces) that disagree on start or end by more than match.skew (%s); "+
			"the payload row's times are used, see README, Agent logs of one request", s.TimeDisagreements, s.AgentRequests, match.Skew.Round(time.Millisecond))
	}
	return append(out, c)
}

// CalibrationChecks says, per service principal of the latest calibration
// table, how often the time-window rule picked the right end user for its
// id-linked calls, and how many of its id-tagged calls found their request.
// agents names service principals (their agent endpoints) where known.
func CalibrationChecks(rows []schemas.Calibration, agents map[string]string) []Check {
	if len(rows) == 0 {
		return []Check{{Name: "calibration", Status: CheckWarn,
			Detail: "no calibration table yet: a batch run with match.calibrate on (the default) makes one"}}
	}
	type tally struct{ calls, correct, tagged, found int64 }
	by := map[string]*tally{}
	var order []string
	for _, r := range rows {
		if r.ServicePrincipal == "" {
			continue
		}
		t := by[r.ServicePrincipal]
		if t == nil {
			t = &tally{}
			by[r.ServicePrincipal] = t
			order = append(order, r.ServicePrincipal)
		}
		if r.Method == "" {
			t.tagged, t.found = r.Calls, r.Correct
		} else {
			t.calls += r.Calls
			t.correct += r.Correct
		}
	}
	var out []Check
	for _, sp := range order {
		t := by[sp]
		name := sp
		if a := agents[sp]; a != "" {
			name = a + " (" + sp + ")"
		}
		c := Check{Name: "calibration " + name, Status: CheckOK}
		switch {
		case t.calls == 0:
			c.Status = CheckWarn
			c.Detail = "no id-linked call to measure the time-window rule on: its matches keep the pooled or the rule's confidence"
		default:
			c.Detail = fmt.Sprintf("time-window matches were right %.1f%% of the time, measured on %d id-linked calls", 100*float64(t.correct)/float64(t.calls), t.calls)
		}
		if t.tagged > 0 {
			c.Detail += fmt.Sprintf("; %.1f%% of %d id-tagged calls found their request", 100*float64(t.found)/float64(t.tagged), t.tagged)
		}
		out = append(out, c)
	}
	if len(out) > 0 {
		out[0].Detail += " (run " + rows[0].RunID + ")"
	}
	return out
}
