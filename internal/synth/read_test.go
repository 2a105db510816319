package synth

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/obolus/obolus/internal/score"
	"github.com/obolus/obolus/schemas"
)

// Readers of the JSONL output into the canonical records, and a brute-force
// reference matcher, for the tests.

func readJSONL[T any](t testing.TB, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s line %d: %v", path, n, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func readJobConfig(t testing.TB, dir string) jobConfig {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var cfg jobConfig
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s: %v", ConfigFile, err)
	}
	return cfg
}

// workload is a generated JSONL workload read back through obolus.yaml.
type workload struct {
	usage    []schemas.UsageEvent // deduplicated by invocation id, legacy included
	requests []schemas.AgentRequest
	onTime   map[string]bool // agent request ids found under agents/
	truth    map[string]score.Truth
	rawTruth []truthLine
	served   []schemas.ServedEntity
}

type truthLine struct {
	InvocationID     string `json:"invocation_id"`
	EndUser          string `json:"end_user"`
	AgentRequestID   string `json:"agent_request_id"`
	AgentEndpoint    string `json:"agent_endpoint"`
	ServicePrincipal string `json:"service_principal"`
	Tagged           bool   `json:"tagged"`
	Late             bool   `json:"late"`
}

func loadWorkload(t testing.TB, dir string) *workload {
	t.Helper()
	cfg := readJobConfig(t, dir)
	wl := &workload{onTime: make(map[string]bool)}
	seen := make(map[string]bool)
	byKey := make(map[string]int)
	for _, src := range cfg.Sources {
		paths, err := filepath.Glob(filepath.Join(dir, src.Path))
		if err != nil || len(paths) == 0 {
			t.Fatalf("source %s matches no file (%v)", src.Path, err)
		}
		for _, p := range paths {
			switch src.Kind {
			case SourceUsage:
				for _, ev := range readJSONL[schemas.UsageEvent](t, p) {
					if !seen[ev.InvocationID] {
						seen[ev.InvocationID] = true
						ev.Source = schemas.SourceAIGateway
						wl.usage = append(wl.usage, ev)
					}
				}
			case SourceLegacyUsage:
				for _, l := range readJSONL[schemas.LegacyUsage](t, p) {
					ev := l.UsageEvent()
					if !seen[ev.InvocationID] {
						seen[ev.InvocationID] = true
						wl.usage = append(wl.usage, ev)
					}
				}
			case SourcePayload, SourceTrace:
				var reqs []schemas.AgentRequest
				if src.Kind == SourcePayload {
					for _, r := range readJSONL[schemas.PayloadRow](t, p) {
						reqs = append(reqs, r.AgentRequest(src.AgentEndpoint, src.ServicePrincipal))
					}
				} else {
					for _, r := range readJSONL[schemas.TraceRow](t, p) {
						reqs = append(reqs, r.AgentRequest(src.AgentEndpoint, src.ServicePrincipal))
					}
				}
				late := strings.HasPrefix(src.Path, "agents_late/")
				for _, r := range reqs {
					if !late {
						wl.onTime[r.AgentRequestID] = true
					}
					if i, ok := byKey[r.AgentRequestID]; ok {
						// Payload and trace of the same request: keep the trace id.
						if r.TraceID != "" {
							wl.requests[i].TraceID = r.TraceID
						}
						continue
					}
					byKey[r.AgentRequestID] = len(wl.requests)
					wl.requests = append(wl.requests, r)
				}
			case SourceServedEntities:
				wl.served = append(wl.served, readJSONL[schemas.ServedEntity](t, p)...)
			default:
				t.Fatalf("unknown source kind %q", src.Kind)
			}
		}
	}
	wl.rawTruth = readJSONL[truthLine](t, filepath.Join(dir, TruthFile))
	wl.truth = make(map[string]score.Truth, len(wl.rawTruth))
	for _, l := range wl.rawTruth {
		wl.truth[l.InvocationID] = score.Truth{InvocationID: l.InvocationID, EndUser: l.EndUser, AgentRequestID: l.AgentRequestID, Tagged: l.Tagged, Late: l.Late}
	}
	return wl
}

// refMatcher is the reference the acceptance bar is stated for: ids in
// request tags first, then a time window on the service principal that must
// hold exactly one candidate.
type refMatcher struct {
	byReq   map[string]*schemas.AgentRequest
	byTrace map[string]*schemas.AgentRequest
	bySP    map[string][]*schemas.AgentRequest // sorted by start
	maxDur  map[string]time.Duration
	skew    time.Duration
}

func newRefMatcher(reqs []schemas.AgentRequest, include func(*schemas.AgentRequest) bool, skew time.Duration) *refMatcher {
	m := &refMatcher{byReq: map[string]*schemas.AgentRequest{}, byTrace: map[string]*schemas.AgentRequest{},
		bySP: map[string][]*schemas.AgentRequest{}, maxDur: map[string]time.Duration{}, skew: skew}
	for i := range reqs {
		r := &reqs[i]
		if !include(r) {
			continue
		}
		m.byReq[r.AgentRequestID] = r
		if r.TraceID != "" {
			m.byTrace[strings.TrimPrefix(r.TraceID, "tr-")] = r
		}
		m.bySP[r.ServicePrincipal] = append(m.bySP[r.ServicePrincipal], r)
		if d := r.End().Sub(r.StartTime); d > m.maxDur[r.ServicePrincipal] {
			m.maxDur[r.ServicePrincipal] = d
		}
	}
	for _, l := range m.bySP {
		slices.SortFunc(l, func(a, b *schemas.AgentRequest) int { return a.StartTime.Compare(b.StartTime) })
	}
	return m
}

// match returns the end user, the method and the number of time-window
// candidates (0 for id matches).
func (m *refMatcher) match(ev *schemas.UsageEvent) (string, string, int) {
	tags := ev.RequestTags
	if u := tags["end_user"]; u != "" {
		return u, schemas.MethodTagUser, 0
	}
	idSeen := false
	for _, k := range []string{"mlflow_trace_id", "traceparent"} {
		if v := tags[k]; v != "" {
			idSeen = true
			hex := strings.TrimPrefix(v, "tr-")
			if parts := strings.Split(v, "-"); len(parts) == 4 {
				hex = parts[1]
			}
			if r := m.byTrace[hex]; r != nil {
				return r.EndUser, schemas.MethodTraceID, 0
			}
		}
	}
	for _, k := range []string{"agent_request_id", schemas.LegacyClientRequestIDTag} {
		if v := tags[k]; v != "" {
			idSeen = true
			if r := m.byReq[v]; r != nil {
				return r.EndUser, schemas.MethodRequestID, 0
			}
		}
	}
	if idSeen {
		return ev.Requester, schemas.MethodUnattributed, 0
	}
	return m.matchWindow(ev)
}

// matchWindow is the time-window rule alone.
func (m *refMatcher) matchWindow(ev *schemas.UsageEvent) (string, string, int) {
	n, cand := m.candidates(ev.Requester, ev.EventTime)
	if n == 1 {
		return cand.EndUser, schemas.MethodTimeWindow, 1
	}
	return ev.Requester, schemas.MethodUnattributed, n
}

func (m *refMatcher) candidates(sp string, t time.Time) (int, *schemas.AgentRequest) {
	l := m.bySP[sp]
	lo := sort.Search(len(l), func(i int) bool { return !l[i].StartTime.Before(t.Add(-m.skew - m.maxDur[sp])) })
	n := 0
	var last *schemas.AgentRequest
	for i := lo; i < len(l) && !l[i].StartTime.After(t.Add(m.skew)); i++ {
		if !l[i].End().Add(m.skew).Before(t) {
			n++
			last = l[i]
		}
	}
	return n, last
}
