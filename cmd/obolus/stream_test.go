package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/ingest"
	kafkaingest "github.com/obolus/obolus/ingest/kafka"
	"github.com/obolus/obolus/internal/app"
	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/devbroker"
	"github.com/obolus/obolus/internal/stream/worker"
	"github.com/obolus/obolus/internal/synth"
	"github.com/obolus/obolus/schemas"
	"github.com/obolus/obolus/sink/duckdb"
	kafkasink "github.com/obolus/obolus/sink/kafka"
)

// childEnv makes this test binary run as the obolus command: the crash
// tests start it as a separate worker process and kill it.
const childEnv = "OBOLUS_TEST_RUN_AS_OBOLUS"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// Default topic names (config.StreamDefaults).
const (
	topicUsage  = "obolus.usage"
	topicAgents = "obolus.agent_requests"
	topicOutput = "obolus.attribution"
	topicDead   = "obolus.dead_letter"
)

// streamFixture is a generated workload and an in-process broker on a
// loopback port, with the settings every stream run of a test shares.
type streamFixture struct {
	t      *testing.T
	dir    string // the workload
	config string // its obolus.yaml
	broker *devbroker.Broker
	env    []string
}

func newStreamFixture(t *testing.T, cfg synth.Config) *streamFixture {
	t.Helper()
	dir := t.TempDir()
	if cfg.AgentRequests > 0 {
		if _, err := synth.Generate(context.Background(), cfg.WithDefaults(), dir); err != nil {
			t.Fatal(err)
		}
	}
	b, err := devbroker.Start(devbroker.Options{Partitions: 6, MinSessionTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	f := &streamFixture{t: t, dir: dir, config: filepath.Join(dir, synth.ConfigFile), broker: b}
	if _, err := kafkaingest.EnsureTopics(context.Background(), f.options(), 6, topicUsage, topicAgents, topicOutput, topicDead, "obolus.keyed"); err != nil {
		t.Fatal(err)
	}
	f.env = []string{
		"OBOLUS_STREAM_BROKERS=" + b.Addr(),
		"OBOLUS_STREAM_PARTITIONS=6",
		"OBOLUS_STREAM_IDLE_FLUSH=500ms",
		"OBOLUS_STREAM_COMMIT_INTERVAL=250ms",
		"OBOLUS_STREAM_SESSION_TIMEOUT=2s",
		"OBOLUS_STREAM_REBALANCE_TIMEOUT=4s",
		"OBOLUS_LOG_LEVEL=" + cmp.Or(os.Getenv("OBOLUS_TEST_STREAM_LOG_LEVEL"), "warn"),
	}
	return f
}

// expireMembers does, for a killed worker's group members, what a broker
// does once their session timeout has passed: removes them. kfake (the
// in-process broker) never expires a member that was killed while it
// joined its group (its JoinGroup or SyncGroup answer could not be
// delivered), so that member keeps its partitions forever, which a real
// broker would not allow. After the session timeout and the rebalance
// timeout, any member still listed under the dead worker's client id is
// removed with LeaveGroup, and the test says so.
func (f *streamFixture) expireMembers(t *testing.T, clientID string, groups ...string) {
	time.Sleep(2*time.Second + 4*time.Second + time.Second) // session + rebalance timeout of f.env, and a margin
	cl := &kafka.Client{Addr: kafka.TCP(f.broker.Addr()), Timeout: 10 * time.Second}
	resp, err := cl.DescribeGroups(context.Background(), &kafka.DescribeGroupsRequest{GroupIDs: groups})
	if err != nil {
		t.Errorf("describe groups: %v", err)
		return
	}
	for _, g := range resp.Groups {
		var dead []kafka.LeaveGroupRequestMember
		for _, m := range g.Members {
			if m.ClientID == clientID {
				dead = append(dead, kafka.LeaveGroupRequestMember{ID: m.MemberID})
			}
		}
		if len(dead) == 0 {
			continue
		}
		t.Logf("group %s: the broker did not expire %d member(s) of killed %s within the session timeout; removing them", g.GroupID, len(dead), clientID)
		lr, err := cl.LeaveGroup(context.Background(), &kafka.LeaveGroupRequest{GroupID: g.GroupID, Members: dead})
		if err == nil {
			err = lr.Error
		}
		if err != nil {
			t.Errorf("remove dead members of %s from %s: %v", clientID, g.GroupID, err)
		}
	}
}

// setenv applies the fixture's settings to this process, for in-process runs.
func (f *streamFixture) setenv() {
	for _, kv := range f.env {
		k, v, _ := strings.Cut(kv, "=")
		f.t.Setenv(k, v)
	}
}

func (f *streamFixture) options() kafkaingest.Options {
	return kafkaingest.Options{Brokers: []string{f.broker.Addr()}, ClientID: "obolus-test"}
}

// replay sends the workload's rows at rate messages/s (0: at once).
func (f *streamFixture) replay(ctx context.Context, rate float64) error {
	c, err := config.Load(config.New(), f.config)
	if err != nil {
		return err
	}
	_, err = devbroker.Replay(ctx, f.options(), devbroker.ReplayOptions{Sources: app.Specs(c), Rate: rate, LateDelay: 15 * time.Minute,
		UsageTopic: topicUsage, AgentsTopic: topicAgents})
	return err
}

// batchAnswers runs obolus batch on the workload into its own store and
// returns the rows per invocation. The batch keeps the rule's confidence, as
// the stream does: calibration needs a window's id-linked calls, which a
// stream never holds at once (docs/streaming.md), and is checked for batch
// runs on their own (internal/dbxrun, sink/storetest).
func (f *streamFixture) batchAnswers() map[string][]schemas.Attribution {
	f.t.Helper()
	f.t.Setenv("OBOLUS_MATCH_CALIBRATE", "false")
	path := filepath.Join(f.dir, "batch.duckdb")
	mustObolus(f.t, "batch", "--config", f.config, "--store", path, "--log-level", "warn")
	return storeAnswers(f.t, path)
}

func storeAnswers(t *testing.T, path string) map[string][]schemas.Attribution {
	t.Helper()
	ctx := context.Background()
	s, err := duckdb.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.Attributions(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]schemas.Attribution{}
	for _, r := range rows {
		out[r.InvocationID] = append(out[r.InvocationID], r)
	}
	return out
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// inProcess runs the obolus command tree in this process until stop is called.
func (f *streamFixture) inProcess(args ...string) (stop func() error) {
	f.t.Helper()
	f.setenv()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		root := newRoot()
		root.SetArgs(args)
		root.SetOut(os.Stderr)
		done <- root.ExecuteContext(ctx)
	}()
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(60 * time.Second):
			return errors.New("stream did not stop within 60s of cancellation")
		}
	}
}

// child is an obolus process started from this test binary.
type child struct {
	cmd  *exec.Cmd
	log  string
	http string
	done chan error
}

func (f *streamFixture) startChild(name string, args ...string) *child {
	f.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		f.t.Fatal(err)
	}
	c := &child{log: filepath.Join(f.dir, name+".log"), http: freeAddr(f.t), done: make(chan error, 1)}
	logf, err := os.OpenFile(c.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		f.t.Fatal(err)
	}
	c.cmd = exec.Command(exe, append(args, "--http", c.http)...)
	c.cmd.Env = append(append(os.Environ(), f.env...), childEnv+"=1")
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait(); logf.Close() }()
	f.t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

// stop sends the worker SIGTERM and fails the test unless it exits
// cleanly within 30 s.
func (c *child) stop(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		if err != nil {
			t.Fatalf("worker exited with %v after SIGTERM, want a clean exit\n%s", err, c.tail())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("worker did not stop within 30s of SIGTERM\n%s", c.tail())
	}
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil { // SIGKILL: no flush, no commit, no goodbye
		t.Fatalf("kill worker: %v\n%s", err, c.tail())
	}
	<-c.done
}

func (c *child) status() (worker.Report, error) { return statusAt(c.http) }

// statusAt reads a worker's /status.
func statusAt(addr string) (worker.Report, error) {
	var r worker.Report
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + addr + "/status")
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	return r, json.NewDecoder(resp.Body).Decode(&r)
}

// waitReady waits until the processes together hold every partition of
// every group: the groups have settled.
func waitReady(t *testing.T, timeout time.Duration, procs ...*child) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		held, expected, ok := map[string]int{}, map[string]int{}, true
		for _, p := range procs {
			r, err := p.status()
			if err != nil || !r.Ready {
				ok = false
				break
			}
			for _, ps := range r.Partitions {
				held[ps.Group]++
			}
			maps.Copy(expected, r.Expected)
		}
		if ok && len(expected) > 0 && maps.Equal(held, expected) {
			return
		}
	}
	var tails []string
	for _, p := range procs {
		tails = append(tails, p.tail())
	}
	t.Fatalf("workers did not settle within %s\n%s", timeout, strings.Join(tails, "\n---\n"))
}

func (c *child) tail() string {
	b, _ := os.ReadFile(c.log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// waitDrainedProcs waits until the live processes together have caught up:
// every partition of every group assigned and read to the end, nothing
// pending in the join, and no progress for quiet.
func waitDrainedProcs(t *testing.T, timeout, quiet time.Duration, procs ...*child) {
	t.Helper()
	addrs := make([]string, len(procs))
	for i, p := range procs {
		addrs[i] = p.http
	}
	if err := waitStatusDrained(timeout, quiet, addrs...); err != nil {
		var tails []string
		for _, p := range procs {
			tails = append(tails, p.tail())
		}
		t.Fatalf("%v\n%s", err, strings.Join(tails, "\n---\n"))
	}
}

// waitStatusDrained waits until the workers at addrs together have caught up.
func waitStatusDrained(timeout, quiet time.Duration, addrs ...string) error {
	deadline := time.Now().Add(timeout)
	var last, lastReport string
	var since time.Time
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		merged := worker.Report{Ready: true, Lag: map[string]int64{}, Join: map[int]worker.JoinStatus{}, Expected: map[string]int{}}
		ok := true
		for _, a := range addrs {
			r, err := statusAt(a)
			if err != nil {
				ok = false
				break
			}
			merged.Ready = merged.Ready && r.Ready
			for g, l := range r.Lag {
				merged.Lag[g] += l
			}
			maps.Copy(merged.Join, r.Join)
			maps.Copy(merged.Expected, r.Expected)
			merged.Partitions = append(merged.Partitions, r.Partitions...)
			merged.Load.Answers += r.Load.Answers
			merged.Rekey.Usage += r.Rekey.Usage
		}
		state := ""
		if ok {
			state = drainState(merged, "obolus.keyed")
			held := map[string]int{}
			for _, p := range merged.Partitions {
				held[p.Group]++
			}
			pending := 0
			for _, j := range merged.Join {
				pending += j.Pending
			}
			lastReport = fmt.Sprintf("ready=%v lag=%v held=%v expected=%v pending=%d", merged.Ready, merged.Lag, held, merged.Expected, pending)
		}
		if state == "" || state != last {
			last, since = state, time.Now()
			continue
		}
		if time.Since(since) >= quiet {
			return nil
		}
	}
	return fmt.Errorf("stream did not drain within %s; %s", timeout, lastReport)
}

// topicMessages reads every message of every partition of a topic.
func topicMessages(t testing.TB, addr, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out []kafka.Message
	for _, p := range parts {
		leader, err := kafka.DialLeader(ctx, "tcp", addr, topic, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		first, last, err := leader.ReadOffsets()
		leader.Close()
		if err != nil {
			t.Fatal(err)
		}
		if last <= first {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: p.ID, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
		if err := r.SetOffset(first); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("read %s/%d: %v", topic, p.ID, err)
			}
			out = append(out, m)
			if m.Offset >= last-1 {
				break
			}
		}
		r.Close()
	}
	return out
}

// answerVersion names one answer: an invocation at one version.
type answerVersion struct {
	inv string
	v   int64
}

// outputParts assembles the output topic's answers, every version, from
// their parts; an answer with a part missing has a zero row there. It fails
// the test if a message is not an attribution keyed by its invocation, or if
// two copies of one part disagree, which would make the output depend on
// which copy won.
func outputParts(t *testing.T, msgs []kafka.Message) map[answerVersion][]schemas.Attribution {
	t.Helper()
	parts := map[answerVersion][]schemas.Attribution{}
	for _, m := range msgs {
		var r schemas.Attribution
		if err := json.Unmarshal(m.Value, &r); err != nil {
			t.Fatalf("output %s/%d@%d is not an attribution: %v", m.Topic, m.Partition, m.Offset, err)
		}
		if string(m.Key) != r.InvocationID {
			t.Fatalf("output key %q, want the invocation id %q", m.Key, r.InvocationID)
		}
		var part string
		for _, h := range m.Headers {
			if h.Key == kafkasink.HeaderPart {
				part = string(h.Value)
			}
		}
		i, n, err := kafkasink.ParsePart(part)
		if err != nil {
			t.Fatal(err)
		}
		k := answerVersion{r.InvocationID, r.Version}
		rows := parts[k]
		if rows == nil {
			rows = make([]schemas.Attribution, n)
			parts[k] = rows
		}
		if prev := rows[i-1]; prev.InvocationID != "" && !sameRows([]schemas.Attribution{prev}, []schemas.Attribution{r}) {
			t.Fatalf("invocation %s version %d part %d: two copies differ:\n%+v\n%+v", r.InvocationID, r.Version, i, prev, r)
		}
		rows[i-1] = r
	}
	return parts
}

// complete reports whether every part of an answer arrived.
func complete(rows []schemas.Attribution) bool {
	return !slices.ContainsFunc(rows, func(r schemas.Attribution) bool { return r.InvocationID == "" })
}

// outputAnswers reads the output topic the way a downstream consumer
// should: answers assembled from their parts, the highest version kept per
// invocation. An incomplete answer fails the test.
func outputAnswers(t *testing.T, msgs []kafka.Message) map[string][]schemas.Attribution {
	t.Helper()
	out := map[string][]schemas.Attribution{}
	for k, rows := range outputParts(t, msgs) {
		if !complete(rows) {
			t.Fatalf("invocation %s version %d: incomplete answer in the output topic", k.inv, k.v)
		}
		if prev, ok := out[k.inv]; !ok || prev[0].Version < k.v {
			out[k.inv] = rows
		}
	}
	return out
}

// sameRows compares answers without the version and run columns, in end-user order.
func sameRows(a, b []schemas.Attribution) bool {
	if len(a) != len(b) {
		return false
	}
	norm := func(rs []schemas.Attribution) []schemas.Attribution {
		out := slices.Clone(rs)
		for i := range out {
			out[i].Version, out[i].RunID, out[i].ProcessedAt = 0, "", time.Time{}
			out[i].EventTime = out[i].EventTime.UTC().Truncate(time.Microsecond)
			out[i].CostUSD = float64(int64(out[i].CostUSD*1e9+0.5)) / 1e9
		}
		slices.SortFunc(out, func(x, y schemas.Attribution) int { return strings.Compare(x.EndUser, y.EndUser) })
		return out
	}
	x, y := norm(a), norm(b)
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// compareAnswers requires got to hold exactly want's invocations with the same answers.
func compareAnswers(t *testing.T, what string, got, want map[string][]schemas.Attribution) {
	t.Helper()
	var missing, extra, differ []string
	for inv, rows := range want {
		g, ok := got[inv]
		switch {
		case !ok:
			missing = append(missing, inv)
		case !sameRows(g, rows):
			differ = append(differ, inv)
		}
	}
	for inv := range got {
		if _, ok := want[inv]; !ok {
			extra = append(extra, inv)
		}
	}
	if len(missing)+len(extra)+len(differ) > 0 {
		msg := fmt.Sprintf("%s: %d invocations missing, %d unexpected, %d with another answer than batch (of %d)",
			what, len(missing), len(extra), len(differ), len(want))
		if len(differ) > 0 {
			msg += fmt.Sprintf("\nfirst difference, invocation %s: %s", differ[0], rowDiff(got[differ[0]], want[differ[0]]))
		}
		t.Fatal(msg)
	}
}

// reconcile checks an answer set against the deduplicated usage: each
// invocation's weights sum to 1 and its tokens to the invocation's.
func reconcile(t *testing.T, dir string, got map[string][]schemas.Attribution) {
	t.Helper()
	c, err := config.Load(config.New(), filepath.Join(dir, synth.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var usage []schemas.UsageEvent
	for _, s := range c.Sources {
		if s.IsAgent() || s.IsServed() {
			continue
		}
		_, err := ingest.ReadFiles(context.Background(), ingest.Spec{Kind: ingest.Kind(s.Kind), Path: s.Path}, ingest.Window{}, ingest.Emit{
			Usage: func(evs []schemas.UsageEvent) error { usage = append(usage, evs...); return nil },
			Dead:  func(schemas.DeadLetter) error { return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	events, _ := enrich.Dedup(usage)
	var in, out int64
	for _, ev := range events {
		in += ev.TotalTokens
		var w float64
		var tok int64
		for _, r := range got[ev.InvocationID] {
			w += r.Weight
			tok += r.TotalTokens
		}
		if w < 0.999999 || w > 1.000001 || tok != ev.TotalTokens {
			t.Fatalf("invocation %s: weights sum to %v and tokens to %d, want 1 and %d", ev.InvocationID, w, tok, ev.TotalTokens)
		}
		out += tok
	}
	if len(got) != len(events) || in != out {
		t.Fatalf("%d invocations with %d tokens attributed, input has %d with %d tokens", len(got), out, len(events), in)
	}
	t.Logf("reconciled: %d invocations, %d tokens", len(events), in)
}

// rowDiff names the columns in which two answers differ.
func rowDiff(got, want []schemas.Attribution) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d rows, want %d", len(got), len(want))
	}
	var out []string
	for i := range got {
		g, w := reflect.ValueOf(got[i]), reflect.ValueOf(want[i])
		for j := range g.NumField() {
			name := g.Type().Field(j).Name
			if name == "Version" || name == "RunID" || name == "ProcessedAt" {
				continue
			}
			if !reflect.DeepEqual(g.Field(j).Interface(), w.Field(j).Interface()) {
				out = append(out, fmt.Sprintf("%s: got %v, want %v", name, g.Field(j).Interface(), w.Field(j).Interface()))
			}
		}
		out = append(out, fmt.Sprintf("(version %d)", got[i].Version))
	}
	return strings.Join(out, "; ")
}
