package report

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/chargeback"
)

// BenchmarkChargeback1M allocates a generated month's bill over about a
// million attribution rows, and reports the time against a bare DuckDB
// GROUP BY hour × endpoint × model over the same rows, measured in the same
// run (x_of_duckdb_groupby: how many such GROUP BYs the step costs).
//
//	go test ./sink/report -run XXX -bench Chargeback1M -benchtime 5x
func BenchmarkChargeback1M(b *testing.B) {
	ctx := context.Background()
	p := mustPeriod(b, "2026-11")
	s := openStore(b, syntheticRows(1_000_000, 42, p))
	src := NewDuckDBSource(s.DB())
	generateAndLoadBill(b, s, BillingGenConfig{Seed: 1, Period: p})

	// The yardstick: median of 7 runs of a GROUP BY that touches the same rows.
	groupBy := func() time.Duration {
		var times []time.Duration
		for range 7 {
			start := time.Now()
			rows, err := s.DB().QueryContext(ctx, `SELECT date_trunc('hour', event_time) AS h, endpoint_id, lower(destination_model) AS m,
				sum(cost_usd), sum(total_tokens), count(*) FROM attribution
				WHERE event_time >= TIMESTAMP '2026-11-01' AND event_time < TIMESTAMP '2026-12-01' GROUP BY ALL`)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for rows.Next() {
				n++
			}
			rows.Close()
			times = append(times, time.Since(start))
		}
		slices.Sort(times)
		return times[len(times)/2]
	}

	rows, err := readUsage(ctx, src, p)
	if err != nil {
		b.Fatal(err)
	}
	recs, err := readBilling(ctx, src, p)
	if err != nil {
		b.Fatal(err)
	}
	var scratch Report
	charges, err := buildCharges(&scratch, recs, newEndpoints(rows))
	if err != nil {
		b.Fatal(err)
	}
	cc := make([]chargeback.Charge, len(charges))
	for j, c := range charges {
		cc[j] = chargeback.Charge{Hour: c.hour, Endpoint: c.endpoint, Model: c.model, Micros: c.micros}
	}
	items := make([]chargeback.Item, len(rows))
	for i, r := range rows {
		items[i] = chargeback.Item{Hour: chargeback.HourOf(r.eventTime), Endpoint: endpointKey(r.endpointID, r.endpointName), Model: modelKey(r.model), ListNanos: int64(r.costUSD * 1e9), Tokens: r.total}
	}

	// allocate: the allocation alone, on rows already in memory.
	b.Run("allocate", func(b *testing.B) {
		yard := groupBy()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := chargeback.Allocate(cc, items, nil); err != nil {
				b.Fatal(err)
			}
		}
		per := b.Elapsed() / time.Duration(b.N)
		b.ReportMetric(float64(len(items))/per.Seconds(), "rows/s")
		b.ReportMetric(float64(per)/float64(yard), "x_of_duckdb_groupby")
		b.ReportMetric(float64(yard.Milliseconds()), "duckdb_groupby_ms")
	})
	// build: the whole report — read the rows and the bill from DuckDB,
	// allocate, group, FOCUS rows.
	b.Run("build", func(b *testing.B) {
		yard := groupBy()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := Build(ctx, src, Options{Period: p, By: []Dimension{ByTeam, ByUser}}); err != nil {
				b.Fatal(err)
			}
		}
		per := b.Elapsed() / time.Duration(b.N)
		b.ReportMetric(float64(len(items))/per.Seconds(), "rows/s")
		b.ReportMetric(float64(per)/float64(yard), "x_of_duckdb_groupby")
		b.ReportMetric(float64(yard.Milliseconds()), "duckdb_groupby_ms")
	})
}
