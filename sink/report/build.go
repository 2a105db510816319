package report

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/obolus/obolus/internal/chargeback"
	"github.com/obolus/obolus/schemas"
)

// Dimension is something chargeback lines can be grouped by.
type Dimension string

// Dimensions.
const (
	ByTeam       Dimension = "team"
	ByCostCenter Dimension = "cost_center"
	ByUser       Dimension = "user"
	ByAgent      Dimension = "agent"
	ByModel      Dimension = "model"
	// BySession groups by conversation: the agent's session id
	// (mlflow.trace.session), so one line is one conversation's cost.
	BySession Dimension = "session"
	// ByAgentRequest groups by agent request (agent_request_id): one user
	// turn, which an agent fans out into many gateway calls.
	ByAgentRequest Dimension = "agent_request"
)

var allDimensions = []Dimension{ByTeam, ByCostCenter, ByUser, ByAgent, ByModel, BySession, ByAgentRequest}

// ParseDimensions reads a comma-separated list such as "team,user".
func ParseDimensions(s string) ([]Dimension, error) {
	var out []Dimension
	for _, f := range strings.Split(s, ",") {
		d := Dimension(strings.TrimSpace(f))
		if !slices.Contains(allDimensions, d) {
			return nil, fmt.Errorf("--by %q: %q is not one of team, cost_center, user, agent, model, session, agent_request", s, f)
		}
		if slices.Contains(out, d) {
			return nil, fmt.Errorf("--by %q: %s appears twice", s, d)
		}
		out = append(out, d)
	}
	return out, nil
}

func (d Dimension) of(r *usageRow) string {
	switch d {
	case ByTeam:
		return r.team
	case ByCostCenter:
		return r.costCenter
	case ByUser:
		return r.endUser
	case ByAgent:
		return r.agent
	case BySession:
		return r.session
	case ByAgentRequest:
		return r.agentRequest
	default:
		return modelKey(r.model)
	}
}

// Labels of the lines that are not an end user's.
const (
	// UnattributedLabel names the remainder line: invocations no rule could
	// assign to an end user, plus billed cost with no gateway usage at all.
	UnattributedLabel = "(unattributed)"
	// MethodNoUsage is the pseudo match method of billed cost with no gateway
	// usage in its hour × endpoint × model.
	MethodNoUsage = "no_usage"
)

// Options shape a report.
type Options struct {
	Period Period
	By     []Dimension // default: team
	// Pseudonymizer, when set, replaces end users by keyed hashes in every output.
	Pseudonymizer *Pseudonymizer
	// Top is how many users and models the summaries list (default 15).
	Top int
	// RawCSV writes text cells of CSV outputs as they are. By default a
	// cell that a spreadsheet would run as a formula (it starts with =, +,
	// -, @, TAB or CR) is prefixed with a single quote: end users come from
	// request tags, which any gateway caller can set.
	RawCSV bool
	// FocusVersion is the FOCUS version of the export: Focus12 or Focus13
	// (default).
	FocusVersion string
}

// Amounts are the sums behind one line.
type Amounts struct {
	Invocations                                           float64 // sum of weight: a split invocation counts once across its users
	Rows                                                  int64
	InputTokens, OutputTokens, TotalTokens                int64
	CacheReadTokens, CacheCreationTokens, ReasoningTokens int64
	ListMicros                                            int64 // list-price cost (tokens × price list), micro-units
	AllocatedMicros                                       int64 // share of the bill, micro-units; 0 without billing data
	confidence                                            float64
}

func (a *Amounts) add(r *usageRow, list, alloc int64) {
	a.Invocations += r.weight
	a.Rows++
	a.InputTokens += r.input
	a.OutputTokens += r.output
	a.TotalTokens += r.total
	a.CacheReadTokens += r.cacheRead
	a.CacheCreationTokens += r.cacheCreation
	a.ReasoningTokens += r.reasoning
	a.ListMicros += list
	a.AllocatedMicros += alloc
	a.confidence += r.weight * r.confidence
}

// MeanConfidence is the weight-weighted mean match confidence.
func (a Amounts) MeanConfidence() float64 {
	if a.Invocations == 0 {
		return 0
	}
	return a.confidence / a.Invocations
}

// Line is one group of a report: Keys follow the report's By.
type Line struct {
	Keys []string
	Amounts
}

// MethodLine is the part of the period's cost behind one match method.
type MethodLine struct {
	Method string
	Basis  string // id, time_window, unattributed or no_usage
	Amounts
}

// Day is one UTC day of the period, for the charts.
type Day struct {
	Date time.Time
	// Cost by team (allocated cost with billing data, list cost without);
	// the remainder is under UnattributedLabel.
	Cost                               map[string]int64
	Invocations, AttributedInvocations float64
	CostMicros, AttributedMicros       int64
}

// PriceChange is a list price that changed inside the period.
type PriceChange struct {
	SKU, Cloud, Unit, Currency string
	At                         time.Time
	From, To                   string // effective list prices
}

// Reconciliation says how the bill was allocated and that it adds up.
type Reconciliation struct {
	Records int // billing records read
	Charges int // hour × endpoint × model × SKU × price groups
	// ChargesWithUsage were allocated to invocations; the others had none.
	ChargesWithUsage int
	// Exact is Σ usage_quantity × effective list price, unrounded, as a decimal.
	Exact        string
	BilledMicros int64 // Exact rounded half away from zero to the micro-unit
	// BilledMicros = AttributedMicros + UnattributedMicros + NoUsageMicros, always.
	AttributedMicros   int64
	UnattributedMicros int64 // allocated to invocations left with their service principal
	NoUsageMicros      int64 // billed hours × endpoints × models with no gateway usage
	// UnbilledInvocations is how many attribution rows no billing record
	// covered (billing lags usage by hours); UnbilledListMicros their list cost.
	UnbilledInvocations int64
	UnbilledListMicros  int64
	// Bases counts charges by the weights that split them: list_cost,
	// tokens (bucket with no list-price cost), equal (no tokens either).
	Bases        map[string]int
	PriceChanges []PriceChange
}

// Report is a built chargeback.
type Report struct {
	Period        Period
	By            []Dimension
	Billing       bool   // billing records were found for the period
	Currency      string // of the bill; USD without one
	Pseudonymized bool
	Top           int
	// RawCSV: see Options.RawCSV.
	RawCSV bool
	// FocusVersion: see Options.FocusVersion.
	FocusVersion string

	Lines        []Line  // attributed groups, costliest first
	Unattributed Amounts // the remainder line; its AllocatedMicros includes NoUsageMicros
	Total        Amounts
	Methods      []MethodLine
	// Confidence splits the attributed amounts by match_confidence: at
	// least 0.9, 0.5 to 0.9, below 0.5 (ConfidenceBands).
	Confidence [3]Amounts
	// Calibration is what the time-window confidences rest on, per agent.
	Calibration []CalibrationLine
	Days        []Day
	Teams       []string // teams in Days, costliest first, UnattributedLabel last
	TopUsers    []Line   // Keys: user, team
	Models      []Line   // Keys: model
	// Agents is each agent's cost per turn and per conversation, costliest
	// turn first (rows with an agent request id or a session only).
	Agents []AgentSpread
	Rec    Reconciliation
	// Focus holds the FOCUS rows once FocusRows has built them.
	Focus []FocusRow
	focus *focusAgg
	// SnapshotID names the bill the allocation used (BillSnapshotID);
	// cost_allocation rows carry it.
	SnapshotID string
	alloc      allocation
}

// ConfidenceBands name Report.Confidence's bands.
var ConfidenceBands = [3]string{"at least 0.9", "0.5 to 0.9", "below 0.5"}

func confidenceBand(c float64) int {
	switch {
	case c >= 0.9:
		return 0
	case c >= 0.5:
		return 1
	}
	return 2
}

// confidenceText says how much of the attributed cost rests on each band.
func (r *Report) confidenceText(costName string) string {
	var cost [3]int64
	var total int64
	for i, a := range r.Confidence {
		cost[i] = r.Cost(a)
		total += cost[i]
	}
	if total == 0 {
		return ""
	}
	return fmt.Sprintf("Of the attributed %s, %s carries a match confidence of %s, %s of %s and %s %s (time-window confidences are calibrated on id-linked calls: README, Confidence).",
		strings.ToLower(costName), percent(float64(cost[0]), float64(total)), ConfidenceBands[0],
		percent(float64(cost[1]), float64(total)), ConfidenceBands[1], percent(float64(cost[2]), float64(total)), ConfidenceBands[2])
}

// calibrationTexts say, per agent, how often its time-window matches were
// right on the id-linked calls they were calibrated on. name writes an
// agent's name for the output format.
func (r *Report) calibrationTexts(name func(string) string) []string {
	var out []string
	for _, l := range r.Calibration {
		if l.Calls == 0 {
			continue
		}
		who := l.ServicePrincipal
		if l.Agent != "" {
			who = l.Agent
		}
		out = append(out, fmt.Sprintf("Time-window matches on agent %s were right %s of the time, measured on %s id-linked calls.",
			name(who), percent(float64(l.Correct), float64(l.Calls)), integer(l.Calls)))
	}
	return out
}

// Cost is the figure charts and rankings use: allocated cost with billing
// data, list-price cost without.
func (r *Report) Cost(a Amounts) int64 {
	if r.Billing {
		return a.AllocatedMicros
	}
	return a.ListMicros
}

// chargeKey groups billing records into charges.
type chargeKey struct {
	hour                        chargeback.Hour
	endpoint, model             string
	sku, cloud, unit, currency  string
	listPrice, price            string
	workspace, account, product string
}

type charge struct {
	chargeKey
	endpointName, modelName string // as the bill spells them, for FOCUS
	priceStart              time.Time
	exact                   *big.Rat
	micros                  int64
}

// Build reads the period from src, allocates the bill and groups the result.
func Build(ctx context.Context, src Source, opt Options) (*Report, error) {
	if err := src.check(); err != nil {
		return nil, err
	}
	if opt.Period.Start.IsZero() || !opt.Period.End.After(opt.Period.Start) {
		return nil, fmt.Errorf("report: period [%s, %s) is empty", opt.Period.Start, opt.Period.End)
	}
	if len(opt.By) == 0 {
		opt.By = []Dimension{ByTeam}
	}
	if opt.Top <= 0 {
		opt.Top = 15
	}
	fv, err := ParseFocusVersion(opt.FocusVersion)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	opt.FocusVersion = fv
	rows, err := readUsage(ctx, src, opt.Period)
	if err != nil {
		return nil, err
	}
	recs, err := readBilling(ctx, src, opt.Period)
	if err != nil {
		return nil, err
	}
	cal, err := readCalibration(ctx, src, opt.Period)
	if err != nil {
		return nil, err
	}
	rep, err := assemble(opt, rows, recs)
	if rep != nil {
		rep.Calibration = cal
	}
	return rep, err
}

func assemble(opt Options, rows []usageRow, recs []billingRecord) (*Report, error) {
	rep := &Report{Period: opt.Period, By: opt.By, Billing: len(recs) > 0, Currency: "USD", Top: opt.Top,
		Pseudonymized: opt.Pseudonymizer != nil, RawCSV: opt.RawCSV, FocusVersion: opt.FocusVersion}
	if p := opt.Pseudonymizer; p != nil {
		names := map[string]string{}
		for i := range rows {
			r := &rows[i]
			if r.method == schemas.MethodUnattributed {
				continue // the service principal keeps it, and it is no person
			}
			n, ok := names[r.endUser]
			if !ok {
				n = p.Pseudonym(r.endUser)
				names[r.endUser] = n
			}
			r.endUser = n
		}
	}

	// Items: one per attribution row.
	eps := newEndpoints(rows)
	items := make([]chargeback.Item, len(rows))
	listMicros := make([]int64, len(rows))
	for i := range rows {
		r := &rows[i]
		items[i] = chargeback.Item{
			Hour:      chargeback.HourOf(r.eventTime),
			Endpoint:  endpointKey(r.endpointID, r.endpointName),
			Model:     modelKey(r.model),
			ListNanos: int64(math.Round(r.costUSD * 1e9)),
			Tokens:    r.total,
		}
		listMicros[i] = int64(math.Round(r.costUSD * 1e6))
	}

	charges, err := buildCharges(rep, recs, eps)
	if err != nil {
		return nil, err
	}
	cc := make([]chargeback.Charge, len(charges))
	for j, c := range charges {
		cc[j] = chargeback.Charge{Hour: c.hour, Endpoint: c.endpoint, Model: c.model, Micros: c.micros}
	}
	fa := newFocusAgg(rep, charges, rows)
	res, err := chargeback.Allocate(cc, items, fa.visit)
	if err != nil {
		return nil, fmt.Errorf("report: allocate: %w", err)
	}

	rec := &rep.Rec
	rec.Bases = map[string]int{}
	for j, cr := range res.Charges {
		fa.basis(j, cr.Basis)
		if cr.Items > 0 {
			rec.ChargesWithUsage++
			rec.Bases[cr.Basis.String()]++
		} else {
			fa.noUsage(j)
		}
	}
	rec.NoUsageMicros = res.Unallocated
	rec.UnbilledInvocations = int64(res.UnbilledItems)
	for i := range rows {
		if res.ItemMicros[i] == 0 && !fa.covered(i) {
			rec.UnbilledListMicros += listMicros[i]
		}
	}

	// Group.
	type acc struct {
		keys []string
		a    Amounts
	}
	lines := map[string]*acc{}
	users := map[string]*acc{}
	models := map[string]*acc{}
	methods := map[string]*Amounts{}
	days := map[time.Time]*Day{}
	for _, d := range opt.Period.Days() {
		days[d] = &Day{Date: d, Cost: map[string]int64{}}
	}
	keyBuf := make([]string, len(opt.By))
	sp := spreads{}
	for i := range rows {
		r := &rows[i]
		alloc := res.ItemMicros[i]
		if rep.Billing {
			sp.add(r, alloc)
		} else {
			sp.add(r, listMicros[i])
		}
		attributed := r.method != schemas.MethodUnattributed
		if attributed {
			for k, d := range opt.By {
				keyBuf[k] = d.of(r)
			}
			key := strings.Join(keyBuf, "\x00")
			l, ok := lines[key]
			if !ok {
				l = &acc{keys: slices.Clone(keyBuf)}
				lines[key] = l
			}
			l.a.add(r, listMicros[i], alloc)
			uk := r.endUser + "\x00" + r.team
			u, ok := users[uk]
			if !ok {
				u = &acc{keys: []string{r.endUser, r.team}}
				users[uk] = u
			}
			u.a.add(r, listMicros[i], alloc)
			rep.Confidence[confidenceBand(r.confidence)].add(r, listMicros[i], alloc)
			rec.AttributedMicros += alloc
		} else {
			rep.Unattributed.add(r, listMicros[i], alloc)
			rec.UnattributedMicros += alloc
		}
		// One line per model, whichever route named it: a legacy row
		// priced through its served entity names the pay-per-token
		// endpoint (databricks-claude-sonnet-4-5), a gateway row the model
		// (claude-sonnet-4-5); the price list takes both as one model too.
		mk := modelKey(r.model)
		m, ok := models[mk]
		if !ok {
			m = &acc{keys: []string{mk}}
			models[mk] = m
		}
		m.a.add(r, listMicros[i], alloc)
		ma, ok := methods[r.method]
		if !ok {
			ma = &Amounts{}
			methods[r.method] = ma
		}
		ma.add(r, listMicros[i], alloc)
		rep.Total.add(r, listMicros[i], alloc)

		day := days[r.eventTime.Truncate(24*time.Hour)]
		if day == nil {
			continue // cannot happen: rows are read for the period's days
		}
		cost := alloc
		if !rep.Billing {
			cost = listMicros[i]
		}
		team := UnattributedLabel
		if attributed {
			team = r.team
			day.AttributedInvocations += r.weight
			day.AttributedMicros += cost
		}
		day.Cost[team] += cost
		day.Invocations += r.weight
		day.CostMicros += cost
	}
	// Billed cost with no usage joins the remainder, on the day it was billed.
	rep.Unattributed.AllocatedMicros += res.Unallocated
	rep.Total.AllocatedMicros += res.Unallocated
	for j, c := range charges {
		if res.Charges[j].Items == 0 {
			if day := days[c.hour.Time().Truncate(24*time.Hour)]; day != nil {
				day.Cost[UnattributedLabel] += c.micros
				day.CostMicros += c.micros
			}
		}
	}
	if rec.AttributedMicros+rec.UnattributedMicros+rec.NoUsageMicros != rec.BilledMicros {
		// Allocate guarantees this; a failure here is a defect, reported rather than hidden.
		return nil, fmt.Errorf("report: allocation does not reconcile: %d + %d + %d != %d micro-units",
			rec.AttributedMicros, rec.UnattributedMicros, rec.NoUsageMicros, rec.BilledMicros)
	}

	byCost := func(a, b *acc) int {
		return cmp.Or(cmp.Compare(rep.Cost(b.a), rep.Cost(a.a)), cmp.Compare(b.a.ListMicros, a.a.ListMicros), slices.Compare(a.keys, b.keys))
	}
	flatten := func(m map[string]*acc, limit int) []Line {
		all := make([]*acc, 0, len(m))
		for _, a := range m {
			all = append(all, a)
		}
		slices.SortFunc(all, byCost)
		if limit > 0 && len(all) > limit {
			all = all[:limit]
		}
		out := make([]Line, len(all))
		for i, a := range all {
			out[i] = Line{Keys: a.keys, Amounts: a.a}
		}
		return out
	}
	rep.Lines = flatten(lines, 0)
	rep.TopUsers = flatten(users, opt.Top)
	rep.Models = flatten(models, 0)

	for m, a := range methods {
		rep.Methods = append(rep.Methods, MethodLine{Method: m, Basis: methodBasis(m), Amounts: *a})
	}
	if res.Unallocated != 0 || rec.Charges > rec.ChargesWithUsage {
		rep.Methods = append(rep.Methods, MethodLine{Method: MethodNoUsage, Basis: MethodNoUsage, Amounts: Amounts{AllocatedMicros: res.Unallocated}})
	}
	slices.SortFunc(rep.Methods, func(a, b MethodLine) int {
		return cmp.Or(cmp.Compare(methodOrder(a.Method), methodOrder(b.Method)), cmp.Compare(a.Method, b.Method))
	})

	teamCost := map[string]int64{}
	for _, d := range opt.Period.Days() {
		day := days[d]
		rep.Days = append(rep.Days, *day)
		for t, c := range day.Cost {
			teamCost[t] += c
		}
	}
	for t := range teamCost {
		if t != UnattributedLabel {
			rep.Teams = append(rep.Teams, t)
		}
	}
	slices.SortFunc(rep.Teams, func(a, b string) int { return cmp.Or(cmp.Compare(teamCost[b], teamCost[a]), cmp.Compare(a, b)) })
	if _, ok := teamCost[UnattributedLabel]; ok {
		rep.Teams = append(rep.Teams, UnattributedLabel)
	}
	rep.Agents = sp.build()
	rep.focus = fa
	rep.SnapshotID = BillSnapshotID(opt.Period, recs)
	rep.alloc = allocation{rows: rows, itemMicros: res.ItemMicros, listMicros: listMicros, charges: charges, chargeResults: res.Charges}
	return rep, nil
}

// buildCharges groups billing records into charges and rounds their exact
// costs to micro-units, preserving the rounded total.
func buildCharges(rep *Report, recs []billingRecord, eps endpoints) ([]charge, error) {
	rec := &rep.Rec
	rec.Records = len(recs)
	rec.Exact = "0"
	if len(recs) == 0 {
		return nil, nil
	}
	rep.Currency = recs[0].currency
	index := map[chargeKey]int{}
	var charges []charge
	type priceKey struct{ sku, cloud, unit, currency string }
	prices := map[priceKey][]billingRecord{}
	total := new(big.Rat)
	for i := range recs {
		b := &recs[i]
		if b.currency != rep.Currency {
			return nil, fmt.Errorf("report: billing record %q is priced in %s, others in %s: one report takes one currency", b.recordID, b.currency, rep.Currency)
		}
		k := chargeKey{
			hour:     chargeback.HourOf(b.start),
			endpoint: eps.resolve(b.endpointID, b.endpointName),
			model:    modelKey(b.model),
			sku:      b.sku, cloud: b.cloud, unit: b.unit, currency: b.currency,
			listPrice: b.listPrice.RatString(), price: b.price.RatString(),
			workspace: b.workspace, account: b.account, product: b.product,
		}
		if k.endpoint == "" {
			return nil, fmt.Errorf("report: billing record %q: usage_metadata names no AI Gateway endpoint (ai_gateway_endpoint_id and _name empty)", b.recordID)
		}
		j, ok := index[k]
		if !ok {
			j = len(charges)
			index[k] = j
			name := b.endpointName
			if name == "" {
				name = b.endpointID
			}
			charges = append(charges, charge{chargeKey: k, endpointName: name, modelName: b.model, priceStart: b.priceStart, exact: new(big.Rat)})
		}
		cost := new(big.Rat).Mul(b.quantity, b.price)
		charges[j].exact.Add(charges[j].exact, cost)
		total.Add(total, cost)
		pk := priceKey{b.sku, b.cloud, b.unit, b.currency}
		prices[pk] = append(prices[pk], *b)
	}
	exact := make([]*big.Rat, len(charges))
	for j := range charges {
		exact[j] = charges[j].exact
	}
	micros, err := chargeback.RoundPreservingSum(exact, chargeback.MicrosPerUnit)
	if err != nil {
		return nil, fmt.Errorf("report: round the bill: %w", err)
	}
	for j := range charges {
		charges[j].micros = micros[j]
		rec.BilledMicros += micros[j]
	}
	rec.Charges = len(charges)
	rec.Exact = exactString(total)

	// Price changes: consecutive records of one SKU whose price differs.
	for pk, rs := range prices {
		slices.SortFunc(rs, func(a, b billingRecord) int { return a.end.Compare(b.end) })
		for i := 1; i < len(rs); i++ {
			if rs[i].price.Cmp(rs[i-1].price) != 0 && !rs[i].priceStart.Equal(rs[i-1].priceStart) {
				rec.PriceChanges = append(rec.PriceChanges, PriceChange{SKU: pk.sku, Cloud: pk.cloud, Unit: pk.unit, Currency: pk.currency,
					At: rs[i].priceStart, From: decimalString(rs[i-1].price), To: decimalString(rs[i].price)})
			}
		}
	}
	slices.SortFunc(rec.PriceChanges, func(a, b PriceChange) int { return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.SKU, b.SKU)) })
	return charges, nil
}

func methodBasis(m string) string {
	switch {
	case m == schemas.MethodUnattributed:
		return "unattributed"
	case schemas.IDMethod(m):
		return "id"
	default:
		return "time_window"
	}
}

func methodOrder(m string) int {
	order := []string{schemas.MethodTagUser, schemas.MethodTraceID, schemas.MethodRequestID, schemas.MethodTimeWindow,
		schemas.MethodTimeWindowSplit, schemas.MethodTimeWindowNearest, schemas.MethodTimeWindowLikely, schemas.MethodUnattributed, MethodNoUsage}
	if i := slices.Index(order, m); i >= 0 {
		return i
	}
	return len(order) - 2 // unknown methods sort before unattributed
}

// decimalString writes r as a plain decimal, exactly when it terminates
// (billing quantities and prices do), else to 18 places.
func decimalString(r *big.Rat) string {
	if n, exact := r.FloatPrec(); exact {
		return r.FloatString(max(n, 0))
	}
	return r.FloatString(18)
}

func exactString(r *big.Rat) string { return decimalString(r) }
