package report

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// chromium finds Debian's chromium (or another Chromium-based browser). Tests
// skip without one unless CI is set, where a missing browser is a failure.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium on PATH, and CI is set: install Debian's chromium package (apt-get install -y chromium)")
	}
	t.Skip("no chromium on PATH (apt-get install -y chromium); CI is unset, so skipping")
	return ""
}

// artifactDir is where the screenshot stays: $OBOLUS_TEST_ARTIFACTS when set,
// else the test's temporary directory.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("OBOLUS_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// runChromium loads a local page headless with every network feature off,
// returning what it printed and its log (console messages included).
func runChromium(t *testing.T, bin, page string, extra ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(),
		"--enable-logging=stderr", "--v=0",
	}, extra...)
	args = append(args, "file://"+page)
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), errb.String()
}

var consoleLine = regexp.MustCompile(`(?m)^.*:CONSOLE\(\d+\)\].*$|^.*Uncaught .*$|^.*Refused to .*$`)

// pageProblems is what a page reported about itself, plus what chromium logged from its console.
func pageProblems(dom, log string) []string {
	var out []string
	if m := regexp.MustCompile(`data-errors="(\d+)"`).FindStringSubmatch(dom); m == nil || m[1] != "0" {
		out = append(out, "page recorded errors (data-errors "+strings.Join(m, " ")+")")
	}
	if m := regexp.MustCompile(`(?s)<pre id="page-errors"[^>]*>(.*?)</pre>`).FindStringSubmatch(dom); m != nil && strings.TrimSpace(m[1]) != "" {
		out = append(out, "page errors: "+m[1])
	}
	out = append(out, consoleLine.FindAllString(log, -1)...)
	return out
}

// TestHTMLInChromium renders a month of generated usage and billing in
// headless Chromium and checks that the four charts are drawn, that the page
// raised no error and fetched nothing, and keeps a screenshot.
func TestHTMLInChromium(t *testing.T) {
	bin := chromium(t)
	ctx := context.Background()
	p := mustPeriod(t, "2026-11")
	s := openStore(t, syntheticRows(5_000, 11, p))
	src := NewDuckDBSource(s.DB())
	bill, err := GenerateBilling(ctx, src, BillingGenConfig{Seed: 2, Period: p})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := bill.WriteJSONL(filepath.Join(dir, "u.jsonl"), filepath.Join(dir, "p.jsonl")); err != nil {
		t.Fatal(err)
	}
	loadBill(t, s, filepath.Join(dir, "u.jsonl"), filepath.Join(dir, "p.jsonl"))
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
	art := artifactDir(t)
	path := filepath.Join(art, "chargeback-2026-11.html")
	if err := os.WriteFile(path, page.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	dom, log := runChromium(t, bin, path, "--dump-dom")
	if probs := pageProblems(dom, log); len(probs) > 0 {
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
	runChromium(t, bin, path, "--screenshot="+shot, "--window-size=1280,4000", "--hide-scrollbars")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	// A drawn page is not one colour: count distinct colours in a sample.
	colours := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[r>>8<<16|g>>8<<8|bl>>8] = true
		}
	}
	if len(colours) < 20 {
		t.Errorf("screenshot has %d colours: the page looks blank", len(colours))
	}
	t.Logf("screenshot %s (%dx%d, %d colours sampled)", shot, b.Dx(), b.Dy(), len(colours))
}

// TestChromiumCatchesPageErrors makes sure the harness above would notice a
// broken page: a script error and a blocked fetch.
func TestChromiumCatchesPageErrors(t *testing.T) {
	bin := chromium(t)
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
	dom, log := runChromium(t, bin, path, "--dump-dom")
	probs := strings.Join(pageProblems(dom, log), "\n")
	if !strings.Contains(probs, "undefinedFunction") {
		t.Errorf("a script error went unnoticed:\n%s", probs)
	}
	if !strings.Contains(probs, "127.0.0.1:9") {
		t.Errorf("a blocked fetch went unnoticed:\n%s", probs)
	}
}
