package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/stream/worker"
	"github.com/obolus/obolus/internal/synth"
)

// prometheusBin and promtool come with Debian's prometheus package (.ci/run
// installs it).
const (
	prometheusBin = "/usr/bin/prometheus"
	promtool      = "/usr/bin/promtool"
)

// devMetrics are the series /metrics of a running `obolus dev` must carry:
// every stream metric docs/streaming.md lists in its Metrics table, so the
// documentation (which the alerts' test checks against) cannot drift from
// the binary, and the process figures the deployment's sizing reads.
func devMetrics(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "streaming.md"))
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile("(?m)^\\| `(obolus_stream_[a-z_]+)` \\|").FindAllStringSubmatch(string(doc), -1)
	if len(names) < 10 {
		t.Fatalf("docs/streaming.md lists %d stream metrics in its Metrics table; the pattern no longer reads it", len(names))
	}
	out := []string{"process_resident_memory_bytes", "process_cpu_seconds_total"}
	for _, n := range names {
		out = append(out, n[1])
	}
	return out
}

// TestPrometheusScrapesDev runs `obolus dev` replaying a generated workload
// (this test binary is the obolus command) and checks that its /metrics
// carries every documented series and passes promtool check metrics. It
// then lets a real Prometheus server scrape /metrics every second, and asks
// Prometheus' HTTP API for the consumer lag and for answers per second. Everything is polled against one
// deadline: on a loaded machine it only takes longer.
func TestPrometheusScrapesDev(t *testing.T) {
	if testing.Short() {
		t.Skip("starts obolus dev and a Prometheus server")
	}
	if _, err := os.Stat(prometheusBin); err != nil {
		t.Skipf("%s not found (Debian package prometheus; .ci/run installs it): %v", prometheusBin, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	wl := filepath.Join(dir, "workload")
	if _, err := synth.Generate(ctx, synth.Config{Seed: 3, AgentRequests: 3000, Duration: 6 * time.Hour}.WithDefaults(), wl); err != nil {
		t.Fatal(err)
	}

	// obolus dev on free ports, replaying slowly enough (about two minutes) that
	// answers are still flowing when Prometheus has scraped a few times.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := freeAddr(t)
	_, brokerPort, _ := net.SplitHostPort(freeAddr(t))
	dev := exec.Command(exe, "dev", "--workload", wl, "--port", brokerPort, "--http", metricsAddr, "--rate", "250")
	dev.Env = append(os.Environ(), childEnv+"=1", "OBOLUS_LOG_LEVEL=warn")
	devLog := filepath.Join(dir, "dev.log")
	startLogged(t, dev, devLog)

	// /metrics carries every documented series once the worker has
	// answered and restated (a histogram shows as its _bucket series).
	want := devMetrics(t)
	var missing []string
	var body string
	poll(ctx, t, "obolus dev /metrics with every documented series", devLog, func() bool {
		if body, err = get("http://" + metricsAddr + worker.PathMetrics); err != nil {
			return false
		}
		missing = missing[:0]
		for _, m := range want {
			if !regexp.MustCompile("(?m)^" + m + "(_bucket)?[{ ]").MatchString(body) {
				missing = append(missing, m)
			}
		}
		return len(missing) == 0
	}, func() string { return fmt.Sprintf("missing %v", missing) })
	// Prometheus' own linter of the exposition format: names, suffixes,
	// HELP and TYPE lines.
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	promAddr := freeAddr(t)
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: obolus-dev
    static_configs:
      - targets: [%q]
`, metricsAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	prom := exec.Command(prometheusBin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr)
	promLog := filepath.Join(dir, "prometheus.log")
	startLogged(t, prom, promLog)

	// Lag: a value per consumer group, from what Prometheus scraped.
	var lag []promSample
	poll(ctx, t, "consumer lag from Prometheus", promLog, func() bool {
		lag, err = promQuery(promAddr, `sum by (group) (obolus_stream_consumer_lag{job="obolus-dev"})`)
		return err == nil && len(lag) >= 3 // rekey, join and load
	}, func() string { return fmt.Sprintf("last answer %v, err %v", lag, err) })
	for _, s := range lag {
		if s.value < 0 {
			t.Errorf("lag of %v is %v, want >= 0", s.labels, s.value)
		}
	}
	t.Logf("consumer lag: %v", lag)

	// Answers per second: a rate over the records out, above zero while
	// the replay is still feeding the worker.
	var rate []promSample
	poll(ctx, t, "answers per second from Prometheus", promLog, func() bool {
		rate, err = promQuery(promAddr, `sum(rate(obolus_stream_answers_total{job="obolus-dev"}[10s]))`)
		return err == nil && len(rate) == 1 && rate[0].value > 0
	}, func() string { return fmt.Sprintf("last answer %v, err %v", rate, err) })
	t.Logf("answers per second: %.0f", rate[0].value)
}

// startLogged starts cmd with its output in log. At cleanup it stops it with
// SIGTERM, as a supervisor would, and kills it if it has not exited 30 s later.
func startLogged(t *testing.T, cmd *exec.Cmd, log string) {
	t.Helper()
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			return
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30 s of SIGTERM; killing it", cmd.Path)
			_ = cmd.Process.Kill()
		}
		<-done
	})
}

// poll calls ok every 500 ms until it holds or ctx ends; then it fails with
// what and the tail of log.
func poll(ctx context.Context, t *testing.T, what, log string, ok func() bool, last func() string) {
	t.Helper()
	for !ok() {
		select {
		case <-ctx.Done():
			b, _ := os.ReadFile(log)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Fatalf("no %s before the deadline: %s\n%s:\n%s", what, last(), log, b)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func get(u string) (string, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return string(b), nil
}

// promSample is one element of an instant vector.
type promSample struct {
	labels map[string]string
	value  float64
}

// promQuery runs an instant query through Prometheus' HTTP API.
func promQuery(addr, q string) ([]promSample, error) {
	body, err := get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", q, r.Error)
	}
	out := make([]promSample, 0, len(r.Data.Result))
	for _, s := range r.Data.Result {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value %v: %w", q, s.Value[1], err)
		}
		out = append(out, promSample{labels: s.Metric, value: v})
	}
	return out, nil
}

// pushgatewayBin comes with Debian's prometheus-pushgateway (.ci/run
// installs it).
const pushgatewayBin = "/usr/bin/prometheus-pushgateway"

// A batch run is gone before Prometheus could scrape it: its figures go to
// telemetry.metrics_file (for node_exporter's textfile collector; promtool
// checks it) and to a real Pushgateway, which then serves them under job
// "obolus".
func TestBatchMetricsReachFileAndPushgateway(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a batch and a Pushgateway")
	}
	if _, err := os.Stat(pushgatewayBin); err != nil {
		t.Skipf("%s not found (Debian package prometheus-pushgateway; .ci/run installs it): %v", pushgatewayBin, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	addr := freeAddr(t)
	gw := exec.CommandContext(ctx, pushgatewayBin, "--web.listen-address="+addr, "--persistence.file="+filepath.Join(dir, "pushgateway.db"))
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Process.Kill(); gw.Wait() })
	for { // until it listens
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("pushgateway on %s did not start", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}

	wl := filepath.Join(dir, "workload")
	mustObolus(t, "gen", "--out", wl, "--seed", "4", "--agent-requests", "500", "--duration", "2h")
	file := filepath.Join(dir, "obolus.prom")
	t.Setenv("OBOLUS_TELEMETRY_METRICS_FILE", file)
	t.Setenv("OBOLUS_TELEMETRY_PUSHGATEWAY", "http://"+addr)
	mustObolus(t, "batch", "--config", filepath.Join(wl, synth.ConfigFile), "--log-level", "warn")

	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []string{`obolus_batch_rows_total\{obolus_job="default",outcome="attributed"\} [1-9]`, `obolus_batch_duration_seconds_count\{obolus_job="default"\} 1\n`} {
		if !regexp.MustCompile(want).MatchString(text) {
			t.Errorf("metrics file lacks %s:\n%s", want, text)
		}
	}
	if strings.Contains(text, "process_") || strings.Contains(text, "go_goroutines") {
		t.Errorf("metrics file carries the exiting process's own figures:\n%s", text)
	}
	if _, err := os.Stat(promtool); err == nil {
		cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	served, _ := io.ReadAll(resp.Body)
	if !regexp.MustCompile(`obolus_batch_rows_total\{[^}]*job="obolus"[^}]*outcome="attributed"[^}]*\} [1-9]`).Match(served) {
		t.Errorf("the Pushgateway does not serve the run's rows under job obolus:\n%s", served)
	}
}
