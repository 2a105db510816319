// Package kafka writes attribution to Kafka and reads it back: the output
// topic's producer (JSON keyed by invocation id) and the loader into a table store.
//
// Every answer for an invocation is one or more messages (several under the
// split policy) keyed by invocation_id, so all answers for one invocation
// land in one partition in order. Headers carry the version and the row's
// place in its answer ("1/3"), so a consumer can tell a complete answer and
// keep the highest version: that is the exactly-once effect on top of
// at-least-once delivery.
package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/obolus/obolus/internal/stream"
)

// Headers of output messages.
const (
	HeaderVersion = "obolus-version"
	// HeaderPart is "i/n": the row's place among the n rows of its answer.
	HeaderPart = "obolus-part"
	// HeaderRestatement is "1" on an answer that replaces an earlier one.
	HeaderRestatement = "obolus-restatement"
	// HeaderSourceTime is when the input that caused the answer was produced,
	// in Unix nanoseconds: produce-to-attribution latency is measured from it.
	HeaderSourceTime = "obolus-source-time"
)

// MessageWriter is a synchronous writer: nil means durable.
type MessageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Producer writes outputs to the output topic.
type Producer struct {
	W    MessageWriter
	msgs []kafka.Message
}

// Append encodes outputs as messages, buffered until Write.
func (p *Producer) Append(outs []stream.Output) error {
	now := time.Now()
	for _, o := range outs {
		n := strconv.Itoa(len(o.Rows))
		restated := "0"
		if o.Restatement {
			restated = "1"
		}
		src := "0"
		if !o.SourceTime.IsZero() {
			src = strconv.FormatInt(o.SourceTime.UnixNano(), 10)
		}
		for i := range o.Rows {
			r := &o.Rows[i]
			b, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("encode attribution of invocation %s: %w", r.InvocationID, err)
			}
			p.msgs = append(p.msgs, kafka.Message{
				Key:   []byte(r.InvocationID),
				Value: b,
				Time:  now,
				Headers: []kafka.Header{
					{Key: HeaderVersion, Value: []byte(strconv.FormatInt(r.Version, 10))},
					{Key: HeaderPart, Value: []byte(strconv.Itoa(i+1) + "/" + n)},
					{Key: HeaderRestatement, Value: []byte(restated)},
					{Key: HeaderSourceTime, Value: []byte(src)},
				},
			})
		}
	}
	return nil
}

// Buffered is the number of messages waiting for Write.
func (p *Producer) Buffered() int { return len(p.msgs) }

// Write sends the buffered messages and returns once they are acknowledged.
func (p *Producer) Write(ctx context.Context) error {
	if len(p.msgs) == 0 {
		return nil
	}
	if err := p.W.WriteMessages(ctx, p.msgs...); err != nil {
		return fmt.Errorf("write %d attribution messages: %w", len(p.msgs), err)
	}
	clear(p.msgs)
	p.msgs = p.msgs[:0]
	return nil
}

// ParsePart reads a HeaderPart value.
func ParsePart(v string) (i, n int, err error) {
	if _, err := fmt.Sscanf(v, "%d/%d", &i, &n); err != nil || i < 1 || i > n {
		return 0, 0, fmt.Errorf("header %s %q: want i/n with 1 ≤ i ≤ n", HeaderPart, v)
	}
	return i, n, nil
}
