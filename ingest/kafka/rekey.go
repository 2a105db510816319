package kafkaingest

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

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
type Rekeyer struct {
	Decoder *Decoder
	Keyed   MessageWriter
	Dead    MessageWriter
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
	return &rekeyPartition{rk: rk, next: -1}, start, nil
}

type rekeyPartition struct {
	rk    *Rekeyer
	keyed []kafka.Message
	dead  []kafka.Message
	buf   []byte
	next  int64 // offset after the last message handled, -1 before any
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
			if rec.Kind == stream.KindUsage {
				p.rk.Counts.Usage.Add(1)
			} else {
				p.rk.Counts.Agents.Add(1)
			}
		}
		p.next = m.Offset + 1
	}
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
	return nil
}

func (p *rekeyPartition) Idle(context.Context) error { return nil }

func (p *rekeyPartition) Flush(ctx context.Context) (Commit, error) {
	if err := p.write(ctx); err != nil {
		return Commit{}, err
	}
	return Commit{Offset: p.next}, nil
}

func (p *rekeyPartition) Close() error { return nil }
