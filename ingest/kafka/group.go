package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/obolus/obolus/internal/retry"
)

// BatchMax is the most messages one Handle call gets. A call with fewer
// means the handler has everything fetched so far: a handler that buffers
// writes should write then, so that a trickle of input is not held back.
const BatchMax = 512

// Handler processes one assigned partition. A Group calls its methods from
// one goroutine.
type Handler interface {
	// Handle processes messages of the partition, in offset order.
	Handle(ctx context.Context, msgs []kafka.Message) error
	// Idle is called when the partition has received nothing for the group's
	// idle interval and has been read to its end, and again after each
	// further such interval.
	Idle(ctx context.Context) error
	// Flush makes every output of the messages handled so far durable and
	// returns the position to commit: offsets below Offset need no
	// redelivery. The group commits only what Flush returned.
	Flush(ctx context.Context) (Commit, error)
	// Close releases the handler after its partition was revoked.
	Close() error
}

// Commit is a position to commit, with metadata stored next to it.
type Commit struct {
	Offset   int64
	Metadata string
}

// Committed is what the group had committed for a partition; Offset < 0
// means nothing.
type Committed struct {
	Offset   int64
	Metadata string
}

// Opener creates the handler of a newly assigned partition and says where to
// start reading (an offset, or kafka.FirstOffset).
type Opener func(ctx context.Context, topic string, partition int, from Committed) (Handler, int64, error)

// Group runs one Kafka consumer group: kafka-go's group protocol assigns
// partitions across every process with the same group id, which is how the
// stream scales out. Each assigned partition gets a reader and a handler;
// the handler is flushed and its position committed every CommitInterval,
// and once more when the partition is revoked or the group closes, so a
// clean shutdown loses nothing and re-delivers nothing.
type Group struct {
	Options Options
	ID      string
	Topics  []string
	Open    Opener
	// CommitInterval is how often outputs are flushed and positions committed.
	CommitInterval time.Duration
	// IdleAfter is the quiet time after which Handler.Idle is called.
	IdleAfter        time.Duration
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	// MaxBytes bounds one fetch; it must exceed the largest message.
	MaxBytes int
	Log      *slog.Logger
	// Status, when set, receives lag and assignment updates.
	Status *Status
}

// Run joins the group and processes assigned partitions until ctx ends,
// then flushes, commits and leaves the group. It returns nil after a clean
// shutdown.
func (g *Group) Run(ctx context.Context) error {
	log := g.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("group", g.ID)
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                g.ID,
		Brokers:           g.Options.Brokers,
		Dialer:            g.Options.Dialer(),
		Topics:            g.Topics,
		HeartbeatInterval: max(g.SessionTimeout/4, 100*time.Millisecond),
		SessionTimeout:    g.SessionTimeout,
		RebalanceTimeout:  g.RebalanceTimeout,
		JoinGroupBackoff:  time.Second,
		StartOffset:       kafka.FirstOffset,
		// A JoinGroup may wait out a whole rebalance before answering.
		Timeout:     GroupRequestTimeout(g.SessionTimeout, g.RebalanceTimeout),
		ErrorLogger: kafka.LoggerFunc(func(f string, a ...any) { log.Debug("kafka group: " + fmt.Sprintf(f, a...)) }),
	})
	if err != nil {
		return fmt.Errorf("consumer group %s: %w", g.ID, err)
	}
	// Closing the group ends the generation, which waits for every
	// partition's final flush and commit, and then leaves the group.
	closed := make(chan error, 1)
	stop := context.AfterFunc(ctx, func() { closed <- cg.Close() })
	for {
		gen, err := cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				var cerr error
				if stop() {
					cerr = cg.Close()
				} else {
					cerr = <-closed
				}
				if cerr != nil {
					log.Warn("leave consumer group", "err", cerr)
				}
				g.Status.setJoined(g.ID, false)
				return nil
			}
			log.Warn("consumer group: join failed, retrying", "err", err)
			g.Status.setJoined(g.ID, false)
			continue
		}
		n := 0
		for topic, parts := range gen.Assignments {
			for _, pa := range parts {
				n++
				gen.Start(func(pctx context.Context) { g.runPartition(pctx, log, gen, topic, pa.ID) })
			}
		}
		g.Status.setJoined(g.ID, true)
		log.Info("consumer group generation", "generation", gen.ID, "member", gen.MemberID, "partitions", n)
	}
}

// runPartition drives one partition for the life of a generation. Returning
// early ends the generation, so errors are retried by rejoining: the
// partition comes back from its last commit.
func (g *Group) runPartition(ctx context.Context, log *slog.Logger, gen *kafka.Generation, topic string, partition int) {
	log = log.With("topic", topic, "partition", partition)
	client := g.Options.Client()
	from, err := g.committed(ctx, client, topic, partition)
	if err != nil {
		log.Error("read committed offset", "err", err)
		return
	}
	h, start, err := g.Open(ctx, topic, partition, from)
	if err != nil {
		log.Error("open partition", "err", err)
		return
	}
	defer func() {
		if err := h.Close(); err != nil {
			log.Warn("close partition handler", "err", err)
		}
	}()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:         g.Options.Brokers,
		Topic:           topic,
		Partition:       partition,
		Dialer:          g.Options.Dialer(),
		MinBytes:        1,
		MaxBytes:        max(g.MaxBytes, 1<<20),
		MaxWait:         200 * time.Millisecond,
		QueueCapacity:   2000,
		ReadLagInterval: -1,
		ReadBackoffMin:  20 * time.Millisecond,
		ReadBackoffMax:  200 * time.Millisecond,
		ErrorLogger:     kafka.LoggerFunc(func(f string, a ...any) { log.Debug("kafka reader: " + fmt.Sprintf(f, a...)) }),
	})
	defer r.Close()
	if err := r.SetOffset(start); err != nil {
		log.Error("seek", "offset", start, "err", err)
		return
	}
	key := PartitionKey{Group: g.ID, Topic: topic, Partition: partition}
	g.Status.assign(key, true)
	defer g.Status.assign(key, false)
	log.Debug("partition assigned", "start", start, "committed", from.Offset)

	msgs := make(chan kafka.Message, 512)
	fetchCtx, stopFetch := context.WithCancel(ctx)
	var fetching sync.WaitGroup
	fetching.Add(1)
	go func() {
		defer fetching.Done()
		defer close(msgs)
		for {
			m, err := r.FetchMessage(fetchCtx)
			if err != nil {
				if fetchCtx.Err() == nil {
					log.Warn("fetch", "err", err)
				}
				return
			}
			select {
			case msgs <- m:
			case <-fetchCtx.Done():
				return
			}
		}
	}()

	last := Commit{Offset: -1}
	commit := func(cctx context.Context) error {
		c, err := h.Flush(cctx)
		if err != nil {
			return fmt.Errorf("flush: %w", err)
		}
		if c == last || c.Offset < 0 {
			return nil
		}
		if err := commitOffset(cctx, client, gen, topic, partition, c); err != nil {
			return err
		}
		last = c
		g.Status.committed(key, c.Offset)
		return nil
	}
	final := func() {
		stopFetch()
		fetching.Wait()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), FinalCommitTimeout)
		defer cancel()
		if err := commit(cctx); err != nil {
			log.Warn("final commit; the partition resumes from its previous commit", "err", err)
		}
	}

	ticker := time.NewTicker(g.CommitInterval)
	defer ticker.Stop()
	idle := time.NewTimer(g.IdleAfter)
	defer idle.Stop()
	batch := make([]kafka.Message, 0, BatchMax)
	for {
		select {
		case <-ctx.Done():
			final()
			return
		case m, ok := <-msgs:
			if !ok {
				final()
				return
			}
			batch = append(batch[:0], m)
		drain:
			for len(batch) < cap(batch) {
				select {
				case m, ok := <-msgs:
					if !ok {
						break drain
					}
					batch = append(batch, m)
				default:
					break drain
				}
			}
			if err := h.Handle(ctx, batch); err != nil {
				log.Error("handle messages; rejoining to retry from the last commit", "err", err)
				return
			}
			tail := batch[len(batch)-1]
			g.Status.progress(key, tail.Offset+1, tail.HighWaterMark)
			idle.Reset(g.IdleAfter)
		case <-ticker.C:
			if err := commit(ctx); err != nil {
				if ctx.Err() != nil {
					continue
				}
				log.Error("commit; rejoining to retry from the last commit", "err", err)
				return
			}
		case <-idle.C:
			// Quiet is not enough: a reader starved of CPU is quiet too.
			// Only a partition read to its end is idle.
			if len(msgs) == 0 {
				if lag, err := r.ReadLag(ctx); err == nil && lag <= 0 && len(msgs) == 0 {
					if err := h.Idle(ctx); err != nil && ctx.Err() == nil {
						log.Warn("idle handler", "err", err)
					}
				}
			}
			idle.Reset(g.IdleAfter)
		}
	}
}

func (g *Group) committed(ctx context.Context, client *kafka.Client, topic string, partition int) (Committed, error) {
	c := Committed{Offset: -1}
	err := retry.Do(ctx, retry.Policy{Attempts: 5, Wait: 200 * time.Millisecond}, func(ctx context.Context) error {
		resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: g.ID, Topics: map[string][]int{topic: {partition}}})
		if err == nil && resp.Error != nil {
			err = resp.Error
		}
		if err != nil {
			return err
		}
		for _, p := range resp.Topics[topic] {
			if p.Partition == partition {
				if p.Error != nil {
					return p.Error
				}
				c = Committed{Offset: p.CommittedOffset, Metadata: p.Metadata}
				return nil
			}
		}
		return nil // nothing committed yet
	})
	if err != nil {
		if ctx.Err() != nil {
			return Committed{}, ctx.Err()
		}
		return Committed{}, fmt.Errorf("offset fetch for group %s %s/%d: %w", g.ID, topic, partition, err)
	}
	return c, nil
}

func commitOffset(ctx context.Context, client *kafka.Client, gen *kafka.Generation, topic string, partition int, c Commit) error {
	resp, err := client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{
		GroupID:      gen.GroupID,
		GenerationID: int(gen.ID),
		MemberID:     gen.MemberID,
		Topics:       map[string][]kafka.OffsetCommit{topic: {{Partition: partition, Offset: c.Offset, Metadata: c.Metadata}}},
	})
	if err != nil {
		return fmt.Errorf("commit %s/%d offset %d: %w", topic, partition, c.Offset, err)
	}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return fmt.Errorf("commit %s/%d offset %d: %w", topic, partition, c.Offset, p.Error)
		}
	}
	return nil
}

// PartitionKey names a partition of a group.
type PartitionKey struct {
	Group     string
	Topic     string
	Partition int
}

// PartitionStatus is what a group knows of one of its partitions.
type PartitionStatus struct {
	PartitionKey
	// Next is the offset after the last message handled; Committed the last
	// committed position (-1: none this assignment).
	Next, Committed int64
	// Lag is how many messages were behind the partition's end at the last fetch.
	Lag int64
}

// Status collects what every group of a process is doing, for the health
// endpoints and the consumer lag metric. The zero value is not usable; a nil
// *Status ignores updates.
type Status struct {
	mu     sync.Mutex
	joined map[string]bool
	parts  map[PartitionKey]*PartitionStatus
	active atomic.Int64
}

// NewStatus returns an empty status.
func NewStatus() *Status {
	return &Status{joined: map[string]bool{}, parts: map[PartitionKey]*PartitionStatus{}}
}

func (s *Status) setJoined(group string, v bool) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.joined[group] = v
}

func (s *Status) assign(k PartitionKey, on bool) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.parts[k] = &PartitionStatus{PartitionKey: k, Committed: -1}
	} else {
		delete(s.parts, k)
	}
}

func (s *Status) progress(k PartitionKey, next, hwm int64) {
	if s == nil {
		return
	}
	s.active.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.parts[k]; p != nil {
		p.Next, p.Lag = next, max(hwm-next, 0)
	}
}

func (s *Status) committed(k PartitionKey, off int64) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.parts[k]; p != nil {
		p.Committed = off
	}
}

// Joined reports whether the group has a current generation.
func (s *Status) Joined(group string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.joined[group]
}

// Partitions returns the assigned partitions of every group.
func (s *Status) Partitions() []PartitionStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PartitionStatus, 0, len(s.parts))
	for _, p := range s.parts {
		out = append(out, *p)
	}
	return out
}

// Batches counts message batches handled, for liveness checks.
func (s *Status) Batches() int64 { return s.active.Load() }

// FinalCommitTimeout bounds a partition's last flush and commit when its
// group stops (SIGTERM): the partitions of a group flush in parallel.
const FinalCommitTimeout = 30 * time.Second

// GroupRequestTimeout is how long a request to the group coordinator
// (JoinGroup, LeaveGroup) may take: a JoinGroup may wait out a whole
// rebalance before it is answered.
func GroupRequestTimeout(session, rebalance time.Duration) time.Duration {
	return max(10*time.Second, rebalance+session+5*time.Second)
}

// StopBound is the longest a group takes to stop once asked: every
// partition's final flush and commit, then leaving the group.
func StopBound(session, rebalance time.Duration) time.Duration {
	return FinalCommitTimeout + GroupRequestTimeout(session, rebalance)
}
