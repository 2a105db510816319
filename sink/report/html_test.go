package report

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/obolus/obolus/internal/headless"
)

// TestHTMLInChromium renders a month of generated usage and billing in
// headless Chromium and checks that the four charts are drawn, that the page
// raised no error and fetched nothing, and keeps a screenshot.
func TestHTMLInChromium(t *testing.T) {
	bin := headless.Chromium(t)
	ctx := context.Background()
	p := mustPeriod(t, "2026-11")
	s := openStore(t, syntheticRows(5_000, 11, p))
	src := NewDuckDBSource(s.DB())
	generateAndLoadBill(t, s, BillingGenConfig{Seed: 2, Period: p})
	rep, err := Build(ctx, src, Options{Period: p, By: []Dimension{ByTeam, ByCostCenter}})
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	// Self-contained: nothing that would load from elsewhere.
	for _, bad := range []string{"<link", "src=\"http", "href=\"http", "@import", "url("} {
		if strings.Contains(page.String(), bad) {
			t.Errorf("page contains %q: it must not load anything", bad)
		}
	}
	art := headless.ArtifactDir(t)
	path := filepath.Join(art, "chargeback-2026-11.html")
	if err := os.WriteFile(path, page.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	dom, log := headless.Run(t, bin, path, "--dump-dom")
	if probs := headless.PageProblems(dom, log); len(probs) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(probs, "\n"))
	}
	if !strings.Contains(dom, `data-charts="4"`) || !strings.Contains(dom, `data-charts-rendered="4"`) {
		t.Errorf("want 4 charts drawn; the rendered page's root element: %.300s", dom[strings.Index(dom, "<html"):])
	}
	for _, id := range []string{"chart-teams", "chart-users", "chart-models", "chart-coverage"} {
		m := regexp.MustCompile(`<svg[^>]*id="` + id + `"[^>]*>`).FindString(dom)
		if !strings.Contains(m, `data-rendered="true"`) {
			t.Errorf("%s: not drawn: %q", id, m)
		}
	}
	if n := strings.Count(dom, `class="mark"`); n < 30+15+4+30 {
		t.Errorf("only %d chart marks in the rendered page", n)
	}

	shot := filepath.Join(art, "chargeback-2026-11.png")
	if n := headless.Screenshot(t, bin, path, shot, "1280,4000"); n < 20 {
		t.Errorf("screenshot has %d colours: the page looks blank", n)
	}
}

// TestChromiumCatchesPageErrors makes sure the harness above would notice a
// broken page: a script error and a blocked fetch.
func TestChromiumCatchesPageErrors(t *testing.T) {
	bin := headless.Chromium(t)
	s := fixtureStore(t)
	rep, err := Build(context.Background(), NewDuckDBSource(s.DB()), Options{Period: mustPeriod(t, "2026-11")})
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(page.String(), "</main>", `<img src="http://127.0.0.1:9/x.png"><script>undefinedFunction();</script></main>`, 1)
	path := filepath.Join(t.TempDir(), "broken.html")
	if err := os.WriteFile(path, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	dom, log := headless.Run(t, bin, path, "--dump-dom")
	probs := strings.Join(headless.PageProblems(dom, log), "\n")
	if !strings.Contains(probs, "undefinedFunction") {
		t.Errorf("a script error went unnoticed:\n%s", probs)
	}
	if !strings.Contains(probs, "127.0.0.1:9") {
		t.Errorf("a blocked fetch went unnoticed:\n%s", probs)
	}
}
