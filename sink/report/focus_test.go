package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/chargeback"
)

// TestFocusSpecTable checks the column table itself against what FOCUS 1.2
// requires of every dataset, so an edit cannot drop a mandatory column.
func TestFocusSpecTable(t *testing.T) {
	mandatory := []string{"BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
		"ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost", "EffectiveCost",
		"InvoiceIssuerName", "ListCost", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName"}
	byName := map[string]FocusColumn{}
	var names []string
	for _, c := range FocusColumns {
		if _, dup := byName[c.Name]; dup {
			t.Errorf("%s listed twice", c.Name)
		}
		byName[c.Name] = c
		names = append(names, c.Name)
		switch c.Type {
		case FocusString, FocusDecimal, FocusDateTime, FocusJSON:
		default:
			t.Errorf("%s: unknown type %q", c.Name, c.Type)
		}
		if strings.HasPrefix(c.Name, "x_") {
			t.Errorf("%s: specification columns have no x_ prefix", c.Name)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("columns are not in the specification's alphabetical order")
	}
	for _, m := range mandatory {
		if c, ok := byName[m]; !ok || c.Level != Mandatory {
			t.Errorf("%s: want a Mandatory column, have %+v", m, c)
		}
	}
	for _, want := range []struct {
		name string
		typ  FocusType
	}{{"BilledCost", FocusDecimal}, {"ChargePeriodStart", FocusDateTime}, {"Tags", FocusJSON}, {"SkuPriceDetails", FocusJSON}, {"PricingQuantity", FocusDecimal}, {"RegionId", FocusString}} {
		if byName[want.name].Type != want.typ {
			t.Errorf("%s: type %s, want %s", want.name, byName[want.name].Type, want.typ)
		}
	}
	for _, c := range FocusExtensionColumns {
		if !strings.HasPrefix(c.Name, "x_") {
			t.Errorf("extension column %s lacks the x_ prefix", c.Name)
		}
	}
	for _, x := range []string{"x_EndUser", "x_Team", "x_CostCenter", "x_MatchMethod", "x_MatchConfidence", "x_AgentEndpoint"} {
		if !slices.ContainsFunc(FocusExtensionColumns, func(c FocusColumn) bool { return c.Name == x }) {
			t.Errorf("extension column %s missing", x)
		}
	}
}

// TestFocusExport validates every row of the fixture's FOCUS CSV against the
// column table: presence, nulls, data types, allowed values, and the cost
// identities FOCUS states (PricingQuantity × unit price = cost).
func TestFocusExport(t *testing.T) {
	s := fixtureStore(t)
	rep, err := Build(context.Background(), NewDuckDBSource(s.DB()), Options{Period: mustPeriod(t, "2026-11")})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := rep.WriteFocusCSV(&b); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	all := append(slices.Clone(FocusColumns), FocusExtensionColumns...)
	header := recs[0]
	if len(header) != len(all) {
		t.Fatalf("header has %d columns, want %d", len(header), len(all))
	}
	col := map[string]int{}
	for i, c := range all {
		if header[i] != c.Name {
			t.Errorf("column %d is %q, want %q", i, header[i], c.Name)
		}
		col[c.Name] = i
	}
	var billed int64
	for r, rec := range recs[1:] {
		where := func(c string) string { return "row " + itoa(r+1) + " " + c }
		for i, c := range all {
			v := rec[i]
			if v == "" {
				if !c.Nullable {
					t.Errorf("%s: empty, but the column allows no nulls", where(c.Name))
				}
				continue
			}
			switch c.Type {
			case FocusDecimal:
				if _, err := chargeback.ParseDecimal(v); err != nil || strings.ContainsAny(v, "eE") {
					t.Errorf("%s: %q is not a plain decimal", where(c.Name), v)
				}
			case FocusDateTime:
				if ts, err := time.Parse("2006-01-02T15:04:05Z", v); err != nil || ts.Location() != time.UTC {
					t.Errorf("%s: %q is not a UTC date-time in ISO 8601 form", where(c.Name), v)
				}
			case FocusJSON:
				var obj map[string]any
				if err := json.Unmarshal([]byte(v), &obj); err != nil {
					t.Errorf("%s: %q is not a JSON object", where(c.Name), v)
				}
			}
		}
		get := func(c string) string { return rec[col[c]] }
		dec := func(c string) *big.Rat { d, _ := chargeback.ParseDecimal(get(c)); return d }
		if get("ChargeCategory") != "Usage" || get("ChargeFrequency") != "Usage-Based" || get("ChargeClass") != "" {
			t.Errorf("row %d: ChargeCategory %q ChargeFrequency %q ChargeClass %q", r+1, get("ChargeCategory"), get("ChargeFrequency"), get("ChargeClass"))
		}
		if get("BilledCost") != get("EffectiveCost") || get("BilledCost") != get("ContractedCost") {
			t.Errorf("row %d: without commitments BilledCost, EffectiveCost and ContractedCost agree", r+1)
		}
		// PricingQuantity × unit price matches the cost (to the micro-unit it is rounded to).
		for _, pair := range [][2]string{{"ContractedUnitPrice", "ContractedCost"}, {"ListUnitPrice", "ListCost"}} {
			prod := new(big.Rat).Mul(dec("PricingQuantity"), dec(pair[0]))
			diff := new(big.Rat).Sub(prod, dec(pair[1]))
			if diff.Abs(diff).Cmp(big.NewRat(1, 1_000_000)) > 0 {
				t.Errorf("row %d: PricingQuantity × %s = %s, %s = %s", r+1, pair[0], prod.FloatString(9), pair[1], get(pair[1]))
			}
		}
		cs, _ := time.Parse(time.RFC3339, get("ChargePeriodStart"))
		ce, _ := time.Parse(time.RFC3339, get("ChargePeriodEnd"))
		bs, _ := time.Parse(time.RFC3339, get("BillingPeriodStart"))
		be, _ := time.Parse(time.RFC3339, get("BillingPeriodEnd"))
		if !ce.After(cs) || cs.Before(bs) || ce.After(be) {
			t.Errorf("row %d: charge period [%s, %s) outside billing period [%s, %s)", r+1, cs, ce, bs, be)
		}
		m := new(big.Rat).Mul(dec("BilledCost"), big.NewRat(chargeback.MicrosPerUnit, 1))
		billed += m.Num().Int64()
	}
	if billed != rep.Rec.BilledMicros {
		t.Errorf("BilledCost sums to %d micro-units, the bill is %d", billed, rep.Rec.BilledMicros)
	}
	var promo bool
	for _, f := range rep.FocusRows() {
		promo = promo || f.ListMicros > f.BilledMicros
	}
	if !promo {
		t.Errorf("no row has ListCost above BilledCost, though the fixture's second price is promotional")
	}
}

// TestParquetTypes writes the FOCUS and chargeback Parquet files and reads
// their schema back with DuckDB.
func TestParquetTypes(t *testing.T) {
	s := fixtureStore(t)
	rep, err := Build(context.Background(), NewDuckDBSource(s.DB()), Options{Period: mustPeriod(t, "2026-11"), By: []Dimension{ByTeam, ByModel}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, f func(*bytes.Buffer) error) string {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	focus := write("focus.parquet", func(b *bytes.Buffer) error { return rep.WriteFocusParquet(b) })
	lines := write("chargeback.parquet", func(b *bytes.Buffer) error { return rep.WriteParquet(b) })

	types := map[string]string{}
	rows, err := s.DB().Query(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(?))`, focus)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n, typ string
		if err := rows.Scan(&n, &typ); err != nil {
			t.Fatal(err)
		}
		types[n] = typ
	}
	rows.Close()
	want := map[FocusType]string{FocusString: "VARCHAR", FocusJSON: "VARCHAR", FocusDecimal: "DECIMAL(38,18)", FocusDateTime: "TIMESTAMP WITH TIME ZONE"}
	for _, c := range append(slices.Clone(FocusColumns), FocusExtensionColumns...) {
		if types[c.Name] != want[c.Type] {
			t.Errorf("FOCUS parquet %s: %q, want %q", c.Name, types[c.Name], want[c.Type])
		}
	}
	var billed string
	if err := s.DB().QueryRow(`SELECT CAST(sum(BilledCost) AS VARCHAR) FROM read_parquet(?)`, focus).Scan(&billed); err != nil {
		t.Fatal(err)
	}
	if b, _ := chargeback.ParseDecimal(billed); b.Cmp(big.NewRat(rep.Rec.BilledMicros, chargeback.MicrosPerUnit)) != 0 {
		t.Errorf("FOCUS parquet BilledCost sums to %s, bill %s", billed, chargeback.FormatFixed(rep.Rec.BilledMicros, 6))
	}
	var n int
	var alloc string
	if err := s.DB().QueryRow(`SELECT count(*), CAST(sum(allocated_cost) AS VARCHAR) FROM read_parquet(?)`, lines).Scan(&n, &alloc); err != nil {
		t.Fatal(err)
	}
	if a, _ := chargeback.ParseDecimal(alloc); n != len(rep.Lines)+1 || a.Cmp(big.NewRat(rep.Rec.BilledMicros, chargeback.MicrosPerUnit)) != 0 {
		t.Errorf("chargeback parquet: %d rows summing to %s; want %d rows summing to the bill", n, alloc, len(rep.Lines)+1)
	}
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }
