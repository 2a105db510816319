package report

import (
	"cmp"
	"fmt"
	"io"
	"math/big"
	"slices"

	"github.com/obolus/obolus/internal/chargeback"
)

// Spread is how a cost is distributed over units of one kind (an agent's
// turns, or its conversations): how many, the median, the 95th percentile and
// the maximum cost of one unit, and which unit cost the most.
type Spread struct {
	Count         int
	P50, P95, Max int64 // micro-units
	MaxID         string
}

// AgentSpread is one agent's cost per turn (agent request: one user turn,
// fanned out into gateway calls) and per conversation (session). A runaway
// agent shows as a maximum far above its median.
type AgentSpread struct {
	Agent              string
	Turns              Spread
	CallsP50, CallsMax float64 // gateway invocations per turn (sum of weight)
	Sessions           Spread
}

// Runaway is the maximum cost of a turn over the 95th percentile, 0 without
// turns. Turn costs are long-tailed, so the maximum is measured against the
// agent's own tail rather than its median: on the demo workload every agent's
// costliest turn is 8-30× its median, but only a turn far beyond the 95th
// percentile (a loop, a runaway fan-out) is several times it.
func (a AgentSpread) Runaway() float64 {
	if a.Turns.P95 <= 0 {
		return 0
	}
	return float64(a.Turns.Max) / float64(a.Turns.P95)
}

// spreadAcc collects the rows of one agent by turn and session.
type spreadAcc struct {
	turns    map[string]*turnAcc
	sessions map[string]int64
}

type turnAcc struct {
	micros int64
	calls  float64
}

// spreads accumulates AgentSpreads while the report groups its rows.
type spreads map[string]*spreadAcc

// add counts a row's cost (allocated with billing data, else list) towards
// its agent request and session; rows with neither are not counted.
func (s spreads) add(r *usageRow, cost int64) {
	if r.agentRequest == "" && r.session == "" {
		return
	}
	a, ok := s[r.agent]
	if !ok {
		a = &spreadAcc{turns: map[string]*turnAcc{}, sessions: map[string]int64{}}
		s[r.agent] = a
	}
	if r.agentRequest != "" {
		t, ok := a.turns[r.agentRequest]
		if !ok {
			t = &turnAcc{}
			a.turns[r.agentRequest] = t
		}
		t.micros += cost
		t.calls += r.weight
	}
	if r.session != "" {
		a.sessions[r.session] += cost
	}
}

// build sorts the agents costliest turn first, so runaway agents lead.
func (s spreads) build() []AgentSpread {
	out := make([]AgentSpread, 0, len(s))
	for agent, a := range s {
		turns := make(map[string]int64, len(a.turns))
		calls := make([]float64, 0, len(a.turns))
		for id, t := range a.turns {
			turns[id] = t.micros
			calls = append(calls, t.calls)
		}
		slices.Sort(calls)
		as := AgentSpread{Agent: agent, Turns: spreadOf(turns), Sessions: spreadOf(a.sessions)}
		if n := len(calls); n > 0 {
			as.CallsP50, as.CallsMax = calls[rank(n, 50)], calls[n-1]
		}
		out = append(out, as)
	}
	slices.SortFunc(out, func(a, b AgentSpread) int {
		return cmp.Or(cmp.Compare(b.Turns.Max, a.Turns.Max), cmp.Compare(b.Sessions.Max, a.Sessions.Max), cmp.Compare(a.Agent, b.Agent))
	})
	return out
}

// spreadOf is the distribution of costs by unit id. The costliest unit's id
// breaks ties by the smaller id, so every run names the same one.
func spreadOf(costs map[string]int64) Spread {
	if len(costs) == 0 {
		return Spread{}
	}
	ids := make([]string, 0, len(costs))
	for id := range costs {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return cmp.Or(cmp.Compare(costs[a], costs[b]), cmp.Compare(b, a)) })
	n := len(ids)
	return Spread{Count: n, P50: costs[ids[rank(n, 50)]], P95: costs[ids[rank(n, 95)]], Max: costs[ids[n-1]], MaxID: ids[n-1]}
}

// rank is the index of the p-th percentile of n sorted values by the
// nearest-rank method: the smallest value with at least p% of the values at
// or below it. It is always one of the values, never an interpolation.
func rank(n, p int) int {
	r := (p*n + 99) / 100 // ceil(p·n/100)
	return max(r, 1) - 1
}

// distributionTable is the distribution as a flat table: one row per agent.
func (r *Report) distributionTable() *table {
	t := &table{cols: []column{
		{name: "period", kind: kString}, {name: "agent", kind: kString}, {name: "cost_basis", kind: kString}, {name: "currency", kind: kString},
		{name: "turns", kind: kInt}, {name: "calls_per_turn_p50", kind: kDecimal, scale: 6}, {name: "calls_per_turn_max", kind: kDecimal, scale: 6},
		{name: "cost_per_turn_p50", kind: kDecimal, scale: 6}, {name: "cost_per_turn_p95", kind: kDecimal, scale: 6},
		{name: "cost_per_turn_max", kind: kDecimal, scale: 6}, {name: "costliest_turn", kind: kString}, {name: "max_over_p95", kind: kDecimal, scale: 6},
		{name: "sessions", kind: kInt}, {name: "cost_per_session_p50", kind: kDecimal, scale: 6},
		{name: "cost_per_session_p95", kind: kDecimal, scale: 6}, {name: "cost_per_session_max", kind: kDecimal, scale: 6},
		{name: "costliest_session", kind: kString},
	}}
	basis := "list_cost"
	if r.Billing {
		basis = "allocated_cost"
	}
	for _, a := range r.Agents {
		t.rows = append(t.rows, []any{r.Period.Label, a.Agent, basis, r.Currency,
			int64(a.Turns.Count), fixed(a.CallsP50, 6), fixed(a.CallsMax, 6),
			chargeback.FormatFixed(a.Turns.P50, 6), chargeback.FormatFixed(a.Turns.P95, 6), chargeback.FormatFixed(a.Turns.Max, 6),
			orNil(a.Turns.MaxID), fixed(a.Runaway(), 6),
			int64(a.Sessions.Count), chargeback.FormatFixed(a.Sessions.P50, 6), chargeback.FormatFixed(a.Sessions.P95, 6),
			chargeback.FormatFixed(a.Sessions.Max, 6), orNil(a.Sessions.MaxID)})
	}
	return t
}

// WriteDistributionCSV writes the cost per turn and per conversation of
// each agent as CSV, cells escaped like every CSV output.
func (r *Report) WriteDistributionCSV(w io.Writer) error {
	return r.distributionTable().writeCSV(w, r.RawCSV)
}

// RunawayFactor is how far above its 95th percentile an agent's costliest
// turn has to be for the Markdown and HTML reports to flag the agent.
const RunawayFactor = 5

// distributionHead heads the distribution table of Markdown and HTML; the
// cells of distributionText follow it. Columns 0 and 7 are data (agent
// name, turn id) and need escaping for the format; the others are numbers.
var distributionHead = []string{"Agent", "Turns", "Calls per turn (median / max)", "Cost per turn: median", "p95", "max",
	"Max ÷ p95", "Costliest turn", "Conversations", "Cost per conversation: median", "p95", "max"}

// distributionData are the columns of distributionHead that hold data.
var distributionData = map[int]bool{0: true, 7: true}

// distributionText lays an agent's spread out as text, costs to 1/10,000 of
// the currency unit (a turn often costs less than a cent).
func distributionText(a AgentSpread) []string {
	runaway := "–"
	if a.Turns.P95 > 0 {
		runaway = fmt.Sprintf("%.1f×", a.Runaway())
	}
	turns, sessions := "–", "–"
	if a.Turns.Count > 0 {
		turns = integer(int64(a.Turns.Count))
	}
	if a.Sessions.Count > 0 {
		sessions = integer(int64(a.Sessions.Count))
	}
	calls := "–"
	if a.Turns.Count > 0 {
		calls = requests(a.CallsP50) + " / " + requests(a.CallsMax)
	}
	return []string{a.Agent, turns, calls, smallMoney(a.Turns.P50, a.Turns.Count), smallMoney(a.Turns.P95, a.Turns.Count),
		smallMoney(a.Turns.Max, a.Turns.Count), runaway, a.Turns.MaxID, sessions,
		smallMoney(a.Sessions.P50, a.Sessions.Count), smallMoney(a.Sessions.P95, a.Sessions.Count), smallMoney(a.Sessions.Max, a.Sessions.Count)}
}

// smallMoney writes micro-units to four places, "–" when nothing was counted.
func smallMoney(micros int64, n int) string {
	if n == 0 {
		return "–"
	}
	q, _ := chargeback.RoundHalfAway(big.NewRat(micros, 100), 1)
	return chargeback.FormatFixed(q, 4)
}

// distributionNote explains the table in every format.
func (r *Report) distributionNote() string {
	basis := "list-price cost"
	if r.Billing {
		basis = "allocated cost"
	}
	return fmt.Sprintf("A turn is one agent request (agent_request_id): a user's turn, which the agent fans out into gateway calls; a conversation is a session (mlflow.trace.session or OTel session.id). Costs are %s in %s, summed over every call of the turn or conversation whoever it was attributed to; percentiles by the nearest-rank method. Agents are listed costliest turn first; an agent whose costliest turn is at least %d× its 95th percentile is flagged (a runaway turn).",
		basis, r.Currency, RunawayFactor)
}
