package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/obolus/obolus/internal/synth"
)

// The unified trace table as a join path: a workload whose calls carry no
// ids at all gets, for half of its gateway calls, the AI Gateway span the
// unified trace table would hold (obolus gen --gateway-spans: the agent's
// trace id, the call's request_id, and enduser.id set to the service
// principal that called the gateway). Those calls are matched by trace id,
// with precision 1, and nobody is made a user from a gateway span.
func TestUnifiedTraceGatewaySpans(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and attributes two workloads")
	}
	run := func(extra ...string) (dir, score string) {
		dir = t.TempDir()
		mustObolus(t, append([]string{"gen", "--out", dir, "--seed", "5", "--agent-requests", "3000", "--agent-logs", "otel", "--tagged-share", "0"}, extra...)...)
		cfg := filepath.Join(dir, synth.ConfigFile)
		mustObolus(t, "batch", "--config", cfg, "--log-level", "warn")
		return dir, mustObolus(t, "score", "--config", cfg, "--truth", filepath.Join(dir, synth.TruthFile))
	}
	_, before := run()
	dir, after := run("--gateway-spans", "0.5")
	spans := strings.Count(readFile(t, filepath.Join(dir, synth.GatewaySpansFile)), "\n")

	value := func(out, name string) float64 {
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == name {
				var v float64
				fmt.Sscan(f[len(f)-1], &v)
				return v
			}
		}
		t.Fatalf("no %s in\n%s", name, out)
		return 0
	}
	method := func(out, m string) (invocations, precision float64) {
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) == 5 && f[0] == m {
				fmt.Sscan(f[1], &invocations)
				fmt.Sscan(f[3], &precision)
			}
		}
		return invocations, precision
	}
	t.Logf("%d gateway spans; recall %.4f → %.4f, precision %.4f → %.4f", spans,
		value(before, "recall"), value(after, "recall"), value(before, "precision"), value(after, "precision"))
	// A span of a late agent request's trace cannot link until it lands.
	if n, p := method(after, "trace_id"); n < float64(spans)*0.9 || p != 1 {
		t.Errorf("trace_id: %.0f invocations at precision %.4f, want most of the %d spanned calls at 1\n%s", n, p, spans, after)
	}
	doc, _ := obolus(t, "doctor", "--config", filepath.Join(dir, synth.ConfigFile))
	if !strings.Contains(doc, "gateway spans") || !strings.Contains(doc, "are in a trace through their request_id") {
		t.Errorf("doctor does not report the share of usage rows gateway spans link:\n%s", doc)
	}
	// Half the calls were alone in their window and right already.
	if value(after, "recall") < value(before, "recall")+0.05 || value(after, "precision") < 0.99 {
		t.Errorf("recall %.4f → %.4f, precision %.4f: want recall up by 0.05 at precision ≥ 0.99\n%s", value(before, "recall"), value(after, "recall"), value(after, "precision"), after)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
