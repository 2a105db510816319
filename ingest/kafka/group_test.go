package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// recorder is a handler set that records every message handled, per
// partition, and what each partition was opened from.
type recorder struct {
	mu      sync.Mutex
	handled map[int][]int64
	opened  map[int]Committed
	flushes int
}

type recPartition struct {
	r    *recorder
	part int
	next int64
}

func (r *recorder) open(_ context.Context, _ string, partition int, from Committed) (Handler, int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opened[partition] = from
	start := int64(kafka.FirstOffset)
	if from.Offset >= 0 {
		start = from.Offset
	}
	return &recPartition{r: r, part: partition, next: -1}, start, nil
}

func (p *recPartition) Handle(_ context.Context, msgs []kafka.Message) error {
	p.r.mu.Lock()
	defer p.r.mu.Unlock()
	for _, m := range msgs {
		p.r.handled[p.part] = append(p.r.handled[p.part], m.Offset)
		p.next = m.Offset + 1
	}
	return nil
}

func (p *recPartition) Idle(context.Context) error { return nil }

func (p *recPartition) Flush(context.Context) (Commit, error) {
	p.r.mu.Lock()
	defer p.r.mu.Unlock()
	p.r.flushes++
	return Commit{Offset: p.next, Metadata: "m" + strconv.FormatInt(p.next, 10)}, nil
}

func (p *recPartition) Close() error { return nil }

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, offs := range r.handled {
		n += len(offs)
	}
	return n
}

// TestGroupHandlesEachMessageOnceAndCommits runs the consumer-group engine
// against the in-process broker: every message is handled once, in offset
// order per partition; a clean stop commits what Flush returned, metadata
// included; a second run starts from there and handles nothing again.
func TestGroupHandlesEachMessageOnceAndCommits(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "in"), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o := Options{Brokers: c.ListenAddrs(), ClientID: "group-test"}
	const n = 3000
	w := o.Writer("in", &kafka.Hash{})
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprint(i % 97)), Value: []byte(fmt.Sprint(i))}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	run := func(until func(r *recorder) bool) *recorder {
		r := &recorder{handled: map[int][]int64{}, opened: map[int]Committed{}}
		g := &Group{Options: o, ID: "g", Topics: []string{"in"}, Open: r.open, CommitInterval: 50 * time.Millisecond,
			IdleAfter: 50 * time.Millisecond, SessionTimeout: time.Second, RebalanceTimeout: 2 * time.Second, MaxBytes: 1 << 20,
			Log: slog.New(slog.DiscardHandler)}
		gctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- g.Run(gctx) }()
		for !until(r) {
			select {
			case err := <-done:
				t.Fatalf("group stopped early: %v", err)
			case <-ctx.Done():
				t.Fatalf("timed out with %d of %d messages handled", r.count(), n)
			case <-time.After(20 * time.Millisecond):
			}
		}
		stop()
		if err := <-done; err != nil {
			t.Fatalf("clean stop: %v", err)
		}
		return r
	}

	first := run(func(r *recorder) bool { return r.count() == n })
	for p, offs := range first.handled {
		for i, off := range offs {
			if off != int64(i) {
				t.Fatalf("partition %d: message %d has offset %d, want every offset once in order", p, i, off)
			}
		}
	}
	// The second run opens every partition from the first run's final commit.
	second := run(func(r *recorder) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.opened) == 3
	})
	for p, from := range second.opened {
		want := int64(len(first.handled[p]))
		if from.Offset != want || from.Metadata != "m"+strconv.FormatInt(want, 10) {
			t.Errorf("partition %d reopened from %+v, want offset %d with its metadata", p, from, want)
		}
	}
	if got := second.count(); got != 0 {
		t.Errorf("second run handled %d messages again", got)
	}
}
