package synth

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/schemas"
)

// small is a workload that exercises every feature and generates in well
// under a second.
func small(format string) Config {
	return Config{Seed: 11, AgentRequests: 3000, Users: 120, Teams: 6, Format: format}
}

func generate(t *testing.T, cfg Config) (string, Result) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "out")
	res, err := Generate(context.Background(), cfg, dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, res
}

// readTree returns every file under dir by relative path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestDeterminism(t *testing.T) {
	for _, format := range []string{FormatJSONL, FormatCSV, FormatParquet} {
		t.Run(format, func(t *testing.T) {
			cfg := small(format)
			cfg.AgentRequests = 1200
			dirA, resA := generate(t, cfg)
			dirB, resB := generate(t, cfg)
			a, b := readTree(t, dirA), readTree(t, dirB)
			if len(a) != len(b) {
				t.Fatalf("same seed: %d files vs %d", len(a), len(b))
			}
			for name, content := range a {
				if !bytes.Equal(content, b[name]) {
					t.Errorf("same seed: %s differs", name)
				}
			}
			resA.Files, resB.Files = nil, nil
			if !reflect.DeepEqual(resA, resB) {
				t.Errorf("same seed: results differ: %+v vs %+v", resA, resB)
			}
			cfg.Seed++
			dirC, _ := generate(t, cfg)
			c := readTree(t, dirC)
			for _, name := range []string{TruthFile, OrgFile, "usage/ai_gateway_usage-000." + format} {
				if bytes.Equal(a[name], c[name]) {
					t.Errorf("different seed: %s is identical", name)
				}
			}
		})
	}
}

func TestLayoutAndConfig(t *testing.T) {
	dir, res := generate(t, small(FormatJSONL))
	var rels []string
	for _, f := range res.Files {
		rel, err := filepath.Rel(dir, f)
		if err != nil {
			t.Fatal(err)
		}
		rels = append(rels, filepath.ToSlash(rel))
	}
	if !slices.IsSorted(res.Files) {
		t.Error("Result.Files is not sorted")
	}
	onDisk := readTree(t, dir)
	if len(onDisk) != len(rels) {
		t.Errorf("Result.Files lists %d files, %d on disk", len(rels), len(onDisk))
	}
	for _, want := range []string{TruthFile, OrgFile, ConfigFile, "usage/ai_gateway_usage-000.jsonl",
		"usage/ai_gateway_usage-002.jsonl", "usage/endpoint_usage-000.jsonl",
		"agents/support-bot_payload.jsonl", "agents/sql-copilot_traces.jsonl",
		"agents/research-agent_payload.jsonl", "agents/research-agent_traces.jsonl",
		"agents_late/support-bot_payload.jsonl"} {
		if _, ok := onDisk[want]; !ok {
			t.Errorf("missing %s", want)
		}
	}
	if _, ok := onDisk["agents/support-bot_traces.jsonl"]; ok {
		t.Error("support-bot logs a payload table only, yet has traces")
	}

	// obolus.yaml names every data file exactly once, with the agent's
	// endpoint and service principal.
	cfg := readJobConfig(t, dir)
	if cfg.Store.DuckDB != StoreFile || cfg.Org != OrgFile {
		t.Errorf("store/org: %+v", cfg)
	}
	w := newWorld(small(FormatJSONL).WithDefaults())
	sps := map[string]string{}
	for _, ag := range w.agents {
		sps[ag.endpoint] = ag.sp
	}
	covered := map[string]int{}
	for _, src := range cfg.Sources {
		matches, err := filepath.Glob(filepath.Join(dir, src.Path))
		if err != nil || len(matches) == 0 {
			t.Errorf("source %s matches nothing", src.Path)
		}
		for _, m := range matches {
			rel, _ := filepath.Rel(dir, m)
			covered[filepath.ToSlash(rel)]++
		}
		switch src.Kind {
		case SourceUsage, SourceLegacyUsage:
			if src.AgentEndpoint != "" || src.ServicePrincipal != "" {
				t.Errorf("usage source %s names an agent", src.Path)
			}
		case SourceServedEntities:
			if src.Path != ServedFile || src.AgentEndpoint != "" || src.ServicePrincipal != "" {
				t.Errorf("served entities source %+v", src)
			}
		case SourcePayload, SourceTrace:
			if sps[src.AgentEndpoint] == "" || src.ServicePrincipal != sps[src.AgentEndpoint] {
				t.Errorf("source %s: agent %q, service principal %q", src.Path, src.AgentEndpoint, src.ServicePrincipal)
			}
			if !strings.Contains(src.Path, src.AgentEndpoint+"_") {
				t.Errorf("source %s is not %s's file", src.Path, src.AgentEndpoint)
			}
		default:
			t.Errorf("source %s: unknown kind %q", src.Path, src.Kind)
		}
	}
	for rel := range onDisk {
		if rel == TruthFile || rel == OrgFile || rel == ConfigFile {
			continue
		}
		if covered[rel] != 1 {
			t.Errorf("%s is covered by %d sources, want 1", rel, covered[rel])
		}
	}

	// org.csv: header, every team, a few users missing.
	r := csv.NewReader(bytes.NewReader(onDisk[OrgFile]))
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(recs[0], []string{"end_user", "team", "cost_center"}) {
		t.Errorf("org.csv header %v", recs[0])
	}
	inOrg := map[string]bool{}
	teams := map[string]bool{}
	for _, rec := range recs[1:] {
		inOrg[rec[0]] = true
		teams[rec[1]] = true
	}
	if len(teams) != 6 {
		t.Errorf("org.csv has %d teams, want 6", len(teams))
	}
	wl := loadWorkload(t, dir)
	missingActive := map[string]bool{}
	for _, l := range wl.rawTruth {
		if !inOrg[l.EndUser] {
			missingActive[l.EndUser] = true
		}
	}
	if len(missingActive) == 0 || len(missingActive) > 5 {
		t.Errorf("%d active users missing from org.csv, want a few", len(missingActive))
	}
}

// TestTruthMatchesFiles checks the ground truth against what the files say.
func TestTruthMatchesFiles(t *testing.T) {
	dir, res := generate(t, small(FormatJSONL))
	wl := loadWorkload(t, dir)
	if len(wl.rawTruth) != res.Invocations || len(wl.truth) != res.Invocations {
		t.Fatalf("truth has %d lines (%d distinct), result says %d", len(wl.rawTruth), len(wl.truth), res.Invocations)
	}
	if len(wl.usage) != res.Invocations {
		t.Errorf("%d distinct invocations in the usage files, %d in truth", len(wl.usage), res.Invocations)
	}
	reqs := map[string]schemas.AgentRequest{}
	for _, r := range wl.requests {
		reqs[r.AgentRequestID] = r
	}
	if len(reqs) != res.AgentRequests {
		t.Errorf("%d agent requests logged, want %d", len(reqs), res.AgentRequests)
	}
	late := 0
	for _, r := range wl.requests {
		if !wl.onTime[r.AgentRequestID] {
			late++
		}
	}
	if late != res.LateAgentRequests || late == 0 {
		t.Errorf("%d requests only under agents_late/, result says %d", late, res.LateAgentRequests)
	}

	idTags := []string{"mlflow_trace_id", "traceparent", "agent_request_id", "end_user", schemas.LegacyClientRequestIDTag}
	var tagged, legacy, streamed int
	for _, ev := range wl.usage {
		tr, ok := wl.truth[ev.InvocationID]
		if !ok {
			t.Fatalf("invocation %s is not in the truth", ev.InvocationID)
		}
		req, ok := reqs[tr.AgentRequestID]
		if !ok {
			t.Fatalf("invocation %s: agent request %s is not logged", ev.InvocationID, tr.AgentRequestID)
		}
		if req.EndUser != tr.EndUser {
			t.Errorf("invocation %s: truth says %s, the agent log %s", ev.InvocationID, tr.EndUser, req.EndUser)
		}
		if req.ServicePrincipal != ev.Requester {
			t.Errorf("invocation %s: requester %s, agent's service principal %s", ev.InvocationID, ev.Requester, req.ServicePrincipal)
		}
		if tr.Late == wl.onTime[tr.AgentRequestID] {
			t.Errorf("invocation %s: late=%v but the request is on time=%v", ev.InvocationID, tr.Late, wl.onTime[tr.AgentRequestID])
		}
		hasID := false
		for _, k := range idTags {
			if ev.RequestTags[k] != "" {
				hasID = true
			}
		}
		if hasID != tr.Tagged {
			t.Errorf("invocation %s: tagged=%v, tags %v", ev.InvocationID, tr.Tagged, ev.RequestTags)
		}
		if tr.Tagged {
			tagged++
			// Every id in the tags leads to the right request.
			switch {
			case ev.RequestTags["mlflow_trace_id"] != "":
				if ev.RequestTags["mlflow_trace_id"] != req.TraceID {
					t.Errorf("invocation %s: trace id %s, request's %s", ev.InvocationID, ev.RequestTags["mlflow_trace_id"], req.TraceID)
				}
			case ev.RequestTags["traceparent"] != "":
				if p := strings.Split(ev.RequestTags["traceparent"], "-"); len(p) != 4 || "tr-"+p[1] != req.TraceID {
					t.Errorf("invocation %s: traceparent %s, request's trace %s", ev.InvocationID, ev.RequestTags["traceparent"], req.TraceID)
				}
			case ev.RequestTags["end_user"] != "":
				if ev.RequestTags["end_user"] != tr.EndUser {
					t.Errorf("invocation %s: end_user tag %s, truth %s", ev.InvocationID, ev.RequestTags["end_user"], tr.EndUser)
				}
			}
			for _, k := range []string{"agent_request_id", schemas.LegacyClientRequestIDTag} {
				if v := ev.RequestTags[k]; v != "" && v != tr.AgentRequestID {
					t.Errorf("invocation %s: %s %s, truth %s", ev.InvocationID, k, v, tr.AgentRequestID)
				}
			}
		}
		if ev.Source == schemas.SourceServingEndpoint {
			legacy++
		}
		if ev.TotalTokens != ev.InputTokens+ev.OutputTokens {
			t.Errorf("invocation %s: total_tokens %d ≠ %d + %d", ev.InvocationID, ev.TotalTokens, ev.InputTokens, ev.OutputTokens)
		}
		// Gateway calls happen while the request runs, give or take the
		// agent's clock skew, the post-answer call and retry backoff.
		if ev.EventTime.Before(req.StartTime.Add(-time.Second)) || ev.EventTime.After(req.End().Add(7*time.Second)) {
			t.Errorf("invocation %s at %s, outside request %s–%s", ev.InvocationID, ev.EventTime, req.StartTime, req.End())
		}
	}
	if legacy != res.LegacyRows {
		t.Errorf("%d legacy invocations, result says %d", legacy, res.LegacyRows)
	}
	share := float64(tagged) / float64(len(wl.usage))
	if share < 0.75 || share > 0.85 {
		t.Errorf("tagged share %.3f, want about 0.8", share)
	}

	// Streamed responses, retries and duplicates show up in the raw rows.
	type raw struct {
		InvocationID        string `json:"invocation_id"`
		RequestID           string `json:"request_id"`
		StatusCode          int32  `json:"status_code"`
		OutputTokens        int64  `json:"output_tokens"`
		ResponseContentType string `json:"response_content_type"`
		LatencyMS           int64  `json:"latency_ms"`
	}
	lines := map[string]string{}
	byReq := map[string][]raw{}
	dups, rows := 0, 0
	files, _ := filepath.Glob(filepath.Join(dir, "usage", "ai_gateway_usage-*.jsonl"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			rows++
			var r raw
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatal(err)
			}
			if prev, ok := lines[r.InvocationID]; ok {
				dups++
				if prev != line {
					t.Errorf("duplicate of %s differs:\n%s\n%s", r.InvocationID, prev, line)
				}
				continue
			}
			lines[r.InvocationID] = line
			byReq[r.RequestID] = append(byReq[r.RequestID], r)
			if r.ResponseContentType == contentStream {
				streamed++
			}
		}
	}
	if rows != res.UsageRows || dups != res.Duplicates || dups == 0 {
		t.Errorf("%d rows with %d duplicates, result says %d and %d", rows, dups, res.UsageRows, res.Duplicates)
	}
	if streamed == 0 {
		t.Error("no streamed responses")
	}
	retries := 0
	for id, rs := range byReq {
		if len(rs) == 1 {
			continue
		}
		retries++
		if len(rs) != 2 {
			t.Errorf("request_id %s has %d invocations", id, len(rs))
			continue
		}
		failed, ok := rs[0], rs[1]
		if failed.StatusCode == 200 {
			failed, ok = ok, failed
		}
		if (failed.StatusCode != 429 && failed.StatusCode != 503) || failed.OutputTokens != 0 || ok.StatusCode != 200 {
			t.Errorf("request_id %s: attempts %+v and %+v", id, failed, ok)
		}
	}
	if retries == 0 {
		t.Error("no retried calls")
	}
}

// TestFormatsAgree reads the same workload written as JSONL and as CSV and
// checks that every field has the same text.
func TestFormatsAgree(t *testing.T) {
	cfg := small(FormatJSONL)
	cfg.AgentRequests = 400
	jdir, _ := generate(t, cfg)
	cfg.Format = FormatCSV
	cdir, _ := generate(t, cfg)
	for _, name := range []string{"usage/ai_gateway_usage-000", "usage/endpoint_usage-000", "agents/support-bot_payload", "agents/sql-copilot_traces"} {
		jb, err := os.ReadFile(filepath.Join(jdir, name+".jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		cf, err := os.Open(filepath.Join(cdir, name+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(cf).ReadAll()
		cf.Close()
		if err != nil {
			t.Fatal(err)
		}
		jlines := strings.Split(strings.TrimSuffix(string(jb), "\n"), "\n")
		if len(jlines) != len(recs)-1 {
			t.Fatalf("%s: %d JSON lines, %d CSV rows", name, len(jlines), len(recs)-1)
		}
		header := recs[0]
		for i, line := range jlines {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal([]byte(line), &obj); err != nil {
				t.Fatal(err)
			}
			for j, col := range header {
				want := ""
				if v, ok := obj[col]; ok {
					var s string
					if json.Unmarshal(v, &s) == nil {
						want = s
					} else {
						want = string(v)
					}
				}
				if got := recs[i+1][j]; got != want {
					t.Errorf("%s row %d %s: CSV %q, JSON %q", name, i+1, col, got, want)
				}
			}
			if len(obj) > len(header) {
				t.Errorf("%s row %d: JSON has %d fields, CSV header %d", name, i+1, len(obj), len(header))
			}
		}
	}
}

func TestColumnsMatchEncoders(t *testing.T) {
	dir, _ := generate(t, Config{Seed: 1, AgentRequests: 300, Users: 40})
	for _, tc := range []struct {
		glob string
		cols []column
	}{
		{"usage/ai_gateway_usage-000.jsonl", usageColumns},
		{"usage/endpoint_usage-000.jsonl", legacyColumns},
		{"agents/support-bot_payload.jsonl", payloadColumns},
		{"agents/sql-copilot_traces.jsonl", traceColumns},
	} {
		b, err := os.ReadFile(filepath.Join(dir, tc.glob))
		if err != nil {
			t.Fatal(err)
		}
		// Key order of a line with every field present.
		var keys []string
		for _, line := range strings.Split(string(b), "\n") {
			dec := json.NewDecoder(strings.NewReader(line))
			var ks []string
			if _, err := dec.Token(); err != nil {
				continue
			}
			for dec.More() {
				k, _ := dec.Token()
				ks = append(ks, k.(string))
				var v json.RawMessage
				dec.Decode(&v)
			}
			if len(ks) == len(tc.cols) {
				keys = ks
				break
			}
		}
		var want []string
		for _, c := range tc.cols {
			want = append(want, c.name)
		}
		if !slices.Equal(keys, want) {
			t.Errorf("%s: keys %v, columns %v", tc.glob, keys, want)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"share above one", Config{TaggedShare: 1.5}, "tagged_share"},
		{"unknown format", Config{Format: "xml"}, "format"},
		{"too many hot agents", Config{Agents: 2, HotServicePrincipals: 3}, "hot_service_principals"},
		{"short duration", Config{Duration: time.Second}, "duration"},
		{"more teams than users", Config{Users: 3, Teams: 5}, "teams"},
		{"negative requests", Config{AgentRequests: -1}, "agent_requests"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Generate(context.Background(), tc.cfg, t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
	t.Run("non-empty directory", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
		if _, err := Generate(context.Background(), Config{AgentRequests: 10}, dir); err == nil || !strings.Contains(err.Error(), "not empty") {
			t.Errorf("error %v, want one about the directory", err)
		}
	})
	t.Run("zero shares on request", func(t *testing.T) {
		dir, res := generate(t, Config{Seed: 2, AgentRequests: 500, Users: 50, LateShare: -1, DuplicateShare: -1, RetryShare: -1, LegacyShare: -1, TaggedShare: 1})
		if res.Duplicates != 0 || res.LegacyRows != 0 || res.LateAgentRequests != 0 {
			t.Errorf("%+v", res)
		}
		if _, err := os.Stat(filepath.Join(dir, "agents_late")); err == nil {
			t.Error("agents_late/ exists without late requests")
		}
		for _, l := range loadWorkload(t, dir).rawTruth {
			if !l.Tagged {
				t.Fatalf("untagged invocation %s with tagged_share 1", l.InvocationID)
			}
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Generate(ctx, Config{AgentRequests: 5000}, filepath.Join(t.TempDir(), "o")); err == nil {
			t.Error("no error from a cancelled context")
		}
	})
}

// TestUnusualShapes generates workloads at the edges of the configuration
// and checks that truth and files still agree.
func TestUnusualShapes(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"one request", Config{Seed: 1, AgentRequests: 1, Users: 1, Teams: 1, Agents: 1}},
		{"every agent hot", Config{Seed: 2, AgentRequests: 400, Users: 30, Agents: 2, HotServicePrincipals: 2}},
		{"no hot agent", Config{Seed: 3, AgentRequests: 400, Users: 30, HotServicePrincipals: -1}},
		{"more agents than archetypes", Config{Seed: 4, AgentRequests: 800, Users: 60, Agents: 11, HotServicePrincipals: 3}},
		{"two days, no skew, untagged", Config{Seed: 5, AgentRequests: 500, Users: 40, Duration: 48 * time.Hour, MaxSkew: -1, TaggedShare: -1}},
		{"more users than names", Config{Seed: 6, AgentRequests: 300, Users: 2500, Teams: 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, res := generate(t, tc.cfg)
			wl := loadWorkload(t, dir)
			if len(wl.usage) != res.Invocations || len(wl.truth) != res.Invocations {
				t.Errorf("%d usage invocations, %d truth lines, result %d", len(wl.usage), len(wl.truth), res.Invocations)
			}
			for _, ev := range wl.usage {
				if _, ok := wl.truth[ev.InvocationID]; !ok {
					t.Fatalf("invocation %s missing from truth", ev.InvocationID)
				}
			}
			emails := map[string]bool{}
			recs, err := csv.NewReader(bytes.NewReader(readTree(t, dir)[OrgFile])).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs[1:] {
				if emails[r[0]] {
					t.Errorf("org.csv lists %s twice", r[0])
				}
				emails[r[0]] = true
			}
		})
	}
}

// Every legacy usage row's served entity is in served_entities.jsonl, and
// the price list prices the model of every version: legacy rows are priced.
func TestServedEntitiesCoverLegacyRows(t *testing.T) {
	dir, _ := generate(t, small(FormatJSONL))
	wl := loadWorkload(t, dir)
	served := enrich.NewServedEntities(wl.served)
	prices := enrich.DefaultPriceList()
	legacy := 0
	for _, ev := range wl.usage {
		if ev.Source != schemas.SourceServingEndpoint {
			continue
		}
		legacy++
		se, ok := served.At(ev.EndpointID, ev.EventTime)
		if !ok {
			t.Fatalf("legacy row %s: served entity %s not written", ev.InvocationID, ev.EndpointID)
		}
		if _, version := prices.Cost(se.Model(), "", ev.EventTime, enrich.Tokens{Input: 1}); version == enrich.UnpricedVersion {
			t.Fatalf("legacy row %s: model %q of %s is not priced", ev.InvocationID, se.Model(), se.EntityName)
		}
	}
	if legacy == 0 {
		t.Fatal("the workload has no legacy rows")
	}
}
