package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
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
	// Skipped counts messages that stand for no record: spans that are
	// not an agent request.
	Skipped atomic.Int64
}

// Rekeyer is the first stage: it decodes input messages with the shared
// decoders, writes each usable one to the keyed topic under its service
// principal, and each unusable one to the dead-letter topic with the reason
// and its source topic, partition and offset. Input offsets are committed
// only after both writes are acknowledged.
//
// Each forwarded record carries where it was read (source partition and
// offset) and a stamp: the running maximum of the input partition's message
// timestamps, which the commit metadata carries across restarts, so a
// record forwarded twice has the same stamp both times. After each write
// the stage claims, to every keyed partition, that nothing it forwards from
// now on is stamped earlier than the last stamp (a progress record). An
// input partition read to its end claims now minus ProducerDelay. The join
// merges the sources by stamp up to the least claim, so its answers do not
// depend on which input was consumed faster.
type Rekeyer struct {
	Decoder *Decoder
	Keyed   MessageWriter
	Dead    MessageWriter
	// Progress writes to the keyed partition each message names.
	Progress MessageWriter
	// Route, when set, picks a key's keyed partition; the record names it
	// (Keyed must then write to the partition a message names). A record is
	// itself a claim for its partition, so claims then go only to the
	// partitions the last records did not reach.
	Route func(key []byte) int
	// KeyedPartitions is the keyed topic's partition count; Sources the
	// input topics' partition count together.
	KeyedPartitions int
	Sources         int
	// ProducerDelay is how long after its timestamp a message can become
	// readable; an idle input partition's claim stays this far behind now.
	ProducerDelay time.Duration
	// Clock is now; nil means time.Now.
	Clock func() time.Time
	// MaxLead bounds, in message time, how far an input partition's claim
	// may run ahead of the least claim among the partitions this process
	// re-keys (0: no bound). The join buffers what arrives ahead of the
	// slowest input, so this bounds its memory while a backlog drains.
	MaxLead time.Duration

	mu     sync.Mutex
	claims map[*rekeyPartition]int64
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
	p := &rekeyPartition{rk: rk, next: -1, source: stream.SourceID(idx, partition), stamp: math.MinInt64, claim: math.MinInt64, sent: math.MinInt64,
		told: make([]int64, rk.KeyedPartitions)}
	for k := range p.told {
		p.told[k] = math.MinInt64
	}
	rk.setClaim(p, math.MinInt64)
	if from.Offset >= 0 {
		stamp, err := parseRekeyCommit(from.Metadata)
		if err != nil {
			// Committed by an older obolus or moved by a tool: stamps start
			// afresh, and records stamped below claims already made are
			// applied where they arrive (the join counts them as clamped).
			rk.Log.Warn("committed offset carries no stamp; stamps restart from this partition's next message",
				"topic", topic, "partition", partition, "offset", from.Offset, "err", err)
		} else {
			p.stamp = stamp
		}
	}
	return p, start, nil
}

const rekeyCommitPrefix = "obolus-rekey1:"

// parseRekeyCommit reads the stamp a rekey commit carries.
func parseRekeyCommit(s string) (int64, error) {
	rest, ok := strings.CutPrefix(s, rekeyCommitPrefix)
	if !ok {
		return 0, fmt.Errorf("metadata %q: no %s prefix", s, rekeyCommitPrefix)
	}
	v, err := strconv.ParseInt(rest, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("metadata %q: stamp: %w", s, err)
	}
	return v, nil
}

type rekeyPartition struct {
	rk    *Rekeyer
	keyed []kafka.Message
	dead  []kafka.Message
	// unwritten counts the messages handled since the last write, skipped
	// ones included: a full batch of them must still be written and its
	// claim broadcast, or the partition's claim never leaves its start and
	// every partition of the process waits for it (waitForSlowest).
	unwritten int
	buf       []byte
	next      int64 // offset after the last message handled, -1 before any
	source    uint32
	// stamp is the running maximum of message timestamps (unix millis);
	// claim what may be claimed once the buffered records are written;
	// sent the claim last broadcast.
	stamp, claim, sent int64
	// told is, per keyed partition, the claim it has been written.
	told []int64
}

func (p *rekeyPartition) now() time.Time {
	if p.rk.Clock != nil {
		return p.rk.Clock()
	}
	return time.Now()
}

// minClaim is the least claim among the partitions this process re-keys.
func (rk *Rekeyer) minClaim() int64 {
	rk.mu.Lock()
	defer rk.mu.Unlock()
	m := int64(math.MaxInt64)
	for _, c := range rk.claims {
		m = min(m, c)
	}
	return m
}

func (rk *Rekeyer) setClaim(p *rekeyPartition, c int64) {
	rk.mu.Lock()
	defer rk.mu.Unlock()
	if rk.claims == nil {
		rk.claims = map[*rekeyPartition]int64{}
	}
	rk.claims[p] = c
}

func (rk *Rekeyer) dropClaim(p *rekeyPartition) {
	rk.mu.Lock()
	defer rk.mu.Unlock()
	delete(rk.claims, p)
}

// waitForSlowest holds a partition whose claim has run MaxLead ahead of the
// slowest one. The slowest never waits, so all make progress.
func (p *rekeyPartition) waitForSlowest(ctx context.Context) error {
	lead := p.rk.MaxLead.Milliseconds()
	if lead <= 0 || p.claim == math.MinInt64 {
		return nil
	}
	for {
		if m := p.rk.minClaim(); m == math.MaxInt64 || m != math.MinInt64 && p.claim-m <= lead {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (p *rekeyPartition) Handle(ctx context.Context, msgs []kafka.Message) error {
	if err := p.waitForSlowest(ctx); err != nil {
		return err
	}
	for i := range msgs {
		m := &msgs[i]
		if !m.Time.IsZero() {
			p.stamp = max(p.stamp, m.Time.UnixMilli())
		}
		rec, key, dl := p.rk.Decoder.Decode(m)
		if dl != nil {
			dm, err := DeadLetterMessage(dl, m.Partition, m.Offset)
			if err != nil {
				return err
			}
			p.dead = append(p.dead, dm)
			p.rk.Counts.Dead.Add(1)
			p.rk.Log.Debug("dead letter", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "field", dl.Field, "reason", dl.Reason)
		} else if key == "" {
			p.rk.Counts.Skipped.Add(1)
		} else {
			// One buffer per batch, sliced per message: the writer keeps
			// the slices until WriteMessages returns.
			rec.Source, rec.SourceOffset = p.source, m.Offset
			if p.stamp != math.MinInt64 {
				rec.Stamp = time.UnixMilli(p.stamp).UTC()
			}
			start := len(p.buf)
			p.buf = stream.AppendRecord(p.buf, &rec)
			km := kafka.Message{Key: []byte(key), Value: p.buf[start:len(p.buf):len(p.buf)], Time: m.Time}
			if p.rk.Route != nil {
				if k := p.rk.Route(km.Key); k >= 0 && k < len(p.told) {
					km.Partition = k
					p.told[k] = max(p.told[k], p.stamp)
				}
			}
			p.keyed = append(p.keyed, km)
			if rec.Kind == stream.KindUsage {
				p.rk.Counts.Usage.Add(1)
			} else {
				p.rk.Counts.Agents.Add(1)
			}
		}
		p.next = m.Offset + 1
	}
	p.claim = max(p.claim, p.stamp)
	p.unwritten += len(msgs)
	if p.unwritten >= p.rk.FlushAt || len(msgs) < BatchMax {
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
	p.keyed, p.dead, p.unwritten = p.keyed[:0], p.dead[:0], 0
	// A synchronous WriteMessages is done with the messages' bytes when it returns.
	p.buf = p.buf[:0]
	return p.broadcast(ctx)
}

// broadcast tells every keyed partition this input partition's claim,
// after the records below it were written there.
func (p *rekeyPartition) broadcast(ctx context.Context) error {
	if p.claim <= p.sent || p.claim == math.MinInt64 || p.rk.Progress == nil {
		return nil
	}
	pr := stream.Progress{Source: p.source, Sources: uint32(p.rk.Sources), Time: time.UnixMilli(p.claim).UTC()}
	rec := stream.Record{Kind: stream.KindProgress, Progress: pr}
	val := stream.AppendRecord(nil, &rec)
	var msgs []kafka.Message
	for k := range p.told {
		if p.told[k] < p.claim {
			msgs = append(msgs, kafka.Message{Partition: k, Value: val})
		}
	}
	if len(msgs) > 0 {
		if err := p.rk.Progress.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("write progress to %d keyed partitions: %w", len(msgs), err)
		}
	}
	for k := range p.told {
		p.told[k] = max(p.told[k], p.claim)
	}
	p.sent = p.claim
	p.rk.setClaim(p, p.claim)
	return nil
}

// Idle is called with the input partition read to its end: whatever is
// produced from now on is stamped at least now minus the producer delay,
// and so, the stamp being a running maximum, at least that claim.
func (p *rekeyPartition) Idle(ctx context.Context) error {
	if len(p.keyed)+len(p.dead) > 0 {
		return nil
	}
	p.claim = max(p.claim, p.stamp, p.now().Add(-p.rk.ProducerDelay).UnixMilli())
	return p.broadcast(ctx)
}

func (p *rekeyPartition) Flush(ctx context.Context) (Commit, error) {
	if err := p.write(ctx); err != nil {
		return Commit{}, err
	}
	c := Commit{Offset: p.next}
	if p.stamp != math.MinInt64 {
		c.Metadata = rekeyCommitPrefix + strconv.FormatInt(p.stamp, 10)
	}
	return c, nil
}

func (p *rekeyPartition) Close() error {
	p.rk.dropClaim(p)
	return nil
}
