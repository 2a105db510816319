package main

import (
	"context"
	"fmt"
	"time"

	"github.com/obolus/obolus/ingest"
	"github.com/obolus/obolus/sink/report"
)

// touchedMonths lists the UTC calendar months that overlap the window a
// batch run rewrote; an open end stops at now.
func touchedMonths(w ingest.Window, now time.Time) []report.Period {
	from, to := w.From.UTC(), w.To.UTC()
	if to.IsZero() || to.After(now) {
		to = now.UTC()
	}
	if from.IsZero() || !to.After(from) {
		return nil
	}
	var out []report.Period
	m := time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC)
	for ; m.Before(to); m = m.AddDate(0, 1, 0) {
		out = append(out, report.Period{Start: m, End: m.AddDate(0, 1, 0), Label: m.Format("2006-01")})
	}
	return out
}

// persistBatchAllocation is batch.persist_allocation: after a run, the bill
// of every month the run rewrote is allocated again and persisted, so
// cost_allocation follows late attributions and restated bills. A month
// without billing records is skipped: there is no bill to allocate yet.
func (a *cli) persistBatchAllocation(ctx context.Context, w ingest.Window, src report.Source, t report.AllocationTable) error {
	if w.From.IsZero() { // a run over all data: the months of all usage
		first, last, err := src.UsageSpan(ctx)
		if err != nil {
			return fmt.Errorf("persist allocation: %w", err)
		}
		if first.IsZero() {
			return nil
		}
		w.From = first
		if w.To.IsZero() || w.To.After(last) {
			w.To = last.Add(time.Microsecond)
		}
	}
	for _, p := range touchedMonths(w, time.Now()) {
		rep, err := report.Build(ctx, src, report.Options{Period: p})
		if err != nil {
			return fmt.Errorf("persist allocation of %s: %w", p.Label, err)
		}
		if !rep.Billing {
			a.log.Info("persist allocation: no billing records yet, skipped", "period", p.Label)
			continue
		}
		if err := a.persistAllocation(ctx, rep, t); err != nil {
			return fmt.Errorf("persist allocation of %s: %w", p.Label, err)
		}
	}
	return nil
}
