package report

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/obolus/obolus/internal/budget"
)

// Budget scopes and bases, as the budgets configuration names them.
const (
	ScopeUser       = "user"
	ScopeTeam       = "team"
	ScopeCostCenter = "cost_center"

	BasisList      = "list"
	BasisAllocated = "allocated"
)

// TrendDays is how many days before the as-of time the trend reads. A
// monthly budget's window stays within the month (fewer days in its first
// week): before it there may be no data at all, and an empty week would
// read as a slowdown. A daily budget's window is the 7 days before, the
// only way to compare a day with its recent past.
const TrendDays = 7

// BudgetLimit is one configured budget: a user, team or cost center and
// its amounts in USD per UTC day and per calendar month (0: none).
type BudgetLimit struct {
	Scope, Name string
	Day, Month  float64
}

// BudgetOptions say what obolus report budgets evaluates.
type BudgetOptions struct {
	Period BudgetPeriod
	// AsOf is when the spend is read up to (clamped to the period's end).
	AsOf       time.Time
	Basis      string
	Thresholds budget.Thresholds
	Limits     []BudgetLimit
	// DefaultUserDay and DefaultUserMonth apply to every end user with
	// spend in the period and no limit of their own.
	DefaultUserDay, DefaultUserMonth float64
	// All lists every budget, not only those at warn or above or
	// forecast to reach critical.
	All    bool
	RawCSV bool
}

// BudgetPeriod is a calendar month or a UTC day.
type BudgetPeriod struct {
	Period
	Daily bool
}

// ParseBudgetPeriod reads YYYY-MM (the month's budgets) or YYYY-MM-DD (the day's).
func ParseBudgetPeriod(s string) (BudgetPeriod, error) {
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		return BudgetPeriod{Period: Period{Start: d, End: d.AddDate(0, 0, 1), Label: s}, Daily: true}, nil
	}
	m, err := time.Parse("2006-01", s)
	if err != nil {
		return BudgetPeriod{}, fmt.Errorf("period %q: want a month YYYY-MM (monthly budgets) or a day YYYY-MM-DD (daily budgets)", s)
	}
	return BudgetPeriod{Period: Period{Start: m, End: m.AddDate(0, 1, 0), Label: s}}, nil
}

// BudgetLine is one budget's state.
type BudgetLine struct {
	Scope, Name string
	Budget      float64 // USD for the period
	Spend       float64 // USD from the period's start to AsOf
	Share       float64 // Spend / Budget
	Level       budget.Level
	// RecentPerDay is the spend per day over the TrendDays days before
	// AsOf (within the month for a monthly budget); PeriodPerDay the period's spend per day so far; Trend their ratio.
	RecentPerDay, PeriodPerDay, Trend float64
	Forecast                          float64 // USD at the period's end, linear run-rate
	ForecastShare                     float64
	ForecastLevel                     budget.Level
}

// BudgetReport is the outcome of obolus report budgets.
type BudgetReport struct {
	Period     BudgetPeriod
	AsOf       time.Time
	Basis      string // the basis read: list when allocated fell back
	Thresholds budget.Thresholds
	Notes      []string
	Lines      []BudgetLine // sorted by severity
	Evaluated  int          // budgets evaluated, listed or not
	RawCSV     bool
}

// Critical reports whether any budget is at the critical level.
func (r *BudgetReport) Critical() bool {
	return slices.ContainsFunc(r.Lines, func(l BudgetLine) bool { return l.Level == budget.Critical })
}

// spendHour is the spend of one end user (with their team and cost center) in one hour.
type spendHour struct {
	user, team, costCenter string
	hour                   time.Time
	usd                    float64
}

// BuildBudgets reads the spend and evaluates every budget.
func BuildBudgets(ctx context.Context, src Source, opt BudgetOptions) (*BudgetReport, error) {
	if err := src.check(); err != nil {
		return nil, err
	}
	if err := opt.Thresholds.Validate(); err != nil {
		return nil, err
	}
	p := opt.Period
	asOf := opt.AsOf.UTC()
	if asOf.After(p.End) {
		asOf = p.End
	}
	if !asOf.After(p.Start) {
		return nil, fmt.Errorf("report: budgets: period %s starts after %s; nothing spent yet", p.Label, asOf.Format(time.RFC3339))
	}
	rep := &BudgetReport{Period: p, AsOf: asOf, Basis: opt.Basis, Thresholds: opt.Thresholds, RawCSV: opt.RawCSV}
	from := p.Start // a monthly trend stays within the month; a daily one reads the week before
	if p.Daily {
		from = asOf.Add(-TrendDays * 24 * time.Hour)
	}
	var (
		hours []spendHour
		err   error
	)
	switch opt.Basis {
	case BasisAllocated:
		var n int64
		if n, err = countAllocated(ctx, src, p.Period); err != nil {
			return nil, err
		}
		if n == 0 {
			rep.Basis = BasisList
			rep.Notes = append(rep.Notes, fmt.Sprintf("No allocation is persisted for %s (obolus report chargeback --persist, or batch.persist_allocation, writes it once the bill lands): spend is at list price (attribution cost_usd) instead.", p.Label))
			hours, err = readSpend(ctx, src, BasisList, from, asOf)
		} else {
			hours, err = readSpend(ctx, src, BasisAllocated, from, asOf)
		}
	case BasisList:
		hours, err = readSpend(ctx, src, BasisList, from, asOf)
	default:
		return nil, fmt.Errorf("report: budgets: basis %q: want %s or %s", opt.Basis, BasisList, BasisAllocated)
	}
	if err != nil {
		return nil, err
	}
	evaluate(rep, opt, hours)
	return rep, nil
}

func countAllocated(ctx context.Context, src Source, p Period) (int64, error) {
	tbl, err := src.table("cost_allocation", src.Tables.Allocation)
	if err != nil {
		return 0, err
	}
	var n int64
	q := `SELECT count(*) FROM ` + tbl + ` WHERE hour >= ` + src.Dialect.ts() + ` AND hour < ` + src.Dialect.ts()
	if err := queryRow(ctx, src.DB, q, p.Start.UnixMicro(), p.End.UnixMicro()).Scan(&n); err != nil {
		return 0, fmt.Errorf("report: budgets: count %s (run obolus report chargeback --persist to create it, or use budgets.basis list): %w", src.Tables.Allocation, err)
	}
	return n, nil
}

// readSpend sums spend per end user, team, cost center and hour over
// [from, to): hourly, so that the period, the trend window and the as-of
// time cut at hour boundaries (an hour counts where it starts).
func readSpend(ctx context.Context, src Source, basis string, from, to time.Time) ([]spendHour, error) {
	field, name, timeCol, amount := "attribution", src.Tables.Attribution, "event_time", "cost_usd"
	if basis == BasisAllocated {
		field, name, timeCol, amount = "cost_allocation", src.Tables.Allocation, "hour", "allocated_cost"
	}
	tbl, err := src.table(field, name)
	if err != nil {
		return nil, err
	}
	q := `SELECT coalesce(end_user, ''), coalesce(team, ''), coalesce(cost_center, ''), date_trunc('hour', ` + timeCol + `),
	CAST(sum(coalesce(` + amount + `, 0)) AS DOUBLE)
FROM ` + tbl + `
WHERE ` + timeCol + ` >= ` + src.Dialect.ts() + ` AND ` + timeCol + ` < ` + src.Dialect.ts() + `
GROUP BY 1, 2, 3, 4`
	rows, err := src.DB.QueryContext(ctx, q, from.UnixMicro(), to.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("report: budgets: read %s: %w", name, err)
	}
	defer rows.Close()
	in := interner{}
	var out []spendHour
	for rows.Next() {
		var s spendHour
		if err := rows.Scan(&s.user, &s.team, &s.costCenter, &s.hour, &s.usd); err != nil {
			return nil, fmt.Errorf("report: budgets: read %s: %w", name, err)
		}
		s.user, s.team, s.costCenter, s.hour = in.get(s.user), in.get(s.team), in.get(s.costCenter), s.hour.UTC()
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("report: budgets: read %s: %w", name, err)
	}
	return out, nil
}

// scopeKey is a user, team or cost center.
type scopeKey struct{ scope, name string }

// evaluate turns hourly spend into budget lines.
func evaluate(rep *BudgetReport, opt BudgetOptions, hours []spendHour) {
	p := rep.Period
	recentFrom := rep.AsOf.Add(-TrendDays * 24 * time.Hour)
	if !p.Daily && recentFrom.Before(p.Start) {
		recentFrom = p.Start
	}
	recentDays := rep.AsOf.Sub(recentFrom).Hours() / 24
	spend, recent := map[scopeKey]float64{}, map[scopeKey]float64{}
	users := map[string]bool{} // end users with spend in the period
	for _, h := range hours {
		inPeriod := !h.hour.Before(p.Start)
		inRecent := !h.hour.Before(recentFrom)
		for _, k := range []scopeKey{{ScopeUser, h.user}, {ScopeTeam, h.team}, {ScopeCostCenter, h.costCenter}} {
			if k.name == "" {
				continue
			}
			if inPeriod {
				spend[k] += h.usd
			}
			if inRecent {
				recent[k] += h.usd
			}
		}
		if inPeriod && h.user != "" {
			users[h.user] = true
		}
	}
	amount := func(l BudgetLimit) float64 {
		if p.Daily {
			return l.Day
		}
		return l.Month
	}
	limits := map[scopeKey]float64{}
	for _, l := range opt.Limits {
		limits[scopeKey{l.Scope, l.Name}] = amount(l)
	}
	def := amount(BudgetLimit{Day: opt.DefaultUserDay, Month: opt.DefaultUserMonth})
	if def > 0 {
		for u := range users {
			if _, own := limits[scopeKey{ScopeUser, u}]; !own {
				limits[scopeKey{ScopeUser, u}] = def
			}
		}
	}
	elapsedDays := rep.AsOf.Sub(p.Start).Hours() / 24
	for k, b := range limits {
		if !(b > 0) {
			continue // a limit for the other kind of period only
		}
		rep.Evaluated++
		l := BudgetLine{Scope: k.scope, Name: k.name, Budget: b, Spend: spend[k]}
		l.Share, l.Level = budget.Evaluate(l.Spend, b, rep.Thresholds)
		l.RecentPerDay = recent[k] / recentDays
		l.PeriodPerDay = l.Spend / elapsedDays
		l.Trend = budget.Trend(recent[k], recentDays, l.Spend, p.Start, rep.AsOf)
		l.Forecast = budget.Forecast(l.Spend, p.Start, p.End, rep.AsOf)
		l.ForecastShare, l.ForecastLevel = budget.Evaluate(l.Forecast, b, rep.Thresholds)
		if opt.All || l.Level >= budget.Warn || l.ForecastLevel == budget.Critical {
			rep.Lines = append(rep.Lines, l)
		}
	}
	slices.SortFunc(rep.Lines, func(a, b BudgetLine) int {
		return cmp.Or(cmp.Compare(b.Level, a.Level), cmp.Compare(b.ForecastLevel, a.ForecastLevel), cmp.Compare(b.Share, a.Share),
			cmp.Compare(scopeRank(a.Scope), scopeRank(b.Scope)), strings.Compare(a.Name, b.Name))
	})
}

func scopeRank(s string) int {
	return slices.Index([]string{ScopeUser, ScopeTeam, ScopeCostCenter}, s)
}
