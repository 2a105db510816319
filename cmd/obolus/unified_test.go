package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/synth"
)

// The unified trace table as a join path: a workload whose calls carry no
// ids at all gets, for half of its calls, the AI Gateway span the unified
// trace table would hold (the agent's trace id, the call's request_id, and
// enduser.id set to the service principal that called the gateway). Those
// calls are matched by trace id, with precision 1, and nobody is made a user
// from the gateway span's enduser.id.
func TestUnifiedTraceGatewaySpans(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and attributes a workload twice")
	}
	dir := t.TempDir()
	mustObolus(t, "gen", "--out", dir, "--seed", "5", "--agent-requests", "3000", "--agent-logs", "otel", "--tagged-share", "0")
	cfg := filepath.Join(dir, synth.ConfigFile)
	scoreLine := func(store string) string {
		mustObolus(t, "batch", "--config", cfg, "--store", filepath.Join(dir, store), "--log-level", "warn")
		return mustObolus(t, "score", "--config", cfg, "--store", filepath.Join(dir, store), "--truth", filepath.Join(dir, synth.TruthFile))
	}
	before := scoreLine("before.duckdb")

	linked := writeGatewaySpans(t, dir)
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Appended to the generated sources list: no service principal, since
	// gateway spans stand for no agent request.
	if _, err := f.WriteString("    - kind: otel_spans\n      path: unified_trace.jsonl\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	after := scoreLine("after.duckdb")

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
	t.Logf("%d calls got a gateway span; recall %.4f → %.4f, precision %.4f → %.4f", linked,
		value(before, "recall"), value(after, "recall"), value(before, "precision"), value(after, "precision"))
	if n, p := method(after, "trace_id"); n < float64(linked)*0.9 || p != 1 {
		t.Errorf("trace_id: %.0f invocations at precision %.4f, want most of the %d linked calls at 1\n%s", n, p, linked, after)
	}
	doc, _ := obolus(t, "doctor", "--config", cfg, "--store", filepath.Join(dir, "after.duckdb"))
	if !strings.Contains(doc, "gateway spans") || !strings.Contains(doc, "are in a trace through their request_id") {
		t.Errorf("doctor does not report the share of usage rows gateway spans link:\n%s", doc)
	}
	// Half the calls were alone in their window and right already.
	if value(after, "recall") < value(before, "recall")+0.05 || value(after, "precision") < 0.99 {
		t.Errorf("recall %.4f → %.4f, precision %.4f: want recall up by 0.05 at precision ≥ 0.99\n%s", value(before, "recall"), value(after, "recall"), value(after, "precision"), after)
	}
}

// writeGatewaySpans writes dir/unified_trace.jsonl: a gateway span for every
// other call of the workload, in the agent's trace when the truth names the
// agent request (its root span's trace id), else in a trace of its own. It
// returns how many calls are in an agent's trace.
func writeGatewaySpans(t *testing.T, dir string) int {
	t.Helper()
	traceOf := map[string]string{} // agent request id → trace id, from root spans
	spanFiles, _ := filepath.Glob(filepath.Join(dir, "agents*", "*_otel_spans.jsonl"))
	for _, p := range spanFiles {
		eachJSON(t, p, func(m map[string]any) {
			attrs, _ := m["attributes"].(map[string]any)
			if m["parent_span_id"] == "" && attrs != nil {
				if id, _ := attrs["client_request_id"].(string); id != "" {
					traceOf[id] = m["trace_id"].(string)
				}
			}
		})
	}
	requestOf := map[string]string{} // invocation → agent request, from the truth
	eachJSON(t, filepath.Join(dir, synth.TruthFile), func(m map[string]any) {
		requestOf[m["invocation_id"].(string)], _ = m["agent_request_id"].(string)
	})
	out, err := os.Create(filepath.Join(dir, "unified_trace.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	w := bufio.NewWriter(out)
	seen := map[string]bool{}
	linked := 0
	usageFiles, _ := filepath.Glob(filepath.Join(dir, "usage", "ai_gateway_usage-*.jsonl"))
	for _, p := range usageFiles {
		eachJSON(t, p, func(m map[string]any) {
			inv, reqID := m["invocation_id"].(string), m["request_id"].(string)
			h := fnv.New32a()
			h.Write([]byte(inv))
			if seen[reqID] || h.Sum32()%2 == 1 {
				return
			}
			seen[reqID] = true
			trace, ok := traceOf[requestOf[inv]]
			if ok {
				linked++
			} else {
				trace = fmt.Sprintf("%032x", h.Sum32())
			}
			at, err := time.Parse(time.RFC3339Nano, m["event_time"].(string))
			if err != nil {
				t.Fatal(err)
			}
			span := map[string]any{
				"trace_id": trace, "span_id": fmt.Sprintf("%016x", h.Sum32()), "parent_span_id": "", "name": "ai_gateway",
				"kind": "SPAN_KIND_SERVER", "start_time_unix_nano": at.UnixNano(), "end_time_unix_nano": at.Add(time.Second).UnixNano(),
				"attributes": map[string]string{"databricks.ai_gateway.request_id": reqID, "enduser.id": m["requester"].(string)},
				"status":     map[string]string{"code": "STATUS_CODE_OK"},
				"resource":   map[string]any{"attributes": map[string]string{"service.name": "databricks-ai-gateway"}},
			}
			b, _ := json.Marshal(span)
			w.Write(append(b, '\n'))
		})
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return linked
}

func eachJSON(t *testing.T, path string, fn func(map[string]any)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		fn(m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}
