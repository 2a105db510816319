package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/obolus/obolus/enrich"
	kafkaingest "github.com/obolus/obolus/ingest/kafka"
	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/stream"
	"github.com/obolus/obolus/internal/stream/worker"
	"github.com/obolus/obolus/internal/telemetry"
	duckdbsink "github.com/obolus/obolus/sink/duckdb"
)

func (a *app) streamCmd() *cobra.Command {
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
obolus-agent-endpoint names an agent log row's endpoint. See docs/streaming.md.`,
		Example: `  obolus stream --config obolus.yaml --brokers kafka-1:9092,kafka-2:9092
  obolus stream --config obolus.yaml --duckdb          # also load store.duckdb (run one such process)
  obolus stream --config obolus.yaml --stages rekey    # only the re-keying stage`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			bindStreamFlags(a, cmd)
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
func streamFlags(a *app, cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringSlice("brokers", nil, "Kafka bootstrap servers, host:port (overrides stream.brokers)")
	f.String("group", "", "consumer group prefix (overrides stream.group)")
	f.Bool("duckdb", false, "also load attributions and dead letters into store.duckdb (overrides stream.duckdb)")
	f.StringSlice("stages", nil, "stages to run: rekey, join, load (overrides stream.stages)")
	f.String("http", "", "listen address of /healthz, /readyz and /status (overrides stream.http)")
	f.Duration("grace", 0, "how long a usage event waits for its agent request, in event time (overrides stream.grace)")
}

// bindStreamFlags lets the stream flags override their keys. It runs when a
// stream command runs, not when the command tree is built: a bound stream.*
// key would otherwise reach the other commands' configuration.
func bindStreamFlags(a *app, cmd *cobra.Command) {
	bind(a.v, cmd.Flags(), map[string]string{"brokers": "stream.brokers", "group": "stream.group", "duckdb": "stream.duckdb",
		"stages": "stream.stages", "http": "stream.http", "grace": "stream.grace"})
}

// loadStream is load for the stream commands: it reads the stream section too.
func (a *app) loadStream(ctx context.Context) (*config.Stream, error) {
	cfg, s, err := config.LoadWithStream(a.v, a.configFile)
	if err != nil {
		return nil, usageError{err}
	}
	a.cfg = cfg
	a.log = telemetry.NewLogger(os.Stderr, cfg.Log)
	slog.SetDefault(a.log)
	a.shutdown, err = telemetry.Setup(ctx, cfg.Telemetry, "obolus", version(), os.Stdout)
	if err != nil {
		return nil, usageError{err}
	}
	return s, nil
}

// runStream runs a worker until ctx ends. started, when set, receives the
// worker before it runs.
func (a *app) runStream(ctx context.Context, s *config.Stream, started func(*worker.Worker)) error {
	cfg := a.cfg
	opts, err := kafkaingest.NewOptions(*s)
	if err != nil {
		return usageError{err}
	}
	prices, org, err := loadPricing(cfg)
	if err != nil {
		return err
	}
	wc := worker.Config{
		Options:           opts,
		Stream:            *s,
		Join:              stream.Config{Match: cfg.MatchConfig(), Prices: prices, Org: org},
		ServicePrincipals: cfg.ServicePrincipals(*s),
		Log:               a.log,
	}
	if s.HasStage(config.StageLoad) {
		if err := os.MkdirAll(filepath.Dir(cfg.Store.DuckDB), 0o755); err != nil {
			return fmt.Errorf("create store directory: %w", err)
		}
		store, err := duckdbsink.Open(ctx, cfg.Store.DuckDB)
		if err != nil {
			return fmt.Errorf("open store %s: %w", cfg.Store.DuckDB, err)
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
	if len(wc.ServicePrincipals) == 0 && s.HasStage(config.StageRekey) {
		a.log.Warn("no agent endpoint has a service principal: agent log messages will be dead-lettered; add stream.agents or payload/trace sources")
	}
	w, err := worker.New(wc)
	if err != nil {
		return usageError{err}
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

func loadPricing(cfg *config.Config) (*enrich.PriceList, *enrich.Directory, error) {
	prices := enrich.DefaultPriceList()
	if cfg.Prices != "" {
		var err error
		if prices, err = enrich.LoadPriceList(cfg.Prices); err != nil {
			return nil, nil, usageError{fmt.Errorf("prices: %w", err)}
		}
	}
	var org *enrich.Directory
	if cfg.Org != "" {
		var err error
		if org, err = enrich.LoadDirectory(cfg.Org); err != nil {
			return nil, nil, usageError{fmt.Errorf("org: %w", err)}
		}
	}
	return prices, org, nil
}
