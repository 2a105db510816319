package worker

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/obolus/obolus/enrich"
	kafkaingest "github.com/obolus/obolus/ingest/kafka"
	"github.com/obolus/obolus/internal/devbroker"
	"github.com/obolus/obolus/internal/stream"
	"github.com/obolus/obolus/schemas"
)

func testConfig(brokers []string) Config {
	return Config{
		Options: kafkaingest.Options{Brokers: brokers, ClientID: "worker-test"},
		Group:   "wt",
		Topics:  Topics{Usage: "u", Agents: "a", Keyed: "k", Output: "o", DeadLetter: "d"},
		Stages:  []string{StageRekey, StageJoin}, CreateTopics: true, Partitions: 2,
		CommitInterval: 100 * time.Millisecond, IdleFlush: 200 * time.Millisecond,
		SessionTimeout: time.Second, RebalanceTimeout: 2 * time.Second,
		ProducerDelay: time.Second, MaxFuture: time.Hour, MaxMessageBytes: 1 << 20,
		Join:              stream.Config{Match: enrich.DefaultMatchConfig(), Grace: time.Minute, Horizon: time.Hour, Idle: 200 * time.Millisecond},
		ServicePrincipals: map[string]string{"bot": "sp-1"},
		Log:               slog.New(slog.DiscardHandler),
	}
}

func TestNewRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"no brokers", func(c *Config) { c.Options.Brokers = nil }, "stream.brokers"},
		{"unknown stage", func(c *Config) { c.Stages = []string{"shuffle"} }, "shuffle"},
		{"load without store", func(c *Config) { c.Stages = []string{StageLoad} }, "store"},
		{"no commit interval", func(c *Config) { c.CommitInterval = 0 }, "commit_interval"},
		{"bad join", func(c *Config) { c.Join.Grace = 0 }, "grace"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig([]string{"127.0.0.1:1"})
			tt.mut(&c)
			if _, err := New(c); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

// TestWorkerAttributes runs a worker's re-keying and join stages against
// the in-process broker: an agent request and a gateway call tagged with
// its id go in, the call comes out attributed to the request's user, and
// the worker stops cleanly when its context ends.
func TestWorkerAttributes(t *testing.T) {
	b, err := devbroker.Start(devbroker.Options{Partitions: 2, MinSessionTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg := testConfig([]string{b.Addr()})
	// The SDK's manual reader: the worker records into a real meter
	// provider, and the test collects from it.
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(context.Background())
	cfg.Meter = provider.Meter(Instrumentation)
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := kafkaingest.EnsureTopics(ctx, cfg.Options, 2, "u", "a", "k", "o", "d"); err != nil {
		t.Fatal(err)
	}
	send := func(topic, value string, headers ...string) {
		m := kafka.Message{Value: []byte(value), Time: time.Now()}
		for i := 0; i+1 < len(headers); i += 2 {
			m.Headers = append(m.Headers, kafka.Header{Key: headers[i], Value: []byte(headers[i+1])})
		}
		wr := cfg.Options.Writer(topic, &kafka.Hash{})
		defer wr.Close()
		if err := wr.WriteMessages(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	send("a", `{"databricks_request_id":"ar-1","request_time":"2026-11-01T10:00:00Z","execution_duration_ms":20000,"requester":"ana@example.com"}`,
		kafkaingest.HeaderKind, "payload", kafkaingest.HeaderAgentEndpoint, "bot")
	send("u", `{"invocation_id":"inv-1","event_time":"2026-11-01T10:00:05Z","requester":"sp-1","schema_version":1,`+
		`"request_tags":{"agent_request_id":"ar-1"},"input_tokens":10,"output_tokens":5,"total_tokens":15}`)

	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()

	// The answer arrives once the idle timer moves the watermark past the
	// grace period; read the output topic until it does.
	var got schemas.Attribution
	for got.InvocationID == "" {
		for p := range 2 {
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Options.Brokers, Topic: "o", Partition: p, MaxWait: 100 * time.Millisecond})
			rctx, rcancel := context.WithTimeout(ctx, 300*time.Millisecond)
			m, err := r.ReadMessage(rctx)
			rcancel()
			r.Close()
			if err == nil {
				if err := json.Unmarshal(m.Value, &got); err != nil {
					t.Fatal(err)
				}
			}
		}
		select {
		case err := <-done:
			t.Fatalf("worker stopped: %v", err)
		case <-ctx.Done():
			t.Fatal("no answer within the deadline")
		default:
		}
	}
	if got.InvocationID != "inv-1" || got.EndUser != "ana@example.com" || got.MatchMethod != schemas.MethodRequestID {
		t.Errorf("answer %s → %s by %s, want inv-1 → ana@example.com by request_id", got.InvocationID, got.EndUser, got.MatchMethod)
	}
	// The answer is counted once the output topic acknowledged it, just
	// after it became readable: collect until it shows, within ctx.
	want := map[string]int64{
		"obolus.stream.records_in kind=usage":                                 1,
		"obolus.stream.records_in kind=agent":                                 1,
		"obolus.stream.dead_letters stage=rekey":                              0,
		"obolus.stream.dead_letters stage=join":                               0,
		"obolus.stream.answers":                                               1,
		"obolus.stream.invocations match_method=request_id,restatement=false": 1,
	}
	var sums map[string]int64
	for {
		sums = collectSums(t, reader)
		if sums["obolus.stream.answers"] == 1 || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for k, n := range want {
		if v, ok := sums[k]; !ok || v != n {
			t.Errorf("%s = %d (recorded: %v), want %d", k, v, ok, n)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run after its context ended: %v, want a clean stop", err)
	}
	if st := w.Status(); st.Rekey.Usage != 1 || st.Rekey.Agents != 1 {
		t.Errorf("status %+v, want one usage and one agent message re-keyed", st.Rekey)
	}
}

// collectSums reads every sum (counter) point of the reader as
// "name attr=value,..." → value.
func collectSums(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				var kv []string
				for _, a := range dp.Attributes.ToSlice() {
					kv = append(kv, string(a.Key)+"="+a.Value.String())
				}
				key := m.Name
				if len(kv) > 0 {
					key += " " + strings.Join(kv, ",")
				}
				out[key] = dp.Value
			}
		}
	}
	return out
}
