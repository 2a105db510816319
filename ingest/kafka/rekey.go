package kafkaingest

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/obolus/obolus/internal/stream"
)

// MessageWriter is where the re-keying stage writes: a synchronous
// *kafka.Writer, whose nil error means the messages are durable.
type MessageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// RekeyCounts counts what the re-keying stage did, across partitions.
type RekeyCounts struct {
	Usage, Agents, Dead atomic.Int64
}

// Rekeyer is the first stage: it decodes input messages with the shared
// decoders, writes each usable one to the keyed topic under its service
// principal, and each unusable one to the dead-letter topic with the reason
// and its source topic, partition and offset. Input offsets are committed
// only after both writes are acknowledged.
//
// After each write it tells every keyed partition how far its input
// partition has got (a progress record, in event time), and when the input
// partition has gone quiet, that it is idle. The join's watermark follows
// the slowest busy input, so an input consumed faster than another — a
// catch-up after an outage — cannot release usage before the agent logs of
// the same time have been forwarded.
type Rekeyer struct {
	Decoder *Decoder
	Keyed   MessageWriter
	Dead    MessageWriter
	// Progress writes to the keyed partition each message names.
	Progress MessageWriter
	// KeyedPartitions is the keyed topic's partition count; Sources the
	// input topics' partition count together.
	KeyedPartitions int
	Sources         int
	// FlushAt writes buffered messages once this many are waiting.
	FlushAt int
	Counts  *RekeyCounts
	Log     *slog.Logger
}

// Open is the Opener of the re-keying group.
func (rk *Rekeyer) Open(_ context.Context, topic string, partition int, from Committed) (Handler, int64, error) {
	start := int64(kafka.FirstOffset)
	if from.Offset >= 0 {
		start = from.Offset
	}
	idx := 0
	if topic == rk.Decoder.AgentsTopic {
		idx = 1
	}
	return &rekeyPartition{rk: rk, next: -1, source: stream.SourceID(idx, partition)}, start, nil
}

type rekeyPartition struct {
	rk     *Rekeyer
	keyed  []kafka.Message
	dead   []kafka.Message
	buf    []byte
	next   int64 // offset after the last message handled, -1 before any
	source uint32
	// progress is the latest event time forwarded; sent what was last
	// broadcast.
	progress, sent stream.Progress
}

func (p *rekeyPartition) Handle(ctx context.Context, msgs []kafka.Message) error {
	for i := range msgs {
		m := &msgs[i]
		rec, key, dl := p.rk.Decoder.Decode(m)
		if dl != nil {
			dm, err := DeadLetterMessage(dl, m.Partition, m.Offset)
			if err != nil {
				return err
			}
			p.dead = append(p.dead, dm)
			p.rk.Counts.Dead.Add(1)
			p.rk.Log.Debug("dead letter", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "field", dl.Field, "reason", dl.Reason)
		} else {
			// One buffer per batch, sliced per message: the writer keeps
			// the slices until WriteMessages returns.
			start := len(p.buf)
			p.buf = stream.AppendRecord(p.buf, &rec)
			p.keyed = append(p.keyed, kafka.Message{Key: []byte(key), Value: p.buf[start:len(p.buf):len(p.buf)], Time: m.Time})
			t := rec.Usage.EventTime
			if rec.Kind == stream.KindUsage {
				p.rk.Counts.Usage.Add(1)
			} else {
				p.rk.Counts.Agents.Add(1)
				t = rec.Agent.End()
			}
			if t = t.Truncate(time.Millisecond); t.After(p.progress.Time) {
				p.progress.Time = t
			}
		}
		p.next = m.Offset + 1
	}
	p.progress.Idle = false
	if len(p.keyed)+len(p.dead) >= p.rk.FlushAt {
		return p.write(ctx)
	}
	return nil
}

func (p *rekeyPartition) write(ctx context.Context) error {
	if len(p.keyed) > 0 {
		if err := p.rk.Keyed.WriteMessages(ctx, p.keyed...); err != nil {
			return fmt.Errorf("write %d keyed records: %w", len(p.keyed), err)
		}
	}
	if len(p.dead) > 0 {
		if err := p.rk.Dead.WriteMessages(ctx, p.dead...); err != nil {
			return fmt.Errorf("write %d dead letters: %w", len(p.dead), err)
		}
	}
	clear(p.keyed)
	p.keyed, p.dead = p.keyed[:0], p.dead[:0]
	// A synchronous WriteMessages is done with the messages' bytes when it returns.
	p.buf = p.buf[:0]
	return p.broadcast(ctx)
}

// broadcast tells every keyed partition this input partition's progress,
// after the records it covers were written there.
func (p *rekeyPartition) broadcast(ctx context.Context) error {
	if p.progress == p.sent || p.progress.Time.IsZero() || p.rk.Progress == nil {
		return nil
	}
	pr := p.progress
	pr.Source, pr.Sources = p.source, uint32(p.rk.Sources)
	rec := stream.Record{Kind: stream.KindProgress, Progress: pr}
	val := stream.AppendRecord(nil, &rec)
	msgs := make([]kafka.Message, p.rk.KeyedPartitions)
	for i := range msgs {
		msgs[i] = kafka.Message{Partition: i, Value: val}
	}
	if err := p.rk.Progress.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("write progress to %d keyed partitions: %w", len(msgs), err)
	}
	p.sent = p.progress
	return nil
}

// Idle marks the input partition caught up, so it holds no watermark back.
func (p *rekeyPartition) Idle(ctx context.Context) error {
	if len(p.keyed)+len(p.dead) > 0 {
		return nil
	}
	p.progress.Idle = true
	if p.progress.Time.IsZero() {
		// Nothing forwarded yet, perhaps never: the partition must still
		// be counted, or the join would wait for it forever.
		p.progress.Time = time.Unix(0, 0).UTC()
	}
	return p.broadcast(ctx)
}

func (p *rekeyPartition) Flush(ctx context.Context) (Commit, error) {
	if err := p.write(ctx); err != nil {
		return Commit{}, err
	}
	return Commit{Offset: p.next}, nil
}

func (p *rekeyPartition) Close() error { return nil }
