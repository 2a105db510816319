package report

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/obolus/obolus/schemas"
)

// syntheticRows is n attribution rows spread over the period: 3 gateway
// endpoints, 3 models, 60 users in 6 teams, every match method, about 5%
// unattributed and 3% split between two users (which adds rows).
func syntheticRows(n int, seed uint64, p Period) []schemas.Attribution {
	rng := rand.New(rand.NewPCG(seed, 99))
	eps := [][2]string{{"e-chat", "chat-gw"}, {"e-code", "code-gw"}, {"e-search", "search-gw"}}
	models := []struct {
		name     string
		in, out  float64 // USD per 1M tokens
		unpriced bool
	}{{"gpt-5", 1.25, 10, false}, {"claude-sonnet-4-5", 3, 15, false}, {"meta-llama-3.3-70b-instruct", 0.5, 1.5, false}, {"mystery-1", 0, 0, true}}
	teams := []string{"platform", "research", "sales", "support", "finance", schemas.UnassignedTeam}
	agents := []string{"agent-support", "agent-coder", "agent-research"}
	methods := []string{schemas.MethodTagUser, schemas.MethodTraceID, schemas.MethodRequestID, schemas.MethodTimeWindow, schemas.MethodTimeWindowNearest}
	span := p.End.Sub(p.Start)
	out := make([]schemas.Attribution, 0, n+n/20)
	for i := 0; len(out) < n; i++ {
		ep := eps[rng.IntN(len(eps))]
		m := models[rng.IntN(len(models))]
		if m.unpriced && rng.IntN(20) > 0 {
			m = models[0] // unpriced calls are rare
		}
		when := p.Start.Add(time.Duration(rng.Int64N(int64(span)))).Truncate(time.Microsecond)
		in, outTok := int64(200+rng.IntN(8000)), int64(50+rng.IntN(2000))
		cost := (float64(in)*m.in + float64(outTok)*m.out) / 1e6
		base := schemas.Attribution{
			InvocationID: fmt.Sprintf("inv-%08d", i), RequestID: fmt.Sprintf("req-%08d", i/3), EventTime: when,
			AccountID: "acct-1", WorkspaceID: "ws-1", EndpointID: ep[0], EndpointName: ep[1], DestinationModel: m.name,
			Requester: "sp-" + ep[1], StatusCode: 200, UsageSource: "ai_gateway",
			AgentEndpoint: agents[rng.IntN(len(agents))], Candidates: 1, Weight: 1, MatchConfidence: 1,
			InputTokens: in, OutputTokens: outTok, TotalTokens: in + outTok, CostUSD: cost,
			PriceListVersion: "2026-10-01", Version: 1, RunID: "run-synthetic",
		}
		user := func() (string, string, string) {
			u := rng.IntN(60)
			return fmt.Sprintf("user%02d@example.com", u), teams[u%len(teams)], fmt.Sprintf("CC-%d", 100+u%len(teams))
		}
		switch r := rng.IntN(100); {
		case r < 5:
			base.MatchMethod, base.EndUser, base.Team, base.AgentEndpoint = schemas.MethodUnattributed, base.Requester, schemas.UnassignedTeam, ""
			base.MatchConfidence, base.Reason = 0, "no_candidate"
			out = append(out, base)
		case r < 8:
			// Split between two users: tokens and cost apportioned, weight ½ each.
			a, b := base, base
			a.MatchMethod, b.MatchMethod = schemas.MethodTimeWindowSplit, schemas.MethodTimeWindowSplit
			a.Weight, b.Weight, a.MatchConfidence, b.MatchConfidence, a.Candidates, b.Candidates = 0.5, 0.5, 0.5, 0.5, 2, 2
			a.EndUser, a.Team, a.CostCenter = user()
			for b.EndUser = a.EndUser; b.EndUser == a.EndUser; {
				b.EndUser, b.Team, b.CostCenter = user()
			}
			a.InputTokens, b.InputTokens = in-in/2, in/2
			a.OutputTokens, b.OutputTokens = outTok-outTok/2, outTok/2
			a.TotalTokens, b.TotalTokens = a.InputTokens+a.OutputTokens, b.InputTokens+b.OutputTokens
			a.CostUSD, b.CostUSD = cost/2, cost/2
			out = append(out, a, b)
		default:
			base.MatchMethod = methods[rng.IntN(len(methods))]
			if !schemas.IDMethod(base.MatchMethod) {
				base.MatchConfidence = 0.6 + 0.4*rng.Float64()
			}
			base.EndUser, base.Team, base.CostCenter = user()
			out = append(out, base)
		}
	}
	return out
}
