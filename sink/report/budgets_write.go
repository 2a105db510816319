package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/obolus/obolus/internal/budget"
	"github.com/obolus/obolus/internal/safetext"
)

var budgetScopeTitle = map[string]string{ScopeUser: "User", ScopeTeam: "Team", ScopeCostCenter: "Cost center"}

// dollars formats dollars as 1,234.56.
func dollars(f float64) string { return money(int64(math.Round(f * 100))) }

// ratio formats a share as 87.5%.
func ratio(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

// trendText formats a trend as ×1.42; "–" when there is no rate to compare with.
func trendText(f float64) string {
	if f == 0 {
		return "–"
	}
	return fmt.Sprintf("×%.2f", f)
}

func (r *BudgetReport) kind() string {
	if r.Period.Daily {
		return "daily"
	}
	return "monthly"
}

// WriteMarkdown writes the budgets report as Markdown; every name goes
// through mdCell, so a hostile end user cannot inject links or markup.
func (r *BudgetReport) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(bw, format, a...) }
	p("# Budgets — %s\n\n", r.Period.Label)
	p("%s budgets, spend up to %s, on the %s basis (%s). Levels: warn from %s of a budget, critical from %s. ",
		capitalize(r.kind()), r.AsOf.Format("2006-01-02 15:04 UTC"), r.Basis, basisText(r.Basis), ratio(r.Thresholds.Warn), ratio(r.Thresholds.Critical))
	window := fmt.Sprintf("the last %d days", TrendDays)
	if !r.Period.Daily {
		window += " of the month"
	}
	p("Forecast: the spend so far at its run-rate to the period's end; trend: spend per day over %s against the period's.\n\n", window)
	for _, n := range r.Notes {
		p("> %s\n\n", n)
	}
	if len(r.Lines) == 0 {
		p("Nobody is at or near a budget (%s evaluated).\n", plural(r.Evaluated, "budget"))
		return bw.Flush()
	}
	p("%s listed of %s evaluated, most severe first.\n\n", plural(len(r.Lines), "budget"), integer(int64(r.Evaluated)))
	p("| Level | Scope | Name | Spend | Budget | Share | Per day, last %d days | Per day, period | Trend | Forecast | Forecast share |\n", TrendDays)
	p("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, l := range r.Lines {
		p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", levelText(l), budgetScopeTitle[l.Scope], mdCell(l.Name),
			dollars(l.Spend), dollars(l.Budget), ratio(l.Share), dollars(l.RecentPerDay), dollars(l.PeriodPerDay), trendText(l.Trend), dollars(l.Forecast), ratio(l.ForecastShare))
	}
	return bw.Flush()
}

// levelText names the level reached, and a forecast that will reach critical.
func levelText(l BudgetLine) string {
	if l.Level < l.ForecastLevel {
		return l.Level.String() + " (forecast " + l.ForecastLevel.String() + ")"
	}
	return l.Level.String()
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

func basisText(b string) string {
	if b == BasisAllocated {
		return "the bill's share, cost_allocation.allocated_cost"
	}
	return "list price, attribution cost_usd"
}

func dec(f float64, places int) string { return strconv.FormatFloat(f, 'f', places, 64) }

// budgetTable is the report as a table, for CSV.
func (r *BudgetReport) budgetTable() *table {
	t := &table{cols: []column{
		{name: "period", kind: kString}, {name: "kind", kind: kString}, {name: "as_of", kind: kTime}, {name: "basis", kind: kString},
		{name: "level", kind: kString}, {name: "scope", kind: kString}, {name: "name", kind: kString},
		{name: "spend_usd", kind: kDecimal, scale: 6}, {name: "budget_usd", kind: kDecimal, scale: 6}, {name: "share", kind: kDecimal, scale: 6},
		{name: "recent_per_day_usd", kind: kDecimal, scale: 6}, {name: "period_per_day_usd", kind: kDecimal, scale: 6}, {name: "trend", kind: kDecimal, scale: 6},
		{name: "forecast_usd", kind: kDecimal, scale: 6}, {name: "forecast_share", kind: kDecimal, scale: 6}, {name: "forecast_level", kind: kString},
	}}
	for _, l := range r.Lines {
		t.rows = append(t.rows, []any{r.Period.Label, r.kind(), r.AsOf, r.Basis, l.Level.String(), l.Scope, l.Name,
			dec(l.Spend, 6), dec(l.Budget, 6), dec(l.Share, 6), dec(l.RecentPerDay, 6), dec(l.PeriodPerDay, 6), dec(l.Trend, 6),
			dec(l.Forecast, 6), dec(l.ForecastShare, 6), l.ForecastLevel.String()})
	}
	return t
}

// WriteCSV writes one row per listed budget; names are neutralized against
// formula injection unless RawCSV.
func (r *BudgetReport) WriteCSV(w io.Writer) error { return r.budgetTable().writeCSV(w, r.RawCSV) }

type budgetJSON struct {
	Period      string           `json:"period"`
	Kind        string           `json:"kind"`
	AsOf        time.Time        `json:"as_of"`
	Basis       string           `json:"basis"`
	Warn        float64          `json:"warn"`
	Critical    float64          `json:"critical"`
	Notes       []string         `json:"notes"`
	Evaluated   int              `json:"evaluated"`
	AnyCritical bool             `json:"any_critical"`
	Budgets     []budgetLineJSON `json:"budgets"`
}

type budgetLineJSON struct {
	Level         string  `json:"level"`
	Scope         string  `json:"scope"`
	Name          string  `json:"name"`
	Spend         float64 `json:"spend_usd"`
	Budget        float64 `json:"budget_usd"`
	Share         float64 `json:"share"`
	RecentPerDay  float64 `json:"recent_per_day_usd"`
	PeriodPerDay  float64 `json:"period_per_day_usd"`
	Trend         float64 `json:"trend"`
	Forecast      float64 `json:"forecast_usd"`
	ForecastShare float64 `json:"forecast_share"`
	ForecastLevel string  `json:"forecast_level"`
}

// round6 keeps JSON numbers to the micro-dollar, so that outputs are stable.
func round6(f float64) float64 { return math.Round(f*1e6) / 1e6 }

// WriteJSON writes the report as one JSON document; encoding/json escapes
// every name (control characters, <, >, &).
func (r *BudgetReport) WriteJSON(w io.Writer) error {
	doc := budgetJSON{Period: r.Period.Label, Kind: r.kind(), AsOf: r.AsOf, Basis: r.Basis, Warn: r.Thresholds.Warn, Critical: r.Thresholds.Critical,
		Notes: r.Notes, Evaluated: r.Evaluated, AnyCritical: r.Critical(), Budgets: []budgetLineJSON{}}
	if doc.Notes == nil {
		doc.Notes = []string{}
	}
	for _, l := range r.Lines {
		doc.Budgets = append(doc.Budgets, budgetLineJSON{Level: l.Level.String(), Scope: l.Scope, Name: l.Name, Spend: round6(l.Spend), Budget: round6(l.Budget),
			Share: round6(l.Share), RecentPerDay: round6(l.RecentPerDay), PeriodPerDay: round6(l.PeriodPerDay), Trend: round6(l.Trend),
			Forecast: round6(l.Forecast), ForecastShare: round6(l.ForecastShare), ForecastLevel: l.ForecastLevel.String()})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// budgetPageTemplate is the budgets report as one offline HTML page, in
// the chargeback page's style. html/template escapes every value; names
// also go through safetext.Visible, as in the chargeback page, so that no
// control character reaches the reader.
var budgetPageTemplate = template.Must(template.New("budgets").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Budgets {{.Label}}</title>
<style>
` + pageStyle + `tr.critical td { background: #fdecea; } tr.warn td { background: #fff4e5; }
</style>
</head>
<body>
<main>
<h1>Budgets — {{.Label}}</h1>
<p class="sub">{{.Intro}}</p>
{{range .Notes}}<p class="note">{{.}}</p>
{{end}}<div class="cards">
{{range .Cards}}<div class="card"><b>{{.Value}}</b><span>{{.Label}}</span></div>
{{end}}</div>
<section><h2>{{.Heading}}</h2>
{{if .Rows}}<table><thead><tr>{{range .Head}}<th{{if .Num}} class="n"{{end}}>{{.Text}}</th>{{end}}</tr></thead>
<tbody>{{range .Rows}}<tr{{if .Class}} class="{{.Class}}"{{end}}>{{range .Cells}}<td{{if .Num}} class="n"{{end}}>{{.Text}}</td>{{end}}</tr>
{{end}}</tbody></table>{{else}}<p>Nobody is at or near a budget.</p>{{end}}
</section>
<p class="note">Generated by obolus.</p>
</main>
</body>
</html>
`))

type budgetPage struct {
	Label, Intro, Heading string
	Notes                 []string
	Cards                 []htmlCard
	Head                  []htmlCell
	Rows                  []htmlRow
}

// WriteHTML writes the budgets report as one self-contained HTML page:
// the Markdown report's table, a row per listed budget, shaded by level.
func (r *BudgetReport) WriteHTML(w io.Writer) error {
	window := fmt.Sprintf("the last %d days", TrendDays)
	if !r.Period.Daily {
		window += " of the month"
	}
	pg := budgetPage{Label: r.Period.Label, Notes: r.Notes,
		Intro: fmt.Sprintf("%s budgets, spend up to %s, on the %s basis (%s). Levels: warn from %s of a budget, critical from %s. Forecast: the spend so far at its run-rate to the period's end; trend: spend per day over %s against the period's.",
			capitalize(r.kind()), r.AsOf.Format("2006-01-02 15:04 UTC"), r.Basis, basisText(r.Basis), ratio(r.Thresholds.Warn), ratio(r.Thresholds.Critical), window),
		Heading: fmt.Sprintf("%s listed of %s evaluated, most severe first", plural(len(r.Lines), "budget"), integer(int64(r.Evaluated)))}
	var crit, warn int
	for _, l := range r.Lines {
		switch l.Level {
		case budget.Critical:
			crit++
		case budget.Warn:
			warn++
		}
	}
	pg.Cards = []htmlCard{{integer(int64(crit)), "critical"}, {integer(int64(warn)), "at warn"}, {integer(int64(r.Evaluated)), "budgets evaluated"}}
	for i, h := range []string{"Level", "Scope", "Name", "Spend", "Budget", "Share", fmt.Sprintf("Per day, last %d days", TrendDays), "Per day, period", "Trend", "Forecast", "Forecast share"} {
		pg.Head = append(pg.Head, htmlCell{h, i >= 3})
	}
	for _, l := range r.Lines {
		hr := htmlRow{Cells: []htmlCell{{levelText(l), false}, {budgetScopeTitle[l.Scope], false}, {orDash(safetext.Visible(l.Name)), false},
			{dollars(l.Spend), true}, {dollars(l.Budget), true}, {ratio(l.Share), true}, {dollars(l.RecentPerDay), true}, {dollars(l.PeriodPerDay), true},
			{trendText(l.Trend), true}, {dollars(l.Forecast), true}, {ratio(l.ForecastShare), true}}}
		if l.Level > budget.OK {
			hr.Class = l.Level.String()
		}
		pg.Rows = append(pg.Rows, hr)
	}
	var b strings.Builder
	if err := budgetPageTemplate.Execute(&b, pg); err != nil {
		return fmt.Errorf("report: render budgets HTML: %w", err)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
