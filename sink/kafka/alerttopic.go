package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	kafkaingest "github.com/obolus/obolus/ingest/kafka"
)

// AlertTopic is the alerts topic written in Kafka transactions under one
// transactional id per deployment. kafka-go has no transactions, so this
// is franz-go's client.
//
// The transactional id is what makes the topic exactly once across
// crashes: Fence, in a new process, makes the broker abort the transaction
// a dead process left open and refuse every request it still had in
// flight, before the new process reads what the topic holds. Without it a
// produce sent just before a kill could land after that read, and the new
// process would produce the same alerts again (docs/streaming.md, Budget
// alerts).
type AlertTopic struct {
	o     kafkaingest.Options
	topic string
	txnID string
	cl    *kgo.Client

	mu sync.Mutex
	// broken is the error that left a transaction in an unknown state;
	// every later write fails with it, and the next process resolves it.
	broken error
}

// NewAlertTopic returns the alerts topic's transactional writer.
func NewAlertTopic(o kafkaingest.Options, topic, transactionalID string) (*AlertTopic, error) {
	cl, err := kgo.NewClient(append(o.KgoOpts(),
		kgo.TransactionalID(transactionalID),
		kgo.TransactionTimeout(30*time.Second),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
	)...)
	if err != nil {
		return nil, fmt.Errorf("alerts topic %s: %w", topic, err)
	}
	return &AlertTopic{o: o, topic: topic, txnID: transactionalID, cl: cl}, nil
}

// Fence makes this process the only producer of the deployment's alerts:
// the broker aborts the transaction an earlier process with the same
// transactional id left open and refuses every request it still sends.
// Call it before reading the topic (Keys) and before the first write.
func (t *AlertTopic) Fence(ctx context.Context) error {
	if _, _, err := t.cl.ProducerID(ctx); err != nil {
		return fmt.Errorf("fence transactional id %q: %w", t.txnID, err)
	}
	return nil
}

// Keys returns the ids (keys) of the alerts the topic committed.
func (t *AlertTopic) Keys(ctx context.Context) (map[string]bool, error) {
	return TopicKeys(ctx, t.o, t.topic)
}

// WriteMessages appends msgs in one transaction: a read_committed reader
// sees all of them or, if this returns an error, perhaps none. After an
// error that leaves the transaction's outcome unknown, every write fails:
// the process must restart, and the next one's Fence settles it.
func (t *AlertTopic) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.broken != nil {
		return fmt.Errorf("alerts topic %s unusable after an earlier failure: %w", t.topic, t.broken)
	}
	if len(msgs) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		r := &kgo.Record{Topic: t.topic, Key: m.Key, Value: m.Value}
		for _, h := range m.Headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		recs[i] = r
	}
	if err := t.cl.BeginTransaction(); err != nil {
		t.broken = err
		return fmt.Errorf("begin transaction on %s: %w", t.topic, err)
	}
	produceErr := t.cl.ProduceSync(ctx, recs...).FirstErr()
	commit := kgo.TryCommit
	if produceErr != nil {
		commit = kgo.TryAbort
	}
	// Ending is not cut short by ctx: a commit cancelled midway is the
	// unknown outcome the broken state exists for.
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	endErr := t.cl.EndTransaction(ectx, commit)
	if fenced(produceErr) || fenced(endErr) {
		t.broken = cmp.Or(endErr, produceErr)
		return fmt.Errorf("alerts topic %s: another process took over this deployment's alerts (transactional id %q); stopping: %w",
			t.topic, t.txnID, t.broken)
	}
	switch {
	case endErr != nil:
		t.broken = endErr
		return fmt.Errorf("end transaction on %s: %w", t.topic, endErr)
	case produceErr != nil:
		// Aborted: nothing is visible, and the next write may try again.
		return fmt.Errorf("produce %d messages to %s (transaction aborted): %w", len(msgs), t.topic, produceErr)
	}
	return nil
}

// fenced reports whether err says a newer producer took the transactional id.
func fenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch)
}

// Close releases the client; an open transaction is left to the broker's
// timeout or the next process's Fence.
func (t *AlertTopic) Close() error {
	t.cl.Close()
	return nil
}

// TopicKeys reads every committed message of topic, from its start to its
// last stable offset, and returns their keys: the alert ids the alerts
// topic holds. It reads read_committed, so what an aborted transaction
// wrote is not there. The alerter reads it only when the outbox has alerts
// pending; retention bounds it (docs/streaming.md, Budget alerts).
func TopicKeys(ctx context.Context, o kafkaingest.Options, topic string) (map[string]bool, error) {
	counts, err := kafkaingest.PartitionCounts(ctx, o, topic)
	if err != nil {
		return nil, err
	}
	// read_committed: the last offset listed is the last stable one.
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}, IsolationLevel: kafka.ReadCommitted}
	for p := range counts[topic] {
		req.Topics[topic] = append(req.Topics[topic], kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	resp, err := o.Client().ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	start := map[int32]kgo.Offset{}
	remaining := map[int32]int64{}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("list offsets of %s/%d: %w", topic, po.Partition, po.Error)
		}
		if po.LastOffset > po.FirstOffset {
			start[int32(po.Partition)] = kgo.NewOffset().At(po.FirstOffset)
			remaining[int32(po.Partition)] = po.LastOffset
		}
	}
	keys := map[string]bool{}
	if len(remaining) == 0 {
		return keys, nil
	}
	// kafka-go's reader does not drop what aborted transactions wrote;
	// franz-go's does.
	cl, err := kgo.NewClient(append(o.KgoOpts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers occupy offsets: kept, the reader sees the
		// offset just below the end even when a marker sits there.
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(100*time.Millisecond),
	)...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", topic, err)
	}
	defer cl.Close()
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", topic, err)
		}
		for _, fe := range fs.Errors() {
			return nil, fmt.Errorf("read %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				keys[string(r.Key)] = true
			}
			if e, ok := remaining[r.Partition]; ok && r.Offset >= e-1 {
				delete(remaining, r.Partition)
			}
		})
	}
	return keys, nil
}
