// Package headless renders local HTML pages in headless Chromium for tests:
// the HTML chargeback report (sink/report) and the demo's report
// (cmd/obolus). Both check that a page draws, raises no error and fetches
// nothing, and keep a screenshot.
package headless

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Chromium finds Debian's chromium (or another Chromium-based browser).
// Tests skip without one unless CI is set, where a missing browser is a failure.
func Chromium(t testing.TB) string {
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

// ArtifactDir is where screenshots stay: $OBOLUS_TEST_ARTIFACTS when set,
// else the test's temporary directory.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("OBOLUS_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// Run loads a local page headless with every network feature off,
// returning what it printed and its log (console messages included).
func Run(t testing.TB, bin, page string, extra ...string) (stdout, stderr string) {
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

// PageProblems is what a page reported about itself (the report's
// data-errors attribute and page-errors block), plus what chromium logged
// from its console.
func PageProblems(dom, log string) []string {
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

// Screenshot takes a screenshot of a page at size ("1280,4000") into shot,
// and returns how many distinct colours a sample of its pixels has: a drawn
// page has dozens, a blank one a handful.
func Screenshot(t testing.TB, bin, page, shot, size string) int {
	t.Helper()
	Run(t, bin, page, "--screenshot="+shot, "--window-size="+size, "--hide-scrollbars")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	colours := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[r>>8<<16|g>>8<<8|bl>>8] = true
		}
	}
	t.Logf("screenshot %s (%dx%d, %d colours sampled)", shot, b.Dx(), b.Dy(), len(colours))
	return len(colours)
}
