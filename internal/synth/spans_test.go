package synth

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestOTelSpansOnlyReplaceAgentLogs checks that --agent-logs otel changes
// the agent log files and nothing else, in every layout and format, and that
// each agent's span table holds a root span per request and children.
func TestOTelSpansOnlyReplaceAgentLogs(t *testing.T) {
	for _, tc := range []struct{ format, layout string }{
		{FormatJSONL, OTelV2}, {FormatJSONL, OTelV1}, {FormatCSV, OTelV2}, {FormatParquet, OTelV1},
	} {
		t.Run(tc.format+"_"+tc.layout, func(t *testing.T) {
			cfg := small(tc.format)
			cfg.AgentRequests = 600
			base, _ := generate(t, cfg)
			cfg.AgentLogs, cfg.OTelLayout = AgentLogsOTel, tc.layout
			dir, res := generate(t, cfg)
			want, got := readTree(t, base), readTree(t, dir)
			for name, b := range want {
				if agentLog(name) || name == ConfigFile {
					continue
				}
				if !bytes.Equal(b, got[name]) {
					t.Errorf("%s differs from the default workload's", name)
				}
			}
			var spanFiles []string
			for name := range got {
				if agentLog(name) {
					if !strings.HasSuffix(name, "_otel_spans."+tc.format) {
						t.Errorf("agent log %s is not a span table", name)
					}
					spanFiles = append(spanFiles, name)
				}
			}
			if len(spanFiles) < cfg.WithDefaults().Agents {
				t.Errorf("span tables %v, want one per agent at least", spanFiles)
			}
			jc := readJobConfig(t, dir)
			n := 0
			for _, s := range jc.Sources {
				if s.Kind == SourceOTelSpans {
					n++
					if s.ServicePrincipal != "" || s.AgentEndpoint == "" {
						t.Errorf("source %+v: want the agent endpoint and no service principal (the resource names it)", s)
					}
				}
			}
			if n != len(spanFiles) {
				t.Errorf("obolus.yaml lists %d span sources for %d files", n, len(spanFiles))
			}
			if tc.format != FormatJSONL {
				return
			}
			roots, children := 0, 0
			for _, name := range spanFiles {
				for _, line := range strings.Split(strings.TrimSpace(string(got[name])), "\n") {
					var row struct {
						ParentSpanID string          `json:"parent_span_id"`
						Attributes   json.RawMessage `json:"attributes"`
					}
					if err := json.Unmarshal([]byte(line), &row); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if row.ParentSpanID == "" {
						roots++
						if !bytes.Contains(row.Attributes, []byte("client_request_id")) {
							t.Errorf("%s: root span without a request id: %s", name, line)
						}
					} else {
						children++
					}
				}
			}
			if roots != res.AgentRequests || children < roots {
				t.Errorf("%d root spans and %d children for %d requests", roots, children, res.AgentRequests)
			}
		})
	}
}

func agentLog(name string) bool {
	return strings.HasPrefix(name, "agents/") || strings.HasPrefix(name, "agents_late/")
}

func TestSpanColumnsMatchEncoder(t *testing.T) {
	for _, layout := range []string{OTelV1, OTelV2} {
		cfg := Config{Seed: 1, AgentRequests: 50, Users: 20, AgentLogs: AgentLogsOTel, OTelLayout: layout}
		dir, _ := generate(t, cfg)
		files, _ := filepath.Glob(filepath.Join(dir, "agents", "*_otel_spans.jsonl"))
		if len(files) == 0 {
			t.Fatal("no span table")
		}
		line, _, _ := bytes.Cut(readTree(t, filepath.Dir(files[0]))[filepath.Base(files[0])], []byte("\n"))
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.Token()
		var keys []string
		for dec.More() {
			k, _ := dec.Token()
			keys = append(keys, k.(string))
			var v json.RawMessage
			dec.Decode(&v)
		}
		var want []string
		for _, c := range spanColumns(layout) {
			want = append(want, c.name)
		}
		if !slices.Equal(keys, want) {
			t.Errorf("%s: keys %v, columns %v", layout, keys, want)
		}
	}
}

func TestAgentLogsValidation(t *testing.T) {
	for _, cfg := range []Config{{AgentLogs: "zipkin"}, {AgentLogs: AgentLogsOTel, OTelLayout: "v3"}} {
		if err := cfg.WithDefaults().Validate(); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
	if c := (Config{}).WithDefaults(); c.AgentLogs != AgentLogsMLflow || c.OTelLayout != OTelV2 {
		t.Errorf("defaults: %q %q", c.AgentLogs, c.OTelLayout)
	}
}

// Gateway spans add the unified trace file and its source, and change no
// other file; each names a usage row's request_id, in its agent's trace,
// with the service principal as enduser.id.
func TestGatewaySpansOnlyAddTheirFile(t *testing.T) {
	cfg := small(FormatJSONL)
	cfg.AgentRequests, cfg.AgentLogs = 600, AgentLogsOTel
	base, _ := generate(t, cfg)
	cfg.GatewaySpanShare = 0.5
	dir, res := generate(t, cfg)
	want, got := readTree(t, base), readTree(t, dir)
	for name, b := range want {
		if name != ConfigFile && !bytes.Equal(b, got[name]) {
			t.Errorf("%s differs from the workload without gateway spans", name)
		}
	}
	requestIDs := map[string]bool{}
	for name, b := range got {
		if strings.HasPrefix(name, "usage/ai_gateway_usage-") {
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				var row struct {
					RequestID string `json:"request_id"`
				}
				if err := json.Unmarshal([]byte(line), &row); err != nil {
					t.Fatal(err)
				}
				requestIDs[row.RequestID] = true
			}
		}
	}
	lines := strings.Split(strings.TrimSpace(string(got[GatewaySpansFile])), "\n")
	share := float64(len(lines)) / float64(len(requestIDs))
	if share < 0.4 || share > 0.6 {
		t.Errorf("%d gateway spans for %d gateway calls (%d invocations), want about half", len(lines), len(requestIDs), res.Invocations)
	}
	for _, line := range lines {
		var row struct {
			TraceID      string            `json:"trace_id"`
			ParentSpanID string            `json:"parent_span_id"`
			Attributes   map[string]string `json:"attributes"`
		}
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatal(err)
		}
		if !requestIDs[row.Attributes[gatewayLinkKey]] || row.ParentSpanID == "" || row.Attributes["enduser.id"] == "" {
			t.Fatalf("gateway span %s", line)
		}
	}
	if !slices.ContainsFunc(readJobConfig(t, dir).Sources, func(s jobSource) bool {
		return s.Path == GatewaySpansFile && s.Kind == SourceOTelSpans && s.ServicePrincipal == "" && s.AgentEndpoint == ""
	}) {
		t.Error("obolus.yaml does not read the gateway spans")
	}
}
