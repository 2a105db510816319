package report

import (
	"context"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/chargeback"
)

// TestReconcilesGeneratedBilling generates a month of usage and a bill for it
// (noise, a mid-month price change, idle billed hours, a retraction and
// restatement, endpoint-wide fees, the bill's own spellings of endpoints and
// models), loads both through the file loaders, and checks that the
// allocation adds up to the bill exactly, per hour × gateway endpoint and in
// total, with the idle hours on the unattributed line.
func TestReconcilesGeneratedBilling(t *testing.T) {
	ctx := context.Background()
	p := mustPeriod(t, "2026-11")
	s := openStore(t, syntheticRows(20_000, 3, p))
	src := NewDuckDBSource(s.DB())
	bill, err := GenerateBilling(ctx, src, BillingGenConfig{Seed: 5, Period: p, IdleShare: 0.03})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	usagePath, pricesPath := filepath.Join(dir, "usage.jsonl"), filepath.Join(dir, "prices.jsonl")
	if err := bill.WriteJSONL(usagePath, pricesPath); err != nil {
		t.Fatal(err)
	}
	loadBill(t, s, usagePath, pricesPath)

	// The report's own figures.
	rep, err := Build(ctx, src, Options{Period: p, By: []Dimension{ByTeam, ByUser}})
	if err != nil {
		t.Fatal(err)
	}
	rec := rep.Rec
	if rec.Records != len(bill.Usage) {
		t.Errorf("read %d billing records, generated %d", rec.Records, len(bill.Usage))
	}
	if got := rec.AttributedMicros + rec.UnattributedMicros + rec.NoUsageMicros; got != rec.BilledMicros {
		t.Errorf("allocated %d + remainder != billed %d", got, rec.BilledMicros)
	}
	var lines int64
	for _, l := range rep.Lines {
		lines += l.AllocatedMicros
	}
	if lines+rep.Unattributed.AllocatedMicros != rec.BilledMicros || rep.Total.AllocatedMicros != rec.BilledMicros {
		t.Errorf("lines %d + unattributed %d (total %d) != billed %d", lines, rep.Unattributed.AllocatedMicros, rep.Total.AllocatedMicros, rec.BilledMicros)
	}
	var focus int64
	for _, f := range rep.FocusRows() {
		focus += f.BilledMicros
	}
	if focus != rec.BilledMicros {
		t.Errorf("FOCUS BilledCost sums to %d, billed %d", focus, rec.BilledMicros)
	}
	if len(rec.PriceChanges) != 1 || rec.PriceChanges[0].From != "0.07" || rec.PriceChanges[0].To != "0.065" {
		t.Errorf("price changes = %+v, want one from 0.07 to 0.065", rec.PriceChanges)
	}
	if rec.UnbilledInvocations != 0 {
		t.Errorf("%d rows found no billing record: the bill's spellings of endpoints or models did not match", rec.UnbilledInvocations)
	}

	// The bill, independently: the analyst view's exact decimal sum.
	var viewExact string
	if err := s.DB().QueryRow(`SELECT CAST(sum(billed_cost) AS VARCHAR) FROM v_billing_hourly WHERE usage_hour >= TIMESTAMP '2026-11-01' AND usage_hour < TIMESTAMP '2026-12-01'`).Scan(&viewExact); err != nil {
		t.Fatal(err)
	}
	ve, _ := chargeback.ParseDecimal(viewExact)
	re, _ := chargeback.ParseDecimal(rec.Exact)
	if ve.Cmp(re) != 0 {
		t.Errorf("v_billing_hourly sums the bill to %s, the report to %s", viewExact, rec.Exact)
	}
	if want, _ := chargeback.RoundHalfAway(re, chargeback.MicrosPerUnit); want != rec.BilledMicros {
		t.Errorf("billed %d micro-units, want the exact bill rounded once: %d", rec.BilledMicros, want)
	}

	// Per hour × endpoint: rerun the allocation on the data the report read
	// and check every bucket against its charges.
	rows, err := readUsage(ctx, src, p)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := readBilling(ctx, src, p)
	if err != nil {
		t.Fatal(err)
	}
	var scratch Report
	charges, err := buildCharges(&scratch, recs, newEndpoints(rows))
	if err != nil {
		t.Fatal(err)
	}
	type eh struct {
		hour chargeback.Hour
		ep   string
	}
	billed, allocated := map[eh]int64{}, map[eh]int64{}
	cc := make([]chargeback.Charge, len(charges))
	for j, c := range charges {
		cc[j] = chargeback.Charge{Hour: c.hour, Endpoint: c.endpoint, Model: c.model, Micros: c.micros}
		billed[eh{c.hour, c.endpoint}] += c.micros
		// The charge's exact cost is within a micro-unit of its rounded one.
		d := new(big.Rat).Sub(new(big.Rat).Mul(c.exact, big.NewRat(chargeback.MicrosPerUnit, 1)), big.NewRat(c.micros, 1))
		if d.Abs(d).Cmp(big.NewRat(1, 1)) >= 0 {
			t.Errorf("charge %d: exact %s, rounded %d micro-units", j, c.exact.FloatString(9), c.micros)
		}
	}
	items := make([]chargeback.Item, len(rows))
	for i, r := range rows {
		items[i] = chargeback.Item{Hour: chargeback.HourOf(r.eventTime), Endpoint: endpointKey(r.endpointID, r.endpointName), Model: modelKey(r.model), ListNanos: int64(r.costUSD * 1e9), Tokens: r.total}
	}
	res, err := chargeback.Allocate(cc, items, func(j, _ int, m int64) { allocated[eh{cc[j].Hour, cc[j].Endpoint}] += m })
	if err != nil {
		t.Fatal(err)
	}
	var idle, idleMicros int64
	for j, cr := range res.Charges {
		if cr.Items == 0 {
			idle++
			idleMicros += cc[j].Micros
			allocated[eh{cc[j].Hour, cc[j].Endpoint}] += cc[j].Micros // goes to the unattributed line
		}
	}
	for k, b := range billed {
		if allocated[k] != b {
			t.Errorf("hour %s endpoint %s: allocated %d, billed %d micro-units", k.hour.Time().Format(time.RFC3339), k.ep, allocated[k], b)
		}
	}
	var generatedIdle int
	for _, u := range bill.Usage {
		if u.CustomTags["obolus_generated"] == "idle" {
			generatedIdle++
		}
	}
	if idle == 0 || idle != int64(generatedIdle) || idleMicros != rec.NoUsageMicros {
		t.Errorf("%d charges without usage (%d micro-units), generated %d idle records, report says %d micro-units", idle, idleMicros, generatedIdle, rec.NoUsageMicros)
	}
	if rec.Bases["tokens"] == 0 {
		t.Errorf("no charge was split by tokens, though the workload has unpriced calls: %v", rec.Bases)
	}
	t.Logf("billed %s USD in %d records, %d charges (%d idle), %d rows; bases %v",
		chargeback.FormatFixed(rec.BilledMicros, 6), rec.Records, rec.Charges, idle, len(rows), rec.Bases)
}
