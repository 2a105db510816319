package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	kafkaingest "github.com/obolus/obolus/ingest/kafka"
	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/synth"
	"github.com/obolus/obolus/schemas"
)

// TestStreamKcatInterop feeds the stream with Debian's kcat (librdkafka), a
// third-party client, and reads the output topic back with it: agent logs
// and usage rows produced from the workload's files with the obolus-kind
// and obolus-agent-endpoint headers come out as the batch answer.
func TestStreamKcatInterop(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kcat is not on PATH; .ci/run installs it (apt-get install kcat)")
		}
		t.Skip("kcat is not on PATH (apt-get install kcat); CI runs this test")
	}
	// No late agent logs: kcat sends them as soon as the files are read, so
	// the comparison with batch is exact.
	f := newStreamFixture(t, synth.Config{Seed: 21, AgentRequests: 400, Duration: 2 * time.Hour, LateShare: -1})
	c, err := config.Load(config.New(), f.config)
	if err != nil {
		t.Fatal(err)
	}
	// Agent logs first, as a backfill would send them, then usage.
	var order []config.Source
	for _, s := range c.Sources {
		if s.IsAgent() {
			order = append(order, s)
		}
	}
	for _, s := range c.Sources {
		// Served entities are no stream input: the worker reads them itself.
		if !s.IsAgent() && !s.IsServed() {
			order = append(order, s)
		}
	}
	addr := f.broker.Addr()
	for _, s := range order {
		files, err := filepath.Glob(s.Path)
		if err != nil || len(files) == 0 {
			t.Fatalf("source %s: %v", s.Path, err)
		}
		topic := topicUsage
		args := []string{"-b", addr, "-P", "-t", topicUsage, "-H", kafkaingest.HeaderKind + "=" + s.Kind}
		if s.IsAgent() {
			topic = topicAgents
			args = []string{"-b", addr, "-P", "-t", topic, "-H", kafkaingest.HeaderKind + "=" + s.Kind,
				"-H", kafkaingest.HeaderAgentEndpoint + "=" + s.AgentEndpoint}
		}
		for _, file := range files {
			in, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(kcat, args...)
			cmd.Stdin = in
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("kcat produce %s: %v\n%s", file, err, out)
			}
			in.Close()
		}
	}

	http := freeAddr(t)
	stop := f.inProcess("stream", "--config", f.config, "--group", "kcat", "--http", http)
	if err := waitStatusDrained(60*time.Second, 2*time.Second, http); err != nil {
		_ = stop()
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatalf("stream stopped with %v, want a clean stop", err)
	}

	out, err := exec.Command(kcat, "-b", addr, "-C", "-t", topicOutput, "-e", "-q", "-J").Output()
	if err != nil {
		t.Fatalf("kcat consume: %v", err)
	}
	var msgs []kafka.Message
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var env struct {
			Partition int      `json:"partition"`
			Offset    int64    `json:"offset"`
			Key       string   `json:"key"`
			Payload   string   `json:"payload"`
			Headers   []string `json:"headers"`
		}
		if err := json.Unmarshal(sc.Bytes(), &env); err != nil {
			t.Fatalf("kcat -J line %q: %v", sc.Text(), err)
		}
		m := kafka.Message{Topic: topicOutput, Partition: env.Partition, Offset: env.Offset, Key: []byte(env.Key), Value: []byte(env.Payload)}
		for i := 0; i+1 < len(env.Headers); i += 2 {
			m.Headers = append(m.Headers, kafka.Header{Key: env.Headers[i], Value: []byte(env.Headers[i+1])})
		}
		msgs = append(msgs, m)
	}
	t.Logf("kcat read %d attribution messages", len(msgs))
	compareAnswers(t, "output read by kcat", outputAnswers(t, msgs), f.batchAnswers())
}

// TestStreamBadInput sends malformed messages between good ones: each bad
// one lands in the dead-letter topic with a reason naming what is wrong and
// with its source topic, partition and offset; the worker keeps going and
// attributes the good ones.
func TestStreamBadInput(t *testing.T) {
	f := newStreamFixture(t, synth.Config{})
	cfg := filepath.Join(f.dir, "obolus.yaml")
	if err := os.WriteFile(cfg, []byte(`
store: {duckdb: obolus.duckdb}
stream:
  max_message_bytes: 4096
  agents:
    - {agent_endpoint: bot, service_principal: sp-1}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	usage := func(inv, extra string) string {
		return `{"invocation_id":"` + inv + `","event_time":"2026-11-01T10:00:05Z","requester":"sp-1","schema_version":1,` +
			`"request_tags":{"agent_request_id":"ar-1"},"input_tokens":10,"output_tokens":5,"total_tokens":15` + extra + `}`
	}
	payload := `{"databricks_request_id":"ar-1","request_time":"2026-11-01T10:00:00Z","execution_duration_ms":20000,"requester":"ana@example.com"}`
	type msg struct {
		topic, value string
		headers      map[string]string
		reason       string // expected in the dead letter; "" for a good message
	}
	payloadHdr := map[string]string{kafkaingest.HeaderKind: "payload", kafkaingest.HeaderAgentEndpoint: "bot"}
	msgs := []msg{
		{topicAgents, payload, payloadHdr, ""},
		{topicUsage, `{"invocation_id":"bad-1","event_time":"2026-11-01T10:0`, nil, "JSON"},
		{topicUsage, usage("bad-2", `,"output_reasoning":1,"input_tokens":"lots"`), nil, "input_tokens"},
		{topicUsage, `{"invocation_id":"bad-3","event_time":"2026-11-01T10:00:05Z"}`, nil, "requester"},
		{topicUsage, usage("bad-4", `,"schema_version":99`), nil, "schema_version"},
		{topicUsage, usage("bad-5", `,"user_agent":"`+strings.Repeat("x", 5000)+`"`), nil, "over the limit"},
		{topicUsage, usage("bad-6", `,"user_agent":"caf`+"\xff\xfe"+`"`), nil, "UTF-8"},
		{topicUsage, usage("bad-7", ""), map[string]string{kafkaingest.HeaderKind: "bogus"}, "obolus-kind"},
		{topicUsage, `not json at all`, nil, "JSON"},
		{topicUsage, `[1,2,3]`, nil, "object"},
		{topicUsage, strings.Replace(usage("bad-10", ""), "2026-11-01T10:00:05Z", "1999-01-01T00:00:00Z", 1), nil, "before 2000"},
		{topicAgents, payload, map[string]string{kafkaingest.HeaderKind: "payload"}, "agent endpoint"},
		{topicAgents, payload, map[string]string{kafkaingest.HeaderKind: "payload", kafkaingest.HeaderAgentEndpoint: "nobody"}, "service principal"},
		{topicUsage, usage("good-1", ""), nil, ""},
		{topicUsage, usage("good-2", `,"latency_ms":5`), nil, ""},
	}
	// Everything into partition 0 of each topic, in this order, so that the
	// good messages come after the bad ones.
	ctx := context.Background()
	for _, m := range msgs {
		w := &kafka.Writer{Addr: kafka.TCP(f.broker.Addr()), Topic: m.topic, Balancer: partitionZero{}, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
		km := kafka.Message{Value: []byte(m.value), Time: time.Now()}
		for k, v := range m.headers {
			km.Headers = append(km.Headers, kafka.Header{Key: k, Value: []byte(v)})
		}
		if err := w.WriteMessages(ctx, km); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}

	http := freeAddr(t)
	stop := f.inProcess("stream", "--config", cfg, "--group", "bad", "--http", http)
	if err := waitStatusDrained(60*time.Second, 2*time.Second, http); err != nil {
		_ = stop()
		t.Fatal(err)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code := httpGet(t, "http://"+http+path); code != 200 {
			t.Errorf("GET %s = %d, want 200 from a running worker", path, code)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("stream stopped with %v, want a clean stop", err)
	}

	// Where each input message landed, to check the dead letters name it.
	where := map[string]string{}
	for _, topic := range []string{topicUsage, topicAgents} {
		for _, m := range topicMessages(t, f.broker.Addr(), topic) {
			where[topic+"|"+string(m.Value)+"|"+headerString(m.Headers)] = kafkaingest.Location(m.Partition, m.Offset)
		}
	}
	dead := map[string]schemas.DeadLetter{}
	for _, m := range topicMessages(t, f.broker.Addr(), topicDead) {
		var dl schemas.DeadLetter
		if err := json.Unmarshal(m.Value, &dl); err != nil {
			t.Fatalf("dead letter is not JSON: %v", err)
		}
		hdr := map[string]string{}
		for _, h := range m.Headers {
			hdr[h.Key] = string(h.Value)
		}
		if hdr[kafkaingest.HeaderSourceTopic] != dl.Source || hdr[kafkaingest.HeaderReason] != dl.Reason ||
			kafkaingest.Location(atoi(t, hdr[kafkaingest.HeaderSourcePartition]), int64(atoi(t, hdr[kafkaingest.HeaderSourceOffset]))) != dl.Location {
			t.Errorf("dead letter headers %v do not match its body %+v", hdr, dl)
		}
		dead[dl.Source+"|"+dl.Location] = dl
	}
	bad := 0
	for _, m := range msgs {
		if m.reason == "" {
			continue
		}
		bad++
		loc := where[m.topic+"|"+m.value+"|"+headerString(toHeaders(m.headers))]
		dl, ok := dead[m.topic+"|"+loc]
		switch {
		case !ok:
			t.Errorf("no dead letter for %s message at %s (%.40q)", m.topic, loc, m.value)
		case !strings.Contains(dl.Reason, m.reason) && !strings.Contains(dl.Field, m.reason):
			t.Errorf("dead letter for %.40q: field %q reason %q, want it to mention %q", m.value, dl.Field, dl.Reason, m.reason)
		default:
			t.Logf("%-14s %s: field %q: %s", dl.Source, dl.Location, dl.Field, dl.Reason)
		}
	}
	if len(dead) != bad {
		t.Errorf("%d dead letters, want %d", len(dead), bad)
	}
	answers := outputAnswers(t, topicMessages(t, f.broker.Addr(), topicOutput))
	for _, inv := range []string{"good-1", "good-2"} {
		a, ok := answers[inv]
		if !ok || a[0].EndUser != "ana@example.com" || a[0].MatchMethod != schemas.MethodRequestID {
			t.Errorf("%s: answer %+v, want ana@example.com by request_id", inv, a)
		}
	}
	if len(answers) != 2 {
		t.Errorf("%d invocations attributed, want the 2 good ones", len(answers))
	}
}

type partitionZero struct{}

func (partitionZero) Balance(kafka.Message, ...int) int { return 0 }

func toHeaders(m map[string]string) []kafka.Header {
	var hs []kafka.Header
	for k, v := range m {
		hs = append(hs, kafka.Header{Key: k, Value: []byte(v)})
	}
	return hs
}

func headerString(hs []kafka.Header) string {
	var parts []string
	for _, h := range hs {
		parts = append(parts, h.Key+"="+string(h.Value))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("%q is not a number", s)
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func httpGet(t *testing.T, url string) int {
	t.Helper()
	resp, err := nethttp.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
