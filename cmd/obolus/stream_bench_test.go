package main

import (
	"cmp"
	"container/heap"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	kafkaingest "github.com/obolus/obolus/ingest/kafka"
	"github.com/obolus/obolus/internal/devbroker"
	kafkasink "github.com/obolus/obolus/sink/kafka"
)

// benchEvents is how many usage events BenchmarkStream sends through the
// broker: 2 million, 200 thousand with -short, or OBOLUS_BENCH_STREAM_EVENTS.
func benchEvents() int {
	if v, err := strconv.Atoi(os.Getenv("OBOLUS_BENCH_STREAM_EVENTS")); err == nil && v > 0 {
		return v
	}
	if testing.Short() {
		return 200_000
	}
	return 2_000_000
}

// BenchmarkStream sends generated usage events and agent logs through an
// in-process broker (kfake, topics on disk) and a worker process running
// `obolus stream` (rekey and join, output topic only). It reports:
//
//   - events/s: usage events attributed per second with the input
//     waiting in the topics (worker start to last answer);
//   - x_of_raw_consume: that time against a plain kafka-go consumer group
//     reading the same input topics in the same run — the ceiling;
//   - p50_ms, p99_ms: produce to acknowledged first answer, measured in a
//     second run that produces a tenth of the events at half the measured
//     rate while the worker runs (includes the grace wait, which at the
//     generator's event-time pace — two days of events in about a
//     minute — is a fraction of a second);
//   - peak_rss_MB: the worker process's peak resident memory.
func BenchmarkStream(b *testing.B) {
	n := benchEvents()
	for range b.N {
		dir := b.TempDir()
		br, err := devbroker.Start(devbroker.Options{DataDir: dir + "/kafka", Partitions: 12, MinSessionTimeout: 500 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		o := kafkaingest.Options{Brokers: []string{br.Addr()}, ClientID: "bench"}
		ctx := context.Background()
		if _, err := kafkaingest.EnsureTopics(ctx, o, 12, topicUsage, topicAgents, topicOutput, topicDead, "obolus.keyed"); err != nil {
			b.Fatal(err)
		}

		// Throughput: the whole input waits in the topics.
		start := time.Now()
		usage, agents := produceBench(b, o, n, 0, 0)
		b.Logf("produced %d usage events and %d agent logs in %s", usage, agents, time.Since(start).Round(time.Millisecond))
		raw := rawConsume(b, br.Addr(), usage+agents)
		b.Logf("raw kafka-go consumer group read them in %s (%.0f msgs/s)", raw.Round(time.Millisecond), float64(usage+agents)/raw.Seconds())

		w, began := startBenchWorker(b, br.Addr(), dir)
		waitAnswers(b, br.Addr(), usage, w)
		msgs := topicMessages(b, br.Addr(), topicOutput)
		last := slices.MaxFunc(msgs, func(a, c kafka.Message) int { return a.Time.Compare(c.Time) }).Time
		e2e := last.Sub(began)
		rate := float64(usage) / e2e.Seconds()
		b.Logf("worker attributed %d events in %s (%.0f events/s, %d output messages)", usage, e2e.Round(time.Millisecond), rate, len(msgs))

		// Latency: a tenth of the events at half that rate, worker running.
		phase2 := time.Now()
		u2, _ := produceBench(b, o, n/10, rate/2, n)
		waitAnswers(b, br.Addr(), usage+u2, w)
		lat := firstAnswerLatencies(topicMessages(b, br.Addr(), topicOutput), phase2)
		rss := stopBenchWorker(b, w)
		br.Close()

		b.ReportMetric(rate, "events/s")
		b.ReportMetric(raw.Seconds()/e2e.Seconds(), "x_of_raw_consume")
		b.ReportMetric(float64(usage+agents)/raw.Seconds(), "raw_consume_msgs/s")
		b.ReportMetric(pct(lat, 0.50), "p50_ms")
		b.ReportMetric(pct(lat, 0.99), "p99_ms")
		b.ReportMetric(float64(rss)/(1<<20), "peak_rss_MB")
	}
}

func pct(ms []float64, q float64) float64 {
	if len(ms) == 0 {
		return 0
	}
	return ms[min(len(ms)-1, int(q*float64(len(ms))))]
}

// firstAnswerLatencies is, per first answer among msgs whose source was
// produced after since, the milliseconds from the source's produce time to
// the answer's, sorted.
func firstAnswerLatencies(msgs []kafka.Message, since time.Time) []float64 {
	var out []float64
	for _, m := range msgs {
		var src int64
		restated := false
		for _, h := range m.Headers {
			switch h.Key {
			case kafkasink.HeaderSourceTime:
				src, _ = strconv.ParseInt(string(h.Value), 10, 64)
			case kafkasink.HeaderRestatement:
				restated = string(h.Value) == "1"
			}
		}
		if src >= since.UnixNano() && !restated {
			out = append(out, float64(m.Time.UnixNano()-src)/1e6)
		}
	}
	slices.Sort(out)
	return out
}

// rawConsume reads the input topics with a kafka-go consumer group and
// returns how long reading want messages took.
func rawConsume(b *testing.B, addr string, want int) time.Duration {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, GroupID: "bench-raw", GroupTopics: []string{topicUsage, topicAgents},
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond, QueueCapacity: 2000, StartOffset: kafka.FirstOffset})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	for got := 0; got < want; got++ {
		if _, err := r.FetchMessage(ctx); err != nil {
			b.Fatalf("raw consume after %d of %d: %v", got, want, err)
		}
	}
	return time.Since(start)
}

func startBenchWorker(b *testing.B, addr, dir string) (*exec.Cmd, time.Time) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cfg := dir + "/obolus.yaml"
	var agents string
	for i := range benchSPs {
		agents += fmt.Sprintf("    - {agent_endpoint: agent-%02d, service_principal: %s}\n", i, spName(i))
	}
	if err := os.WriteFile(cfg, []byte("stream:\n  agents:\n"+agents), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "stream", "--config", cfg, "--group", "bench", "--http", cmp.Or(os.Getenv("OBOLUS_BENCH_STREAM_HTTP"), ""))
	cmd.Env = append(os.Environ(), childEnv+"=1", "OBOLUS_STREAM_BROKERS="+addr, "OBOLUS_STREAM_PARTITIONS=12",
		"OBOLUS_STREAM_IDLE_FLUSH=500ms", "OBOLUS_STREAM_SESSION_TIMEOUT=6s", "OBOLUS_LOG_LEVEL=warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	began := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return cmd, began
}

// stopBenchWorker stops the worker cleanly and returns its peak RSS in bytes.
func stopBenchWorker(b *testing.B, cmd *exec.Cmd) int64 {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		b.Errorf("worker exited with %v after SIGTERM", err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss * 1024
	}
	return 0
}

// waitAnswers waits until the output topic holds answers for want invocations.
func waitAnswers(b *testing.B, addr string, want int, w *exec.Cmd) {
	deadline := time.Now().Add(15 * time.Minute)
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		if w.ProcessState != nil {
			b.Fatal("worker exited")
		}
		if firstAnswers(b, addr) >= want {
			return
		}
	}
	b.Fatalf("fewer than %d answers after 15 minutes", want)
}

// firstAnswers counts the messages on the output topic from its partitions'
// offsets. The generator sends no late agent logs and every answer is one
// row, so without crashes each message is one invocation's first answer.
func firstAnswers(b *testing.B, addr string) int {
	conn, err := kafka.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	parts, err := conn.ReadPartitions(topicOutput)
	conn.Close()
	if err != nil {
		b.Fatal(err)
	}
	total := 0
	for _, p := range parts {
		l, err := kafka.DialLeader(context.Background(), "tcp", addr, topicOutput, p.ID)
		if err != nil {
			b.Fatal(err)
		}
		first, last, err := l.ReadOffsets()
		l.Close()
		if err != nil {
			b.Fatal(err)
		}
		total += int(last - first)
	}
	return total
}

const benchSPs = 24

// A request starts every spacing of event time and makes calls gateway
// calls: 2M events span two days, about twelve events a second, so the one
// hour restatement horizon holds some 40 thousand events.
const (
	spacing = 864 * time.Millisecond
	calls   = 10
)

func spName(i int) string { return fmt.Sprintf("0000%04d-6d61-4bf0-af8f-0c17dc0d3433", i) }

// benchMsg is one generated message and when it arrives.
type benchMsg struct {
	at  int64
	seq int
	m   kafka.Message
}

type benchHeap []benchMsg

func (h benchHeap) Len() int { return len(h) }
func (h benchHeap) Less(i, j int) bool {
	return cmp.Or(cmp.Compare(h[i].at, h[j].at), cmp.Compare(h[i].seq, h[j].seq)) < 0
}
func (h benchHeap) Swap(i, j int)  { h[i], h[j] = h[j], h[i] }
func (h *benchHeap) Push(x any)    { *h = append(*h, x.(benchMsg)) }
func (h *benchHeap) Pop() any      { o := *h; v := o[len(o)-1]; *h = o[:len(o)-1]; return v }
func (h benchHeap) peek() benchMsg { return h[0] }

// produceBench generates n usage events — ten calls per agent request, four
// of five tagged with the request id, the rest matched by time — and their
// agent logs, and produces them in arrival order at rate messages/s (0: as
// fast as the broker takes them). offset shifts ids and times so a second
// call adds new invocations after the first's. Rows are shaped like
// system.ai_gateway.usage and payload-table rows, about 900 and 250 bytes.
func produceBench(b *testing.B, o kafkaingest.Options, n int, rate float64, offset int) (usage, agents int) {
	w := o.Writer("", &kafka.Hash{})
	defer w.Close()
	ctx := context.Background()
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(offset) * spacing / calls)
	var h benchHeap
	var batch []kafka.Message
	started := time.Now()
	sent := 0
	flush := func(force bool) {
		if len(batch) < 2000 && !force || len(batch) == 0 {
			return
		}
		now := time.Now()
		for i := range batch {
			batch[i].Time = now
		}
		if err := w.WriteMessages(ctx, batch...); err != nil {
			b.Fatal(err)
		}
		sent += len(batch)
		batch = batch[:0]
		if rate > 0 {
			if ahead := time.Duration(float64(sent)/rate*float64(time.Second)) - time.Since(started); ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}
	seq := 0
	push := func(at time.Time, m kafka.Message) {
		heap.Push(&h, benchMsg{at.UnixNano(), seq, m})
		seq++
	}
	kindUsage := []kafka.Header{{Key: kafkaingest.HeaderKind, Value: []byte("usage")}}
	for r := 0; usage < n; r++ {
		start := base.Add(time.Duration(r) * spacing)
		dur := time.Duration(5000+(r*7919)%25000) * time.Millisecond
		sp := (r * 31) % benchSPs
		id := fmt.Sprintf("req-%d-%09d", offset, r)
		for c := 0; c < calls && usage < n; c++ {
			at := start.Add(dur * time.Duration(c) / calls)
			tags := `{"agent_request_id":"` + id + `","project":"bench"}`
			if c%5 == 4 {
				tags = `{"project":"bench"}`
			}
			v := fmt.Sprintf(`{"invocation_id":"inv-%d-%09d-%02d","request_id":"%s","account_id":"32ce24a4-e4d9-4ad5-84f6-76d19ecbcc85",`+
				`"workspace_id":"8252418391336649","schema_version":1,"event_time":"%s","endpoint_id":"b78566bd-5200-4256-9767-1fc4165c4208",`+
				`"endpoint_name":"databricks-gpt-5-mini","endpoint_tags":{"cost_center":"CC-ML-PLATFORM","env":"prod","owner":"ml-platform"},`+
				`"destination_type":"PAY_PER_TOKEN","destination_name":"system.ai.databricks-gpt-5-mini","destination_id":"4ef135a8-1753-453c-b142-857e291fdc3c",`+
				`"destination_model":"gpt-5-mini","requester":"%s","requester_type":"SERVICE_PRINCIPAL","api_type":"mlflow/v1/chat/completions",`+
				`"user_agent":"langchain-databricks/0.9.2 OpenAI/Python 1.99.9","request_tags":%s,"input_tokens":%d,"output_tokens":%d,"total_tokens":%d,`+
				`"token_details":{"cache_read_input_tokens":0,"cache_creation_input_tokens":0,"output_reasoning_tokens":12},"status_code":200,"latency_ms":700,`+
				`"time_to_first_byte_ms":650,"response_content_type":"application/json"}`,
				offset, r, c, id, at.Format(time.RFC3339Nano), spName(sp), tags, 1000+c, 100+c, 1100+2*c)
			push(at.Add(700*time.Millisecond), kafka.Message{Topic: topicUsage, Key: []byte(id), Value: []byte(v), Headers: kindUsage})
			usage++
		}
		end := start.Add(dur)
		v := fmt.Sprintf(`{"databricks_request_id":"%s","client_request_id":"","request_time":"%s","status_code":200,"execution_duration_ms":%d,`+
			`"requester":"user-%03d@example.com","served_entity_id":"f7f8667a-4efb-40d0-910f-312c97697a8e"}`,
			id, start.Format(time.RFC3339Nano), dur.Milliseconds(), r%500)
		push(end, kafka.Message{Topic: topicAgents, Key: []byte(id), Value: []byte(v), Headers: []kafka.Header{
			{Key: kafkaingest.HeaderKind, Value: []byte("payload")}, {Key: kafkaingest.HeaderAgentEndpoint, Value: []byte(fmt.Sprintf("agent-%02d", sp))}}})
		agents++
		// Everything arriving before the next request starts can go.
		for h.Len() > 0 && h.peek().at <= start.UnixNano() {
			batch = append(batch, heap.Pop(&h).(benchMsg).m)
			flush(false)
		}
	}
	for h.Len() > 0 {
		batch = append(batch, heap.Pop(&h).(benchMsg).m)
		flush(false)
	}
	flush(true)
	return usage, agents
}
