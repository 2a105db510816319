package devbroker

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadCommitted returns what a read_committed consumer reads of every
// partition of topic, up to its current end: the records of committed
// transactions and of plain produces, none of an aborted transaction.
// Tests use it to check what obolus wrote transactionally; it expects no
// transaction open on topic (it would wait for it until ctx ends).
func (b *Broker) ReadCommitted(ctx context.Context, topic string) ([]*kgo.Record, error) {
	conn, err := kafka.DialContext(ctx, "tcp", b.addr)
	if err != nil {
		return nil, err
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	start, end := map[int32]kgo.Offset{}, map[int32]int64{}
	for _, p := range parts {
		leader, err := kafka.DialLeader(ctx, "tcp", b.addr, topic, p.ID)
		if err != nil {
			return nil, err
		}
		first, last, err := leader.ReadOffsets()
		leader.Close()
		if err != nil {
			return nil, fmt.Errorf("offsets of %s/%d: %w", topic, p.ID, err)
		}
		if last > first {
			start[int32(p.ID)], end[int32(p.ID)] = kgo.NewOffset().At(first), last
		}
	}
	if len(end) == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(end) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w (still to read: partition to end offset %v)", topic, err, end)
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return nil, fmt.Errorf("read %s/%d: %w", errs[0].Topic, errs[0].Partition, errs[0].Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if e, ok := end[r.Partition]; ok && r.Offset >= e-1 {
				delete(end, r.Partition)
			}
		})
	}
	return out, nil
}
