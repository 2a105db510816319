package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/obolus/obolus/internal/headless"
)

// TestDemoReportInChromium runs what `make demo` runs, with fewer agent
// requests over the same four weeks, and renders its HTML report in headless
// Chromium: every chart is drawn, every one of the 28 days has its bars and
// coverage points, and the two billed days without usage (November 29 and
// 30, billed by --idle-days) show as such, not as 0% coverage. The
// screenshot (in $OBOLUS_TEST_ARTIFACTS when set) is the demo's month.
func TestDemoReportInChromium(t *testing.T) {
	bin := headless.Chromium(t)
	if testing.Short() {
		t.Skip("four weeks of workload, attributed and billed: not in -short")
	}
	dir := t.TempDir()
	mustObolus(t, "gen", "--out", dir, "--duration", "672h", "--agent-requests", "3000", "--users", "80")
	cfg := filepath.Join(dir, "obolus.yaml")
	mustObolus(t, "batch", "--config", cfg, "--log-level", "warn")
	bill, reports := filepath.Join(dir, "bill"), filepath.Join(dir, "reports")
	mustObolus(t, "report", "gen-billing", "--config", cfg, "--period", "2026-11", "--idle-days", "--out", bill, "--log-level", "warn")
	mustObolus(t, "report", "chargeback", "--config", cfg, "--period", "2026-11", "--by", "team,user",
		"--billing-usage", filepath.Join(bill, "billing_usage.jsonl"), "--list-prices", filepath.Join(bill, "billing_list_prices.jsonl"),
		"--format", "html", "--out", reports, "--log-level", "warn")
	html, err := os.ReadFile(filepath.Join(reports, "chargeback-2026-11.html"))
	if err != nil {
		t.Fatal(err)
	}
	art := headless.ArtifactDir(t)
	page := filepath.Join(art, "demo-chargeback-2026-11.html")
	if err := os.WriteFile(page, html, 0o644); err != nil {
		t.Fatal(err)
	}

	dom, log := headless.Run(t, bin, page, "--dump-dom")
	if probs := headless.PageProblems(dom, log); len(probs) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(probs, "\n"))
	}
	if !strings.Contains(dom, `data-charts-rendered="4"`) {
		t.Errorf("want 4 charts drawn")
	}
	teams, coverage := chart(dom, "chart-teams"), chart(dom, "chart-coverage")
	for d := 1; d <= 28; d++ {
		day := fmt.Sprintf("2026-11-%02d", d)
		if !strings.Contains(teams, "<title>"+day+" · ") {
			t.Errorf("%s: no bar in cost by team per day", day)
		}
		if !strings.Contains(coverage, "<title>"+day+" · requests attributed") {
			t.Errorf("%s: no coverage point", day)
		}
	}
	for _, day := range []string{"2026-11-29", "2026-11-30"} {
		if !strings.Contains(coverage, "<title>"+day+" · billed") || strings.Contains(coverage, "<title>"+day+" · requests attributed") {
			t.Errorf("%s: billed without usage, but not shown as such in the coverage chart", day)
		}
	}
	if n := headless.Screenshot(t, bin, page, filepath.Join(art, "demo-chargeback-2026-11.png"), "1280,4000"); n < 20 {
		t.Errorf("screenshot has %d colours: the page looks blank", n)
	}
}

// chart is one chart's SVG in a rendered page.
func chart(dom, id string) string {
	return regexp.MustCompile(`(?s)<svg[^>]*id="` + regexp.QuoteMeta(id) + `".*?</svg>`).FindString(dom)
}
