package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/obolus/obolus/internal/chargeback"
)

// TestFocusSpecTable checks the column tables themselves against what FOCUS
// 1.2 and 1.3 require of every dataset, so an edit cannot drop a mandatory
// column.
func TestFocusSpecTable(t *testing.T) {
	mandatory12 := []string{"BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
		"ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost", "EffectiveCost",
		"InvoiceIssuerName", "ListCost", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName"}
	for _, tc := range []struct {
		version   string
		n         int
		mandatory []string
	}{
		{Focus12, 57, mandatory12},
		{Focus13, 65, append(slices.Clone(mandatory12), "HostProviderName", "ServiceProviderName")},
	} {
		t.Run(tc.version, func(t *testing.T) {
			cols, err := FocusColumnsFor(tc.version)
			if err != nil {
				t.Fatal(err)
			}
			if len(cols) != tc.n {
				t.Errorf("%d columns, want %d", len(cols), tc.n)
			}
			checkSpecTable(t, cols, tc.mandatory)
		})
	}
	for _, c := range []string{"AllocatedMethodId", "AllocatedMethodDetails", "AllocatedResourceId", "AllocatedResourceName", "AllocatedTags"} {
		if slices.ContainsFunc(FocusColumns, func(f FocusColumn) bool { return f.Name == c }) ||
			!slices.ContainsFunc(FocusColumns13, func(f FocusColumn) bool { return f.Name == c }) {
			t.Errorf("%s: want it in 1.3 only", c)
		}
	}
	if _, err := FocusColumnsFor("1.4"); err == nil {
		t.Error("FOCUS 1.4 accepted")
	}
}

func checkSpecTable(t *testing.T, cols []FocusColumn, mandatory []string) {
	t.Helper()
	byName := map[string]FocusColumn{}
	var names []string
	for _, c := range cols {
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

// TestFocusExport checks every row of the fixture's FOCUS CSV, in each
// version, against the version's column table and rules (CheckFocus:
// presence, nulls, data types, allowed values, split allocation), and the
// cost identities FOCUS states (PricingQuantity × unit price = cost).
func TestFocusExport(t *testing.T) {
	s := fixtureStore(t)
	for _, version := range []string{Focus12, Focus13} {
		t.Run(version, func(t *testing.T) {
			rep, err := Build(context.Background(), NewDuckDBSource(s.DB()), Options{Period: mustPeriod(t, "2026-11"), FocusVersion: version})
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
			for _, err := range CheckFocus(version, recs[0], recs[1:]) {
				t.Error(err)
			}
			checkFocusIdentities(t, rep, recs)
			if version == Focus13 {
				checkSplit(t, recs)
			}
		})
	}
}

func checkFocusIdentities(t *testing.T, rep *Report, recs [][]string) {
	t.Helper()
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	var billed int64
	for r, rec := range recs[1:] {
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

// checkSplit: the fixture has all three kinds of 1.3 row (allocated to an
// end user, the unallocated portion, and a charge never split), and each
// origin charge's rows carry the same origin cost, equal to their sum.
func checkSplit(t *testing.T, recs [][]string) {
	t.Helper()
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	kinds := map[string]int{}
	for _, rec := range recs[1:] {
		switch {
		case rec[col["AllocatedResourceId"]] != "":
			kinds["allocated"]++
			if rec[col["AllocatedResourceId"]] != rec[col["x_EndUser"]] || !strings.Contains(rec[col["AllocatedTags"]], `"obolus/team"`) {
				t.Errorf("allocated row: resource %q end user %q tags %q", rec[col["AllocatedResourceId"]], rec[col["x_EndUser"]], rec[col["AllocatedTags"]])
			}
		case rec[col["AllocatedMethodId"]] != "":
			kinds["unallocated portion"]++
		default:
			kinds["not split"]++
		}
		if rec[col["AllocatedMethodId"]] != "" && rec[col["AllocatedMethodId"]] != FocusAllocatedMethodID {
			t.Errorf("AllocatedMethodId %q", rec[col["AllocatedMethodId"]])
		}
	}
	for _, k := range []string{"allocated", "unallocated portion", "not split"} {
		if kinds[k] == 0 {
			t.Errorf("no %s row in the fixture's export: %v", k, kinds)
		}
	}
}

// TestCheckFocusCatches breaks one cell of a valid 1.3 export at a time and
// expects the rule that forbids it.
func TestCheckFocusCatches(t *testing.T) {
	s := fixtureStore(t)
	rep, err := Build(context.Background(), NewDuckDBSource(s.DB()), Options{Period: mustPeriod(t, "2026-11")})
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := rep.focusTable()
	if err != nil {
		t.Fatal(err)
	}
	header := tbl.header()
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	firstWith := func(rows [][]string, c string, set bool) int {
		for i, r := range rows {
			if (r[col[c]] != "") == set {
				return i
			}
		}
		t.Fatalf("no row with %s set=%v", c, set)
		return -1
	}
	for _, tc := range []struct {
		name, rule string
		mutate     func(rows [][]string)
	}{
		{"null BilledCost", "null.not-allowed", func(rows [][]string) { rows[0][col["BilledCost"]] = "" }},
		{"exponent decimal sign", "type.decimal", func(rows [][]string) { rows[0][col["BilledCost"]] = "+1.5" }},
		{"local time", "type.datetime", func(rows [][]string) { rows[0][col["ChargePeriodStart"]] = "2026-11-03 00:00:00" }},
		{"nested tag", "type.key-value", func(rows [][]string) { rows[0][col["Tags"]] = `{"a":{"b":1}}` }},
		{"charge category", "ChargeCategory.allowed", func(rows [][]string) { rows[0][col["ChargeCategory"]] = "usage" }},
		{"currency", "BillingCurrency.iso4217", func(rows [][]string) { rows[0][col["BillingCurrency"]] = "US$" }},
		{"subcategory", "ServiceSubcategory.parent", func(rows [][]string) { rows[0][col["ServiceSubcategory"]] = "Compute" }},
		{"resource without method", "AllocatedMethodId.with-allocation", func(rows [][]string) {
			rows[firstWith(rows, "AllocatedResourceId", true)][col["AllocatedMethodId"]] = ""
		}},
		{"unallocated portion named", "AllocatedResourceId.unallocated-portion", func(rows [][]string) {
			i := firstWith(rows, "AllocatedResourceId", false)
			rows[i][col["x_MatchMethod"]] = "unattributed"
			rows[i][col["AllocatedMethodId"]] = FocusAllocatedMethodID
			rows[i][col["AllocatedResourceId"]], rows[i][col["AllocatedResourceName"]] = "x", "x"
		}},
		{"name without id", "AllocatedResourceName.with-id", func(rows [][]string) {
			rows[firstWith(rows, "AllocatedResourceId", true)][col["AllocatedResourceName"]] = ""
		}},
		{"ratio off", "AllocatedMethodDetails.ratios-sum-to-one", func(rows [][]string) {
			i := firstWith(rows, "AllocatedMethodDetails", true)
			rows[i][col["AllocatedMethodDetails"]] = regexp.MustCompile(`"AllocatedRatio":[0-9.]+`).ReplaceAllString(rows[i][col["AllocatedMethodDetails"]], `"AllocatedRatio":0.5`)
		}},
		{"details without elements", "AllocatedMethodDetails.object", func(rows [][]string) {
			rows[firstWith(rows, "AllocatedMethodDetails", true)][col["AllocatedMethodDetails"]] = `{"x_OriginChargeId":"a"}`
		}},
		{"tag repeated", "AllocatedTags.distinct-from-tags", func(rows [][]string) {
			rows[firstWith(rows, "AllocatedTags", true)][col["AllocatedTags"]] = `{"obolus/gateway_endpoint":"x"}`
		}},
		{"contract", "ContractApplied.null-without-contract", func(rows [][]string) { rows[0][col["ContractApplied"]] = `{"ContractCommitmentId":"c"}` }},
		{"host provider", "null.not-allowed", func(rows [][]string) { rows[0][col["HostProviderName"]] = "" }},
		{"missing column", "columns.present", func(rows [][]string) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := tbl.cells()
			if errs := CheckFocus(Focus13, header, rows); len(errs) > 0 {
				t.Fatalf("the unbroken export fails: %v", errs[0])
			}
			h := header
			if tc.name == "missing column" {
				h = slices.Delete(slices.Clone(header), col["AllocatedTags"], col["AllocatedTags"]+1)
			}
			tc.mutate(rows)
			errs := CheckFocus(Focus13, h, rows)
			if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), tc.rule) }) {
				t.Errorf("want rule %s broken, got %v", tc.rule, errs)
			}
		})
	}
	for _, r := range FocusRules(Focus13) {
		if r.Spec == "" || r.Source == "" {
			t.Errorf("rule %s cites no wording or source", r.ID)
		}
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
	for _, c := range append(slices.Clone(FocusColumns13), FocusExtensionColumns...) {
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

// TestNumeric: FOCUS NumericFormat, as the decimal rule reads it.
func TestNumeric(t *testing.T) {
	for _, tc := range []struct {
		v  string
		ok bool
	}{
		{"0", true}, {"12.5", true}, {"-0.000001", true}, {"1.5E3", true}, {"2e-4", true},
		{"", false}, {"+1", false}, {"1,000", false}, {"1.", false}, {".5", false}, {"1e+3", false}, {"1/2", false}, {"$1", false}, {"1 ", false}, {"--1", false},
	} {
		if got := numeric(tc.v); got != tc.ok {
			t.Errorf("numeric(%q) = %v, want %v", tc.v, got, tc.ok)
		}
	}
}
