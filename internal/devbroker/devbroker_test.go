package devbroker

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/obolus/obolus/ingest"
	kafkaingest "github.com/obolus/obolus/ingest/kafka"
	"github.com/obolus/obolus/internal/app"
	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/synth"
)

// TestReplay replays a generated workload into the broker and reads it back:
// every row arrives once, with the headers the stream reads, and each topic
// partition holds its rows in arrival order.
func TestReplay(t *testing.T) {
	dir := t.TempDir()
	res, err := synth.Generate(context.Background(), synth.Config{Seed: 1, AgentRequests: 200, Duration: time.Hour}.WithDefaults(), dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Start(Options{Partitions: 3, Topics: []string{"u", "a"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, err := config.Load(config.New(), filepath.Join(dir, synth.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	o := kafkaingest.Options{Brokers: []string{b.Addr()}}
	st, err := Replay(context.Background(), o, ReplayOptions{Sources: app.Specs(c), LateDelay: 10 * time.Minute, UsageTopic: "u", AgentsTopic: "a", Rate: 20000})
	if err != nil {
		t.Fatal(err)
	}
	late := 0
	for _, s := range c.Sources {
		if strings.Contains(s.Path, "agents_late") {
			late++
		}
	}
	if st.Usage != res.UsageRows+res.LegacyRows {
		t.Errorf("replayed %d usage rows, generated %d", st.Usage, res.UsageRows+res.LegacyRows)
	}
	counts := map[string]int{}
	for _, topic := range []string{"u", "a"} {
		for p := range 3 {
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.Addr()}, Topic: topic, Partition: p, MaxWait: 50 * time.Millisecond})
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			var prev time.Time
			for {
				m, err := r.FetchMessage(ctx)
				if err != nil {
					break
				}
				kind := ""
				for _, h := range m.Headers {
					if h.Key == kafkaingest.HeaderKind {
						kind = string(h.Value)
					}
				}
				counts[kind]++
				var at time.Time
				switch kind {
				case "usage":
					ev, err := ingest.DecodeUsage(m.Value)
					if err != nil {
						t.Fatal(err)
					}
					at = ev.EventTime.Add(time.Duration(ev.LatencyMS) * time.Millisecond)
				case "legacy_usage":
					ev, _ := ingest.DecodeLegacyUsage(m.Value)
					at = ev.EventTime
				}
				if !at.IsZero() {
					if at.Before(prev) {
						t.Fatalf("%s/%d offset %d arrives at %s, before the previous row's %s", topic, p, m.Offset, at, prev)
					}
					prev = at
				}
				if m.Offset+1 >= m.HighWaterMark {
					break
				}
			}
			cancel()
			r.Close()
		}
	}
	if counts["usage"]+counts["legacy_usage"] != st.Usage || counts["payload"]+counts["trace"] != st.Agents || counts[""] != 0 {
		t.Errorf("read back %v, replayed %d usage and %d agent rows", counts, st.Usage, st.Agents)
	}
}
