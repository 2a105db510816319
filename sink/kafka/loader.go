package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	kafkaingest "github.com/obolus/obolus/ingest/kafka"
	"github.com/obolus/obolus/schemas"
)

// Store is where the loader writes: the store contract (see sink/storetest),
// called without a window, so that answers replace their invocation's
// stored rows unless those carry a higher version, and re-delivered and
// out-of-date answers change nothing.
type Store interface {
	ReplaceAttributionChunks(ctx context.Context, from, to time.Time, chunks [][]schemas.Attribution) (schemas.WriteStats, error)
	WriteDeadLetters(ctx context.Context, dl []schemas.DeadLetter) error
}

func (p *loadPartition) replace(ctx context.Context, rows []schemas.Attribution) error {
	st, err := p.l.Store.ReplaceAttributionChunks(ctx, time.Time{}, time.Time{}, [][]schemas.Attribution{rows})
	if err == nil {
		p.l.Counts.Stale.Add(st.Stale)
	}
	return err
}

// LoaderCounts counts what the loader wrote, across partitions.
type LoaderCounts struct {
	Answers, Rows, DeadLetters atomic.Int64
	// Stale rows were not written: the store held their invocation at a
	// higher version (a redelivery, or an answer a batch run superseded).
	Stale atomic.Int64
}

// Loader consumes the output and dead-letter topics into a Store in
// micro-batches, one per commit interval, and commits a position only after
// the batch is written.
type Loader struct {
	Store           Store
	OutputTopic     string
	DeadLetterTopic string
	Counts          *LoaderCounts
	// Alerts, when set, raises budget alerts after each flush from every
	// complete answer the flush read.
	Alerts *Alerter
	Log    *slog.Logger
}

// Open is the Opener of the loading group.
func (l *Loader) Open(_ context.Context, topic string, partition int, from kafkaingest.Committed) (kafkaingest.Handler, int64, error) {
	start := int64(kafka.FirstOffset)
	if from.Offset >= 0 {
		start = from.Offset
	}
	return &loadPartition{l: l, topic: topic, partition: partition, next: -1,
		open: map[answerKey]*answer{}, ready: map[string][]schemas.Attribution{}}, start, nil
}

type answerKey struct {
	inv     string
	version int64
}

// answer collects the rows of one answer as its messages arrive.
type answer struct {
	rows  []schemas.Attribution
	have  int
	first int64 // offset of the earliest message seen
}

type loadPartition struct {
	l         *Loader
	topic     string
	partition int
	next      int64
	open      map[answerKey]*answer            // incomplete answers
	ready     map[string][]schemas.Attribution // complete answers, the highest version per invocation
	// completed are every answer completed since the last flush, for the
	// alerts' ledger, which counts superseded versions too.
	completed [][]schemas.Attribution
	dead      []schemas.DeadLetter
}

func (p *loadPartition) Handle(_ context.Context, msgs []kafka.Message) error {
	for i := range msgs {
		m := &msgs[i]
		p.next = m.Offset + 1
		if m.Topic == p.l.DeadLetterTopic {
			var dl schemas.DeadLetter
			if err := json.Unmarshal(m.Value, &dl); err != nil {
				p.refuse(m, "dead letter is not a JSON DeadLetter: "+err.Error())
				continue
			}
			p.dead = append(p.dead, dl)
			continue
		}
		if err := p.row(m); err != nil {
			p.refuse(m, err.Error())
		}
	}
	return nil
}

func (p *loadPartition) row(m *kafka.Message) error {
	var r schemas.Attribution
	if err := json.Unmarshal(m.Value, &r); err != nil {
		return fmt.Errorf("attribution is not JSON: %w", err)
	}
	if r.InvocationID == "" {
		return fmt.Errorf("attribution has no invocation_id")
	}
	i, n := 1, 1
	if v := headerValue(m, HeaderPart); v != "" {
		var err error
		if i, n, err = ParsePart(v); err != nil {
			return err
		}
	}
	superseded := false
	if prev, ok := p.ready[r.InvocationID]; ok && prev[0].Version > r.Version {
		// Superseded already. Only the alerts' ledger, which counts every
		// answer whatever order its copies arrive in, still wants it whole.
		if p.l.Alerts == nil {
			return nil
		}
		superseded = true
	}
	k := answerKey{r.InvocationID, r.Version}
	a := p.open[k]
	if a == nil {
		a = &answer{rows: make([]schemas.Attribution, n), first: m.Offset}
		p.open[k] = a
	}
	if len(a.rows) != n {
		return fmt.Errorf("invocation %s version %d: part %d/%d, but an earlier part said %d parts", r.InvocationID, r.Version, i, n, len(a.rows))
	}
	if a.rows[i-1].InvocationID == "" {
		a.have++
	}
	a.rows[i-1] = r
	if a.have == n {
		delete(p.open, k)
		if p.l.Alerts != nil {
			p.completed = append(p.completed, a.rows)
		}
		if superseded {
			return nil
		}
		p.ready[r.InvocationID] = a.rows
		// An incomplete older answer of the same invocation will never matter now.
		for ok := range p.open {
			if ok.inv == r.InvocationID && ok.version < r.Version {
				delete(p.open, ok)
			}
		}
	}
	return nil
}

func (p *loadPartition) refuse(m *kafka.Message, reason string) {
	rec := m.Value
	if len(rec) > schemas.MaxDeadLetterRecord {
		rec = rec[:schemas.MaxDeadLetterRecord]
	}
	p.dead = append(p.dead, schemas.DeadLetter{Source: m.Topic, Location: kafkaingest.Location(m.Partition, m.Offset),
		Kind: "attribution", Reason: reason, Record: string(rec), DeadLetteredAt: time.Now().UTC()})
	p.l.Log.Warn("unusable message on the output topic", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "reason", reason)
}

func (p *loadPartition) Idle(context.Context) error { return nil }

func (p *loadPartition) Flush(ctx context.Context) (kafkaingest.Commit, error) {
	if len(p.ready) > 0 {
		rows := make([]schemas.Attribution, 0, len(p.ready))
		for _, a := range p.ready {
			rows = append(rows, a...)
		}
		if err := p.replace(ctx, rows); err != nil {
			// One bad answer must not hold back the rest: write them one
			// by one and keep the refused ones as dead letters.
			p.l.Log.Warn("attribution batch refused; writing answers one by one", "rows", len(rows), "err", err)
			for inv, a := range p.ready {
				if err := p.replace(ctx, a); err != nil {
					if ctx.Err() != nil {
						return kafkaingest.Commit{}, err
					}
					b, _ := json.Marshal(a)
					p.dead = append(p.dead, schemas.DeadLetter{Source: p.topic, Location: "invocation " + inv + " version " + strconv.FormatInt(a[0].Version, 10),
						Kind: "attribution", Reason: "store refused the answer: " + err.Error(), Record: string(b), DeadLetteredAt: time.Now().UTC()})
				}
			}
		}
		p.l.Counts.Answers.Add(int64(len(p.ready)))
		p.l.Counts.Rows.Add(int64(len(rows)))
		clear(p.ready)
	}
	if len(p.dead) > 0 {
		if err := p.l.Store.WriteDeadLetters(ctx, p.dead); err != nil {
			return kafkaingest.Commit{}, fmt.Errorf("write %d dead letters: %w", len(p.dead), err)
		}
		p.l.Counts.DeadLetters.Add(int64(len(p.dead)))
		clear(p.dead)
		p.dead = p.dead[:0]
	}
	if len(p.completed) > 0 {
		// After the answers are stored and before the commit: a crash in
		// between reads the answers again, and the ledger and the outbox
		// take them again without change.
		if err := p.l.Alerts.Observe(ctx, p.completed); err != nil {
			return kafkaingest.Commit{}, err
		}
		clear(p.completed)
		p.completed = p.completed[:0]
	}
	// An incomplete answer's messages are read again after a restart.
	commit := p.next
	for _, a := range p.open {
		commit = min(commit, a.first)
	}
	return kafkaingest.Commit{Offset: commit}, nil
}

func (p *loadPartition) Close() error { return nil }

func headerValue(m *kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
