package report

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/obolus/obolus/internal/chargeback"
	"github.com/obolus/obolus/internal/safetext"
)

// pageStyle is the CSS of every HTML report page (the chargeback report,
// the budgets report): a constant, so no value reaches a style context.
const pageStyle = `body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0; background: #f6f6f4; }
main { max-width: 1040px; margin: 0 auto; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 8px; }
.sub { color: #555; margin: 0 0 16px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; }
.card { background: #fff; border-radius: 8px; padding: 12px 16px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.card b { display: block; font-size: 22px; } .card span { color: #555; }
section { background: #fff; border-radius: 8px; padding: 8px 16px 16px; margin-top: 16px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 8px; border-bottom: 1px solid #eee; text-align: left; } th { background: #fafafa; }
td.n, th.n { text-align: right; } tr.rest td { color: #555; font-style: italic; } tr.total td { font-weight: 600; border-top: 2px solid #ccc; }
tr.runaway td { background: #fff4e5; } tr.runaway td:first-child::before { content: "⚠ "; }
svg.chart { width: 100%; height: auto; display: block; }
svg .grid { stroke: #e6e6e6; } svg .axisline { stroke: #999; } svg .line { fill: none; stroke-width: 2; }
svg text { font: 12px system-ui, sans-serif; fill: #444; } svg .value { fill: #222; }
.note { color: #555; font-size: 13px; } #page-errors { color: #b00; white-space: pre-wrap; }
.ok { color: #2a7d2a; font-weight: 600; }
`

// The page is one file: inline CSS, inline SVG charts, and a small inline
// script that only checks the page (records errors, marks drawn charts) for
// tests and for a reader wondering why a chart is empty. The Content
// Security Policy forbids every network fetch, so the page behaves the same
// offline as online.
var pageTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>AI Gateway chargeback {{.R.Period.Label}}</title>
<style>
` + pageStyle + `</style>
<script>
(function () {
  var errors = [];
  function note(msg) {
    errors.push(String(msg));
    document.documentElement.setAttribute('data-errors', String(errors.length));
    var el = document.getElementById('page-errors');
    if (el) { el.textContent = errors.join('\n'); el.hidden = false; }
  }
  window.addEventListener('error', function (e) { note('error: ' + (e.message || (e.target && e.target.outerHTML) || e.type)); }, true);
  document.addEventListener('securitypolicyviolation', function (e) { note('blocked by the page policy: ' + e.blockedURI); });
  document.addEventListener('DOMContentLoaded', function () {
    var charts = document.querySelectorAll('svg.chart'), drawn = 0;
    for (var i = 0; i < charts.length; i++) {
      var box = charts[i].getBoundingClientRect();
      if (box.width > 0 && box.height > 0 && charts[i].querySelectorAll('.mark').length > 0) {
        charts[i].setAttribute('data-rendered', 'true');
        drawn++;
      }
    }
    document.documentElement.setAttribute('data-charts', String(charts.length));
    document.documentElement.setAttribute('data-charts-rendered', String(drawn));
    if (!document.documentElement.hasAttribute('data-errors')) document.documentElement.setAttribute('data-errors', '0');
  });
})();
</script>
</head>
<body>
<main>
<h1>AI Gateway chargeback {{.R.Period.Label}}</h1>
<p class="sub">{{.PeriodText}}, grouped by {{.By}}.{{if .R.Pseudonymized}} End users are pseudonymised with a keyed hash.{{end}}</p>
<pre id="page-errors" hidden></pre>
<div class="cards">
{{range .Cards}}<div class="card"><b>{{.Value}}</b><span>{{.Label}}</span></div>
{{end}}</div>

<section><h2>Cost by team per day</h2>{{.TeamsChart}}</section>
<section><h2>Top users</h2>{{.UsersChart}}</section>
<section><h2>Cost by model</h2>{{.ModelsChart}}</section>
<section><h2>Attribution coverage over time</h2>{{.CoverageChart}}
<p class="note">Share of each day's requests and {{.CostWord}} that a match rule tied to an end user; the rest stays with the agents' service principals.</p></section>

<section><h2>Chargeback by {{.By}}</h2>
<table><thead><tr>{{range .Head}}<th{{if .Num}} class="n"{{end}}>{{.Text}}</th>{{end}}</tr></thead>
<tbody>{{range .Rows}}<tr{{if .Class}} class="{{.Class}}"{{end}}>{{range .Cells}}<td{{if .Num}} class="n"{{end}}>{{.Text}}</td>{{end}}</tr>
{{end}}</tbody></table>
<p class="note">Requests are gateway invocations summed by weight (a split invocation counts once). {{.RestNote}}</p></section>

<section><h2>Cost by match method</h2>
<table><thead><tr><th>Method</th><th>Basis</th><th class="n">Requests</th><th class="n">Share of requests</th><th class="n">{{.CostTitle}}</th><th class="n">Share of cost</th></tr></thead>
<tbody>{{range .Methods}}<tr><td>{{.Method}}</td><td>{{.Basis}}</td><td class="n">{{.Requests}}</td><td class="n">{{.RequestShare}}</td><td class="n">{{.Cost}}</td><td class="n">{{.CostShare}}</td></tr>
{{end}}</tbody></table>
<p class="note">{{.SharesText}}</p>
{{if .ConfidenceText}}<p class="note">{{.ConfidenceText}}</p>{{end}}
{{range .CalibrationTexts}}<p class="note">{{.}}</p>
{{end}}</section>

<section><h2>Cost per turn and conversation by agent</h2>
{{if .Agents}}<table><thead><tr>{{range .AgentHead}}<th{{if .Num}} class="n"{{end}}>{{.Text}}</th>{{end}}</tr></thead>
<tbody>{{range .Agents}}<tr{{if .Class}} class="{{.Class}}"{{end}}>{{range .Cells}}<td{{if .Num}} class="n"{{end}}>{{.Text}}</td>{{end}}</tr>
{{end}}</tbody></table>
<p class="note">{{.AgentNote}}</p>{{else}}<p class="note">No call in the period carries an agent request id or a session.</p>{{end}}</section>
<section><h2>Reconciliation</h2>
{{if .R.Billing}}<table><tbody>{{range .Rec}}<tr{{if .Class}} class="{{.Class}}"{{end}}><td>{{.Label}}</td><td class="n">{{.Value}}</td></tr>
{{end}}</tbody></table>
<ul class="note">{{range .RecNotes}}<li>{{.}}</li>
{{end}}</ul>{{else}}<p>No billing records for {{.R.Period.Label}}: costs are list-price estimates (tokens × price list), and nothing is reconciled. Load the bill with <code>--billing-usage</code> and <code>--list-prices</code>.</p>{{end}}
</section>
<p class="note">Generated by obolus.</p>
</main>
</body>
</html>
`))

type htmlCell struct {
	Text string
	Num  bool
}

type htmlRow struct {
	Class string
	Cells []htmlCell
}

type htmlMethod struct {
	Method, Basis, Requests, RequestShare, Cost, CostShare string
}

type htmlRec struct{ Label, Value, Class string }

type htmlCard struct{ Value, Label string }

type htmlPage struct {
	R                                                  *Report
	PeriodText, By, CostWord, CostTitle                string
	Cards                                              []htmlCard
	TeamsChart, UsersChart, ModelsChart, CoverageChart template.HTML
	Head                                               []htmlCell
	Rows                                               []htmlRow
	RestNote, SharesText, ConfidenceText               string
	CalibrationTexts                                   []string
	AgentHead                                          []htmlCell
	Agents                                             []htmlRow
	AgentNote                                          string
	Methods                                            []htmlMethod
	Rec                                                []htmlRec
	RecNotes                                           []string
}

// WriteHTML writes the report as one self-contained HTML page with charts:
// cost by team per day, top users, cost by model and attribution coverage.
func (r *Report) WriteHTML(w io.Writer) error {
	cur := r.Currency
	pg := htmlPage{R: r, PeriodText: r.periodText(), By: r.byText(), CostWord: "list-price cost", CostTitle: "List cost (" + cur + ")"}
	if r.Billing {
		pg.CostWord, pg.CostTitle = "allocated cost", "Allocated cost ("+cur+")"
	}
	pg.TeamsChart = template.HTML(r.teamsChart())
	pg.UsersChart = template.HTML(r.usersChart())
	pg.ModelsChart = template.HTML(r.modelsChart())
	pg.CoverageChart = template.HTML(r.coverageChart())

	id, window, rest, total := r.shares()
	if r.Billing {
		pg.Cards = append(pg.Cards, htmlCard{usd(r.Rec.BilledMicros, cur), "billed for the period"})
	}
	totalWord := "list-price estimate"
	if r.Billing {
		totalWord = "allocated, to the cent"
	}
	pg.Cards = append(pg.Cards,
		htmlCard{usd(r.Cost(r.Total), cur), totalWord},
		htmlCard{percent(float64(total-rest), float64(total)), "of cost tied to an end user"},
		htmlCard{percent(float64(id), float64(total)), "of cost matched by identifier"},
		htmlCard{usd(r.Cost(r.Unattributed), cur), "unattributed remainder"},
	)
	pg.SharesText = fmt.Sprintf("%s of the %s rests on identifiers, %s on time-window matching, and %s is unattributed%s.",
		percent(float64(id), float64(total)), pg.CostWord, percent(float64(window), float64(total)), percent(float64(rest), float64(total)),
		map[bool]string{true: " or had no gateway usage", false: ""}[r.Billing])
	pg.ConfidenceText = r.confidenceText(pg.CostWord)
	// The template escapes the names.
	pg.CalibrationTexts = r.calibrationTexts(func(s string) string { return s })

	// Chargeback table, cents adding up to the total.
	for _, d := range r.By {
		pg.Head = append(pg.Head, htmlCell{Text: dimensionTitle[d]})
	}
	pg.Head = append(pg.Head, htmlCell{"Requests", true}, htmlCell{"Input tokens", true}, htmlCell{"Output tokens", true}, htmlCell{"List cost (" + cur + ")", true})
	if r.Billing {
		pg.Head = append(pg.Head, htmlCell{"Allocated cost (" + cur + ")", true}, htmlCell{"Share of bill", true})
	}
	var list, alloc []int64
	for _, l := range r.Lines {
		list, alloc = append(list, l.ListMicros), append(alloc, l.AllocatedMicros)
	}
	list, alloc = append(list, r.Unattributed.ListMicros), append(alloc, r.Unattributed.AllocatedMicros)
	lc, ac := cents(list), cents(alloc)
	row := func(class string, keys []string, a Amounts, l, al int64) {
		hr := htmlRow{Class: class}
		for _, k := range keys {
			hr.Cells = append(hr.Cells, htmlCell{Text: orDash(safetext.Visible(k))})
		}
		hr.Cells = append(hr.Cells, htmlCell{requests(a.Invocations), true}, htmlCell{integer(a.InputTokens), true}, htmlCell{integer(a.OutputTokens), true}, htmlCell{money(l), true})
		if r.Billing {
			hr.Cells = append(hr.Cells, htmlCell{money(al), true}, htmlCell{percent(float64(a.AllocatedMicros), float64(r.Rec.BilledMicros)), true})
		}
		pg.Rows = append(pg.Rows, hr)
	}
	for i, l := range r.Lines {
		row("", l.Keys, l.Amounts, lc[i], ac[i])
	}
	restKeys := make([]string, len(r.By))
	restKeys[0] = UnattributedLabel
	row("rest", restKeys, r.Unattributed, lc[len(lc)-1], ac[len(ac)-1])
	var lt, at int64
	for i := range lc {
		lt, at = lt+lc[i], at+ac[i]
	}
	totKeys := make([]string, len(r.By))
	totKeys[0] = "Total"
	row("total", totKeys, r.Total, lt, at)
	pg.RestNote = UnattributedLabel + " is spend no rule could tie to an end user (the service principals keep it)"
	if r.Billing {
		pg.RestNote += " plus billed hours with no gateway usage"
	}
	pg.RestNote += "."

	mc := make([]int64, len(r.Methods))
	for i, m := range r.Methods {
		mc[i] = r.Cost(m.Amounts)
	}
	mcc := cents(mc)
	for i, m := range r.Methods {
		pg.Methods = append(pg.Methods, htmlMethod{m.Method, m.Basis, requests(m.Invocations), percent(m.Invocations, r.Total.Invocations), money(mcc[i]), percent(float64(mc[i]), float64(total))})
	}

	if r.Billing {
		rec := &r.Rec
		c := cents([]int64{rec.AttributedMicros, rec.UnattributedMicros, rec.NoUsageMicros})
		pg.Rec = []htmlRec{
			{fmt.Sprintf("Billed: %s records in %s charges", integer(int64(rec.Records)), integer(int64(rec.Charges))), money(c[0] + c[1] + c[2]), ""},
			{"Allocated to attributed invocations", money(c[0]), ""},
			{"Allocated to unattributed invocations (kept by their service principals)", money(c[1]), ""},
			{"Billed with no gateway usage in the hour × endpoint × model", money(c[2]), ""},
			{"Allocated + remainder", money(c[0] + c[1] + c[2]), "total"},
		}
		diff := rec.BilledMicros - rec.AttributedMicros - rec.UnattributedMicros - rec.NoUsageMicros
		pg.RecNotes = append(pg.RecNotes, fmt.Sprintf("Exact to the micro-dollar: billed %s = %s + %s + %s (difference %s).",
			chargeback.FormatFixed(rec.BilledMicros, 6), chargeback.FormatFixed(rec.AttributedMicros, 6),
			chargeback.FormatFixed(rec.UnattributedMicros, 6), chargeback.FormatFixed(rec.NoUsageMicros, 6), chargeback.FormatFixed(diff, 6)))
		for _, pc := range rec.PriceChanges {
			pg.RecNotes = append(pg.RecNotes, fmt.Sprintf("Price change: %s from %s to %s %s per %s at %s.",
				safetext.Visible(pc.SKU), pc.From, pc.To, safetext.Visible(pc.Currency), safetext.Visible(pc.Unit), pc.At.Format(time.RFC3339)))
		}
		if rec.UnbilledInvocations > 0 {
			pg.RecNotes = append(pg.RecNotes, fmt.Sprintf("%s (list cost %s) fell in hours the bill does not cover yet.", plural(int(rec.UnbilledInvocations), "attribution row"), usd(rec.UnbilledListMicros, cur)))
		}
		pg.RecNotes = append(pg.RecNotes, fmt.Sprintf("The list-price estimate is %s, %s of the bill.", usd(r.Total.ListMicros, cur), percent(float64(r.Total.ListMicros), float64(rec.BilledMicros))))
	}
	r.distributionHTML(&pg)
	var b strings.Builder
	if err := pageTemplate.Execute(&b, pg); err != nil {
		return fmt.Errorf("report: render HTML: %w", err)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// distributionHTML fills the page's per-agent distribution of cost per turn
// and conversation; the template escapes every cell.
func (r *Report) distributionHTML(pg *htmlPage) {
	for i, h := range distributionHead {
		pg.AgentHead = append(pg.AgentHead, htmlCell{h, !distributionData[i] && i > 0})
	}
	for _, a := range r.Agents {
		hr := htmlRow{}
		if a.Runaway() >= RunawayFactor {
			hr.Class = "runaway"
		}
		for i, c := range distributionText(a) {
			if distributionData[i] {
				c = orDash(safetext.Visible(c))
			}
			hr.Cells = append(hr.Cells, htmlCell{c, !distributionData[i] && i > 0})
		}
		pg.Agents = append(pg.Agents, hr)
	}
	pg.AgentNote = r.distributionNote()
}
