package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/obolus/obolus/internal/app"
	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/stream/worker"
	duckdbsink "github.com/obolus/obolus/sink/duckdb"
)

func (a *cli) streamCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stream",
		Short: "Attribute gateway usage from Kafka in near real time (a consumer-group worker)",
		Long: `Consumes gateway usage and agent request messages from Kafka, attributes every
invocation to an end user in event time, and produces attribution rows (JSON,
keyed by invocation_id) to the output topic; with --duckdb it also loads them
into the store. Start more processes with the same configuration to scale
out: each stage is a Kafka consumer group. Stops cleanly on SIGTERM/SIGINT:
stops fetching, flushes, commits and leaves the groups.

Messages are JSON objects whose fields are the Databricks column names, the
same rows the batch path reads. Header obolus-kind says what a message holds
(usage topic: usage | legacy_usage; agent topic: payload | trace) and
obolus-agent-endpoint names an agent log row's endpoint. With --otlp
(stream.otlp.listen) it also accepts OpenTelemetry traces over OTLP/HTTP,
POST /v1/traces (protobuf or JSON, gzip or not): spans that are agent
requests go to the agent topic as span rows. See docs/streaming.md.`,
		Example: `  obolus stream --config obolus.yaml --brokers kafka-1:9092,kafka-2:9092
  obolus stream --config obolus.yaml --duckdb          # also load store.duckdb (run one such process)
  obolus stream --config obolus.yaml --stages rekey    # only the re-keying stage
  obolus stream --config obolus.yaml --otlp 0.0.0.0:4318   # also take agents' OTLP traces`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			bindStreamFlags(a, cmd)
			a.serveMetrics = true
			s, err := a.loadStream(ctx)
			if err != nil {
				return err
			}
			defer a.close(ctx)
			return a.runStream(ctx, s, nil)
		},
	}
	streamFlags(a, cmd)
	return cmd
}

// streamFlags adds the flags that override the stream section.
func streamFlags(a *cli, cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringSlice("brokers", nil, "Kafka bootstrap servers, host:port (overrides stream.brokers)")
	f.String("group", "", "consumer group prefix (overrides stream.group)")
	f.Bool("duckdb", false, "also load attributions and dead letters into store.duckdb (overrides stream.duckdb)")
	f.StringSlice("stages", nil, "stages to run: rekey, join, load (overrides stream.stages)")
	f.String("http", "", "listen address of /healthz, /readyz, /status and /metrics (overrides stream.http)")
	f.Duration("grace", 0, "how long a usage event waits for its agent request, in event time (overrides stream.grace)")
	f.String("otlp", "", "listen address of the OTLP/HTTP trace intake, POST /v1/traces, e.g. 127.0.0.1:4318 (overrides stream.otlp.listen; empty: off)")
}

// bindStreamFlags lets the stream flags override their keys. It runs when a
// stream command runs, not when the command tree is built: a bound stream.*
// key would otherwise reach the other commands' configuration.
func bindStreamFlags(a *cli, cmd *cobra.Command) {
	bind(a.v, cmd.Flags(), map[string]string{"brokers": "stream.brokers", "group": "stream.group", "duckdb": "stream.duckdb",
		"stages": "stream.stages", "http": "stream.http", "grace": "stream.grace",
		"otlp": "stream.otlp.listen"})
}

// loadStream is load for the stream commands: it reads the stream section too.
func (a *cli) loadStream(ctx context.Context) (*config.Stream, error) {
	cfg, s, err := config.LoadWithStream(a.v, a.configFile)
	if err != nil {
		return nil, usageError{Err: err}
	}
	if err := a.observe(ctx, cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// runStream runs a worker until ctx ends. started, when set, receives the
// worker before it runs.
func (a *cli) runStream(ctx context.Context, s *config.Stream, started func(*worker.Worker)) error {
	cfg := a.cfg
	wc, err := app.WorkerConfig(ctx, cfg, *s, a.log)
	if err != nil {
		return err
	}
	wc.Meter, wc.Metrics = a.tel.Meter(worker.Instrumentation), a.tel.Metrics
	if wc.HasStage(worker.StageLoad) {
		store, err := a.openStore(ctx)
		if err != nil {
			return err
		}
		defer store.Close()
		ss := &duckdbsink.Refreshing{Store: store}
		defer func() {
			if err := ss.Flush(context.WithoutCancel(ctx)); err != nil {
				a.log.Warn("final coverage refresh", "err", err)
			}
		}()
		wc.Store = ss
	}
	if len(wc.ServicePrincipals) == 0 && wc.HasStage(worker.StageRekey) {
		if key := cfg.OTel.ServicePrincipalAttribute; key != "" {
			a.log.Warn("no agent endpoint has a service principal: payload and trace messages will be dead-lettered, and spans (OTLP or span rows) unless their resource names one", "resource_attribute", key,
				"hint", "add stream.agents or agent sources with service_principal")
		} else {
			a.log.Warn("no agent endpoint has a service principal: agent log messages will be dead-lettered; add stream.agents or agent sources with service_principal")
		}
	}
	w, err := worker.New(wc)
	if err != nil {
		return usageError{Err: err}
	}
	if started != nil {
		started(w)
	}
	began := time.Now()
	if err := w.Run(ctx); err != nil {
		return err
	}
	st := w.Status()
	a.log.Info("stream stopped cleanly", "uptime", time.Since(began).Round(time.Millisecond),
		"rekeyed_usage", st.Rekey.Usage, "rekeyed_agents", st.Rekey.Agents, "dead_letters", st.Rekey.DeadLetters, "loaded_answers", st.Load.Answers)
	return nil
}
