package devbroker

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/obolus/obolus/ingest"
	kafkaingest "github.com/obolus/obolus/ingest/kafka"
)

// ReplayOptions say what to replay where.
type ReplayOptions struct {
	// Sources are the workload's sources (obolus.yaml); only JSONL files
	// are replayed, as the raw rows a Databricks export would carry.
	Sources []ingest.Spec
	// Rate is messages per second across both topics; 0 sends as fast as
	// the broker takes them.
	Rate float64
	// LateDelay is how long after its request ended an agent log from a
	// directory named agents_late arrives (in the replay's event order).
	LateDelay               time.Duration
	UsageTopic, AgentsTopic string
	// Progress, when set, is told how many messages were sent.
	Progress func(sent, total int)
}

// ReplayStats counts what a replay sent.
type ReplayStats struct {
	Usage, Agents int
	Elapsed       time.Duration
}

// message is one row to send, with when it would arrive.
type message struct {
	at    time.Time
	seq   int
	topic string
	msg   kafka.Message
}

// Replay sends a workload's rows in arrival order: a usage row when its call
// finished (event_time + latency_ms), an agent log row when its request
// ended, a late one LateDelay after that. Rows carry the headers the stream
// reads (obolus-kind, obolus-agent-endpoint). A row that does not decode is
// sent anyway, where it was in its file, for the stream to dead-letter.
func Replay(ctx context.Context, o kafkaingest.Options, ro ReplayOptions) (ReplayStats, error) {
	var msgs []message
	var st ReplayStats
	for _, s := range ro.Sources {
		if s.Kind == ingest.KindServedEntities {
			continue // not a stream input: the workers load them when they start
		}
		files, err := sourceFiles(s.Path)
		if err != nil {
			return st, err
		}
		late := slices.Contains(strings.Split(filepath.ToSlash(s.Path), "/"), "agents_late")
		for _, f := range files {
			if msgs, err = readRows(f, s, late, ro, msgs); err != nil {
				return st, err
			}
		}
	}
	slices.SortFunc(msgs, func(a, b message) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	w := o.Writer("", &kafka.Hash{})
	defer w.Close()
	start := time.Now()
	chunk := 2000
	var interval time.Duration
	if ro.Rate > 0 {
		chunk = max(1, min(chunk, int(ro.Rate/20)))
		interval = time.Duration(float64(chunk) / ro.Rate * float64(time.Second))
	}
	next := time.Now()
	batch := make([]kafka.Message, 0, chunk)
	for i := 0; i < len(msgs); i += chunk {
		batch = batch[:0]
		now := time.Now()
		for _, m := range msgs[i:min(i+chunk, len(msgs))] {
			// The produce time is what latency is measured from.
			m.msg.Topic, m.msg.Time = m.topic, now
			batch = append(batch, m.msg)
			if m.topic == ro.UsageTopic {
				st.Usage++
			} else {
				st.Agents++
			}
		}
		if err := w.WriteMessages(ctx, batch...); err != nil {
			return st, fmt.Errorf("replay: write %d messages: %w", len(batch), err)
		}
		if ro.Progress != nil {
			ro.Progress(i+len(batch), len(msgs))
		}
		if interval > 0 {
			next = next.Add(interval)
			select {
			case <-ctx.Done():
				return st, ctx.Err()
			case <-time.After(time.Until(next)):
			}
		}
	}
	st.Elapsed = time.Since(start)
	return st, nil
}

func sourceFiles(path string) ([]string, error) {
	var files []string
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		for _, e := range entries {
			if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") && !strings.HasPrefix(e.Name(), "_") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
	} else {
		m, err := filepath.Glob(path)
		if err != nil {
			return nil, fmt.Errorf("replay: source path %s: %w", path, err)
		}
		files = m
	}
	for _, f := range files {
		switch ext := strings.ToLower(filepath.Ext(f)); ext {
		case ".jsonl", ".ndjson", ".json":
		default:
			return nil, fmt.Errorf("replay: %s is not JSONL; replay sends raw JSON rows (generate the workload with --format jsonl)", f)
		}
	}
	slices.Sort(files)
	return files, nil
}

func readRows(path string, s ingest.Spec, late bool, ro ReplayOptions, msgs []message) ([]message, error) {
	f, err := os.Open(path)
	if err != nil {
		return msgs, fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), ingest.MaxLine)
	var prev time.Time
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		m := message{seq: len(msgs), msg: kafka.Message{Value: bytes.Clone(line), Headers: []kafka.Header{{Key: kafkaingest.HeaderKind, Value: []byte(string(s.Kind))}}}}
		var key string
		switch s.Kind {
		case ingest.KindUsage, ingest.KindLegacyUsage:
			m.topic = ro.UsageTopic
			decode := ingest.DecodeUsage
			if s.Kind == ingest.KindLegacyUsage {
				decode = ingest.DecodeLegacyUsage
			}
			if ev, err := decode(line); err == nil {
				m.at, key = ev.EventTime.Add(time.Duration(ev.LatencyMS)*time.Millisecond), ev.InvocationID
			}
		case ingest.KindPayload, ingest.KindTrace, ingest.KindOTelSpans:
			m.topic = ro.AgentsTopic
			if s.AgentEndpoint != "" {
				m.msg.Headers = append(m.msg.Headers, kafka.Header{Key: kafkaingest.HeaderAgentEndpoint, Value: []byte(s.AgentEndpoint)})
			}
			if s.Kind == ingest.KindOTelSpans {
				// A span arrives when it ended; a child span the stream
				// will skip goes where it is in its file, after its root.
				keys := s.SpanKeys.OrDefault()
				if a, err := ingest.DecodeSpanRequest(line, &keys, s.AgentEndpoint, nil); err == nil {
					m.at, key = a.End(), a.TraceID
				}
			} else if s.Kind == ingest.KindPayload {
				if p, err := ingest.DecodePayload(line); err == nil {
					m.at, key = p.AgentRequest("", "").End(), p.DatabricksRequestID
				}
			} else if t, err := ingest.DecodeTrace(line); err == nil {
				m.at, key = t.AgentRequest("", "").End(), t.TraceID
			}
			if late && !m.at.IsZero() {
				m.at = m.at.Add(ro.LateDelay)
			}
		default:
			return msgs, fmt.Errorf("replay: source %s has kind %q", path, s.Kind)
		}
		if m.at.IsZero() {
			m.at = prev // an undecodable row goes where it was
		}
		prev = m.at
		m.msg.Key = []byte(key)
		msgs = append(msgs, m)
	}
	if err := sc.Err(); err != nil {
		return msgs, fmt.Errorf("replay: read %s: %w", path, err)
	}
	return msgs, nil
}
