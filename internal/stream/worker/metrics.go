package worker

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// metrics are the worker's OpenTelemetry instruments. Consumer lag is an
// observable gauge read from the groups' status at each collection.
type metrics struct {
	reg      metric.Registration
	answers  metric.Int64Counter
	restated metric.Int64Counter
	latency  metric.Float64Histogram
}

func newMetrics(w *Worker) (*metrics, error) {
	meter := w.cfg.Meter
	if meter == nil {
		meter = otel.Meter("github.com/obolus/obolus/internal/stream/worker")
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
	m.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, p := range w.status.Partitions() {
			o.ObserveInt64(lag, p.Lag, metric.WithAttributes(attribute.String("group", p.Group),
				attribute.String("topic", p.Topic), attribute.Int("partition", p.Partition)))
		}
		if w.join != nil {
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
			}
		}
		return nil
	}, lag, watermark, merge, buffered, clamped)
	if err != nil {
		return nil, err
	}
	if m.answers, err = meter.Int64Counter("obolus.stream.answers", metric.WithDescription("Attribution rows produced to the output topic")); err != nil {
		return nil, err
	}
	if m.restated, err = meter.Int64Counter("obolus.stream.restatements", metric.WithDescription("Answers that replaced an earlier answer")); err != nil {
		return nil, err
	}
	if m.latency, err = meter.Float64Histogram("obolus.stream.latency", metric.WithUnit("s"),
		metric.WithDescription("From the usage event's produce time to its first attribution being acknowledged by the output topic")); err != nil {
		return nil, err
	}
	return m, nil
}

// answered records a written batch: rows produced, first answers' source
// times (for latency), restatements.
func (m *metrics) answered(ctx context.Context, rows int, firsts []time.Time, restated int64) {
	if m == nil {
		return
	}
	m.answers.Add(ctx, int64(rows))
	if restated > 0 {
		m.restated.Add(ctx, restated)
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
