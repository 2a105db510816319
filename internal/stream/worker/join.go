package worker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	kafkaingest "github.com/obolus/obolus/ingest/kafka"
	"github.com/obolus/obolus/internal/stream"
	"github.com/obolus/obolus/schemas"
	kafkasink "github.com/obolus/obolus/sink/kafka"
)

// joiner is the second stage: one stream.Partition per keyed partition,
// outputs to the output topic, checkpoints in the commit metadata.
type joiner struct {
	cfg     stream.Config
	output  kafkasink.MessageWriter
	markers kafkasink.MessageWriter
	dead    kafkasink.MessageWriter
	keyed   string
	flushAt int
	log     *slog.Logger
	metrics *metrics
	// deadLetters counts keyed records written to the dead-letter topic.
	deadLetters atomic.Int64

	mu    sync.Mutex
	stats map[int]stream.Stats
}

func (j *joiner) open(_ context.Context, topic string, partition int, from kafkaingest.Committed) (kafkaingest.Handler, int64, error) {
	var cp stream.Checkpoint
	start := int64(kafka.FirstOffset)
	if from.Offset >= 0 {
		c, err := stream.ParseCheckpoint(from.Metadata)
		if err != nil {
			// Offsets moved by a tool, or committed by something else: the
			// join state before them is gone, so answers start afresh there.
			j.log.Warn("committed offset carries no obolus checkpoint; starting with empty join state",
				"topic", topic, "partition", partition, "offset", from.Offset, "err", err)
			c = stream.Checkpoint{Resume: from.Offset, Snapshot: from.Offset, Next: from.Offset}
		}
		cp, start = c, c.Resume
	}
	p, err := stream.NewPartition(j.cfg, cp)
	if err != nil {
		return nil, 0, err
	}
	j.log.Info("join partition assigned", "partition", partition, "resume", cp.Resume, "snapshot", cp.Snapshot, "replay_until", cp.Next,
		"watermark", p.Watermark())
	return &joinPartition{j: j, topic: topic, partition: partition, part: p, prod: kafkasink.Producer{W: j.output}}, start, nil
}

func (j *joiner) setStats(partition int, s *stream.Stats) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if s == nil {
		delete(j.stats, partition)
	} else {
		j.stats[partition] = *s
	}
}

// Stats returns the join state of every partition this process holds.
func (j *joiner) Stats() map[int]stream.Stats {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make(map[int]stream.Stats, len(j.stats))
	for k, v := range j.stats {
		out[k] = v
	}
	return out
}

type joinPartition struct {
	j         *joiner
	topic     string
	partition int
	part      *stream.Partition
	prod      kafkasink.Producer
	rec       stream.Record
	outs      []stream.Output
	dead      []kafka.Message
	firsts    []time.Time // source times of first answers awaiting acknowledgement
	restated  int64
	// byMethod counts the answers awaiting acknowledgement by match method.
	byMethod map[answerKey]int64
	// marked is when a marker was last written; records counts the
	// records other than markers handled since.
	marked  time.Time
	records int
}

// markerEvery spaces the markers a join writes into its partitions: a
// restart replays from the latest marker before the oldest record it needs.
const markerEvery = 5 * time.Second

func (p *joinPartition) Handle(ctx context.Context, msgs []kafka.Message) error {
	for i := range msgs {
		m := &msgs[i]
		p.rec.Offset = m.Offset
		if err := stream.DecodeRecord(m.Value, &p.rec); err != nil {
			// Only obolus writes the keyed topic; a record it cannot read
			// was written by another version or by hand.
			dm, derr := kafkaingest.DeadLetterMessage(&schemas.DeadLetter{Source: m.Topic, Location: kafkaingest.Location(m.Partition, m.Offset),
				Kind: "keyed_record", Reason: err.Error(), Record: fmt.Sprintf("%q", truncate(m.Value)), DeadLetteredAt: time.Now().UTC()}, m.Partition, m.Offset)
			if derr != nil {
				return derr
			}
			p.dead = append(p.dead, dm)
			p.j.log.Warn("unreadable keyed record", "partition", m.Partition, "offset", m.Offset, "err", err)
			continue
		}
		p.rec.Offset = m.Offset
		if p.rec.Kind != stream.KindMarker {
			p.records++
		}
		p.outs = p.part.Process(p.outs[:0], &p.rec)
		if len(p.outs) == 0 {
			continue
		}
		if err := p.prod.Append(p.outs); err != nil {
			return err
		}
		for _, o := range p.outs {
			if len(o.Rows) > 0 {
				if p.byMethod == nil {
					p.byMethod = map[answerKey]int64{}
				}
				// A split answer's rows share their method.
				p.byMethod[answerKey{o.Rows[0].MatchMethod, o.Restatement}]++
			}
			if !o.Restatement {
				p.firsts = append(p.firsts, o.SourceTime)
			} else {
				p.restated++
			}
		}
	}
	if n := p.prod.Buffered(); n >= p.j.flushAt || n > 0 && len(msgs) < kafkaingest.BatchMax {
		return p.write(ctx)
	}
	return nil
}

func truncate(b []byte) []byte {
	if len(b) > schemas.MaxDeadLetterRecord/4 {
		return b[:schemas.MaxDeadLetterRecord/4]
	}
	return b
}

func (p *joinPartition) write(ctx context.Context) error {
	if len(p.dead) > 0 {
		if err := p.j.dead.WriteMessages(ctx, p.dead...); err != nil {
			return fmt.Errorf("write %d dead letters: %w", len(p.dead), err)
		}
		p.j.deadLetters.Add(int64(len(p.dead)))
		p.dead = p.dead[:0]
	}
	n := p.prod.Buffered()
	if err := p.prod.Write(ctx); err != nil {
		return err
	}
	p.j.metrics.answered(ctx, n, p.firsts, p.restated, p.byMethod)
	p.firsts, p.restated = p.firsts[:0], 0
	clear(p.byMethod)
	return nil
}

// Idle does nothing: what an idle input means for the join arrives as the
// input's progress claims, in the keyed log, where a replay sees them too.
func (p *joinPartition) Idle(context.Context) error { return nil }

func (p *joinPartition) Flush(ctx context.Context) (kafkaingest.Commit, error) {
	if err := p.write(ctx); err != nil {
		return kafkaingest.Commit{}, err
	}
	if p.records > 0 && time.Since(p.marked) >= markerEvery {
		rec := stream.Record{Kind: stream.KindMarker}
		if err := p.j.markers.WriteMessages(ctx, kafka.Message{Partition: p.partition, Value: stream.AppendRecord(nil, &rec)}); err != nil {
			return kafkaingest.Commit{}, fmt.Errorf("write marker to %s/%d: %w", p.topic, p.partition, err)
		}
		p.marked, p.records = time.Now(), 0
	}
	st := p.part.Stats()
	p.j.setStats(p.partition, &st)
	cp := p.part.Checkpoint()
	return kafkaingest.Commit{Offset: cp.Resume, Metadata: cp.String()}, nil
}

func (p *joinPartition) Close() error {
	p.j.setStats(p.partition, nil)
	return nil
}

// explicitPartition routes a message to the partition it names, for markers.
type explicitPartition struct{}

func (explicitPartition) Balance(m kafka.Message, partitions ...int) int {
	for _, p := range partitions {
		if p == m.Partition {
			return p
		}
	}
	return partitions[0]
}
