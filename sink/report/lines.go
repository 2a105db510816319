package report

import (
	"io"

	"github.com/obolus/obolus/internal/chargeback"
)

// Line kinds in the CSV and Parquet outputs.
const (
	KindAttributed   = "attributed"
	KindUnattributed = "unattributed"
)

// linesTable is the chargeback as a flat table: one row per line and one for
// the remainder, amounts exact to the micro-unit (no total row: spreadsheets sum).
func (r *Report) linesTable() *table {
	cols := []column{{name: "period", kind: kString}, {name: "period_start", kind: kTime}, {name: "period_end", kind: kTime}, {name: "kind", kind: kString}}
	for _, d := range r.By {
		cols = append(cols, column{name: string(d), kind: kString})
	}
	cols = append(cols,
		column{name: "invocations", kind: kDecimal, scale: 6},
		column{name: "input_tokens", kind: kInt},
		column{name: "output_tokens", kind: kInt},
		column{name: "total_tokens", kind: kInt},
		column{name: "cache_read_input_tokens", kind: kInt},
		column{name: "cache_creation_input_tokens", kind: kInt},
		column{name: "output_reasoning_tokens", kind: kInt},
		column{name: "mean_confidence", kind: kDecimal, scale: 6},
		column{name: "currency", kind: kString},
		column{name: "list_cost", kind: kDecimal, scale: 6},
		column{name: "allocated_cost", kind: kDecimal, scale: 6},
		column{name: "share_of_bill", kind: kDecimal, scale: 6},
	)
	t := &table{cols: cols}
	add := func(kind string, keys []string, a Amounts) {
		row := []any{r.Period.Label, r.Period.Start, r.Period.End, kind}
		for i := range r.By {
			if keys == nil {
				row = append(row, nil)
			} else {
				row = append(row, keys[i])
			}
		}
		row = append(row, fixed(a.Invocations, 6), a.InputTokens, a.OutputTokens, a.TotalTokens,
			a.CacheReadTokens, a.CacheCreationTokens, a.ReasoningTokens, fixed(a.MeanConfidence(), 6),
			r.Currency, chargeback.FormatFixed(a.ListMicros, 6))
		if r.Billing {
			share := "0.000000"
			if r.Rec.BilledMicros != 0 {
				share = fixed(float64(a.AllocatedMicros)/float64(r.Rec.BilledMicros), 6)
			}
			row = append(row, chargeback.FormatFixed(a.AllocatedMicros, 6), share)
		} else {
			row = append(row, nil, nil)
		}
		t.rows = append(t.rows, row)
	}
	for _, l := range r.Lines {
		add(KindAttributed, l.Keys, l.Amounts)
	}
	add(KindUnattributed, nil, r.Unattributed)
	return t
}

// WriteCSV writes the chargeback lines as CSV.
func (r *Report) WriteCSV(w io.Writer) error { return r.linesTable().writeCSV(w, r.RawCSV) }

// WriteParquet writes the chargeback lines as Parquet (money as DECIMAL(38,6)).
func (r *Report) WriteParquet(w io.Writer) error { return r.linesTable().writeParquet(w) }
