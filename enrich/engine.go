package enrich

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/obolus/obolus/schemas"
)

// Run identifies the run that produced attribution rows.
type Run struct {
	ID string
	// Version is stamped on every row; a later run or restatement must use a
	// higher one.
	Version     int64
	ProcessedAt time.Time
}

// Engine turns usage events into attribution rows: it matches, prices and
// places each end user in the org directory.
type Engine struct {
	matcher *Matcher
	prices  *PriceList
	org     *Directory
	learner *timingLearner // while Learn counts, before FitTiming
	served  *ServedEntities
}

// NewEngine returns an engine over the agent requests in idx. A nil price
// list means DefaultPriceList; a nil directory puts everyone in
// schemas.UnassignedTeam.
func NewEngine(cfg MatchConfig, idx *Index, prices *PriceList, org *Directory) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if prices == nil {
		prices = DefaultPriceList()
	}
	return &Engine{matcher: NewMatcher(cfg, idx), prices: prices, org: org}, nil
}

// Attribute appends the rows for one usage event to dst: one row, or one per
// candidate under the split policy.
func (e *Engine) Attribute(dst []schemas.Attribution, ev *schemas.UsageEvent, run Run) []schemas.Attribution {
	m := e.matcher.Match(ev)
	base := schemas.Attribution{
		InvocationID:     ev.InvocationID,
		RequestID:        ev.RequestID,
		EventTime:        ev.EventTime.UTC(),
		EventDate:        ev.EventTime.UTC().Format(time.DateOnly),
		AccountID:        ev.AccountID,
		WorkspaceID:      ev.WorkspaceID,
		EndpointID:       ev.EndpointID,
		EndpointName:     ev.EndpointName,
		DestinationModel: ev.DestinationModel,
		Requester:        ev.Requester,
		StatusCode:       ev.StatusCode,
		UsageSource:      ev.Source,
		MatchMethod:      m.Method,
		MatchConfidence:  m.Confidence,
		Candidates:       int32(m.Candidates),
		Weight:           1,
		Reason:           m.Reason,
		Version:          run.Version,
		RunID:            run.ID,
		ProcessedAt:      run.ProcessedAt.UTC(),
	}
	if base.UsageSource == "" {
		base.UsageSource = schemas.SourceAIGateway
	}
	e.resolveServed(&base, ev)
	tok := TokensOf(ev)
	switch {
	case len(m.Chosen) <= 1 && m.Method != schemas.MethodTimeWindowSplit:
		row := base
		switch {
		case m.EndUser != "":
			row.EndUser = m.EndUser
		case len(m.Chosen) == 1:
			row.EndUser = m.Chosen[0].Request.EndUser
		}
		if len(m.Chosen) == 1 {
			fillRequest(&row, m.Chosen[0].Request)
		}
		if row.MatchMethod != schemas.MethodUnattributed && row.EndUser == "" {
			// The request was found but names nobody: the agent logged no user.
			row.MatchMethod, row.Reason, row.MatchConfidence = schemas.MethodUnattributed, ReasonNoUser, 0
		}
		setTokens(&row, ev)
		return append(dst, e.finish(row, ev, tok))
	default:
		// Split weights are k/n (a user's k of the n candidates): apportion
		// with exact integers, so a SQL implementation can match to the token.
		counts := make([]int64, len(m.Chosen))
		for i, c := range m.Chosen {
			counts[i] = int64(math.Round(c.Weight * float64(m.Candidates)))
		}
		shares := [6][]int64{
			ApportionCounts(ev.InputTokens, counts),
			ApportionCounts(ev.OutputTokens, counts),
			ApportionCounts(ev.TotalTokens, counts),
			ApportionCounts(ev.TokenDetails.CacheReadInputTokens, counts),
			ApportionCounts(ev.TokenDetails.CacheCreationInputTokens, counts),
			ApportionCounts(ev.TokenDetails.OutputReasoningTokens, counts),
		}
		for i, c := range m.Chosen {
			row := base
			row.EndUser = c.Request.EndUser
			row.Weight = c.Weight
			fillRequest(&row, c.Request)
			if row.EndUser == "" {
				// The share of a request that names nobody stays with the
				// service principal, as an unattributed row would.
				row.EndUser, row.Reason = ev.Requester, ReasonNoUser
			}
			row.InputTokens, row.OutputTokens, row.TotalTokens = shares[0][i], shares[1][i], shares[2][i]
			row.CacheReadInputTokens, row.CacheCreationInputTokens, row.OutputReasoningTokens = shares[3][i], shares[4][i], shares[5][i]
			part := Tokens{Input: row.InputTokens, Output: row.OutputTokens, CacheRead: row.CacheReadInputTokens, CacheCreation: row.CacheCreationInputTokens}
			dst = append(dst, e.finish(row, ev, part))
		}
		return dst
	}
}

// ReasonNoUser marks a row whose agent request was found but names no end user.
const ReasonNoUser = "request_has_no_user"

func fillRequest(row *schemas.Attribution, r *schemas.AgentRequest) {
	row.AgentEndpoint = r.AgentEndpoint
	row.TraceID = r.TraceID
	row.AgentRequestID = r.AgentRequestID
	row.Session = r.Session
}

func setTokens(row *schemas.Attribution, ev *schemas.UsageEvent) {
	row.InputTokens = ev.InputTokens
	row.OutputTokens = ev.OutputTokens
	row.TotalTokens = ev.TotalTokens
	row.CacheReadInputTokens = ev.TokenDetails.CacheReadInputTokens
	row.CacheCreationInputTokens = ev.TokenDetails.CacheCreationInputTokens
	row.OutputReasoningTokens = ev.TokenDetails.OutputReasoningTokens
}

func (e *Engine) finish(row schemas.Attribution, ev *schemas.UsageEvent, tok Tokens) schemas.Attribution {
	if row.MatchMethod == schemas.MethodUnattributed {
		// The service principal keeps what nobody else can be shown to own.
		row.EndUser = ev.Requester
		row.AgentEndpoint, row.TraceID, row.AgentRequestID, row.Session = "", "", "", ""
	}
	row.Team, row.CostCenter = e.org.Lookup(row.EndUser)
	// row.DestinationModel is the event's, or its served entity's.
	row.CostUSD, row.PriceListVersion = e.prices.Cost(row.DestinationModel, ev.DestinationName, ev.EventTime, tok)
	return row
}

// ApportionCounts splits total in proportion to integer counts, exactly:
// share i is floor(total·counts[i]/Σcounts), and what floors leave over goes
// one each to the largest remainders (ties to the earlier share). Shares sum
// to total.
func ApportionCounts(total int64, counts []int64) []int64 {
	out := make([]int64, len(counts))
	var den int64
	for _, c := range counts {
		den += c
	}
	if len(counts) == 0 {
		return out
	}
	if den <= 0 {
		out[0] = total
		return out
	}
	rems := make([]int64, len(counts))
	order := make([]int, len(counts))
	var given int64
	for i, c := range counts {
		out[i] = total * c / den
		rems[i] = total * c % den
		given += out[i]
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(rems[b], rems[a]) })
	for k := 0; given < total; k = (k + 1) % len(order) {
		out[order[k]]++
		given++
	}
	return out
}

// CompareCopies orders two rows of one invocation by which to keep: the
// earliest event_time (unix nanoseconds) first, then the most total_tokens.
// Negative means a is kept. Rows equal on both are identical for attribution.
func CompareCopies(aAt, aTotal, bAt, bTotal int64) int {
	if c := cmp.Compare(aAt, bAt); c != 0 {
		return c
	}
	return cmp.Compare(bTotal, aTotal)
}

// Dedup drops usage rows whose invocation_id was already seen, keeping one
// row per invocation chosen independently of input order: duplicates of one
// invocation describe one call, and counting it twice would bill it twice.
// It returns the kept events, sorted by (event_time, invocation_id), and how
// many rows were dropped.
func Dedup(events []schemas.UsageEvent) ([]schemas.UsageEvent, int) {
	slices.SortFunc(events, func(a, b schemas.UsageEvent) int {
		if c := cmp.Compare(a.InvocationID, b.InvocationID); c != 0 {
			return c
		}
		return CompareCopies(a.EventTime.UnixNano(), a.TotalTokens, b.EventTime.UnixNano(), b.TotalTokens)
	})
	kept := events[:0]
	for i := range events {
		if i > 0 && events[i].InvocationID == events[i-1].InvocationID {
			continue
		}
		kept = append(kept, events[i])
	}
	dropped := len(events) - len(kept)
	slices.SortFunc(kept, func(a, b schemas.UsageEvent) int {
		if c := a.EventTime.Compare(b.EventTime); c != 0 {
			return c
		}
		return cmp.Compare(a.InvocationID, b.InvocationID)
	})
	return kept, dropped
}
