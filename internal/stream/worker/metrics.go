package worker

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Instrumentation names the worker's meter.
const Instrumentation = "github.com/obolus/obolus/internal/stream/worker"

// latencyBuckets are the latency histogram's bounds in seconds: the SDK's
// default bounds (0 to 10,000) suit milliseconds, and would put every
// answer of a healthy worker in the first two buckets.
var latencyBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

// metrics are the worker's OpenTelemetry instruments. Consumer lag, state
// and the stages' running counts are observed from the worker's status at
// each collection, so they cost nothing between scrapes.
type metrics struct {
	reg         metric.Registration
	answers     metric.Int64Counter
	restated    metric.Int64Counter
	invocations metric.Int64Counter
	latency     metric.Float64Histogram
}

func newMetrics(w *Worker) (*metrics, error) {
	meter := w.cfg.Meter
	if meter == nil {
		meter = otel.Meter(Instrumentation)
	}
	m := &metrics{}
	var err error
	lag, err := meter.Int64ObservableGauge("obolus.stream.consumer_lag", metric.WithUnit("{message}"),
		metric.WithDescription("Messages between a partition's end and the next one the worker handles, per consumer group, topic and partition"))
	if err != nil {
		return nil, err
	}
	watermark, err := meter.Float64ObservableGauge("obolus.stream.watermark_delay", metric.WithUnit("s"),
		metric.WithDescription("Wall clock minus the join watermark, per keyed partition: how far event time trails"))
	if err != nil {
		return nil, err
	}
	merge, err := meter.Float64ObservableGauge("obolus.stream.merge_delay", metric.WithUnit("s"),
		metric.WithDescription("Wall clock minus the merge position, per keyed partition: how far behind the slowest input's claims hold the join"))
	if err != nil {
		return nil, err
	}
	buffered, err := meter.Int64ObservableGauge("obolus.stream.merge_buffered", metric.WithUnit("{record}"),
		metric.WithDescription("Records waiting, per keyed partition, for every input to claim past their stamp"))
	if err != nil {
		return nil, err
	}
	clamped, err := meter.Int64ObservableCounter("obolus.stream.clamped_records", metric.WithUnit("{record}"),
		metric.WithDescription("Records that became readable after every input had claimed past their stamp (a producer slower than stream.producer_delay); their answers may depend on timing"))
	if err != nil {
		return nil, err
	}
	state, err := meter.Int64ObservableGauge("obolus.stream.state", metric.WithUnit("{record}"),
		metric.WithDescription("What a join partition holds in memory, per keyed partition and kind: pending (usage events waiting for the watermark), open (answered events open for restatement), agent_requests (held for matching)"))
	if err != nil {
		return nil, err
	}
	recordsIn, err := meter.Int64ObservableCounter("obolus.stream.records_in", metric.WithUnit("{record}"),
		metric.WithDescription("Input messages decoded and re-keyed by this process's rekey stage, per kind: usage or agent"))
	if err != nil {
		return nil, err
	}
	dead, err := meter.Int64ObservableCounter("obolus.stream.dead_letters", metric.WithUnit("{record}"),
		metric.WithDescription("Messages written to the dead-letter topic, per stage: rekey (input that could not be used) or join (unreadable keyed records)"))
	if err != nil {
		return nil, err
	}
	loaded, err := meter.Int64ObservableCounter("obolus.stream.loaded", metric.WithUnit("{record}"),
		metric.WithDescription("What the load stage wrote into the store, per kind: answers, rows, dead_letters, stale (rows the store already held at a higher version)"))
	if err != nil {
		return nil, err
	}
	alerts, err := meter.Int64ObservableCounter("obolus.stream.budget_alerts", metric.WithUnit("{alert}"),
		metric.WithDescription("Budget alerts the load stage raised (new in its outbox), per level: warn or critical"))
	if err != nil {
		return nil, err
	}
	alertsOut, err := meter.Int64ObservableCounter("obolus.stream.budget_alerts_delivered", metric.WithUnit("{alert}"),
		metric.WithDescription("Budget alerts delivered, per channel: kafka (committed to the alerts topic) or webhook (answered 2xx)"))
	if err != nil {
		return nil, err
	}
	webhookFailures, err := meter.Int64ObservableCounter("obolus.stream.budget_alert_webhook_failures", metric.WithUnit("{alert}"),
		metric.WithDescription("Budget alert webhook deliveries that failed, per kind: rejected (a 4xx other than 408 and 429; not retried) or retrying (attempts spent on errors, timeouts, 408, 429 or 5xx; tried again later)"))
	if err != nil {
		return nil, err
	}
	m.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if a := w.alertN; a != nil {
			o.ObserveInt64(alerts, a.RaisedWarn.Load(), metric.WithAttributes(attribute.String("level", "warn")))
			o.ObserveInt64(alerts, a.RaisedCritical.Load(), metric.WithAttributes(attribute.String("level", "critical")))
			o.ObserveInt64(alertsOut, a.Produced.Load(), metric.WithAttributes(attribute.String("channel", "kafka")))
			o.ObserveInt64(alertsOut, a.WebhookDelivered.Load(), metric.WithAttributes(attribute.String("channel", "webhook")))
			o.ObserveInt64(webhookFailures, a.WebhookRejected.Load(), metric.WithAttributes(attribute.String("kind", "rejected")))
			o.ObserveInt64(webhookFailures, a.WebhookRetrying.Load(), metric.WithAttributes(attribute.String("kind", "retrying")))
		}
		if w.cfg.HasStage(StageRekey) {
			o.ObserveInt64(recordsIn, w.rekeyN.Usage.Load(), metric.WithAttributes(attribute.String("kind", "usage")))
			o.ObserveInt64(recordsIn, w.rekeyN.Agents.Load(), metric.WithAttributes(attribute.String("kind", "agent")))
			o.ObserveInt64(dead, w.rekeyN.Dead.Load(), metric.WithAttributes(attribute.String("stage", StageRekey)))
		}
		if w.cfg.HasStage(StageLoad) {
			for _, k := range []struct {
				kind string
				n    int64
			}{{"answers", w.loadN.Answers.Load()}, {"rows", w.loadN.Rows.Load()},
				{"dead_letters", w.loadN.DeadLetters.Load()}, {"stale", w.loadN.Stale.Load()}} {
				o.ObserveInt64(loaded, k.n, metric.WithAttributes(attribute.String("kind", k.kind)))
			}
		}
		for _, p := range w.status.Partitions() {
			o.ObserveInt64(lag, p.Lag, metric.WithAttributes(attribute.String("group", p.Group),
				attribute.String("topic", p.Topic), attribute.Int("partition", p.Partition)))
		}
		if w.join != nil {
			o.ObserveInt64(dead, w.join.deadLetters.Load(), metric.WithAttributes(attribute.String("stage", StageJoin)))
			now := time.Now()
			for p, s := range w.join.Stats() {
				part := metric.WithAttributes(attribute.Int("partition", p))
				if !s.Watermark.IsZero() {
					o.ObserveFloat64(watermark, now.Sub(s.Watermark).Seconds(), part)
				}
				if !s.Position.IsZero() {
					o.ObserveFloat64(merge, now.Sub(s.Position).Seconds(), part)
				}
				o.ObserveInt64(buffered, int64(s.Buffered), part)
				o.ObserveInt64(clamped, s.Clamped, part)
				for _, k := range []struct {
					kind string
					n    int
				}{{"pending", s.Pending}, {"open", s.Open}, {"agent_requests", s.AgentRequests}} {
					o.ObserveInt64(state, int64(k.n), metric.WithAttributes(attribute.Int("partition", p), attribute.String("kind", k.kind)))
				}
			}
		}
		return nil
	}, lag, watermark, merge, buffered, clamped, state, recordsIn, dead, loaded, alerts, alertsOut, webhookFailures)
	if err != nil {
		return nil, err
	}
	if m.answers, err = meter.Int64Counter("obolus.stream.answers", metric.WithUnit("{row}"),
		metric.WithDescription("Attribution rows produced to the output topic and acknowledged")); err != nil {
		return nil, err
	}
	if m.restated, err = meter.Int64Counter("obolus.stream.restatements", metric.WithUnit("{answer}"),
		metric.WithDescription("Answers that replaced an earlier answer")); err != nil {
		return nil, err
	}
	if m.invocations, err = meter.Int64Counter("obolus.stream.invocations", metric.WithUnit("{invocation}"),
		metric.WithDescription("Answers produced and acknowledged, one per invocation and version, by match_method of the answer and restatement (true for a changed answer)")); err != nil {
		return nil, err
	}
	if m.latency, err = meter.Float64Histogram("obolus.stream.latency", metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(latencyBuckets...),
		metric.WithDescription("From the usage event's produce time to its first attribution being acknowledged by the output topic")); err != nil {
		return nil, err
	}
	return m, nil
}

// answerKey is what an acknowledged answer is counted under.
type answerKey struct {
	method      string
	restatement bool
}

// answered records a written batch: rows produced, first answers' source
// times (for latency), restatements, and answers by method.
func (m *metrics) answered(ctx context.Context, rows int, firsts []time.Time, restated int64, byMethod map[answerKey]int64) {
	if m == nil {
		return
	}
	m.answers.Add(ctx, int64(rows))
	if restated > 0 {
		m.restated.Add(ctx, restated)
	}
	for k, n := range byMethod {
		m.invocations.Add(ctx, n, metric.WithAttributes(attribute.String("match_method", k.method), attribute.Bool("restatement", k.restatement)))
	}
	now := time.Now()
	for _, t := range firsts {
		if !t.IsZero() {
			m.latency.Record(ctx, now.Sub(t).Seconds())
		}
	}
}

func (m *metrics) close() {
	if m != nil && m.reg != nil {
		_ = m.reg.Unregister()
	}
}
