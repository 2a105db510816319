package kafka

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/obolus/obolus/ingest"
	"github.com/obolus/obolus/ingest/otlp"
	"github.com/obolus/obolus/schemas"
)

// SourceOTLP names the OTLP/HTTP intake as the source of its dead letters.
const SourceOTLP = "otlp:" + otlp.Path

// SpanCounts counts what the span intake did.
type SpanCounts struct {
	// Produced spans went to the agent topic; Skipped were no agent
	// request (child spans naming no user); Dead were dead-lettered.
	Produced, Skipped, Dead atomic.Int64
}

// SpanIntake is the OTLP intake's Exporter: it produces spans that are agent
// requests to the agent topic as span-table rows (header obolus-kind:
// otel_spans), where the rekey stage reads them like any other agent log.
// The stream's answers are a function of its input topics' records and
// their order (docs/streaming.md, Determinism); writing to an input topic,
// not to the keyed topic, keeps them so: the spans get stamps and claims
// like every other input.
//
// Each span is first decoded here by the rekey stage's own Decoder, so a
// span that stage would skip is not produced at all (most spans are inner
// steps), and one it would dead-letter is dead-lettered now, naming the
// field and the span, and counted as rejected in the client's answer.
type SpanIntake struct {
	// Decoder is the rekey stage's; its AgentsTopic is where spans go.
	Decoder *Decoder
	Agents  MessageWriter
	Dead    MessageWriter
	Counts  *SpanCounts
	// Clock is now; nil means time.Now.
	Clock func() time.Time
}

var kindSpansHeader = []byte(ingest.KindOTelSpans)

// Export produces the request's agent-request spans and dead-letters its
// malformed ones, and returns once both writes are acknowledged.
func (in *SpanIntake) Export(ctx context.Context, spans []otlp.Span) (otlp.Result, error) {
	now := time.Now
	if in.Clock != nil {
		now = in.Clock
	}
	// The produce time: what the stream's merge orders inputs by.
	at := now()
	var res otlp.Result
	var keep, dead []kafka.Message
	for i := range spans {
		s := &spans[i]
		m := kafka.Message{Topic: in.Decoder.AgentsTopic, Key: []byte(s.TraceID), Value: s.Row, Time: at,
			Headers: []kafka.Header{{Key: HeaderKind, Value: kindSpansHeader}}}
		var dl *schemas.DeadLetter
		if s.Err != nil {
			dl = in.Decoder.deadLetter(&m, schemas.KindAgentRequest, s.Err.Field, s.Err.Reason)
		} else {
			var key string
			_, key, dl = in.Decoder.Decode(&m)
			if dl == nil && key == "" {
				in.Counts.Skipped.Add(1)
				continue
			}
		}
		if dl == nil {
			m.Topic = "" // the writer names the topic
			keep = append(keep, m)
			continue
		}
		dl.Source, dl.Location = SourceOTLP, "trace "+s.TraceID+" span "+s.SpanID
		if res.Rejected == 0 {
			res.Message = fmt.Sprintf("span %s of trace %s: %s", s.SpanID, s.TraceID, (&ingest.FieldError{Field: dl.Field, Reason: dl.Reason}).Error())
		}
		res.Rejected++
		dm, err := spanDeadLetter(dl, s)
		if err != nil {
			return otlp.Result{}, err
		}
		dead = append(dead, dm)
	}
	if res.Rejected > 1 {
		res.Message += fmt.Sprintf(" (and %d more span(s); see the dead-letter topic)", res.Rejected-1)
	}
	if len(keep) > 0 {
		if err := in.Agents.WriteMessages(ctx, keep...); err != nil {
			return otlp.Result{}, fmt.Errorf("produce %d spans to %s: %w", len(keep), in.Decoder.AgentsTopic, err)
		}
	}
	if len(dead) > 0 {
		if err := in.Dead.WriteMessages(ctx, dead...); err != nil {
			return otlp.Result{}, fmt.Errorf("dead-letter %d spans: %w", len(dead), err)
		}
	}
	in.Counts.Produced.Add(int64(len(keep)))
	in.Counts.Dead.Add(int64(len(dead)))
	return res, nil
}

// spanDeadLetter is a refused span's message on the dead-letter topic,
// keyed by its trace and span so a re-sent refusal is recognisable.
func spanDeadLetter(dl *schemas.DeadLetter, s *otlp.Span) (kafka.Message, error) {
	m, err := DeadLetterMessage(dl, -1, -1)
	if err != nil {
		return m, err
	}
	m.Key = []byte(SourceOTLP + "/" + s.TraceID + "/" + s.SpanID)
	// No partition or offset: the span never was in a topic.
	m.Headers = []kafka.Header{{Key: HeaderSourceTopic, Value: []byte(SourceOTLP)}, {Key: HeaderReason, Value: []byte(dl.Reason)}}
	return m, nil
}
