package main

import (
	"cmp"
	"container/heap"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	kafkaingest "github.com/obolus/obolus/ingest/kafka"
	"github.com/obolus/obolus/internal/devbroker"
	"github.com/obolus/obolus/internal/peakrss"
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
//     waiting in the topics (worker start to last answer), the median of
//     three runs;
//   - x_of_raw_consume: the median, over three rounds, of raw consumption
//     time against pipeline time. In each round a raw phase reads the same
//     input topics with the worker's own consumer-group runner and settings
//     (ingest/kafka.Group: one kafka-go reader per partition, same fetch
//     sizes, same commit interval) and a handler that only counts, then a
//     fresh worker group attributes them. The phases alternate, so a change
//     in machine load hits both. A discarded raw read before the first
//     round warms the broker, whose first pass over the data is slower;
//   - x_spread: (max − min) / median of the three rounds' ratios;
//   - x_of_passthrough: the same median against a pass-through phase in
//     each round: the same runner with a handler that produces every input
//     message once, unchanged, to a topic of its own with the worker's
//     writer settings. It is the floor of any worker that must produce an
//     answer per input message, and what the raw phase leaves out;
//   - paced_p50_ms, paced_p99_ms: produce to acknowledged first answer at
//     20,000 events/s (OBOLUS_BENCH_STREAM_RATE) with the worker running,
//     and paced_p99_beyond_grace_ms: the p99 less the wall time the grace
//     period takes at the generator's event-time pace;
//   - peak_rss_MB: the peak resident memory of the workers.
//
// OBOLUS_BENCH_BROKER_PROFILE profiles the broker's process during the
// first round's pass-through and pipeline phases (profileBench).
func BenchmarkStream(b *testing.B) {
	n := benchEvents()
	paceRate := 20000.0
	if v, err := strconv.ParseFloat(os.Getenv("OBOLUS_BENCH_STREAM_RATE"), 64); err == nil && v > 0 {
		paceRate = v
	}
	for range b.N {
		dir := b.TempDir()
		br, err := devbroker.Start(devbroker.Options{DataDir: dir + "/kafka", Partitions: 12, MinSessionTimeout: 500 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		o := kafkaingest.Options{Brokers: []string{br.Addr()}, ClientID: "bench"}
		ctx := context.Background()
		if _, err := kafkaingest.EnsureTopics(ctx, o, 12, topicUsage, topicAgents, topicDead); err != nil {
			b.Fatal(err)
		}

		// Throughput: the whole input waits in the topics.
		start := time.Now()
		usage, agents := produceBench(b, o, n, 0, 0)
		b.Logf("produced %d usage events and %d agent logs in %s", usage, agents, time.Since(start).Round(time.Millisecond))
		// The first read of the topics is slower than every later one (the
		// broker's first pass over its data): 7.1 s against 5.0-5.2 s for 2M
		// events on 2026-12-07, which alone made the rounds' ratios spread by
		// a third. A discarded read first makes every round a warm one.
		warm := rawConsume(b, o, "bench-raw-warmup", usage+agents, nil)
		b.Logf("warm-up: raw consume %s, not counted", warm.Round(time.Millisecond))
		var ratios, rates, passRatios []float64
		var peak int64
		for round := range 3 {
			raw := rawConsume(b, o, fmt.Sprintf("bench-raw-%d", round), usage+agents, nil)
			passTopic := fmt.Sprintf("bench.pass.%d", round)
			if _, err := kafkaingest.EnsureTopics(ctx, o, 12, passTopic); err != nil {
				b.Fatal(err)
			}
			stopProfile := profileBench(b, round, "pass")
			pass := rawConsume(b, o, fmt.Sprintf("bench-pass-%d", round), usage+agents, o.Writer(passTopic, &kafka.Hash{}))
			stopProfile()
			run := benchRun{group: fmt.Sprintf("bench-%d", round), output: fmt.Sprintf("%s.%d", topicOutput, round), keyed: fmt.Sprintf("obolus.keyed.%d", round)}
			w, began := startBenchWorker(b, br.Addr(), dir, run)
			profiled := profileWorker(b, round)
			stopProfile = profileBench(b, round, "pipeline")
			waitAnswers(b, br.Addr(), run.output, usage, w)
			stopProfile()
			<-profiled
			msgs := topicMessages(b, br.Addr(), run.output)
			last := slices.MaxFunc(msgs, func(a, c kafka.Message) int { return a.Time.Compare(c.Time) }).Time
			first := slices.MinFunc(msgs, func(a, c kafka.Message) int { return a.Time.Compare(c.Time) }).Time
			e2e := last.Sub(began)
			b.Logf("round %d: first answer %s after the worker started", round+1, first.Sub(began).Round(time.Millisecond))
			peak = max(peak, stopBenchWorker(b, w))
			rates = append(rates, float64(usage)/e2e.Seconds())
			ratios = append(ratios, raw.Seconds()/e2e.Seconds())
			passRatios = append(passRatios, pass.Seconds()/e2e.Seconds())
			b.Logf("round %d: raw consume %s (%.0f msgs/s), pass-through %s (%.0f msgs/s, %.2fx of raw), pipeline %s (%.0f events/s): %.2fx of raw, %.2fx of pass-through",
				round+1, raw.Round(time.Millisecond), float64(usage+agents)/raw.Seconds(), pass.Round(time.Millisecond), float64(usage+agents)/pass.Seconds(),
				raw.Seconds()/pass.Seconds(), e2e.Round(time.Millisecond), rates[round], ratios[round], passRatios[round])
		}
		ratio, rate := median(ratios), median(rates)

		// Latency: paced input, the worker running and caught up.
		run := benchRun{group: "bench-paced", output: topicOutput + ".paced", keyed: "obolus.keyed.paced"}
		w, _ := startBenchWorker(b, br.Addr(), dir, run)
		waitAnswers(b, br.Addr(), run.output, usage, w)
		// Ten seconds are measured; two more keep the input flowing so that
		// the measured events are released by data, as in steady state, not
		// by the idle timer that ends every burst.
		phase2 := time.Now()
		u2, _ := produceBench(b, o, int(paceRate*12), paceRate*1.1, n) // messages/s: one agent log per ten usage events
		wall := time.Since(phase2)
		waitAnswers(b, br.Addr(), run.output, usage+u2, w)
		lat := firstAnswerLatencies(topicMessages(b, br.Addr(), run.output), phase2, phase2.Add(wall*10/12))
		peak = max(peak, stopBenchWorker(b, w))
		br.Close()
		// The generator's event time runs spacing/calls per event; at the
		// paced rate the grace period (stream.grace, 5m) passes this fast.
		eventSpan := time.Duration(u2) * spacing / calls
		graceWall := float64(5*time.Minute) / float64(eventSpan) * float64(wall) / 1e6
		b.Logf("paced: %d events in %s (%.0f events/s); grace takes %.0f ms of wall time at this pace; latency p50 %.0f, p90 %.0f, p99 %.0f, p99.9 %.0f, max %.0f ms",
			u2, wall.Round(time.Millisecond), float64(u2)/wall.Seconds(), graceWall, pct(lat, 0.5), pct(lat, 0.9), pct(lat, 0.99), pct(lat, 0.999), pct(lat, 1))

		b.ReportMetric(rate, "events/s")
		b.ReportMetric(ratio, "x_of_raw_consume")
		b.ReportMetric((slices.Max(ratios)-slices.Min(ratios))/ratio, "x_spread")
		b.ReportMetric(median(passRatios), "x_of_passthrough")
		b.ReportMetric(pct(lat, 0.50), "paced_p50_ms")
		b.ReportMetric(pct(lat, 0.99), "paced_p99_ms")
		b.ReportMetric(pct(lat, 0.99)-graceWall, "paced_p99_beyond_grace_ms")
		b.ReportMetric(float64(peak)/(1<<20), "peak_rss_MB")
	}
}

// profileWorker saves a 15 s CPU profile of the first round's worker to
// OBOLUS_BENCH_STREAM_PROFILE when it and OBOLUS_BENCH_STREAM_HTTP are set.
func profileWorker(b *testing.B, round int) <-chan struct{} {
	done := make(chan struct{})
	path, addr := os.Getenv("OBOLUS_BENCH_STREAM_PROFILE"), os.Getenv("OBOLUS_BENCH_STREAM_HTTP")
	if round != 0 || path == "" || addr == "" {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		time.Sleep(3 * time.Second) // past start-up and the group joins
		resp, err := http.Get("http://" + addr + "/debug/pprof/profile?seconds=15")
		if err != nil {
			b.Logf("profile: %v", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(path)
		if err != nil {
			b.Logf("profile: %v", err)
			return
		}
		defer f.Close()
		if _, err := io.Copy(f, resp.Body); err != nil {
			b.Logf("profile: %v", err)
		}
	}()
	return done
}

// profileBench profiles this process, which runs the broker, during one
// phase of the first round, to OBOLUS_BENCH_BROKER_PROFILE with the phase's
// name appended, when that is set. In the pipeline phase the profile is the
// broker's (the worker is another process; the benchmark only polls the
// output's offsets); in the pass-through phase
// it is the broker's and the pass-through client's. Against the phase's
// length it says how busy the machine was, and where.
func profileBench(b *testing.B, round int, phase string) (stop func()) {
	path := os.Getenv("OBOLUS_BENCH_BROKER_PROFILE")
	if round != 0 || path == "" {
		return func() {}
	}
	f, err := os.Create(path + "." + phase)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	return s[len(s)/2]
}

// benchRun names what one pipeline run uses, so runs do not share state.
type benchRun struct{ group, output, keyed string }

func pct(ms []float64, q float64) float64 {
	if len(ms) == 0 {
		return 0
	}
	return ms[min(len(ms)-1, int(q*float64(len(ms))))]
}

// firstAnswerLatencies is, per first answer among msgs whose source was
// produced in [since, until), the milliseconds from the source's produce
// time to the answer's, sorted.
func firstAnswerLatencies(msgs []kafka.Message, since, until time.Time) []float64 {
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
		if src >= since.UnixNano() && src < until.UnixNano() && !restated {
			out = append(out, float64(m.Time.UnixNano()-src)/1e6)
		}
	}
	slices.Sort(out)
	return out
}

// rawConsume reads the input topics with the worker's own consumer-group
// runner and settings, and a handler that only counts, and returns how long
// reading want messages took.
// rawConsume reads the input topics with the worker's consumer-group runner
// and returns how long want messages took. With a writer it is the
// pass-through phase: each handled batch is produced to w, unchanged,
// before the handler returns.
func rawConsume(b *testing.B, o kafkaingest.Options, group string, want int, w *kafka.Writer) time.Duration {
	var got atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	g := &kafkaingest.Group{Options: o, ID: group, Topics: []string{topicUsage, topicAgents},
		CommitInterval: time.Second, IdleAfter: 500 * time.Millisecond, SessionTimeout: 6 * time.Second, RebalanceTimeout: 10 * time.Second,
		MaxBytes: 2*(1<<20) + 1<<20, Log: slog.New(slog.DiscardHandler), Status: kafkaingest.NewStatus(),
		Open: func(_ context.Context, _ string, _ int, _ kafkaingest.Committed) (kafkaingest.Handler, int64, error) {
			return &countHandler{n: &got, want: int64(want), done: func() { once.Do(func() { close(done) }) }, w: w}, kafka.FirstOffset, nil
		}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	ran := make(chan error, 1)
	go func() { ran <- g.Run(ctx) }()
	select {
	case <-done:
	case err := <-ran:
		b.Fatalf("raw consume stopped after %d of %d: %v", got.Load(), want, err)
	}
	d := time.Since(start)
	cancel()
	<-ran
	if w != nil {
		_ = w.Close()
	}
	return d
}

// countHandler counts messages and, with a writer, produces them again.
type countHandler struct {
	n    *atomic.Int64
	want int64
	done func()
	next int64
	w    *kafka.Writer
	out  []kafka.Message
}

func (h *countHandler) Handle(ctx context.Context, msgs []kafka.Message) error {
	if h.w != nil {
		h.out = h.out[:0]
		for _, m := range msgs {
			h.out = append(h.out, kafka.Message{Key: m.Key, Value: m.Value, Headers: m.Headers, Time: m.Time})
		}
		if err := h.w.WriteMessages(ctx, h.out...); err != nil {
			return err
		}
	}
	if h.n.Add(int64(len(msgs))) >= h.want {
		h.done()
	}
	h.next = msgs[len(msgs)-1].Offset + 1
	return nil
}
func (h *countHandler) Idle(context.Context) error { return nil }
func (h *countHandler) Flush(context.Context) (kafkaingest.Commit, error) {
	return kafkaingest.Commit{Offset: h.next}, nil
}
func (h *countHandler) Close() error { return nil }

func startBenchWorker(b *testing.B, addr, dir string, run benchRun) (*exec.Cmd, time.Time) {
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
	cmd := exec.Command(exe, "stream", "--config", cfg, "--group", run.group, "--http", cmp.Or(os.Getenv("OBOLUS_BENCH_STREAM_HTTP"), ""))
	cmd.Env = append(os.Environ(), childEnv+"=1", "OBOLUS_STREAM_BROKERS="+addr, "OBOLUS_STREAM_PARTITIONS=12",
		"OBOLUS_STREAM_TOPICS_OUTPUT="+run.output, "OBOLUS_STREAM_TOPICS_KEYED="+run.keyed,
		"OBOLUS_STREAM_IDLE_FLUSH=500ms", "OBOLUS_STREAM_SESSION_TIMEOUT=6s", "OBOLUS_LOG_LEVEL="+cmp.Or(os.Getenv("OBOLUS_BENCH_LOG_LEVEL"), "warn"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	began := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return cmd, began
}

// stopBenchWorker stops the worker cleanly and returns its peak RSS in
// bytes: VmHWM from /proc, read just before it stops. (The child's rusage
// maxrss is not used: on Linux it can carry the parent's RSS from before
// exec, and the parent here holds the broker's topics.)
func stopBenchWorker(b *testing.B, cmd *exec.Cmd) int64 {
	hwm, _ := peakrss.Of(cmd.Process.Pid) // zero on failure: rusage below
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		b.Errorf("worker exited with %v after SIGTERM", err)
	}
	if hwm == 0 {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			hwm = ru.Maxrss * 1024
		}
	}
	return hwm
}

// waitAnswers waits until the output topic holds answers for want invocations.
func waitAnswers(b *testing.B, addr, topic string, want int, w *exec.Cmd) {
	deadline := time.Now().Add(15 * time.Minute)
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		if w.ProcessState != nil {
			b.Fatal("worker exited")
		}
		if firstAnswers(b, addr, topic) >= want {
			return
		}
	}
	b.Fatalf("fewer than %d answers after 15 minutes", want)
}

// firstAnswers counts the messages on the output topic from its partitions'
// offsets. The generator sends no late agent logs and every answer is one
// row, so without crashes each message is one invocation's first answer.
func firstAnswers(b *testing.B, addr, topic string) int {
	conn, err := kafka.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		return 0 // not created yet
	}
	total := 0
	for _, p := range parts {
		l, err := kafka.DialLeader(context.Background(), "tcp", addr, topic, p.ID)
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
	// Paced, a write every 10 ms, as a steady producer would: at 2,000
	// messages a write the input would arrive in 100 ms steps at 20,000/s,
	// and each step would add up to 100 ms to the latency measured.
	size := 2000
	if rate > 0 {
		size = max(1, int(rate/100))
	}
	flush := func(force bool) {
		if len(batch) < size && !force || len(batch) == 0 {
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
