package pushdown_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/ingest"
	"github.com/obolus/obolus/internal/dbsql"
	"github.com/obolus/obolus/internal/pushdown"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func all(cols ...string) map[string]string {
	m := map[string]string{}
	for _, c := range cols {
		m[c] = c
	}
	return m
}

func testConfig(edit func(*pushdown.Config)) pushdown.Config {
	target, _ := dbsql.NewSchema("main", "obolus")
	cfg := pushdown.Config{
		Target: target,
		Usage: []pushdown.Table{
			{Name: "system.ai_gateway.usage", Kind: ingest.KindUsage, Columns: all(ingest.KindUsage.Columns()...)},
			{Name: "system.serving.endpoint_usage", Kind: ingest.KindLegacyUsage, Columns: all(ingest.KindLegacyUsage.Columns()...)},
		},
		Agents: []pushdown.Table{
			{Name: "lakehouse.agents.support_bot_payload", Kind: ingest.KindPayload, AgentEndpoint: "support-bot", ServicePrincipal: "sp-1",
				Columns: map[string]string{"databricks_request_id": "req_id", "request_time": "request_time", "requester": "user_email",
					"client_request_id": "client_request_id", "execution_duration_ms": "execution_duration_ms"}},
			{Name: "lakehouse.agents.support_bot_traces", Kind: ingest.KindTrace, ServicePrincipal: "sp-1",
				Columns: all("trace_id", "client_request_id", "request_time", "execution_duration_ms", "state", "trace_metadata")},
		},
		Match:  enrich.DefaultMatchConfig(),
		Prices: enrich.DefaultPriceList(),
		Org:    []enrich.OrgEntry{{EndUser: "Ana@example.com", Team: "data", CostCenter: "CC-1"}},
	}
	if edit != nil {
		edit(&cfg)
	}
	return cfg
}

var (
	day     = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	windows = pushdown.Windows{
		Usage:   ingest.Window{From: day.Add(-2 * time.Hour), To: day.Add(24 * time.Hour)},
		Agents:  ingest.Window{From: day.Add(-3 * time.Hour), To: day.Add(24*time.Hour + time.Minute + 2*time.Second)},
		Replace: ingest.Window{From: day.Add(-2 * time.Hour), To: day.Add(24 * time.Hour)},
	}
	run = enrich.Run{ID: "20261102T000000Z-00000000", Version: 1793577600000000, ProcessedAt: day.Add(24 * time.Hour)}
)

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the generated SQL (go test -update rewrites it); first difference near:\n%s", path, firstDiff(string(want), got))
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n want %s\n  got %s", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d lines", len(al), len(bl))
}

func TestGoldenSQL(t *testing.T) {
	tests := []struct {
		name string
		edit func(*pushdown.Config)
		w    pushdown.Windows
	}{
		{"attribute_default.sql", nil, windows},
		{"attribute_split.sql", func(c *pushdown.Config) { c.Match.Ambiguity = enrich.PolicySplit; c.Org = nil }, windows},
		{"attribute_nearest_rules.sql", func(c *pushdown.Config) {
			c.Match.Ambiguity = enrich.PolicyNearest
			c.Match.UntrustedIDFallback = true
			c.Match.TagUser = false
			c.Match.TraceTagKeys = []string{"trace_id"}
			c.Usage = c.Usage[:1]
			c.Agents = nil
		}, windows},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := pushdown.Build(testConfig(tt.edit), tt.w, run)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, st.SQL)
			for _, name := range []string{":usage_from", ":version", ":run_id", ":date_from", ":skew_us"} {
				if !strings.Contains(st.SQL, name) {
					t.Errorf("statement does not use %s", name)
				}
			}
		})
	}
	sum, err := pushdown.Summary(testConfig(nil), windows)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "summary.sql", sum.SQL)
}

// Every value reaches the warehouse as a bound parameter: none of the
// configured strings appears in the SQL text.
func TestValuesAreBound(t *testing.T) {
	cfg := testConfig(func(c *pushdown.Config) {
		c.Match.UserTagKeys = []string{"end_user' OR '1'='1"}
		c.Agents[0].AgentEndpoint = "bot'); DROP TABLE attribution; --"
		c.Agents[0].ServicePrincipal = `sp\'`
	})
	st, err := pushdown.Build(cfg, windows, enrich.Run{ID: "run'--", Version: 1, ProcessedAt: day})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"end_user' OR", "DROP TABLE", `sp\'`, "run'--"} {
		if strings.Contains(st.SQL, v) {
			t.Errorf("value %q is in the SQL text; it must be bound", v)
		}
	}
}

func TestRejectsWhatItCannotExpress(t *testing.T) {
	tests := []struct {
		name string
		edit func(*pushdown.Config)
		want string
	}{
		{"table injection", func(c *pushdown.Config) { c.Usage[0].Name = "system.ai_gateway.usage; DROP TABLE x" }, "not a plain identifier"},
		{"column injection", func(c *pushdown.Config) { c.Agents[0].Columns["requester"] = "user`; --" }, "not a plain identifier"},
		{"epoch-millis only", func(c *pushdown.Config) {
			delete(c.Agents[1].Columns, "request_time")
			c.Agents[1].Columns["timestamp_ms"] = "timestamp_ms"
		}, `no column "request_time"`},
		{"sub-microsecond skew", func(c *pushdown.Config) { c.Match.Skew = 1500 * time.Nanosecond }, "match.skew"},
		{"bad policy", func(c *pushdown.Config) { c.Match.Ambiguity = "guess" }, "match.ambiguity"},
		{"likely policy", func(c *pushdown.Config) { c.Match.Ambiguity = enrich.PolicyLikely }, "mode pull"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pushdown.Build(testConfig(tt.edit), windows, run)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// Split shares of one user each (equal counts) get, by the engine's exact
// apportioning that the SQL reproduces, total/n each and one more for the
// first total%n shares.
func TestApportionEqualWeightsRule(t *testing.T) {
	for n := 2; n <= 16; n++ {
		w := make([]int64, n)
		for i := range w {
			w[i] = 1
		}
		for _, total := range []int64{0, 1, 2, 7, 10, 99, 100, 1001, 123457, 9007199254740} {
			got := enrich.ApportionCounts(total, w)
			for i := range got {
				want := total / int64(n)
				if int64(i) < total%int64(n) {
					want++
				}
				if got[i] != want {
					t.Fatalf("ApportionCounts(%d, %d equal counts)[%d] = %d, SQL rule gives %d", total, n, i, got[i], want)
				}
			}
		}
	}
}

// PriceRows resolves every name exactly as PriceList.Cost does.
func TestPriceRowsMatchCost(t *testing.T) {
	pl := enrich.DefaultPriceList()
	rows := pushdown.PriceRows(pl)
	tok := enrich.Tokens{Input: 1_000_000, Output: 250_000, CacheRead: 100_000, CacheCreation: 50_000}
	names := map[string]bool{"unknown-model": true, "": true, "databricks-unknown": true}
	for _, r := range rows {
		names[r.LookupKey] = true
		names[strings.ToUpper(r.LookupKey)] = true
	}
	for _, v := range pl.Versions {
		at := v.EffectiveFrom.Add(time.Hour)
		for name := range names {
			wantUSD, wantVersion := pl.Cost(name, "", at, tok)
			gotUSD, gotVersion := 0.0, enrich.UnpricedVersion
			for _, r := range rows {
				inForce := (r.ValidFrom.IsZero() || !at.Before(r.ValidFrom)) && (r.ValidTo.IsZero() || at.Before(r.ValidTo))
				if inForce && name != "" && r.LookupKey == strings.ToLower(strings.TrimSpace(name)) {
					in := max(tok.Input-tok.CacheRead-tok.CacheCreation, 0)
					gotUSD = (float64(in)*r.Price.Input + float64(tok.Output)*r.Price.Output +
						float64(tok.CacheRead)*r.Price.CacheRead + float64(tok.CacheCreation)*r.Price.CacheCreation) / 1e6
					gotVersion = r.Version
				}
			}
			if gotUSD != wantUSD || gotVersion != wantVersion {
				t.Errorf("%q at %s: rows give %v %s, Cost gives %v %s", name, at.Format(time.DateOnly), gotUSD, gotVersion, wantUSD, wantVersion)
			}
		}
	}
}
