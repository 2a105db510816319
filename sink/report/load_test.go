package report

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// billDigest summarises the loaded billing tables.
func billDigest(t *testing.T, q Querier) string {
	t.Helper()
	rows, err := q.QueryContext(context.Background(), `
SELECT 'u', record_id, CAST(usage_quantity AS VARCHAR), CAST(usage_start_time AS VARCHAR), CAST(usage_end_time AS VARCHAR), CAST(usage_date AS VARCHAR),
       coalesce(usage_metadata.ai_gateway_endpoint_id, '-'), coalesce(usage_metadata.ai_gateway_endpoint_name, '-'),
       coalesce(usage_metadata.ai_gateway_destination_model, '-'), coalesce(record_type, '-'), coalesce(CAST(custom_tags AS VARCHAR), '-')
FROM billing_usage
UNION ALL
SELECT 'p', sku_name, CAST(pricing."default" AS VARCHAR), CAST(price_start_time AS VARCHAR), coalesce(CAST(price_end_time AS VARCHAR), '-'), currency_code,
       CAST(pricing.effective_list."default" AS VARCHAR), coalesce(CAST(pricing.promotional."default" AS VARCHAR), '-'), usage_unit, cloud, '-'
FROM billing_list_prices
ORDER BY 1, 2, 4`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		v := make([]string, 11)
		p := make([]any, len(v))
		for i := range v {
			p[i] = &v[i]
		}
		if err := rows.Scan(p...); err != nil {
			t.Fatal(err)
		}
		b.WriteString(strings.Join(v, " | ") + "\n")
	}
	return b.String()
}

// gaUsageMetadata reshapes the store's usage_metadata (the Beta's flat
// gateway fields) into the GA layout, a usage_metadata.ai_gateway struct.
const gaUsageMetadata = `struct_pack(endpoint_name := usage_metadata.endpoint_name, endpoint_id := usage_metadata.endpoint_id,
  ai_gateway := struct_pack(endpoint_name := usage_metadata.ai_gateway_endpoint_name, endpoint_id := usage_metadata.ai_gateway_endpoint_id,
    destination_model := usage_metadata.ai_gateway_destination_model, destination_id := usage_metadata.ai_gateway_destination_id))`

// TestLoadFormats loads the testdata bill from JSON lines, then from CSV
// (nested columns as JSON text) and Parquet (nested columns as structs)
// exports of it, with the gateway fields under their Beta (flat) and GA
// (struct) names, and expects the same tables.
func TestLoadFormats(t *testing.T) {
	ctx := context.Background()
	ref := fixtureStore(t)
	want := billDigest(t, ref.DB())
	if !strings.Contains(want, "12.345678901234567891") {
		t.Fatalf("quoted decimals lost digits:\n%s", want)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name, format string
		ga           bool
	}{{"parquet", "parquet", false}, {"csv", "csv", false}, {"GA parquet", "parquet", true}, {"GA csv", "csv", true}, {"GA jsonl", "json", true}} {
		t.Run(tc.name, func(t *testing.T) {
			paths := map[string]string{}
			for _, tbl := range []string{"billing_usage", "billing_list_prices"} {
				p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+"_"+tbl+"."+tc.format)
				var replace []string
				if tc.ga && tbl == "billing_usage" {
					replace = append(replace, gaUsageMetadata+" AS usage_metadata")
				}
				if tc.format == "csv" {
					replace = append(replace, map[string][]string{"billing_usage": {"to_json(usage_metadata) AS usage_metadata", "to_json(identity_metadata) AS identity_metadata", "to_json(custom_tags) AS custom_tags"},
						"billing_list_prices": {"to_json(pricing) AS pricing"}}[tbl]...)
				}
				if tc.format == "json" && tbl == "billing_usage" {
					// Quoted, as exports should: a JSON number is a double.
					replace = append(replace, "CAST(usage_quantity AS VARCHAR) AS usage_quantity")
				}
				sel := "SELECT * FROM " + tbl
				for _, r := range replace {
					sel = "SELECT * REPLACE (" + r + ") FROM (" + sel + ")"
				}
				opts := map[string]string{"parquet": "FORMAT parquet", "csv": "FORMAT csv, HEADER", "json": "FORMAT json"}[tc.format]
				if _, err := ref.DB().ExecContext(ctx, "COPY ("+sel+") TO '"+p+"' ("+opts+")"); err != nil {
					t.Fatal(err)
				}
				paths[tbl] = p
			}
			s := openStore(t, nil)
			loadBill(t, s, paths["billing_usage"], paths["billing_list_prices"])
			if got := billDigest(t, s.DB()); got != want {
				t.Errorf("loaded from %s:\n%s\nwant (from jsonl):\n%s", tc.name, got, want)
			}
			// Loading again replaces, it does not duplicate.
			loadBill(t, s, paths["billing_usage"], paths["billing_list_prices"])
			if got := billDigest(t, s.DB()); got != want {
				t.Errorf("second load changed the tables")
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	good := `{"record_id":"a","sku_name":"S","cloud":"AWS","usage_start_time":"2026-11-01T00:00:00Z","usage_end_time":"2026-11-01T01:00:00Z","usage_unit":"DBU","usage_quantity":1}`
	tests := []struct {
		name, file, content, want string
		prices                    bool
	}{
		{"unknown format", "u.txt", good, "unknown format", false},
		{"missing file", "missing.jsonl", "", "missing.jsonl", false},
		{"no required column", "u.jsonl", `{"record_id":"a","cloud":"AWS"}`, "no column sku_name", false},
		{"required value NULL", "u.jsonl", good + "\n" + strings.Replace(good, `"sku_name":"S"`, `"sku_name":null`, 1), "record 2 (record_id a): sku_name is missing or NULL", false},
		{"repeated record", "u.jsonl", good + "\n" + good, "record_id a appears 2 times", false},
		{"bad timestamp", "u.jsonl", strings.Replace(good, "2026-11-01T01:00:00Z", "yesterday", 1), "yesterday", false},
		{"bad decimal", "u.jsonl", strings.Replace(good, `"usage_quantity":1`, `"usage_quantity":"lots"`, 1), "lots", false},
		{"prices without effective price", "p.jsonl", `{"sku_name":"S","cloud":"AWS","currency_code":"USD","usage_unit":"DBU","price_start_time":"2026-01-01T00:00:00Z","pricing":{"default":"0.07"}}`, "no column pricing.effective_list.default", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, nil)
			p := filepath.Join(dir, tc.file)
			if tc.content != "" {
				if err := os.WriteFile(p, []byte(tc.content+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			if tc.prices {
				_, err = LoadListPrices(ctx, s.DB(), p)
			} else {
				_, err = LoadBillingUsage(ctx, s.DB(), p)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
			var n int
			if err := s.DB().QueryRow(`SELECT count(*) FROM billing_usage`).Scan(&n); err != nil || n != 0 {
				t.Errorf("a failed load left %d rows (%v)", n, err)
			}
		})
	}
}

// TestBuildBillingErrors: a bill that cannot be reconciled is refused with
// the record named.
func TestBuildBillingErrors(t *testing.T) {
	ctx := context.Background()
	p := mustPeriod(t, "2026-11")
	tests := []struct {
		name, sql, want string
	}{
		{"no price in force", `DELETE FROM billing_list_prices WHERE price_end_time IS NULL AND sku_name LIKE 'ENTERPRISE%'`,
			`billing record "r6" (sku_name "ENTERPRISE_SERVERLESS_REAL_TIME_INFERENCE_US_EAST_1", cloud "AWS", usage_unit "DBU") ending 2026-11-20T10:00:00Z: no list price in force`},
		{"overlapping prices", `INSERT INTO billing_list_prices BY NAME SELECT * REPLACE (TIMESTAMP '2026-11-10' AS price_start_time) FROM billing_list_prices WHERE price_end_time IS NULL AND sku_name LIKE 'ENTERPRISE%'`,
			"matches two list prices"},
		{"two currencies", `UPDATE billing_list_prices SET currency_code = 'EUR' WHERE price_end_time IS NULL AND sku_name LIKE 'ENTERPRISE%'`,
			"priced in EUR, others in USD"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := fixtureStore(t)
			if _, err := s.DB().ExecContext(ctx, tc.sql); err != nil {
				t.Fatal(err)
			}
			_, err := Build(ctx, NewDuckDBSource(s.DB()), Options{Period: p})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestNoBilling: without a bill the report says so, shows list-price
// estimates, and refuses a FOCUS export rather than invent billed cost.
func TestNoBilling(t *testing.T) {
	s := openStore(t, fixtureRows())
	rep, err := Build(context.Background(), NewDuckDBSource(s.DB()), Options{Period: mustPeriod(t, "2026-11"), By: []Dimension{ByTeam}})
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"No billing records for this period", "| **Total** | **11** | **2,620,000** | **900,000** | **16.50** |", "nothing to reconcile"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	if err := rep.WriteFocusCSV(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "needs billing data") {
		t.Errorf("FOCUS without billing: error = %v", err)
	}
	var csvOut bytes.Buffer
	if err := rep.WriteCSV(&csvOut); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(csvOut.String()), "\n")[1:] {
		if !strings.HasSuffix(line, ",USD,"+line[strings.LastIndex(strings.TrimSuffix(line, ",,"), ",")+1:]) || !strings.HasSuffix(line, ",,") {
			t.Errorf("CSV without billing: allocated_cost and share_of_bill should be empty: %s", line)
		}
	}
}

func TestSourceValidatesTables(t *testing.T) {
	s := openStore(t, nil)
	for _, bad := range []string{"", "attribution; DROP TABLE x", `a"b`, "a.b.c.d", "1abc"} {
		src := NewDuckDBSource(s.DB())
		src.Tables.Attribution = bad
		if _, err := Build(context.Background(), src, Options{Period: mustPeriod(t, "2026-11")}); err == nil || !strings.Contains(err.Error(), "tables.attribution") {
			t.Errorf("table %q: error = %v", bad, err)
		}
	}
	if q, err := (Source{Dialect: Databricks}).table("x", "main.obolus.attribution"); err != nil || q != "`main`.`obolus`.`attribution`" {
		t.Errorf("databricks quoting: %q, %v", q, err)
	}
}
