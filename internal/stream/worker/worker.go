// Package worker runs streaming attribution as Kafka consumer-group workers:
// re-keying, the windowed join, the DuckDB loader, health endpoints and lag.
//
// Every stage is a consumer group, so running more processes with the same
// configuration spreads partitions across them; a process that dies has its
// partitions taken over after the session timeout. Stages:
//
//	rekey  input topics → keyed topic (key: service principal) + dead letters
//	join   keyed topic → output topic (key: invocation id)
//	load   output and dead-letter topics → DuckDB store (one process only)
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"sync"
	"time"

	"github.com/oklog/run"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/metric"

	"github.com/obolus/obolus/ingest"
	kafkaingest "github.com/obolus/obolus/ingest/kafka"
	"github.com/obolus/obolus/ingest/otlp"
	"github.com/obolus/obolus/internal/retry"
	"github.com/obolus/obolus/internal/stream"
	"github.com/obolus/obolus/schemas"
	kafkasink "github.com/obolus/obolus/sink/kafka"
	"github.com/obolus/obolus/sink/webhook"
)

// The stages a worker can run; each is a consumer group.
const (
	StageRekey = "rekey"
	StageJoin  = "join"
	StageLoad  = "load"
)

// The worker's HTTP paths on Config.HTTP, named once for the deployment
// manifests' tests.
const (
	PathHealth  = "/healthz"
	PathReady   = "/readyz"
	PathStatus  = "/status"
	PathMetrics = "/metrics"
)

// Topics names the worker's topics.
type Topics struct {
	Usage, Agents, Keyed, Output, DeadLetter string
	// Alerts receives budget alerts; used only with Config.Alerts.
	Alerts string
}

// Alerts configures budget alerts, raised by the load stage.
type Alerts struct {
	Budgets kafkasink.Budgets
	// Webhook, when its URL is set, receives every alert too.
	Webhook      webhook.Config
	WebhookEvery time.Duration
}

// Config is what a worker needs.
type Config struct {
	Options kafkaingest.Options
	// Group prefixes the consumer groups: <group>.rekey, .join, .load.
	Group  string
	Topics Topics
	// Stages are the stages this process runs.
	Stages []string
	// CreateTopics creates missing topics with Partitions partitions.
	CreateTopics bool
	Partitions   int
	// CommitInterval is how often outputs are flushed and offsets committed;
	// IdleFlush how long an input partition is quiet at its end before it
	// claims idle.
	CommitInterval, IdleFlush        time.Duration
	SessionTimeout, RebalanceTimeout time.Duration
	// ProducerDelay is how long after its timestamp a message can become
	// readable; MaxFuture how far ahead of now an event time is accepted.
	ProducerDelay, MaxFuture time.Duration
	MaxMessageBytes          int
	// Limits bound what an input record may claim; zero fields mean
	// ingest.DefaultLimits.
	Limits ingest.Limits
	// HTTP is the listen address of /healthz, /readyz, /status and
	// /metrics ("": none).
	HTTP string
	// Metrics serves /metrics (the Prometheus exposition of Meter's
	// provider); nil leaves the path out.
	Metrics http.Handler
	// Join configures the windowed join (Grace, Horizon, AgentRetention, Idle).
	Join stream.Config
	// ServicePrincipals maps agent endpoints to service principals.
	ServicePrincipals map[string]string
	// SpanKeys are the attributes span rows name the end user and the rest
	// by (the otel section); the zero value means schemas.DefaultSpanKeys.
	SpanKeys schemas.SpanKeys
	// OTLP is the OTLP/HTTP trace intake; its Listen "" disables it.
	OTLP OTLP
	// Store receives attributions and dead letters in the load stage.
	Store kafkasink.Store
	// Alerts, when set and some budget is, makes the load stage raise
	// budget alerts; Store must then also be a kafkasink.AlertStore.
	Alerts *Alerts
	Log    *slog.Logger
	// Meter records the worker's metrics; nil means the global provider.
	Meter metric.Meter
}

// OTLP configures the OTLP/HTTP trace intake: POST /v1/traces on its own
// listener, spans produced to the agent topic.
type OTLP struct {
	// Listen is the listen address ("": no intake).
	Listen string
	// Handler configures the endpoint; its Keys are Config.SpanKeys.
	Handler otlp.Config
}

// Worker is one streaming process.
type Worker struct {
	cfg     Config
	log     *slog.Logger
	status  *kafkaingest.Status
	rekeyN  *kafkaingest.RekeyCounts
	loadN   *kafkasink.LoaderCounts
	alertN  *kafkasink.AlertCounts
	join    *joiner
	metrics *metrics
	groups  []string
	// expected is each group's partition count across its topics.
	expected map[string]int
	started  time.Time

	otlp   *otlp.Handler
	spansN *kafkaingest.SpanCounts

	mu       sync.Mutex
	running  bool
	fatal    error
	httpAddr string
	otlpAddr string
}

// New validates cfg and returns a worker.
func New(cfg Config) (*Worker, error) {
	if len(cfg.Options.Brokers) == 0 {
		return nil, errors.New("stream.brokers: empty; name the Kafka bootstrap servers")
	}
	if cfg.Group == "" {
		return nil, errors.New("stream.group: empty")
	}
	if len(cfg.Stages) == 0 {
		return nil, errors.New("stream.stages: empty; use any of rekey, join, load")
	}
	for _, st := range cfg.Stages {
		if st != StageRekey && st != StageJoin && st != StageLoad {
			return nil, fmt.Errorf("stream.stages: %q: use rekey, join or load", st)
		}
	}
	if cfg.HasStage(StageLoad) && cfg.Store == nil {
		return nil, errors.New("the load stage needs a store (stream.duckdb)")
	}
	if cfg.CommitInterval <= 0 || cfg.IdleFlush <= 0 {
		return nil, errors.New("stream.commit_interval and stream.idle_flush must be positive")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Join.RunID == "" {
		cfg.Join.RunID = "stream:" + cfg.Group
	}
	if err := cfg.Join.Validate(); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	w := &Worker{cfg: cfg, log: cfg.Log, status: kafkaingest.NewStatus(),
		rekeyN: &kafkaingest.RekeyCounts{}, loadN: &kafkasink.LoaderCounts{}, spansN: &kafkaingest.SpanCounts{}}
	if cfg.alerting() {
		if _, ok := cfg.Store.(kafkasink.AlertStore); !ok {
			return nil, fmt.Errorf("budget alerts need a store that keeps their ledger and outbox (the DuckDB store); %T is not one", cfg.Store)
		}
		if cfg.Topics.Alerts == "" {
			return nil, errors.New("stream.topics.alerts: empty; name the budget alerts' topic")
		}
		if cfg.Alerts.Webhook.URL != "" {
			if _, err := webhook.New(cfg.Alerts.Webhook); err != nil {
				return nil, fmt.Errorf("budgets.alerts.webhook: %w", err)
			}
		}
	}
	// The alert counters exist with the load stage, zero without budgets,
	// so /metrics carries the same series whatever the configuration.
	if cfg.HasStage(StageLoad) {
		w.alertN = &kafkasink.AlertCounts{}
	}
	return w, nil
}

// alerting reports whether the load stage raises budget alerts.
func (c Config) alerting() bool {
	return c.HasStage(StageLoad) && c.Alerts != nil && c.Alerts.Budgets.Any()
}

// HasStage reports whether the worker runs stage.
func (c Config) HasStage(stage string) bool { return slices.Contains(c.Stages, stage) }

// Group ids of the stages.
func groupID(c Config, stage string) string { return c.Group + "." + stage }

// alertsTransactionalID is the budget alerts producer's: one per
// deployment, so that a new load worker fences the one it replaces.
func alertsTransactionalID(c Config) string { return groupID(c, StageLoad) + ".alerts" }

// Run runs the configured stages until ctx ends, then stops fetching,
// flushes, commits and leaves every group before returning.
func (w *Worker) Run(ctx context.Context) error {
	s := w.cfg
	o := w.cfg.Options
	w.started = time.Now()
	m, err := newMetrics(w)
	if err != nil {
		return err
	}
	w.metrics = m
	defer m.close()

	srv, err := w.serveHTTP(ctx)
	if err != nil {
		return err
	}
	if srv != nil {
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), httpShutdownTimeout)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}

	topics := []string{s.Topics.Usage, s.Topics.Agents, s.Topics.Keyed, s.Topics.Output, s.Topics.DeadLetter}
	if s.alerting() {
		topics = append(topics, s.Topics.Alerts)
	}
	var counts map[string]int
	err = retry.Do(ctx, retry.Policy{Attempts: 5, Wait: time.Second,
		OnRetry: func(_ int, err error) { w.log.Warn("kafka not reachable yet, retrying", "err", err) }},
		func(ctx context.Context) (err error) {
			if s.CreateTopics {
				counts, err = kafkaingest.EnsureTopics(ctx, o, s.Partitions, topics...)
			} else {
				counts, err = kafkaingest.PartitionCounts(ctx, o, topics...)
			}
			return err
		})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	w.log.Info("stream topics", "partitions", counts, "stages", s.Stages)

	writers := map[string]*kafka.Writer{}
	writer := func(topic string, b kafka.Balancer) *kafka.Writer {
		key := topic + fmt.Sprintf("/%T", b)
		if wr := writers[key]; wr != nil {
			return wr
		}
		wr := o.Writer(topic, b)
		writers[key] = wr
		return wr
	}
	defer func() {
		for _, wr := range writers {
			if err := wr.Close(); err != nil {
				w.log.Warn("close writer", "topic", wr.Topic, "err", err)
			}
		}
	}()

	var groups []*kafkaingest.Group
	w.mu.Lock()
	w.expected = map[string]int{}
	w.mu.Unlock()
	newGroup := func(stage string, topics []string, open kafkaingest.Opener) {
		g := &kafkaingest.Group{
			Options: o, ID: groupID(s, stage), Topics: topics, Open: open,
			CommitInterval: s.CommitInterval, IdleAfter: s.IdleFlush,
			SessionTimeout: s.SessionTimeout, RebalanceTimeout: s.RebalanceTimeout,
			MaxBytes: 2*s.MaxMessageBytes + 1<<20, Log: w.log.With("stage", stage), Status: w.status,
		}
		groups = append(groups, g)
		w.groups = append(w.groups, g.ID)
		for _, t := range topics {
			w.expected[g.ID] += counts[t]
		}
	}
	decoder := func() *kafkaingest.Decoder {
		return &kafkaingest.Decoder{UsageTopic: s.Topics.Usage, AgentsTopic: s.Topics.Agents,
			ServicePrincipals: w.cfg.ServicePrincipals, MaxBytes: s.MaxMessageBytes, MaxFuture: s.MaxFuture, Limits: s.Limits,
			SpanKeys: s.SpanKeys}
	}
	if s.OTLP.Listen != "" {
		// The intake writes to the agent topic like any producer (spans
		// keyed by trace id), so it works in any process, whatever its
		// stages.
		intake := &kafkaingest.SpanIntake{Decoder: decoder(), Agents: writer(s.Topics.Agents, &kafka.Hash{}),
			Dead: writer(s.Topics.DeadLetter, &kafka.Hash{}), Counts: w.spansN}
		osrv, err := w.serveOTLP(ctx, intake)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = osrv.Shutdown(sctx)
		}()
	}
	if s.HasStage(StageRekey) {
		rk := &kafkaingest.Rekeyer{
			Decoder:         decoder(),
			Keyed:           writer(s.Topics.Keyed, explicitPartition{}),
			Dead:            writer(s.Topics.DeadLetter, &kafka.Hash{}),
			Progress:        writer(s.Topics.Keyed, explicitPartition{}),
			Route:           keyedRoute(counts[s.Topics.Keyed]),
			KeyedPartitions: counts[s.Topics.Keyed],
			Sources:         counts[s.Topics.Usage] + counts[s.Topics.Agents],
			ProducerDelay:   s.ProducerDelay,
			MaxLead:         rekeyMaxLead,
			FlushAt:         500,
			Counts:          w.rekeyN,
			Log:             w.log.With("stage", StageRekey),
		}
		newGroup(StageRekey, []string{s.Topics.Usage, s.Topics.Agents}, rk.Open)
	}
	if s.HasStage(StageJoin) {
		w.join = &joiner{
			cfg: w.cfg.Join, keyed: s.Topics.Keyed, flushAt: 2000, log: w.log.With("stage", StageJoin), metrics: w.metrics,
			output:  writer(s.Topics.Output, &kafka.Hash{}),
			markers: writer(s.Topics.Keyed, explicitPartition{}),
			dead:    writer(s.Topics.DeadLetter, &kafka.Hash{}),
			stats:   map[int]stream.Stats{},
		}
		newGroup(StageJoin, []string{s.Topics.Keyed}, w.join.open)
	}
	var alerter *kafkasink.Alerter
	if s.HasStage(StageLoad) {
		ld := &kafkasink.Loader{Store: w.cfg.Store, OutputTopic: s.Topics.Output, DeadLetterTopic: s.Topics.DeadLetter,
			Counts: w.loadN, Log: w.log.With("stage", StageLoad)}
		if s.alerting() {
			topic, err := kafkasink.NewAlertTopic(o, s.Topics.Alerts, alertsTransactionalID(s))
			if err != nil {
				return err
			}
			defer topic.Close()
			alerter = &kafkasink.Alerter{Store: w.cfg.Store.(kafkasink.AlertStore), Budgets: s.Alerts.Budgets,
				Writer: topic, Topic: s.Topics.Alerts, Fence: topic.Fence, Produced: topic.Keys,
				WebhookEvery: s.Alerts.WebhookEvery, Counts: w.alertN, Log: w.log.With("stage", StageLoad, "part", "alerts")}
			if s.Alerts.Webhook.URL != "" {
				wc := s.Alerts.Webhook
				wc.Log = alerter.Log
				if alerter.Webhook, err = webhook.New(wc); err != nil {
					return fmt.Errorf("budgets.alerts.webhook: %w", err)
				}
			}
			ld.Alerts = alerter
		}
		newGroup(StageLoad, []string{s.Topics.Output, s.Topics.DeadLetter}, ld.Open)
	}

	w.setRunning(true, nil)
	// Each stage is an actor; the first to fail stops the others, and the
	// end of ctx (SIGTERM) stops them all cleanly.
	var rg run.Group
	stop, cancelStop := context.WithCancel(ctx)
	rg.Add(func() error { <-stop.Done(); return nil }, func(error) { cancelStop() })
	for _, g := range groups {
		gctx, cancel := context.WithCancel(ctx)
		rg.Add(func() error { return g.Run(gctx) }, func(error) { cancel() })
	}
	if alerter != nil {
		actx, cancel := context.WithCancel(ctx)
		rg.Add(func() error { return alerter.Run(actx) }, func(error) { cancel() })
	}
	err = rg.Run()
	w.setRunning(false, err)
	w.log.Info("stream stopped", "rekeyed_usage", w.rekeyN.Usage.Load(), "rekeyed_agents", w.rekeyN.Agents.Load(),
		"dead_letters", w.rekeyN.Dead.Load(), "loaded_answers", w.loadN.Answers.Load())
	return err
}

// httpShutdownTimeout bounds the health server's shutdown at the end of Run.
const httpShutdownTimeout = 5 * time.Second

// writerCloseTimeout is how long closing the writers may take at the end of
// Run: kafka-go's default WriteTimeout for what is still in flight (the
// final flushes have already written what the stages produced).
const writerCloseTimeout = 10 * time.Second

// StopBound is the longest a worker with these group timeouts takes from
// SIGTERM to exit: its stages' groups stop in parallel (kafka StopBound:
// final flushes and commits, then leaving the group), then the writers
// close and the health server shuts down. A pod's
// terminationGracePeriodSeconds must exceed it, or Kubernetes kills the
// worker before its last commit and the next owner replays more.
func StopBound(session, rebalance time.Duration) time.Duration {
	return kafkaingest.StopBound(session, rebalance) + writerCloseTimeout + httpShutdownTimeout
}

// rekeyMaxLead bounds how far, in message time, one input partition is
// re-keyed ahead of the slowest in the process: the join holds what arrives
// ahead of the slowest input in memory until it catches up.
const rekeyMaxLead = 2 * time.Second

// keyedRoute is a key's keyed partition: kafka.Hash's choice (FNV-1a of the
// service principal), the partitioning the keyed topic has always had.
func keyedRoute(partitions int) func([]byte) int {
	parts := make([]int, partitions)
	for i := range parts {
		parts[i] = i
	}
	// With no Hasher set, kafka.Hash takes its hasher from a pool: safe for
	// the rekey partitions to call concurrently, without a lock.
	h := &kafka.Hash{}
	return func(key []byte) int { return h.Balance(kafka.Message{Key: key}, parts...) }
}

func (w *Worker) setRunning(on bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.running, w.fatal = on, err
}

// Ready reports whether every stage's group has joined.
func (w *Worker) Ready() bool {
	w.mu.Lock()
	running := w.running
	w.mu.Unlock()
	if !running {
		return false
	}
	for _, g := range w.groups {
		if !w.status.Joined(g) {
			return false
		}
	}
	return true
}

// HTTPAddr is where the health endpoints listen, once Run has started them.
func (w *Worker) HTTPAddr() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.httpAddr
}

// Report is the /status document.
type Report struct {
	Ready      bool                          `json:"ready"`
	Uptime     string                        `json:"uptime"`
	Groups     []string                      `json:"groups"`
	Partitions []kafkaingest.PartitionStatus `json:"partitions"`
	// Expected is each group's partition count; a group whose partitions
	// across all its processes fall short is still rebalancing.
	Expected map[string]int `json:"expected"`
	// Lag is the sum of the partitions' lag, per group.
	Lag   map[string]int64   `json:"lag"`
	Join  map[int]JoinStatus `json:"join,omitempty"`
	Rekey struct {
		Usage, Agents, DeadLetters int64
		// Skipped messages stood for no record (spans that are not an
		// agent request).
		Skipped int64
	} `json:"rekey"`
	// OTLP is the trace intake's counts, when it runs.
	OTLP *OTLPStatus `json:"otlp,omitempty"`
	Load struct {
		Answers, Rows, DeadLetters int64
	} `json:"load"`
	// Alerts is what the load stage's budget alerts did, when it raises them.
	Alerts *AlertStatus `json:"alerts,omitempty"`
}

// AlertStatus counts budget alerts.
type AlertStatus struct {
	// Raised alerts were new in the outbox.
	RaisedWarn     int64 `json:"raised_warn"`
	RaisedCritical int64 `json:"raised_critical"`
	// Produced were committed to the alerts topic; Skipped were found
	// there after a restart.
	Produced int64 `json:"produced"`
	Skipped  int64 `json:"skipped"`
	// Webhook deliveries: delivered, rejected (4xx, not retried), rounds
	// that ended with the alert still pending.
	WebhookDelivered int64 `json:"webhook_delivered"`
	WebhookRejected  int64 `json:"webhook_rejected"`
	WebhookRetrying  int64 `json:"webhook_retrying"`
}

// OTLPStatus is what the OTLP/HTTP intake did.
type OTLPStatus struct {
	Addr string `json:"addr"`
	otlp.Stats
	// Produced spans went to the agent topic; Skipped were no agent
	// request; DeadLetters were dead-lettered (and rejected).
	Produced    int64 `json:"produced"`
	Skipped     int64 `json:"skipped"`
	DeadLetters int64 `json:"dead_letters"`
}

// JoinStatus is one keyed partition's join state.
type JoinStatus struct {
	Watermark time.Time `json:"watermark"`
	// Position is how far, in message time, the sources have been merged.
	Position time.Time `json:"position"`
	// Buffered records wait for a slower source to claim past them.
	Buffered      int   `json:"buffered"`
	Clamped       int64 `json:"clamped"`
	Pending       int   `json:"pending"`
	Open          int   `json:"open"`
	AgentRequests int   `json:"agent_requests"`
	Emitted       int64 `json:"emitted"`
	Restated      int64 `json:"restated"`
	Duplicates    int64 `json:"duplicates"`
	TooLate       int64 `json:"too_late"`
	// TimeDisagreements counts agent requests whose logs disagree on their
	// times beyond match.skew.
	TimeDisagreements int64 `json:"time_disagreements"`
}

// Status describes what the worker is doing.
func (w *Worker) Status() Report {
	r := Report{Ready: w.Ready(), Uptime: time.Since(w.started).Round(time.Millisecond).String(), Groups: w.groups,
		Partitions: w.status.Partitions(), Lag: map[string]int64{}, Expected: map[string]int{}}
	w.mu.Lock()
	maps.Copy(r.Expected, w.expected)
	w.mu.Unlock()
	slices.SortFunc(r.Partitions, func(a, b kafkaingest.PartitionStatus) int {
		if a.Group != b.Group {
			return cmpString(a.Group, b.Group)
		}
		if a.Topic != b.Topic {
			return cmpString(a.Topic, b.Topic)
		}
		return a.Partition - b.Partition
	})
	for _, p := range r.Partitions {
		r.Lag[p.Group] += p.Lag
	}
	if w.join != nil {
		r.Join = map[int]JoinStatus{}
		for p, s := range w.join.Stats() {
			r.Join[p] = JoinStatus{Watermark: s.Watermark, Position: s.Position, Buffered: s.Buffered, Clamped: s.Clamped, Pending: s.Pending, Open: s.Open, AgentRequests: s.AgentRequests,
				Emitted: s.Emitted, Restated: s.Restated, Duplicates: s.Duplicates, TooLate: s.TooLate, TimeDisagreements: s.TimeDisagreements}
		}
	}
	r.Rekey.Usage, r.Rekey.Agents, r.Rekey.DeadLetters = w.rekeyN.Usage.Load(), w.rekeyN.Agents.Load(), w.rekeyN.Dead.Load()
	r.Rekey.Skipped = w.rekeyN.Skipped.Load()
	w.mu.Lock()
	h, addr := w.otlp, w.otlpAddr
	w.mu.Unlock()
	if h != nil {
		r.OTLP = &OTLPStatus{Addr: addr, Stats: h.Stats(), Produced: w.spansN.Produced.Load(), Skipped: w.spansN.Skipped.Load(),
			DeadLetters: w.spansN.Dead.Load()}
	}
	r.Load.Answers, r.Load.Rows, r.Load.DeadLetters = w.loadN.Answers.Load(), w.loadN.Rows.Load(), w.loadN.DeadLetters.Load()
	if a := w.alertN; a != nil && w.cfg.alerting() {
		r.Alerts = &AlertStatus{RaisedWarn: a.RaisedWarn.Load(), RaisedCritical: a.RaisedCritical.Load(), Produced: a.Produced.Load(),
			Skipped: a.Skipped.Load(), WebhookDelivered: a.WebhookDelivered.Load(), WebhookRejected: a.WebhookRejected.Load(),
			WebhookRetrying: a.WebhookRetrying.Load()}
	}
	return r
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// serveHTTP starts /healthz (the process is up and no stage has failed),
// /readyz (every stage has joined its group), /status (JSON) and, when
// Config.Metrics is set, /metrics (Prometheus).
func (w *Worker) serveHTTP(ctx context.Context) (*http.Server, error) {
	addr := w.cfg.HTTP
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("stream.http %s: %w", addr, err)
	}
	w.mu.Lock()
	w.httpAddr = ln.Addr().String()
	w.mu.Unlock()
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathHealth, func(rw http.ResponseWriter, _ *http.Request) {
		w.mu.Lock()
		fatal := w.fatal
		w.mu.Unlock()
		if fatal != nil {
			http.Error(rw, "failed: "+fatal.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(rw, "ok")
	})
	mux.HandleFunc("GET "+PathReady, func(rw http.ResponseWriter, _ *http.Request) {
		if !w.Ready() {
			http.Error(rw, "not ready: joining consumer groups", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(rw, "ready")
	})
	mux.HandleFunc("GET "+PathStatus, func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(rw)
		enc.SetIndent("", "  ")
		_ = enc.Encode(w.Status())
	})
	paths := PathHealth + " " + PathReady + " " + PathStatus
	if w.cfg.Metrics != nil {
		mux.Handle("GET "+PathMetrics, w.cfg.Metrics)
		paths += " " + PathMetrics
	}
	// Profiles, for when a worker is slower or bigger than expected.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.log.Error("health endpoints stopped", "err", err)
		}
	}()
	w.log.Info("health endpoints", "addr", "http://"+w.httpAddr, "paths", paths)
	return srv, nil
}

// OTLPAddr is where the OTLP intake listens, once Run has started it.
func (w *Worker) OTLPAddr() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.otlpAddr
}

// serveOTLP starts the OTLP/HTTP trace intake on its own listener: agents
// reach it from other hosts, while stream.http (profiles) stays on loopback.
func (w *Worker) serveOTLP(ctx context.Context, exp otlp.Exporter) (*http.Server, error) {
	ln, err := net.Listen("tcp", w.cfg.OTLP.Listen)
	if err != nil {
		return nil, fmt.Errorf("stream.otlp.listen %s: %w", w.cfg.OTLP.Listen, err)
	}
	hc := w.cfg.OTLP.Handler
	hc.Keys, hc.Log = w.cfg.SpanKeys, w.log.With("stage", "otlp")
	h := otlp.NewHandler(hc, exp)
	w.mu.Lock()
	w.otlp, w.otlpAddr = h, ln.Addr().String()
	w.mu.Unlock()
	mux := http.NewServeMux()
	mux.Handle(otlp.Path, h)
	// A request holds one of max_in_flight slots while its body arrives: a
	// read timeout keeps a slow (or stalled) client from holding it.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.log.Error("otlp intake stopped", "err", err)
		}
	}()
	w.log.Info("otlp intake", "endpoint", "http://"+w.OTLPAddr()+otlp.Path, "auth", hc.BearerToken != "")
	return srv, nil
}
