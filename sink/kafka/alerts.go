package kafka

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/obolus/obolus/internal/budget"
	"github.com/obolus/obolus/schemas"
	"github.com/obolus/obolus/sink/webhook"
)

// HeaderAlertLevel is the level (warn, critical) of an alerts-topic message.
const HeaderAlertLevel = "obolus-alert-level"

// AlertStore is the alerts' ledger and outbox (sink/duckdb's Store).
type AlertStore interface {
	RecordBudgetSpend(ctx context.Context, rows []schemas.BudgetSpend) ([]schemas.PeriodSpend, error)
	InsertBudgetAlerts(ctx context.Context, alerts []schemas.BudgetAlert, webhook string) ([]schemas.BudgetAlert, error)
	PendingBudgetAlerts(ctx context.Context, channel string) ([]schemas.BudgetAlert, error)
	MarkBudgetAlertsProduced(ctx context.Context, ids []string, at time.Time) error
	MarkBudgetAlertWebhook(ctx context.Context, ids []string, state string, at time.Time) error
}

// BudgetAmounts are a budget per UTC day and per calendar month, USD (0: none).
type BudgetAmounts struct{ Day, Month float64 }

// Budgets are the budgets alerts are raised for.
type Budgets struct {
	Thresholds budget.Thresholds
	// Limits are by scope (user, team, cost_center) and name.
	Limits map[[2]string]BudgetAmounts
	// DefaultUser applies to every end user without a limit of their own.
	DefaultUser BudgetAmounts
}

// Limit is the budget of a subject for a period kind (0: none).
func (b Budgets) Limit(scope, name, period string) float64 {
	a, own := b.Limits[[2]string{scope, name}]
	if !own && scope == "user" {
		a = b.DefaultUser
	}
	if period == schemas.PeriodMonth {
		return a.Month
	}
	return a.Day
}

// Any reports whether some budget is set.
func (b Budgets) Any() bool {
	if b.DefaultUser.Day > 0 || b.DefaultUser.Month > 0 {
		return true
	}
	for _, a := range b.Limits {
		if a.Day > 0 || a.Month > 0 {
			return true
		}
	}
	return false
}

// AlertCounts counts what the alerter did.
type AlertCounts struct {
	// Raised alerts were new in the outbox, per level.
	RaisedWarn, RaisedCritical atomic.Int64
	// Produced alerts were committed to the alerts topic; Skipped were
	// found there after a restart and not produced again.
	Produced, Skipped atomic.Int64
	// Webhook deliveries: Delivered (2xx), Rejected (a 4xx, not retried),
	// Retrying (attempts spent on a transient failure; tried again later).
	WebhookDelivered, WebhookRejected, WebhookRetrying atomic.Int64
}

// Alerter raises budget alerts in the load stage. After each flush of
// answers it records their spend in the ledger, sums the spend of the days
// and months they fall in, and writes every level reached to the outbox if
// absent; then it produces what the outbox has not yet produced to the
// alerts topic, and posts it to the webhook from its own loop.
//
// The ledger keeps each invocation's highest spend per subject over all
// its answers, so spend only grows as answers load. A level is therefore
// reached in a run if and only if the final ledger reaches it, whatever
// the flushes' batching: the alerts are a function of the input. See
// docs/streaming.md, Budget alerts.
type Alerter struct {
	Store   AlertStore
	Budgets Budgets
	// Writer produces to Topic: key the alert id, value the alert as JSON.
	// Each call's messages must become visible together or not at all
	// (an AlertTopic: one Kafka transaction).
	Writer MessageWriter
	Topic  string
	// Fence, when set, stops any earlier process's writes to Topic from
	// landing (AlertTopic.Fence: its transactional id); Run calls it
	// first. Without it an alert still in flight from a dead process could
	// land after Produced read the topic, and be produced twice.
	Fence func(ctx context.Context) error
	// Produced reads the ids the alerts topic already holds; Run calls it
	// once, when the outbox has alerts left pending, before producing them.
	Produced func(ctx context.Context) (map[string]bool, error)
	// Webhook, when set, receives every alert once accepted (at least once
	// across crashes); WebhookEvery is how often pending deliveries are
	// tried again (0: 5s).
	Webhook      *webhook.Client
	WebhookEvery time.Duration
	Counts       *AlertCounts
	Log          *slog.Logger

	mu sync.Mutex // one flush's alerts at a time, across partitions
	// inOutbox holds the ids this process knows the outbox has. Once a
	// subject is over a level, every flush that touches its period reaches
	// that level again; asking the store each time cost one INSERT per
	// alert per flush (50 s of an 80 s dev run at low budgets). A new
	// process starts with none and learns them on its first flushes.
	inOutbox map[string]bool
	once     sync.Once
	ready    chan struct{}
	wake     chan struct{}
	startErr error
}

func (a *Alerter) init() {
	a.once.Do(func() {
		a.ready, a.wake = make(chan struct{}), make(chan struct{}, 1)
		if a.Counts == nil {
			a.Counts = &AlertCounts{}
		}
		if a.Log == nil {
			a.Log = slog.Default()
		}
	})
}

// Run delivers what a previous process left in the outbox, skipping the
// ids the alerts topic already holds (so a crash between producing and
// marking duplicates nothing), then lets flushes raise alerts, and posts
// pending alerts to the webhook until ctx ends.
func (a *Alerter) Run(ctx context.Context) error {
	a.init()
	err := a.start(ctx)
	a.startErr = err
	close(a.ready)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if a.Webhook == nil {
		<-ctx.Done()
		return nil
	}
	every := cmp.Or(a.WebhookEvery, 5*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := a.deliverWebhook(ctx); err != nil && ctx.Err() == nil {
			a.Log.Warn("budget alert webhook deliveries", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.wake:
		case <-t.C:
		}
	}
}

func (a *Alerter) start(ctx context.Context) error {
	// Fenced even with nothing pending: a dead process's open transaction
	// would hold read_committed consumers of the topic until it timed out.
	if a.Fence != nil {
		if err := a.Fence(ctx); err != nil {
			return fmt.Errorf("budget alerts: %w", err)
		}
	}
	pending, err := a.Store.PendingBudgetAlerts(ctx, schemas.ChannelKafka)
	if err != nil {
		return fmt.Errorf("budget alerts: %w", err)
	}
	if len(pending) > 0 {
		have, err := a.Produced(ctx)
		if err != nil {
			return fmt.Errorf("budget alerts: read topic %s: %w", a.Topic, err)
		}
		var done []string
		for _, al := range pending {
			if have[al.ID] {
				done = append(done, al.ID)
			}
		}
		if err := a.Store.MarkBudgetAlertsProduced(ctx, done, time.Now().UTC()); err != nil {
			return fmt.Errorf("budget alerts: %w", err)
		}
		a.Counts.Skipped.Add(int64(len(done)))
		a.Log.Info("budget alerts left pending by the previous process", "pending", len(pending), "already_on_topic", len(done))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.produce(ctx)
}

// Started waits until Run has delivered what the previous process left
// pending, and returns Run's error from doing so.
func (a *Alerter) Started(ctx context.Context) error {
	a.init()
	select {
	case <-a.ready:
		return a.startErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Observe is called by the loader after it wrote a flush's answers, with
// every complete answer the flush read, superseded versions included.
func (a *Alerter) Observe(ctx context.Context, answers [][]schemas.Attribution) error {
	if err := a.Started(ctx); err != nil {
		return err
	}
	spend := Spend(answers)
	if len(spend) == 0 {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	periods, err := a.Store.RecordBudgetSpend(ctx, spend)
	if err != nil {
		return fmt.Errorf("budget alerts: %w", err)
	}
	alerts := Crossings(a.Budgets, periods, time.Now().UTC())
	if a.inOutbox == nil {
		a.inOutbox = map[string]bool{}
	}
	alerts = slices.DeleteFunc(alerts, func(al schemas.BudgetAlert) bool { return a.inOutbox[al.ID] })
	if len(alerts) > 0 {
		state := schemas.WebhookOff
		if a.Webhook != nil {
			state = schemas.WebhookPending
		}
		added, err := a.Store.InsertBudgetAlerts(ctx, alerts, state)
		if err != nil {
			return fmt.Errorf("budget alerts: %w", err)
		}
		for _, al := range alerts {
			a.inOutbox[al.ID] = true
		}
		for _, al := range added {
			switch al.Level {
			case budget.Warn.String():
				a.Counts.RaisedWarn.Add(1)
			case budget.Critical.String():
				a.Counts.RaisedCritical.Add(1)
			}
		}
	}
	return a.produce(ctx)
}

// produce sends the outbox's unproduced alerts to the topic and marks
// them; the caller holds a.mu.
func (a *Alerter) produce(ctx context.Context) error {
	pending, err := a.Store.PendingBudgetAlerts(ctx, schemas.ChannelKafka)
	if err != nil || len(pending) == 0 {
		return err
	}
	msgs := make([]kafka.Message, len(pending))
	ids := make([]string, len(pending))
	for i, al := range pending {
		b, err := json.Marshal(al)
		if err != nil {
			return fmt.Errorf("budget alert %s: %w", al.ID, err)
		}
		msgs[i] = kafka.Message{Key: []byte(al.ID), Value: b, Headers: []kafka.Header{{Key: HeaderAlertLevel, Value: []byte(al.Level)}}}
		ids[i] = al.ID
	}
	if err := a.Writer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("produce %d budget alerts to %s: %w", len(msgs), a.Topic, err)
	}
	if err := a.Store.MarkBudgetAlertsProduced(ctx, ids, time.Now().UTC()); err != nil {
		return fmt.Errorf("budget alerts: %w", err)
	}
	a.Counts.Produced.Add(int64(len(ids)))
	for _, al := range pending {
		a.Log.Info("budget alert", "alert_id", al.ID, "scope", al.Scope, "subject", al.Name, "period", al.Period,
			"period_start", al.PeriodStart.Format(time.DateOnly), "level", al.Level, "share", al.Share)
	}
	if a.Webhook != nil {
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// deliverWebhook posts every pending alert; a permanent refusal marks it
// failed, a transient one leaves it pending for the next round.
func (a *Alerter) deliverWebhook(ctx context.Context) error {
	pending, err := a.Store.PendingBudgetAlerts(ctx, schemas.ChannelWebhook)
	if err != nil {
		return err
	}
	for _, al := range pending {
		body, err := WebhookBody(al)
		if err != nil {
			return err
		}
		err = a.Webhook.Send(ctx, al.ID, body)
		// What the receiver answered is recorded even while stopping, so
		// that it is not sent again by the next process.
		mctx := context.WithoutCancel(ctx)
		switch {
		case err == nil:
			if err := a.Store.MarkBudgetAlertWebhook(mctx, []string{al.ID}, schemas.WebhookDelivered, time.Now().UTC()); err != nil {
				return err
			}
			a.Counts.WebhookDelivered.Add(1)
		case webhook.Permanent(err):
			a.Counts.WebhookRejected.Add(1)
			a.Log.Error("budget alert webhook refused the alert; not retrying", "alert_id", al.ID, "err", err)
			if err := a.Store.MarkBudgetAlertWebhook(mctx, []string{al.ID}, schemas.WebhookFailed, time.Now().UTC()); err != nil {
				return err
			}
		default:
			if ctx.Err() != nil {
				return nil
			}
			a.Counts.WebhookRetrying.Add(1)
			return fmt.Errorf("alert %s, left pending: %w", al.ID, err)
		}
	}
	return nil
}

// WebhookBody is the Slack-compatible JSON posted for an alert: a text
// line, plus the alert's fields for receivers that read them.
func WebhookBody(al schemas.BudgetAlert) ([]byte, error) {
	day := al.PeriodStart.Format(time.DateOnly)
	if al.Period == schemas.PeriodMonth {
		day = al.PeriodStart.Format("2006-01")
	}
	text := fmt.Sprintf("obolus budget %s: %s %s has spent $%.2f of its %s budget $%.2f for %s (%.0f%%, threshold %.0f%%)",
		al.Level, al.Scope, al.Name, al.SpendUSD, dailyOrMonthly(al.Period), al.BudgetUSD, day, 100*al.Share, 100*al.Threshold)
	b, err := json.Marshal(struct {
		Text string `json:"text"`
		schemas.BudgetAlert
	}{text, al})
	if err != nil {
		return nil, fmt.Errorf("budget alert %s: %w", al.ID, err)
	}
	return b, nil
}

func dailyOrMonthly(period string) string {
	if period == schemas.PeriodMonth {
		return "monthly"
	}
	return "daily"
}

// Spend is the ledger rows of answers: per invocation and subject (its
// end user, team and cost center, where set), the answer's list-price
// cost in micro-USD. Every answer counts, superseded ones too: the ledger
// keeps the highest.
func Spend(answers [][]schemas.Attribution) []schemas.BudgetSpend {
	var out []schemas.BudgetSpend
	for _, rows := range answers {
		if len(rows) == 0 {
			continue
		}
		sums := map[[2]string]float64{}
		var order [][2]string
		add := func(scope, name string, usd float64) {
			if name == "" {
				return
			}
			k := [2]string{scope, name}
			if _, ok := sums[k]; !ok {
				order = append(order, k)
			}
			sums[k] += usd
		}
		for i := range rows {
			r := &rows[i]
			add("user", r.EndUser, r.CostUSD)
			add("team", r.Team, r.CostUSD)
			add("cost_center", r.CostCenter, r.CostUSD)
		}
		for _, k := range order {
			out = append(out, schemas.BudgetSpend{InvocationID: rows[0].InvocationID, Scope: k[0], Name: k[1],
				EventTime: rows[0].EventTime.UTC(), CostMicros: int64(math.Round(sums[k] * 1e6))})
		}
	}
	return out
}

// Crossings are the alerts the periods' spend reaches: for each subject
// with a budget for the period, every level at or below the one reached.
// Sorted by id, so a flush writes them in the same order every run.
func Crossings(b Budgets, periods []schemas.PeriodSpend, now time.Time) []schemas.BudgetAlert {
	var out []schemas.BudgetAlert
	for _, p := range periods {
		limit := b.Limit(p.Scope, p.Name, p.Period)
		if !(limit > 0) {
			continue
		}
		usd := float64(p.CostMicros) / 1e6
		share, _ := budget.Evaluate(usd, limit, b.Thresholds)
		start, end := budget.PeriodBounds(p.Period, p.Start)
		for _, l := range budget.Reached(usd, limit, b.Thresholds) {
			c := budget.Crossing{Scope: p.Scope, Name: p.Name, Period: p.Period, Start: start, Level: l}
			out = append(out, schemas.BudgetAlert{ID: c.ID(), Scope: p.Scope, Name: p.Name, Period: p.Period, PeriodStart: start, PeriodEnd: end,
				Level: l.String(), SpendUSD: usd, BudgetUSD: limit, Share: share, Threshold: b.Thresholds.Threshold(l), Basis: "list",
				LatestEventTime: p.LatestEvent, RaisedAt: now})
		}
	}
	slices.SortFunc(out, func(x, y schemas.BudgetAlert) int { return cmp.Compare(x.ID, y.ID) })
	return out
}
