package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/obolus/obolus/internal/budget"
	"github.com/obolus/obolus/internal/synth"
	"github.com/obolus/obolus/schemas"
	"github.com/obolus/obolus/sink/duckdb"
	"github.com/obolus/obolus/sink/webhook"
)

const topicAlerts = "obolus.alerts"

// TestStreamAlertsCrashSafety is TestStreamCrashSafety with budgets set
// low enough that many users, two teams and a cost center cross warn and
// critical, and a webhook receiver in the test. The worker is killed at
// random points four times while input arrives. The alerts topic must then
// hold every expected crossing exactly once: the expected set is computed
// here from the output topic (each invocation's highest spend per subject
// over all its answers, summed per UTC day and month), and it must contain
// every crossing of the batch answer's spend. The webhook receiver, which
// verifies each request's signature and fails each alert's first attempt
// with a 500, must accept every alert; repeats after a crash are counted
// and allowed (at least once), each under its alert id.
func TestStreamAlertsCrashSafety(t *testing.T) {
	f := newStreamFixture(t, synth.Config{Seed: 21, AgentRequests: 2500, Duration: 30 * time.Hour})
	batch := f.batchAnswers()
	th := budget.Thresholds{Warn: 0.8, Critical: 1}
	bud := chooseBudgets(t, batch)
	appendConfig(t, f.config, bud.yaml)
	rcv := newAlertReceiver(t, "test-secret")
	f.env = append(f.env, "OBOLUS_BUDGETS_ALERTS_WEBHOOK_URL="+rcv.srv.URL, "OBOLUS_BUDGETS_ALERTS_WEBHOOK_SECRET=test-secret",
		"OBOLUS_BUDGETS_ALERTS_WEBHOOK_EVERY=200ms", "OBOLUS_BUDGETS_ALERTS_WEBHOOK_BACKOFF=10ms", "OBOLUS_BUDGETS_ALERTS_WEBHOOK_TIMEOUT=2s")

	w := replayWithCrashes(t, f, "alerts", 5)

	outputs := topicMessages(t, f.broker.Addr(), topicOutput)
	want := expectedAlerts(t, allAnswers(t, outputs), bud.limit, th)
	byInv := map[string][][]schemas.Attribution{}
	for inv, rows := range batch {
		byInv[inv] = [][]schemas.Attribution{rows}
	}
	fromBatch := expectedAlerts(t, byInv, bud.limit, th)
	levels := map[string]int{}
	for _, k := range want {
		levels[k.Scope+" "+k.Period+" "+k.Level.String()]++
	}
	t.Logf("expected %d alerts (%v); the batch answer's final spend gives %d", len(want), levels, len(fromBatch))
	if levels["user day warn"] < 3 || levels["user day critical"] < 3 || levels["team month critical"] < 1 {
		t.Fatalf("the budgets chosen raise too few alerts to test anything: %v", levels)
	}
	for id, k := range fromBatch {
		if _, ok := want[id]; !ok {
			t.Errorf("the batch answer crosses %+v, but the output topic's answers do not", k)
		}
	}

	// The webhook gets every alert the topic holds, at least once; wait
	// for that (each alert's first attempt fails) before stopping.
	deadline := time.Now().Add(60 * time.Second)
	for !rcv.hasAll(slices.Collect(maps.Keys(want))) {
		if time.Now().After(deadline) {
			t.Fatalf("webhook received %d of %d alerts within 60s\n%s", rcv.acceptedCount(), len(want), w.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	w.stop(t)

	// The alerts topic, as a read_committed consumer sees it: exactly the
	// expected alerts, each once.
	rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
	alerts, err := f.broker.ReadCommitted(rctx, topicAlerts)
	rcancel()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, m := range alerts {
		var a schemas.BudgetAlert
		if err := json.Unmarshal(m.Value, &a); err != nil {
			t.Fatalf("alert %s/%d@%d: %v", m.Topic, m.Partition, m.Offset, err)
		}
		if string(m.Key) != a.ID {
			t.Errorf("alert key %q, id %q", m.Key, a.ID)
		}
		got[a.ID]++
		k, ok := want[a.ID]
		switch {
		case !ok:
			t.Errorf("unexpected alert %+v", a)
		case a.Scope != k.Scope || a.Name != k.Name || a.Period != k.Period || !a.PeriodStart.Equal(k.Start) || a.Level != k.Level.String():
			t.Errorf("alert %s is %+v, want %+v", a.ID, a, k)
		case a.BudgetUSD != bud.limit(k.Scope, k.Name, k.Period) || a.Share < th.Threshold(k.Level):
			t.Errorf("alert %s: budget %v, share %v; want budget %v and a share at or above %v", a.ID, a.BudgetUSD, a.Share, bud.limit(k.Scope, k.Name, k.Period), th.Threshold(k.Level))
		}
	}
	repeated := 0
	for id, k := range want {
		if got[id] != 1 {
			t.Errorf("alert %+v is on the alerts topic %d times, want once", k, got[id])
			repeated++
		}
	}
	if repeated > 0 {
		// What the workers said of their alerts and errors: whether a
		// restart found them pending, and whether a produce was retried.
		t.Logf("the workers' log lines on alerts, warnings and errors:\n%s", grepLog(w.log, 60, "left pending", "level=WARN", "level=ERROR", "produce"))
	}

	// The outbox: every alert, produced, delivered to the webhook.
	ctx := context.Background()
	s, err := duckdb.OpenReadOnly(ctx, filepath.Join(f.dir, synth.StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n, unproduced, undelivered int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE produced_at IS NULL), count(*) FILTER (WHERE webhook <> 'delivered') FROM budget_alerts`).Scan(&n, &unproduced, &undelivered); err != nil {
		t.Fatal(err)
	}
	if n != len(want) || unproduced != 0 || undelivered != 0 {
		t.Errorf("outbox: %d alerts, %d unproduced, %d not delivered to the webhook; want %d, 0, 0", n, unproduced, undelivered, len(want))
	}
	repeats := 0
	for id := range want {
		if c := rcv.accepted(id); c > 1 {
			repeats += c - 1
		}
	}
	t.Logf("webhook: %d alerts accepted, %d repeats after crashes, %d refused signatures", len(want), repeats, rcv.badSignatures())
	if rcv.badSignatures() > 0 {
		t.Errorf("%d webhook requests failed signature verification", rcv.badSignatures())
	}
}

// alertKey is an expected alert.
type alertKey = budget.Crossing

// allAnswers assembles every complete answer of the output topic, every
// version, per invocation.
func allAnswers(t *testing.T, msgs []kafka.Message) map[string][][]schemas.Attribution {
	t.Helper()
	out := map[string][][]schemas.Attribution{}
	for k, rows := range outputParts(t, msgs) {
		if !complete(rows) {
			continue // incomplete: the loader never counts it either
		}
		out[k.inv] = append(out[k.inv], rows)
	}
	return out
}

// expectedAlerts computes, without the alerter's code, the crossings the
// answers give: per invocation and subject the highest micro-USD spend of
// any of its answers, summed per subject and UTC day and month, and every
// level reached of each subject's budget.
func expectedAlerts(t *testing.T, answers map[string][][]schemas.Attribution, limit func(scope, name, period string) float64, th budget.Thresholds) map[string]alertKey {
	t.Helper()
	type subj struct{ scope, name string }
	type per struct {
		subj
		period string
		start  time.Time
	}
	sums := map[per]int64{}
	for _, versions := range answers {
		best := map[subj]int64{}
		var at time.Time
		for _, rows := range versions {
			usd := map[subj]float64{}
			for _, r := range rows {
				at = r.EventTime.UTC()
				for _, s := range []subj{{"user", r.EndUser}, {"team", r.Team}, {"cost_center", r.CostCenter}} {
					if s.name != "" {
						usd[s] += r.CostUSD
					}
				}
			}
			for s, v := range usd {
				best[s] = max(best[s], int64(math.Round(v*1e6)))
			}
		}
		day := time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
		for s, v := range best {
			sums[per{s, "day", day}] += v
			sums[per{s, "month", time.Date(at.Year(), at.Month(), 1, 0, 0, 0, 0, time.UTC)}] += v
		}
	}
	out := map[string]alertKey{}
	for p, micros := range sums {
		for _, l := range budget.Reached(float64(micros)/1e6, limit(p.scope, p.name, p.period), th) {
			c := budget.Crossing{Scope: p.scope, Name: p.name, Period: p.period, Start: p.start, Level: l}
			out[c.ID()] = c
		}
	}
	return out
}

// testBudgets are the budgets of the test, as YAML and as a lookup.
type testBudgets struct {
	yaml  string
	limit func(scope, name, period string) float64
}

// chooseBudgets sets budgets from the batch answer's spend so that alerts
// are many but not universal: a default daily user budget at the median
// user-day spend (about half the user-days critical, some at warn only), a
// monthly budget for the two teams that spend most, just under the
// highest team's spend (critical) and a bit over the second's (warn), and
// a cost center budget no one reaches.
func chooseBudgets(t *testing.T, batch map[string][]schemas.Attribution) testBudgets {
	t.Helper()
	userDay, team, cc := map[string]float64{}, map[string]float64{}, map[string]float64{}
	for _, rows := range batch {
		for _, r := range rows {
			userDay[r.EndUser+"|"+r.EventTime.UTC().Format(time.DateOnly)] += r.CostUSD
			if r.Team != "" {
				team[r.Team] += r.CostUSD
			}
			if r.CostCenter != "" {
				cc[r.CostCenter] += r.CostUSD
			}
		}
	}
	days := slices.Sorted(maps.Values(userDay))
	if len(days) < 10 || len(team) < 2 || len(cc) < 1 {
		t.Fatalf("workload too small for budgets: %d user-days, %d teams, %d cost centers", len(days), len(team), len(cc))
	}
	day := math.Round(days[len(days)/2]*1e4) / 1e4
	teams := slices.SortedFunc(maps.Keys(team), func(a, b string) int { return cmp.Compare(team[b], team[a]) })
	ccName := slices.Sorted(maps.Keys(cc))[0]
	limits := map[[2]string]float64{
		{"team", teams[0]}:      math.Round(team[teams[0]]*0.95*1e4) / 1e4,
		{"team", teams[1]}:      math.Round(team[teams[1]]/0.9*1e4) / 1e4,
		{"cost_center", ccName}: math.Round(cc[ccName]*3*1e4) / 1e4,
	}
	var b strings.Builder
	fmt.Fprintf(&b, "budgets:\n  warn: 0.8\n  critical: 1.0\n  default_user: {day: %v}\n  limits:\n", day)
	keys := slices.SortedFunc(maps.Keys(limits), func(a, b [2]string) int { return cmp.Compare(a[0]+a[1], b[0]+b[1]) })
	for _, k := range keys {
		fmt.Fprintf(&b, "    - {scope: %s, name: %q, month: %v}\n", k[0], k[1], limits[k])
	}
	t.Logf("budgets:\n%s", b.String())
	return testBudgets{yaml: b.String(), limit: func(scope, name, period string) float64 {
		if period == "month" {
			return limits[[2]string{scope, name}]
		}
		if scope == "user" {
			return day
		}
		return 0
	}}
}

func appendConfig(t *testing.T, path, section string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "\nbudgets:") {
		t.Fatalf("%s already has a budgets section", path)
	}
	if err := os.WriteFile(path, append(b, "\n"+section...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// alertReceiver is a webhook endpoint: it verifies every request's
// signature and fails the first attempt of each alert with a 500.
type alertReceiver struct {
	srv    *httptest.Server
	secret string

	mu       sync.Mutex
	attempts map[string]int
	ok       map[string]int
	badSig   int
}

func newAlertReceiver(t *testing.T, secret string) *alertReceiver {
	r := &alertReceiver{secret: secret, attempts: map[string]int{}, ok: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		id := req.Header.Get(webhook.HeaderAlertID)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := webhook.Verify(r.secret, req.Header.Get(webhook.HeaderTimestamp), req.Header.Get(webhook.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
			r.badSig++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		r.attempts[id]++
		if r.attempts[id] == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		r.ok[id]++
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *alertReceiver) hasAll(ids []string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if r.ok[id] == 0 {
			return false
		}
	}
	return true
}

func (r *alertReceiver) accepted(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ok[id]
}

func (r *alertReceiver) acceptedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ok)
}

func (r *alertReceiver) badSignatures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.badSig
}

// grepLog returns up to max lines of the log file at path that contain any
// of the words.
func grepLog(path string, max int, words ...string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var out []string
	for line := range strings.Lines(string(b)) {
		if slices.ContainsFunc(words, func(w string) bool { return strings.Contains(line, w) }) {
			out = append(out, strings.TrimRight(line, "\n"))
		}
		if len(out) == max {
			break
		}
	}
	return strings.Join(out, "\n")
}
