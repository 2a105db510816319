package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	kafkaingest "github.com/obolus/obolus/ingest/kafka"
	"github.com/obolus/obolus/internal/stream"
	"github.com/obolus/obolus/schemas"
)

// capture is a MessageWriter that keeps copies of what it was given: a
// writer may not hold on to the messages' bytes once it returned.
type capture struct{ msgs []kafka.Message }

func (c *capture) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	for _, m := range msgs {
		m.Key, m.Value = bytes.Clone(m.Key), bytes.Clone(m.Value)
		hs := make([]kafka.Header, len(m.Headers))
		for i, h := range m.Headers {
			hs[i] = kafka.Header{Key: h.Key, Value: bytes.Clone(h.Value)}
		}
		m.Headers = hs
		c.msgs = append(c.msgs, m)
	}
	return nil
}

// memStore keeps the highest version of each invocation, as the DuckDB
// store's version guard does, and refuses invocations named "refuse".
type memStore struct {
	rows map[string][]schemas.Attribution
	dead []schemas.DeadLetter
}

func (s *memStore) ReplaceAttributionChunks(_ context.Context, _, _ time.Time, chunks [][]schemas.Attribution) (schemas.WriteStats, error) {
	var st schemas.WriteStats
	by := map[string][]schemas.Attribution{}
	for _, rows := range chunks {
		for _, r := range rows {
			if r.InvocationID == "refuse" {
				return st, errors.New("refused")
			}
			by[r.InvocationID] = append(by[r.InvocationID], r)
		}
	}
	for inv, rs := range by {
		if prev, ok := s.rows[inv]; !ok || prev[0].Version <= rs[0].Version {
			s.rows[inv] = rs
		} else {
			st.Stale += int64(len(rs))
			st.StaleInvocations++
		}
	}
	return st, nil
}

func (s *memStore) WriteDeadLetters(_ context.Context, dl []schemas.DeadLetter) error {
	s.dead = append(s.dead, dl...)
	return nil
}

func output(inv string, version int64, users ...string) stream.Output {
	var o stream.Output
	for _, u := range users {
		o.Rows = append(o.Rows, schemas.Attribution{InvocationID: inv, EndUser: u, Version: version, Weight: 1 / float64(len(users))})
	}
	o.SourceTime = time.Unix(100, 0)
	return o
}

func TestProducerMessages(t *testing.T) {
	var c capture
	p := Producer{W: &c}
	restated := output("i2", 8, "bo")
	restated.Restatement = true
	if err := p.Append([]stream.Output{output("i1", 7, "ana", "bo"), restated}); err != nil {
		t.Fatal(err)
	}
	if p.Buffered() != 3 {
		t.Fatalf("buffered %d, want 3", p.Buffered())
	}
	if err := p.Write(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"i1 7 1/2 0", "i1 7 2/2 0", "i2 8 1/1 1"}
	var got []string
	for _, m := range c.msgs {
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		var r schemas.Attribution
		if err := json.Unmarshal(m.Value, &r); err != nil || r.InvocationID != string(m.Key) || h[HeaderSourceTime] != "100000000000" {
			t.Errorf("message %q %s %v: %v", m.Key, m.Value, h, err)
		}
		got = append(got, string(m.Key)+" "+h[HeaderVersion]+" "+h[HeaderPart]+" "+h[HeaderRestatement])
	}
	if !slices.Equal(got, want) {
		t.Errorf("messages %q, want %q", got, want)
	}
}

// TestLoader: answers are written once complete, older versions lose, the
// commit stops before an answer still missing parts, and a message that is
// not an attribution becomes a dead letter instead of stopping the load.
func TestLoader(t *testing.T) {
	var c capture
	p := Producer{W: &c}
	_ = p.Append([]stream.Output{output("i1", 5, "ana"), output("i2", 5, "ana", "bo"), output("i1", 9, "cy"), output("i1", 7, "dee"), output("i3", 1, "eve", "fay")})
	_ = p.Write(context.Background())
	msgs := c.msgs
	for i := range msgs {
		msgs[i].Topic, msgs[i].Offset = "out", int64(i)
	}
	// i3's second part has not arrived yet; an unreadable message sits between.
	bad := kafka.Message{Topic: "out", Offset: int64(len(msgs)), Value: []byte("garbage")}
	msgs = append(msgs[:len(msgs)-1], bad)

	st := &memStore{rows: map[string][]schemas.Attribution{}}
	l := &Loader{Store: st, OutputTopic: "out", DeadLetterTopic: "dead", Counts: &LoaderCounts{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h, start, err := l.Open(context.Background(), "out", 0, kafkaingest.Committed{Offset: -1})
	if err != nil || start != kafka.FirstOffset {
		t.Fatalf("open: start %d, %v", start, err)
	}
	if err := h.Handle(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	cm, err := h.Flush(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := st.rows["i1"]; len(got) != 1 || got[0].EndUser != "cy" {
		t.Errorf("i1 = %+v, want version 9 (cy)", got)
	}
	if got := st.rows["i2"]; len(got) != 2 {
		t.Errorf("i2 = %+v, want both split rows", got)
	}
	if _, ok := st.rows["i3"]; ok {
		t.Error("i3 written with a part missing")
	}
	i3First := int64(len(c.msgs) - 2)
	if cm.Offset != i3First {
		t.Errorf("commit at %d, want %d (the first part of the incomplete i3)", cm.Offset, i3First)
	}
	if len(st.dead) != 1 || st.dead[0].Location != kafkaingest.Location(0, bad.Offset) {
		t.Errorf("dead letters %+v, want the garbage message", st.dead)
	}
}
