package dbxrun

import (
	"fmt"
	"time"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/internal/batch"
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
	c := Check{Name: "agent logs", Status: CheckOK,
		Detail: fmt.Sprintf("%d agent requests; their logs agree on the times within match.skew (%s)", s.AgentRequests, match.Skew)}
	if s.TimeDisagreements > 0 {
		c.Status = CheckWarn
		c.Detail = fmt.Sprintf("%d of %d agent requests have logs (payload row, traces) that disagree on start or end by more than match.skew (%s); "+
			"the payload row's times are used, see README, Agent logs of one request", s.TimeDisagreements, s.AgentRequests, match.Skew.Round(time.Millisecond))
	}
	return append(out, c)
}
