package report

import (
	"fmt"
	"html"
	"math"
	"strings"
	"time"

	"github.com/obolus/obolus/internal/chargeback"
	"github.com/obolus/obolus/internal/safetext"
)

// The charts are plain SVG written here, so the page needs no script or
// library to draw them and opens offline. Every data mark has class "mark"
// and a <title> tooltip.

var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"}

const (
	colorOther        = "#bab0ac"
	colorUnattributed = "#6b6b6b"
)

type svgBuf struct{ strings.Builder }

func (b *svgBuf) f(format string, a ...any) { fmt.Fprintf(&b.Builder, format, a...) }

func esc(s string) string { return html.EscapeString(safetext.Visible(s)) }

// niceStep is a round step (1, 2 or 5 × 10ⁿ) that cuts max into about n ticks.
func niceStep(max float64, n int) float64 {
	if max <= 0 {
		return 1
	}
	raw := max / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

func usd(micros int64, cur string) string {
	return money(cents([]int64{micros})[0]) + " " + cur
}

func axisLabel(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", math.Round(v*100)/100)
}

func (b *svgBuf) open(id, label string, w, h int) {
	b.f(`<svg class="chart" id="%s" role="img" aria-labelledby="%s-title" viewBox="0 0 %d %d" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">`, id, id, w, h)
	b.f(`<title id="%s-title">%s</title>`, id, esc(label))
}

// teamsChart stacks each day's cost by team: the largest teams, the others
// together, and the unattributed remainder on top.
func (r *Report) teamsChart() string {
	const w, h, left, right, top, bottom = 960, 340, 70, 20, 20, 70
	series := []string{}
	for _, t := range r.Teams {
		if t != UnattributedLabel && len(series) < 7 {
			series = append(series, t)
		}
	}
	other := len(r.Teams) > len(series)+1 || (len(r.Teams) > len(series) && r.Teams[len(r.Teams)-1] != UnattributedLabel)
	names := append([]string{}, series...)
	colors := append([]string{}, palette[:len(series)]...)
	if other {
		names, colors = append(names, "other teams"), append(colors, colorOther)
	}
	names, colors = append(names, UnattributedLabel), append(colors, colorUnattributed)
	idx := map[string]int{}
	for i, s := range series {
		idx[s] = i
	}
	stack := make([][]int64, len(r.Days))
	var peak int64
	for d, day := range r.Days {
		v := make([]int64, len(names))
		for team, c := range day.Cost {
			switch i, ok := idx[team]; {
			case team == UnattributedLabel:
				v[len(names)-1] += c
			case ok:
				v[i] += c
			default:
				v[len(names)-2] += c
			}
		}
		stack[d] = v
		var sum int64
		for _, x := range v {
			sum += max(x, 0)
		}
		peak = max(peak, sum)
	}
	var b svgBuf
	b.open("chart-teams", "Cost by team per day, "+r.Period.Label, w, h)
	plotW, plotH := float64(w-left-right), float64(h-top-bottom)
	maxV := float64(peak) / chargeback.MicrosPerUnit
	step := niceStep(maxV, 4)
	yMax := math.Max(step*math.Ceil(maxV/step), step)
	y := func(v float64) float64 { return float64(top) + plotH*(1-v/yMax) }
	for v := 0.0; v <= yMax+step/2; v += step {
		b.f(`<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, left, w-right, y(v), y(v))
		b.f(`<text class="tick" x="%d" y="%.1f" text-anchor="end">%s</text>`, left-6, y(v)+4, axisLabel(v))
	}
	b.f(`<text class="axis" x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">%s</text>`, top+int(plotH/2), top+int(plotH/2), esc(r.Currency))
	n := max(len(r.Days), 1)
	band := plotW / float64(n)
	for d, day := range r.Days {
		x := float64(left) + band*float64(d) + band*0.12
		acc := 0.0
		for i, c := range stack[d] {
			if c <= 0 {
				continue
			}
			v := float64(c) / chargeback.MicrosPerUnit
			b.f(`<rect class="mark" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s · %s: %s</title></rect>`,
				x, y(acc+v), band*0.76, y(acc)-y(acc+v), colors[i], day.Date.Format(time.DateOnly), esc(names[i]), usd(c, r.Currency))
			acc += v
		}
		if d%max(1, (n+9)/10) == 0 || d == n-1 {
			b.f(`<text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>`, x+band*0.38, h-bottom+16, day.Date.Format("Jan 2"))
		}
	}
	b.f(`<line class="axisline" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, left, w-right, y(0), y(0))
	// Legend.
	lx, ly := float64(left), float64(h-bottom+40)
	for i, name := range names {
		if lx > float64(w-180) {
			lx, ly = float64(left), ly+20
		}
		b.f(`<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/><text class="legend" x="%.1f" y="%.1f">%s</text>`, lx, ly-10, colors[i], lx+16, ly, esc(name))
		lx += 28 + 7.5*float64(len([]rune(name)))
	}
	b.f(`</svg>`)
	return b.String()
}

// barsChart draws horizontal bars, one per line, labelled on the left.
func (r *Report) barsChart(id, title string, labels []string, values []int64, note []string) string {
	const w, left, right, top, row = 960, 300, 140, 10, 26
	h := top*2 + row*max(len(labels), 1)
	var b svgBuf
	b.open(id, title, w, h)
	var peak int64 = 1
	for _, v := range values {
		peak = max(peak, v)
	}
	plotW := float64(w - left - right)
	for i, l := range labels {
		y := float64(top + row*i)
		bw := plotW * float64(max(values[i], 0)) / float64(peak)
		short := l
		if len([]rune(short)) > 38 {
			short = string([]rune(short)[:37]) + "…"
		}
		b.f(`<text class="label" x="%d" y="%.1f" text-anchor="end">%s</text>`, left-8, y+row*0.62, esc(short))
		b.f(`<rect class="mark" x="%d" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s%s</title></rect>`,
			left, y+3, math.Max(bw, 1), float64(row-6), palette[0], esc(l), usd(values[i], r.Currency), esc(note[i]))
		b.f(`<text class="value" x="%.1f" y="%.1f">%s</text>`, float64(left)+math.Max(bw, 1)+6, y+row*0.62, usd(values[i], r.Currency))
	}
	b.f(`</svg>`)
	return b.String()
}

func (r *Report) usersChart() string {
	var labels, notes []string
	var values []int64
	for _, u := range r.TopUsers {
		labels = append(labels, u.Keys[0]+" ("+orDash(u.Keys[1])+")")
		values = append(values, r.Cost(u.Amounts))
		notes = append(notes, fmt.Sprintf(" · %s requests", requests(u.Invocations)))
	}
	return r.barsChart("chart-users", "Top users by cost", labels, values, notes)
}

func (r *Report) modelsChart() string {
	var labels, notes []string
	var values []int64
	for _, m := range r.Models {
		labels = append(labels, orDash(m.Keys[0]))
		values = append(values, r.Cost(m.Amounts))
		notes = append(notes, fmt.Sprintf(" · %s tokens · list %s", integer(m.TotalTokens), usd(m.ListMicros, r.Currency)))
	}
	return r.barsChart("chart-models", "Cost by model", labels, values, notes)
}

// coverageChart plots, per day, the share of invocations and of cost that
// was attributed to an end user. Days without gateway usage have no point:
// a day of billed hours alone has nothing to attribute, and a 0% there read
// as failure.
// colorNoUsage shades the days that were billed but had no gateway usage.
const colorNoUsage = "#e8e8e8"

// noUsageBands shades each day that had billed hours but no gateway usage:
// such a day has nothing to attribute, so it gets a band saying so rather
// than a coverage point (a 0% point read as failure). It returns how many.
func (r *Report) noUsageBands(b *svgBuf, x func(int) float64, step, minX, maxX, top, height float64) int {
	n := 0
	for d, day := range r.Days {
		if day.Invocations > 0 || day.CostMicros == 0 {
			continue
		}
		n++
		// The day's slot around its point, kept inside the plot.
		x0, x1 := max(x(d)-step/2, minX), min(x(d)+step/2, maxX)
		b.f(`<rect class="nousage" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s · billed %s, no gateway usage: nothing to attribute</title></rect>`,
			x0, top, x1-x0, height, colorNoUsage, day.Date.Format(time.DateOnly), esc(usd(day.CostMicros, r.Currency)))
	}
	return n
}

func (r *Report) coverageChart() string {
	const w, h, left, right, top, bottom = 960, 300, 70, 20, 20, 70
	var b svgBuf
	b.open("chart-coverage", "Attribution coverage per day", w, h)
	plotW, plotH := float64(w-left-right), float64(h-top-bottom)
	y := func(v float64) float64 { return float64(top) + plotH*(1-v) }
	for v := 0.0; v <= 1.0001; v += 0.25 {
		b.f(`<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, left, w-right, y(v), y(v))
		b.f(`<text class="tick" x="%d" y="%.1f" text-anchor="end">%.0f%%</text>`, left-6, y(v)+4, v*100)
	}
	n := max(len(r.Days), 1)
	x := func(d int) float64 {
		if n == 1 {
			return float64(left) + plotW/2
		}
		return float64(left) + plotW*float64(d)/float64(n-1)
	}
	idle := r.noUsageBands(&b, x, plotW/float64(max(n-1, 1)), float64(left), float64(w-right), float64(top), plotH)
	type series struct {
		name, color string
		share       func(Day) (float64, bool)
	}
	all := []series{
		{"requests attributed", palette[0], func(d Day) (float64, bool) {
			return d.AttributedInvocations / d.Invocations, d.Invocations > 0
		}},
		{"cost attributed", palette[1], func(d Day) (float64, bool) {
			return float64(d.AttributedMicros) / float64(d.CostMicros), d.CostMicros > 0 && d.Invocations > 0
		}},
	}
	for _, s := range all {
		var path strings.Builder
		pen := false
		for d, day := range r.Days {
			v, ok := s.share(day)
			if !ok {
				pen = false
				continue
			}
			cmd := "L"
			if !pen {
				cmd = "M"
			}
			fmt.Fprintf(&path, "%s%.1f %.1f ", cmd, x(d), y(v))
			pen = true
		}
		if path.Len() > 0 {
			b.f(`<path class="line" d="%s" stroke="%s"/>`, strings.TrimSpace(path.String()), s.color)
		}
		for d, day := range r.Days {
			if v, ok := s.share(day); ok {
				b.f(`<circle class="mark" cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s · %s: %.1f%%</title></circle>`, x(d), y(v), s.color, day.Date.Format(time.DateOnly), s.name, 100*v)
			}
		}
	}
	for d, day := range r.Days {
		if d%max(1, (n+9)/10) == 0 || d == n-1 {
			b.f(`<text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>`, x(d), h-bottom+18, day.Date.Format("Jan 2"))
		}
	}
	lx := float64(left)
	for _, s := range all {
		b.f(`<rect x="%.1f" y="%d" width="12" height="12" fill="%s"/><text class="legend" x="%.1f" y="%d">%s</text>`, lx, h-22, s.color, lx+16, h-12, esc(s.name))
		lx += 200
	}
	if idle > 0 {
		b.f(`<rect x="%.1f" y="%d" width="12" height="12" fill="%s"/><text class="legend" x="%.1f" y="%d">billed, no gateway usage (nothing to attribute)</text>`, lx, h-22, colorNoUsage, lx+16, h-12)
	}
	b.f(`</svg>`)
	return b.String()
}
