package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	kafkaingest "github.com/obolus/obolus/ingest/kafka"
	"github.com/obolus/obolus/internal/budget"
	"github.com/obolus/obolus/internal/stream"
	"github.com/obolus/obolus/schemas"
	"github.com/obolus/obolus/sink/duckdb"
	"github.com/obolus/obolus/sink/webhook"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// costly is one answer of invocation inv: user (of team ml) spent usd at.
func costly(inv string, version int64, user string, usd float64, at time.Time) stream.Output {
	return stream.Output{Rows: []schemas.Attribution{{InvocationID: inv, EventTime: at, EventDate: at.Format(time.DateOnly),
		EndUser: user, Team: "ml", MatchMethod: schemas.MethodTraceID, Weight: 1, CostUSD: usd, Version: version}}}
}

// alertRig is a loader with an alerter over a real DuckDB store; what the
// alerter produces goes to a capture.
type alertRig struct {
	t     *testing.T
	store *duckdb.Store
	// offered counts the alerts the alerter asked the store to insert.
	offered *atomic.Int64
	// fenced counts the alerter's calls of Fence: once, at start.
	fenced atomic.Int64
	topic  *capture
	al     *Alerter
	h      kafkaingest.Handler
	next   int64
	stop   func()
}

func newAlertRig(t *testing.T, path string, produced map[string]bool, hook *webhook.Client) *alertRig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := duckdb.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	r := &alertRig{t: t, store: s, topic: &capture{}, offered: &atomic.Int64{}}
	r.al = &Alerter{Store: offerCounter{s, r.offered}, Writer: r.topic, Topic: "alerts", Counts: &AlertCounts{}, Log: quiet, Webhook: hook, WebhookEvery: 20 * time.Millisecond,
		Budgets: Budgets{Thresholds: budget.Thresholds{Warn: 0.8, Critical: 1},
			Limits: map[[2]string]BudgetAmounts{{"user", "ann"}: {Day: 10, Month: 100}, {"team", "ml"}: {Month: 15}}},
		Fence:    func(context.Context) error { r.fenced.Add(1); return nil },
		Produced: func(context.Context) (map[string]bool, error) { return produced, nil }}
	done := make(chan error, 1)
	go func() { done <- r.al.Run(ctx) }()
	l := &Loader{Store: s, OutputTopic: "out", DeadLetterTopic: "dead", Counts: &LoaderCounts{}, Log: quiet, Alerts: r.al}
	if r.h, _, err = l.Open(ctx, "out", 0, kafkaingest.Committed{Offset: -1}); err != nil {
		t.Fatal(err)
	}
	r.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("alerter: %v", err)
		}
		if n := r.fenced.Load(); n != 1 {
			t.Errorf("the alerter fenced the topic %d times, want once, at start", n)
		}
		s.Close()
	}
	return r
}

// offerCounter counts the alerts offered to the outbox.
type offerCounter struct {
	AlertStore
	n *atomic.Int64
}

func (o offerCounter) InsertBudgetAlerts(ctx context.Context, alerts []schemas.BudgetAlert, webhook string) ([]schemas.BudgetAlert, error) {
	o.n.Add(int64(len(alerts)))
	return o.AlertStore.InsertBudgetAlerts(ctx, alerts, webhook)
}

// flush loads outs as one flush and returns the alerts produced by it,
// as "scope name period start level".
func (r *alertRig) flush(outs ...stream.Output) []string {
	r.t.Helper()
	var c capture
	p := Producer{W: &c}
	if err := p.Append(outs); err != nil {
		r.t.Fatal(err)
	}
	_ = p.Write(context.Background())
	for i := range c.msgs {
		c.msgs[i].Topic, c.msgs[i].Offset = "out", r.next
		r.next++
	}
	before := len(r.topic.msgs)
	if err := r.h.Handle(context.Background(), c.msgs); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.h.Flush(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	return alertNames(r.t, r.topic.msgs[before:])
}

func alertNames(t *testing.T, msgs []kafka.Message) []string {
	t.Helper()
	var out []string
	for _, m := range msgs {
		var a schemas.BudgetAlert
		if err := json.Unmarshal(m.Value, &a); err != nil {
			t.Fatal(err)
		}
		c := budget.Crossing{Scope: a.Scope, Name: a.Name, Period: a.Period, Start: a.PeriodStart}
		if a.Level == "critical" {
			c.Level = budget.Critical
		} else {
			c.Level = budget.Warn
		}
		if string(m.Key) != a.ID || a.ID != c.ID() {
			t.Errorf("alert key %q, id %q, want the crossing's id %s", m.Key, a.ID, c.ID())
		}
		out = append(out, strings.Join([]string{a.Scope, a.Name, a.Period, a.PeriodStart.Format(time.DateOnly), a.Level}, " "))
	}
	slices.Sort(out)
	return out
}

// TestAlerterCrossings: a level is alerted once per subject and period,
// warn before critical, both at once when spend jumps past both; a new
// period alerts again; re-deliveries and restatements that lower a spend
// neither repeat nor retract an alert.
func TestAlerterCrossings(t *testing.T) {
	r := newAlertRig(t, filepath.Join(t.TempDir(), "s.duckdb"), nil, nil)
	defer r.stop()
	d20 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	d21 := d20.AddDate(0, 0, 1)
	for _, st := range []struct {
		name string
		outs []stream.Output
		want []string
	}{
		{"below warn", []stream.Output{costly("i1", 1, "ann", 5, d20)}, nil},
		{"ann's day reaches warn", []stream.Output{costly("i2", 1, "ann", 3.5, d20.Add(time.Hour))}, []string{"user ann day 2026-11-20 warn"}},
		{"a re-delivery", []stream.Output{costly("i2", 1, "ann", 3.5, d20.Add(time.Hour))}, nil},
		{"a restatement moves i1 to bob: nothing retracted", []stream.Output{costly("i1", 2, "bob", 5, d20)}, nil},
		{"ann's day reaches critical", []stream.Output{costly("i3", 1, "ann", 1.5, d20.Add(2*time.Hour))}, []string{"user ann day 2026-11-20 critical"}},
		{"a new day jumps past both; team ml's month too", []stream.Output{costly("i4", 1, "ann", 12, d21)},
			[]string{"team ml month 2026-11-01 critical", "team ml month 2026-11-01 warn", "user ann day 2026-11-21 critical", "user ann day 2026-11-21 warn"}},
		{"the same again, in a later flush", []stream.Output{costly("i5", 1, "ann", 12, d21), costly("i6", 1, "ann", 1, d20)}, nil},
		{"an older answer after its restatement, in one flush, still counts for its user",
			[]stream.Output{costly("i8", 2, "bob", 40, d21.AddDate(0, 0, 1)), costly("i8", 1, "ann", 40, d21.AddDate(0, 0, 1))},
			[]string{"user ann day 2026-11-22 critical", "user ann day 2026-11-22 warn"}},
		{"a new month", []stream.Output{costly("i7", 1, "cy", 13, d20.AddDate(0, 1, 0))}, []string{"team ml month 2026-12-01 warn"}},
	} {
		offered := r.offered.Load()
		if got := r.flush(st.outs...); !slices.Equal(got, st.want) {
			t.Errorf("%s: alerts %q, want %q", st.name, got, st.want)
		}
		// A level reached again is known to be in the outbox: only new
		// alerts are offered to the store.
		if n := r.offered.Load() - offered; n != int64(len(st.want)) {
			t.Errorf("%s: %d alerts offered to the outbox, want the %d new ones", st.name, n, len(st.want))
		}
	}
	// At "ann's day reaches critical" i1 belongs to bob, but the ledger
	// keeps the highest spend any answer gave ann: 5 + 3.5 + 1.5 = 10.
	all, err := r.store.BudgetAlerts(context.Background())
	if err != nil || len(all) != 9 {
		t.Fatalf("outbox holds %d alerts (%v), want 9", len(all), err)
	}
	if n := r.al.Counts.RaisedWarn.Load() + r.al.Counts.RaisedCritical.Load(); n != 9 || r.al.Counts.Produced.Load() != 9 {
		t.Errorf("counted %d raised, %d produced; want 9, 9", n, r.al.Counts.Produced.Load())
	}
}

// TestAlerterRestart: alerts the outbox holds unproduced are produced at
// start, except those the topic already holds (a crash between producing
// and marking).
func TestAlerterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.duckdb")
	ctx := context.Background()
	s, err := duckdb.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	alerts := Crossings(Budgets{Thresholds: budget.Thresholds{Warn: 0.8, Critical: 1}, DefaultUser: BudgetAmounts{Day: 1}},
		[]schemas.PeriodSpend{{Scope: "user", Name: "ann", Period: schemas.PeriodDay, Start: at, CostMicros: 2_000_000}}, at)
	if len(alerts) != 2 {
		t.Fatalf("crossings %+v, want warn and critical", alerts)
	}
	if _, err := s.InsertBudgetAlerts(ctx, alerts, schemas.WebhookOff); err != nil {
		t.Fatal(err)
	}
	s.Close()
	r := newAlertRig(t, path, map[string]bool{alerts[0].ID: true}, nil)
	if err := r.al.Started(ctx); err != nil {
		t.Fatal(err)
	}
	r.stop()
	if len(r.topic.msgs) != 1 || string(r.topic.msgs[0].Key) != alerts[1].ID {
		t.Errorf("produced %d alerts, want only %s (the topic held %s)", len(r.topic.msgs), alerts[1].ID, alerts[0].ID)
	}
	if r.al.Counts.Skipped.Load() != 1 {
		t.Errorf("skipped %d, want 1", r.al.Counts.Skipped.Load())
	}
}

// TestAlerterWebhook: every alert reaches a verifying receiver exactly
// once, through 500s and a timeout; one the receiver refuses with 400 is
// tried once and marked failed.
func TestAlerterWebhook(t *testing.T) {
	d20 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	warn := budget.Crossing{Scope: "user", Name: "ann", Period: "day", Start: d20.Truncate(24 * time.Hour), Level: budget.Warn}.ID()
	crit := budget.Crossing{Scope: "user", Name: "ann", Period: "day", Start: d20.Truncate(24 * time.Hour), Level: budget.Critical}.ID()
	teamWarn := budget.Crossing{Scope: "team", Name: "ml", Period: "month", Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Level: budget.Warn}.ID()
	var (
		mu       sync.Mutex
		attempts = map[string]int{}
		accepted = map[string]int{}
		script   = map[string][]int{warn: {500, 0, 502}, crit: {400}} // 0: hang past the timeout
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		id := req.Header.Get(webhook.HeaderAlertID)
		if err := webhook.Verify("shh", req.Header.Get(webhook.HeaderTimestamp), req.Header.Get(webhook.HeaderSignature), body, time.Now(), time.Minute); err != nil {
			t.Errorf("alert %s: %v", id, err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var got struct {
			Text string `json:"text"`
			schemas.BudgetAlert
		}
		if err := json.Unmarshal(body, &got); err != nil || got.ID != id || !strings.Contains(got.Text, got.Name) {
			t.Errorf("alert %s: body %s (%v)", id, body, err)
		}
		mu.Lock()
		n := attempts[id]
		attempts[id]++
		code := http.StatusNoContent
		if s := script[id]; n < len(s) {
			code = s[n]
		}
		if code/100 == 2 {
			accepted[id]++
		}
		mu.Unlock()
		if code == 0 {
			<-req.Context().Done()
			return
		}
		w.WriteHeader(code)
	}))
	defer srv.Close()
	hook, err := webhook.New(webhook.Config{URL: srv.URL, Secret: "shh", Timeout: 300 * time.Millisecond, Attempts: 2, Backoff: time.Millisecond, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r := newAlertRig(t, filepath.Join(t.TempDir(), "s.duckdb"), nil, hook)
	r.flush(costly("i1", 1, "ann", 9, d20))  // ann warn; team ml (9/15) none
	r.flush(costly("i2", 1, "ann", 12, d20)) // ann critical (refused), team ml warn and critical
	teamCrit := budget.Crossing{Scope: "team", Name: "ml", Period: "month", Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Level: budget.Critical}.ID()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pending, err := r.store.PendingBudgetAlerts(context.Background(), schemas.ChannelWebhook)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook deliveries still pending after 30s: %d", len(pending))
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.stop()
	mu.Lock()
	defer mu.Unlock()
	for _, id := range []string{warn, teamWarn, teamCrit} {
		if accepted[id] != 1 {
			t.Errorf("alert %s accepted %d times, want once", id, accepted[id])
		}
	}
	if attempts[warn] != 4 {
		t.Errorf("warn took %d attempts, want 4 (500, timeout, 502, then 204)", attempts[warn])
	}
	if attempts[crit] != 1 || accepted[crit] != 0 {
		t.Errorf("critical (refused with 400): %d attempts, %d accepted; want 1, 0", attempts[crit], accepted[crit])
	}
	c := r.al.Counts
	if c.WebhookDelivered.Load() != 3 || c.WebhookRejected.Load() != 1 || c.WebhookRetrying.Load() < 1 {
		t.Errorf("counts delivered %d, rejected %d, retrying %d; want 3, 1, at least 1", c.WebhookDelivered.Load(), c.WebhookRejected.Load(), c.WebhookRetrying.Load())
	}
}

// TestSpend: an answer's rows are summed per subject, a split answer's
// users apart and their shared team together, rounded to the micro-USD;
// rows without a name charge no one.
func TestSpend(t *testing.T) {
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	split := []schemas.Attribution{
		{InvocationID: "i1", EventTime: at, EndUser: "ann", Team: "ml", CostCenter: "cc", CostUSD: 0.1234564},
		{InvocationID: "i1", EventTime: at, EndUser: "bob", Team: "ml", CostUSD: 0.1234564},
	}
	lone := []schemas.Attribution{{InvocationID: "i2", EventTime: at, EndUser: "sp-1", CostUSD: 2}}
	got := map[string]int64{}
	for _, s := range Spend([][]schemas.Attribution{split, lone}) {
		got[s.InvocationID+" "+s.Scope+" "+s.Name] = s.CostMicros
		if !s.EventTime.Equal(at) {
			t.Errorf("%+v: event time %s", s, s.EventTime)
		}
	}
	want := map[string]int64{"i1 user ann": 123456, "i1 user bob": 123456, "i1 team ml": 246913, "i1 cost_center cc": 123456, "i2 user sp-1": 2_000_000}
	if len(got) != len(want) {
		t.Errorf("spend %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
}

// crashingWriter stands for a process killed while producing: after
// writing what it is given (or before, with lose), it fails every call.
type crashingWriter struct {
	topic *capture
	lose  bool
}

func (c *crashingWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if !c.lose {
		_ = c.topic.WriteMessages(ctx, msgs...)
	}
	return errors.New("killed")
}

// TestAlerterCrashPoints: a process dies before its alerts reach the topic,
// or after they did but before the outbox marked them; the next process,
// on the same store and topic, reads the uncommitted answers again. Every
// alert ends up on the topic exactly once.
func TestAlerterCrashPoints(t *testing.T) {
	d20 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	answers := []stream.Output{costly("i1", 1, "ann", 9, d20), costly("i2", 1, "ann", 12, d20)}
	for _, lose := range []bool{true, false} {
		name := map[bool]string{true: "killed before the produce", false: "killed after the produce, before the mark"}[lose]
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.duckdb")
			topic := &capture{}
			first := newAlertRig(t, path, nil, nil)
			first.al.Writer = &crashingWriter{topic: topic, lose: lose}
			var c capture
			p := Producer{W: &c}
			_ = p.Append(answers)
			_ = p.Write(context.Background())
			for i := range c.msgs {
				c.msgs[i].Topic, c.msgs[i].Offset = "out", int64(i)
			}
			if err := first.h.Handle(context.Background(), c.msgs); err != nil {
				t.Fatal(err)
			}
			if _, err := first.h.Flush(context.Background()); err == nil {
				t.Fatal("the flush succeeded through a failing producer; its offsets would be committed")
			}
			first.stop()

			held := map[string]bool{}
			for _, m := range topic.msgs {
				held[string(m.Key)] = true
			}
			second := newAlertRig(t, path, held, nil)
			second.topic = topic
			second.al.Writer = topic
			if err := second.al.Started(context.Background()); err != nil {
				t.Fatal(err)
			}
			second.flush(answers...) // the uncommitted answers, read again
			second.stop()
			got := map[string]int{}
			for _, m := range topic.msgs {
				got[string(m.Key)]++
			}
			// ann's day: warn and critical; team ml's month (21 of 15): both.
			if len(got) != 4 {
				t.Errorf("topic holds %d alerts, want 4: %v", len(got), got)
			}
			for id, n := range got {
				if n != 1 {
					t.Errorf("alert %s on the topic %d times, want once", id, n)
				}
			}
		})
	}
}
