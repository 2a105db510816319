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
	"fmt"
	"slices"
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

// MessageWriter is a synchronous writer: nil means durable. It may not keep
// the messages' byte slices once it returned (the Producer reuses them).
type MessageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Producer writes outputs to the output topic.
type Producer struct {
	W MessageWriter
	// Messages are encoded into one buffer and made into kafka.Messages at
	// Write, once the buffer has stopped growing: a message per answer row
	// then costs no allocation of its own.
	buf     []byte
	pending []encoded
	msgs    []kafka.Message
	headers []kafka.Header
}

// span is buf[from:to].
type span struct{ from, to int }

type encoded struct {
	key, value, version, part, src span
	restated                       bool
	at                             time.Time
}

var (
	restatedYes = []byte("1")
	restatedNo  = []byte("0")
)

// Append encodes outputs as messages, buffered until Write.
func (p *Producer) Append(outs []stream.Output) error {
	now := time.Now()
	for _, o := range outs {
		var src span
		if !o.SourceTime.IsZero() {
			src = p.add(func(b []byte) []byte { return strconv.AppendInt(b, o.SourceTime.UnixNano(), 10) })
		} else {
			src = p.add(func(b []byte) []byte { return append(b, '0') })
		}
		for i := range o.Rows {
			r := &o.Rows[i]
			m := encoded{src: src, restated: o.Restatement, at: now}
			m.key = p.add(func(b []byte) []byte { return append(b, r.InvocationID...) })
			from := len(p.buf)
			b, err := r.AppendJSON(p.buf)
			if err != nil {
				p.buf = p.buf[:from]
				return fmt.Errorf("encode attribution of invocation %s: %w", r.InvocationID, err)
			}
			p.buf = b
			m.value = span{from, len(p.buf)}
			m.version = p.add(func(b []byte) []byte { return strconv.AppendInt(b, r.Version, 10) })
			m.part = p.add(func(b []byte) []byte {
				b = strconv.AppendInt(b, int64(i+1), 10)
				b = append(b, '/')
				return strconv.AppendInt(b, int64(len(o.Rows)), 10)
			})
			p.pending = append(p.pending, m)
		}
	}
	return nil
}

func (p *Producer) add(enc func([]byte) []byte) span {
	from := len(p.buf)
	p.buf = enc(p.buf)
	return span{from, len(p.buf)}
}

// Buffered is the number of messages waiting for Write.
func (p *Producer) Buffered() int { return len(p.pending) }

// Write sends the buffered messages and returns once they are acknowledged.
func (p *Producer) Write(ctx context.Context) error {
	if len(p.pending) == 0 {
		return nil
	}
	slot := func(s span) []byte { return p.buf[s.from:s.to:s.to] }
	p.msgs = slices.Grow(p.msgs[:0], len(p.pending))
	p.headers = slices.Grow(p.headers[:0], 4*len(p.pending))
	for _, m := range p.pending {
		restated := restatedNo
		if m.restated {
			restated = restatedYes
		}
		h := len(p.headers)
		p.headers = append(p.headers,
			kafka.Header{Key: HeaderVersion, Value: slot(m.version)},
			kafka.Header{Key: HeaderPart, Value: slot(m.part)},
			kafka.Header{Key: HeaderRestatement, Value: restated},
			kafka.Header{Key: HeaderSourceTime, Value: slot(m.src)})
		p.msgs = append(p.msgs, kafka.Message{Key: slot(m.key), Value: slot(m.value), Time: m.at, Headers: p.headers[h : h+4 : h+4]})
	}
	if err := p.W.WriteMessages(ctx, p.msgs...); err != nil {
		return fmt.Errorf("write %d attribution messages: %w", len(p.msgs), err)
	}
	// The writer is done with the bytes once WriteMessages returned.
	clear(p.msgs)
	clear(p.headers)
	p.msgs, p.headers = p.msgs[:0], p.headers[:0]
	p.pending, p.buf = p.pending[:0], p.buf[:0]
	return nil
}

// ParsePart reads a HeaderPart value.
func ParsePart(v string) (i, n int, err error) {
	if _, err := fmt.Sscanf(v, "%d/%d", &i, &n); err != nil || i < 1 || i > n {
		return 0, 0, fmt.Errorf("header %s %q: want i/n with 1 ≤ i ≤ n", HeaderPart, v)
	}
	return i, n, nil
}
