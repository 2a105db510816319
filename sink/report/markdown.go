package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/obolus/obolus/internal/chargeback"
	"github.com/obolus/obolus/internal/safetext"
	"github.com/obolus/obolus/schemas"
)

var dimensionTitle = map[Dimension]string{ByTeam: "Team", ByCostCenter: "Cost center", ByUser: "User", ByAgent: "Agent", ByModel: "Model", BySession: "Session", ByAgentRequest: "Agent request"}

// mdCell renders a value as the literal text of a Markdown table cell: no
// value becomes a link, raw HTML, formatting or a terminal control.
func mdCell(s string) string {
	if s == "" {
		return "–"
	}
	return safetext.Markdown(s)
}

// periodText describes the period: 2026-11-01 to 2026-11-30 (UTC).
func (r *Report) periodText() string {
	last := r.Period.End.Add(-time.Nanosecond)
	return fmt.Sprintf("%s to %s (UTC)", r.Period.Start.Format(time.DateOnly), last.Format(time.DateOnly))
}

func (r *Report) byText() string {
	parts := make([]string, len(r.By))
	for i, d := range r.By {
		parts[i] = strings.ToLower(dimensionTitle[d])
	}
	return strings.Join(parts, ", ")
}

// shares says how much of the period's cost rests on identifiers, on time
// windows, and on nothing (unattributed or no usage).
func (r *Report) shares() (id, window, rest, total int64) {
	for _, m := range r.Methods {
		c := r.Cost(m.Amounts)
		switch m.Basis {
		case "id":
			id += c
		case "time_window":
			window += c
		default:
			rest += c
		}
		total += c
	}
	return
}

// WriteMarkdown writes the report for a chat message or a ticket.
func (r *Report) WriteMarkdown(w io.Writer) error {
	b := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	cur := r.Currency

	p("# AI Gateway chargeback %s\n\n", r.Period.Label)
	p("Period %s, grouped by %s.", r.periodText(), r.byText())
	if r.Billing {
		p(" Costs are reconciled to the Databricks bill: %s %s from %s billing records.", money(cents([]int64{r.Rec.BilledMicros})[0]), cur, integer(int64(r.Rec.Records)))
	} else {
		p(" **No billing records for this period**: allocated cost is not computed, and costs are list-price estimates (tokens × price list). Load the bill with `--billing-usage` and `--list-prices`.")
	}
	if r.Pseudonymized {
		p(" End users are pseudonymised with a keyed hash (HMAC-SHA256).")
	}
	p("\n\n")

	// Chargeback lines.
	p("## Chargeback by %s\n\n", r.byText())
	head := make([]string, 0, len(r.By)+6)
	for _, d := range r.By {
		head = append(head, dimensionTitle[d])
	}
	head = append(head, "Requests", "Input tokens", "Output tokens", "List cost ("+cur+")")
	if r.Billing {
		head = append(head, "Allocated cost ("+cur+")", "Share of bill")
	}
	p("| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(r.By))+strings.Repeat("---:|", len(head)-len(r.By)))
	list := make([]int64, 0, len(r.Lines)+1)
	alloc := make([]int64, 0, len(r.Lines)+1)
	for _, l := range r.Lines {
		list, alloc = append(list, l.ListMicros), append(alloc, l.AllocatedMicros)
	}
	list, alloc = append(list, r.Unattributed.ListMicros), append(alloc, r.Unattributed.AllocatedMicros)
	lc, ac := cents(list), cents(alloc)
	row := func(keys []string, a Amounts, i int) {
		cells := make([]string, 0, len(head))
		for _, k := range keys {
			cells = append(cells, mdCell(k))
		}
		cells = append(cells, requests(a.Invocations), integer(a.InputTokens), integer(a.OutputTokens), money(lc[i]))
		if r.Billing {
			cells = append(cells, money(ac[i]), percent(float64(a.AllocatedMicros), float64(r.Rec.BilledMicros)))
		}
		p("| %s |\n", strings.Join(cells, " | "))
	}
	for i, l := range r.Lines {
		row(l.Keys, l.Amounts, i)
	}
	rest := make([]string, len(r.By))
	rest[0] = UnattributedLabel
	for i := 1; i < len(rest); i++ {
		rest[i] = ""
	}
	row(rest, r.Unattributed, len(r.Lines))
	var lt, at int64
	for i := range lc {
		lt, at = lt+lc[i], at+ac[i]
	}
	tot := make([]string, 0, len(head))
	tot = append(tot, "**Total**")
	for i := 1; i < len(r.By); i++ {
		tot = append(tot, "")
	}
	tot = append(tot, "**"+requests(r.Total.Invocations)+"**", "**"+integer(r.Total.InputTokens)+"**", "**"+integer(r.Total.OutputTokens)+"**", "**"+money(lt)+"**")
	if r.Billing {
		tot = append(tot, "**"+money(at)+"**", percent(float64(r.Total.AllocatedMicros), float64(r.Rec.BilledMicros)))
	}
	p("| %s |\n\n", strings.Join(tot, " | "))
	p("Requests are gateway invocations summed by weight, so an invocation split between several users counts once. ")
	p("List cost prices each invocation's tokens with the price list. ")
	if r.Billing {
		p("Allocated cost spreads each hour's bill per gateway endpoint and model over that hour's invocations in proportion to their list cost, exact to the micro-dollar; ")
	}
	p("%s is spend no rule could tie to an end user (the agents' service principals keep it)", UnattributedLabel)
	if r.Billing {
		p(" plus billed hours with no gateway usage")
	}
	p(".\n\n")

	// Methods.
	p("## Cost by match method\n\n")
	costName := "List cost"
	if r.Billing {
		costName = "Allocated cost"
	}
	p("| Method | Basis | Requests | Share of requests | %s (%s) | Share of cost | Mean confidence |\n|---|---|---:|---:|---:|---:|---:|\n", costName, cur)
	mc := make([]int64, len(r.Methods))
	for i, m := range r.Methods {
		mc[i] = r.Cost(m.Amounts)
	}
	mcc := cents(mc)
	_, _, _, costTotal := r.shares()
	for i, m := range r.Methods {
		conf := "–"
		if m.Method != MethodNoUsage {
			conf = fmt.Sprintf("%.3f", m.MeanConfidence())
		}
		p("| %s | %s | %s | %s | %s | %s | %s |\n", m.Method, m.Basis, requests(m.Invocations), percent(m.Invocations, r.Total.Invocations),
			money(mcc[i]), percent(float64(mc[i]), float64(costTotal)), conf)
	}
	id, window, restCost, _ := r.shares()
	p("\n**%s** of the %s rests on identifiers (%s, %s, %s), **%s** on time-window matching, and **%s** is unattributed%s.\n\n",
		percent(float64(id), float64(costTotal)), strings.ToLower(costName), schemas.MethodTagUser, schemas.MethodTraceID, schemas.MethodRequestID,
		percent(float64(window), float64(costTotal)), percent(float64(restCost), float64(costTotal)),
		map[bool]string{true: " or had no gateway usage", false: ""}[r.Billing])
	if t := r.confidenceText(costName); t != "" {
		p("%s\n\n", t)
	}
	for _, t := range r.calibrationTexts(mdCell) {
		p("- %s\n", t)
	}
	if len(r.Calibration) > 0 {
		p("\n")
	}

	// Top users and models.
	p("## Top users\n\n| User | Team | Requests | Total tokens | %s (%s) |\n|---|---|---:|---:|---:|\n", costName, cur)
	for _, u := range r.TopUsers {
		p("| %s | %s | %s | %s | %s |\n", mdCell(u.Keys[0]), mdCell(u.Keys[1]), requests(u.Invocations), integer(u.TotalTokens), money(cents([]int64{r.Cost(u.Amounts)})[0]))
	}
	p("\n## Cost by model\n\n| Model | Requests | Total tokens | List cost (%s) |", cur)
	if r.Billing {
		p(" Allocated cost (%s) |", cur)
	}
	p("\n|---|---:|---:|---:|")
	if r.Billing {
		p("---:|")
	}
	p("\n")
	ml, ma := make([]int64, len(r.Models)), make([]int64, len(r.Models))
	for i, m := range r.Models {
		ml[i], ma[i] = m.ListMicros, m.AllocatedMicros
	}
	mlc, mac := cents(ml), cents(ma)
	for i, m := range r.Models {
		p("| %s | %s | %s | %s |", mdCell(m.Keys[0]), requests(m.Invocations), integer(m.TotalTokens), money(mlc[i]))
		if r.Billing {
			p(" %s |", money(mac[i]))
		}
		p("\n")
	}
	p("\n")
	r.writeDistributionMarkdown(p)
	r.writeReconciliationMarkdown(p)
	return b.Flush()
}

// writeDistributionMarkdown writes each agent's cost per turn and per
// conversation, flagging agents whose costliest turn dwarfs the median.
func (r *Report) writeDistributionMarkdown(p func(string, ...any)) {
	p("## Cost per turn and conversation by agent\n\n")
	if len(r.Agents) == 0 {
		p("No call in the period carries an agent request id or a session.\n\n")
		return
	}
	align := make([]string, len(distributionHead))
	for i := range align {
		align[i] = "---:"
		if distributionData[i] {
			align[i] = "---"
		}
	}
	p("| %s |\n|%s|\n", strings.Join(distributionHead, " | "), strings.Join(align, "|"))
	for _, a := range r.Agents {
		cells := distributionText(a)
		for i := range cells {
			if distributionData[i] {
				cells[i] = mdCell(cells[i])
			}
		}
		if a.Runaway() >= RunawayFactor {
			cells[0] = "⚠ " + cells[0]
			cells[6] = "**" + cells[6] + "**"
		}
		p("| %s |\n", strings.Join(cells, " | "))
	}
	p("\n%s\n\n", r.distributionNote())
}

func (r *Report) writeReconciliationMarkdown(p func(string, ...any)) {
	rec := &r.Rec
	cur := r.Currency
	p("## Reconciliation\n\n")
	if !r.Billing {
		p("No billing records in %s for %s, so there is nothing to reconcile. The list-price estimate is %s %s over %s invocations.\n",
			"billing_usage", r.Period.Label, money(cents([]int64{r.Total.ListMicros})[0]), cur, requests(r.Total.Invocations))
		return
	}
	c := cents([]int64{rec.AttributedMicros, rec.UnattributedMicros, rec.NoUsageMicros})
	p("| | %s |\n|---|---:|\n", cur)
	p("| Billed: %s records in %s charges (hour × endpoint × model × SKU × price) | %s |\n", integer(int64(rec.Records)), integer(int64(rec.Charges)), money(c[0]+c[1]+c[2]))
	p("| Allocated to attributed invocations | %s |\n", money(c[0]))
	p("| Allocated to unattributed invocations (kept by their service principals) | %s |\n", money(c[1]))
	p("| Billed with no gateway usage in the hour × endpoint × model | %s |\n", money(c[2]))
	p("| **Allocated + remainder** | **%s** |\n\n", money(c[0]+c[1]+c[2]))
	diff := rec.BilledMicros - rec.AttributedMicros - rec.UnattributedMicros - rec.NoUsageMicros
	p("- Exact to the micro-dollar: billed %s = %s + %s + %s (difference %s).\n",
		chargeback.FormatFixed(rec.BilledMicros, 6), chargeback.FormatFixed(rec.AttributedMicros, 6),
		chargeback.FormatFixed(rec.UnattributedMicros, 6), chargeback.FormatFixed(rec.NoUsageMicros, 6), chargeback.FormatFixed(diff, 6))
	p("- The bill unrounded is Σ usage_quantity × pricing.effective_list.default = %s %s.\n", rec.Exact, cur)
	p("- %s of %s charges matched gateway usage; %s had none.\n", integer(int64(rec.ChargesWithUsage)), integer(int64(rec.Charges)), integer(int64(rec.Charges-rec.ChargesWithUsage)))
	if n := rec.Bases["tokens"] + rec.Bases["equal"]; n > 0 {
		p("- %s split by tokens and %s equally, their invocations having no list price.\n", plural(rec.Bases["tokens"], "charge"), plural(rec.Bases["equal"], "charge"))
	}
	for _, pc := range rec.PriceChanges {
		p("- Price change: %s (%s, %s) from %s to %s %s per %s at %s.\n", pc.SKU, pc.Cloud, pc.Unit, pc.From, pc.To, pc.Currency, pc.Unit, pc.At.Format(time.RFC3339))
	}
	if rec.UnbilledInvocations > 0 {
		p("- %s (list cost %s %s) fell in hours the bill does not cover yet, so they carry no allocated cost.\n",
			plural(int(rec.UnbilledInvocations), "attribution row"), money(cents([]int64{rec.UnbilledListMicros})[0]), cur)
	}
	p("- The list-price estimate is %s %s, %s of the bill.\n", money(cents([]int64{r.Total.ListMicros})[0]), cur, percent(float64(r.Total.ListMicros), float64(rec.BilledMicros)))
	p("- Rounding: charges are floored to the micro-dollar and the units left over go to the largest fractions, so they sum to the bill rounded once; each charge is split over its invocations the same way; printed cents are rounded so that each column adds up to its total.\n")
}
