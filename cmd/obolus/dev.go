package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/oklog/run"
	"github.com/spf13/cobra"

	"github.com/obolus/obolus/internal/app"
	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/devbroker"
	"github.com/obolus/obolus/internal/stream/worker"
	"github.com/obolus/obolus/internal/synth"
)

func (a *cli) devCmd() *cobra.Command {
	var (
		port                   int
		dataDir, workload      string
		gen, noWorker, exitEnd bool
		rate                   float64
		lateDelay              time.Duration
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole streaming path on this machine: in-process Kafka broker, replay, stream worker",
		Long: `Starts an in-process Kafka-protocol broker (franz-go kfake) on 127.0.0.1,
creates the topics, and runs the stream worker against it, loading the store
(store.duckdb). With --workload it replays a generated workload into the
broker at --rate messages per second, in arrival order: usage rows when
their call finished, agent logs when their request ended, logs under
agents_late/ --late-delay after that. Other clients (kcat, your own
producers) can use the broker too. Ctrl-C stops everything cleanly.`,
		Example: `  obolus dev --workload demo --gen --exit-when-done   # generate, replay, attribute, stop
  obolus dev --workload demo --rate 500                 # replay slowly and keep running
  obolus dev --port 9092 --no-worker                    # just a broker for your own clients`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if workload != "" {
				if _, err := os.Stat(workload); errors.Is(err, os.ErrNotExist) && gen {
					res, err := synth.Generate(ctx, synth.Config{}.WithDefaults(), workload)
					if err != nil {
						return fmt.Errorf("generate workload: %w", err)
					}
					fmt.Fprintf(a.out, "generated %s: %d usage rows, %d agent requests\n", workload, res.UsageRows+res.LegacyRows, res.AgentRequests)
				}
				if a.configFile == "" {
					a.configFile = filepath.Join(workload, synth.ConfigFile)
				}
			}
			// The dev path loads the store unless told otherwise.
			bindStreamFlags(a, cmd)
			a.serveMetrics = true
			a.v.SetDefault("stream.duckdb", true)
			s, err := a.loadStream(ctx)
			if err != nil {
				return err
			}
			defer a.close(ctx)
			if exitEnd && noWorker {
				return usageErrorf("--exit-when-done waits for the worker; drop --no-worker")
			}
			b, err := devbroker.Start(devbroker.Options{Port: port, DataDir: dataDir, Partitions: s.Partitions, MaxMessageBytes: 8 << 20,
				Topics: []string{s.Topics.Usage, s.Topics.Agents, s.Topics.Keyed, s.Topics.Output, s.Topics.DeadLetter}})
			if err != nil {
				return err
			}
			defer b.Close()
			s.Brokers = []string{b.Addr()}
			fmt.Fprintf(a.out, "kafka broker on %s (in-process); topics %s, %s → %s, dead letters %s\n",
				b.Addr(), s.Topics.Usage, s.Topics.Agents, s.Topics.Output, s.Topics.DeadLetter)
			fmt.Fprintf(a.out, "  read answers:  kcat -b %s -C -t %s -f '%%k %%h %%s\\n'\n", b.Addr(), s.Topics.Output)
			fmt.Fprintf(a.out, "  send usage:    kcat -b %s -P -t %s -H obolus-kind=usage < usage.jsonl\n", b.Addr(), s.Topics.Usage)
			if s.OTLP.Listen != "" {
				fmt.Fprintf(a.out, "  send traces:   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://%s/v1/traces (OTLP/HTTP, protobuf or JSON)\n", s.OTLP.Listen)
			}
			return a.runDev(ctx, s, workload, rate, lateDelay, noWorker, exitEnd)
		},
	}
	f := cmd.Flags()
	f.IntVar(&port, "port", 9092, "loopback port of the broker (0: any free port)")
	f.StringVar(&dataDir, "data-dir", "", "keep the broker's topics and offsets in this directory (default: in memory)")
	f.StringVar(&workload, "workload", "", "replay this generated workload (its obolus.yaml is the default --config)")
	f.BoolVar(&gen, "gen", false, "generate the workload first when --workload does not exist")
	f.Float64Var(&rate, "rate", 0, "replay rate in messages per second (0: as fast as possible)")
	f.DurationVar(&lateDelay, "late-delay", 15*time.Minute, "how long after their request ended late agent logs arrive (event time)")
	f.BoolVar(&noWorker, "no-worker", false, "run only the broker (and the replay)")
	f.BoolVar(&exitEnd, "exit-when-done", false, "stop once the replayed workload is attributed and loaded")
	streamFlags(a, cmd)
	return cmd
}

func (a *cli) runDev(ctx context.Context, s *config.Stream, workload string, rate float64, lateDelay time.Duration, noWorker, exitEnd bool) error {
	opts, err := app.KafkaOptions(*s)
	if err != nil {
		return err
	}
	// The parts are actors of one group: the first to end stops the others.
	var g run.Group
	{
		// SIGTERM or SIGINT: every part stops cleanly.
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { <-ctx.Done(); return nil }, func(error) { cancel() })
	}
	ready := make(chan *worker.Worker, 1)
	if !noWorker {
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error {
			return a.runStream(ctx, s, func(w *worker.Worker) { ready <- w })
		}, func(error) { cancel() })
	}
	var drained *worker.Worker
	if workload != "" || exitEnd {
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error {
			if workload != "" {
				st, err := devbroker.Replay(ctx, opts, devbroker.ReplayOptions{Sources: app.Specs(a.cfg), Rate: rate, LateDelay: lateDelay,
					UsageTopic: s.Topics.Usage, AgentsTopic: s.Topics.Agents})
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				fmt.Fprintf(a.out, "replayed %d usage and %d agent log messages in %s\n", st.Usage, st.Agents, st.Elapsed.Round(time.Millisecond))
			}
			if !exitEnd || noWorker {
				// Keep the broker and the worker running.
				<-ctx.Done()
				return nil
			}
			var w *worker.Worker
			select {
			case w = <-ready:
			case <-ctx.Done():
				return nil
			}
			if err := waitDrained(ctx, w, s.Topics.Keyed, 2*s.IdleFlush+3*s.CommitInterval); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			// Everything is attributed and loaded: ending stops the worker.
			drained = w
			return nil
		}, func(error) { cancel() })
	}
	if err := g.Run(); err != nil {
		return err
	}
	if drained != nil {
		st := drained.Status()
		fmt.Fprintf(a.out, "attributed: %d usage and %d agent log messages re-keyed, %d dead-lettered; %d answers loaded into %s\n",
			st.Rekey.Usage, st.Rekey.Agents, st.Rekey.DeadLetters, st.Load.Answers, a.cfg.Store.DuckDB)
	}
	return nil
}

// waitDrained waits until every stage has caught up: no lag anywhere, no
// usage event waiting in the join, and no progress for quiet.
func waitDrained(ctx context.Context, w *worker.Worker, keyedTopic string, quiet time.Duration) error {
	var still time.Time
	var last string
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		st := w.Status()
		state := drainState(st, keyedTopic)
		if state == "" || state != last {
			still, last = time.Now(), state
			continue
		}
		if time.Since(still) >= quiet {
			return nil
		}
	}
}

// drainState summarises progress; "" means not drained yet.
func drainState(st worker.Report, keyedTopic string) string {
	if !st.Ready {
		return ""
	}
	for _, l := range st.Lag {
		if l > 0 {
			return ""
		}
	}
	held := map[string]int{}
	for _, p := range st.Partitions {
		held[p.Group]++
	}
	for g, n := range st.Expected {
		if held[g] != n {
			return "" // a rebalance is still handing partitions out
		}
	}
	var b strings.Builder
	for _, p := range slices.Sorted(maps.Keys(st.Join)) {
		j := st.Join[p]
		if j.Pending > 0 || j.Buffered > 0 {
			return ""
		}
		fmt.Fprintf(&b, "%d:%d:%d;", p, j.Emitted, j.Restated)
	}
	for _, p := range st.Partitions {
		// The keyed topic never goes quiet: idle inputs keep claiming
		// progress into it. What the join did shows in its counts above.
		if p.Topic != keyedTopic {
			fmt.Fprintf(&b, "%s/%s/%d@%d;", p.Group, p.Topic, p.Partition, p.Next)
		}
	}
	fmt.Fprintf(&b, "%d/%d", st.Load.Answers, st.Rekey.Usage)
	return b.String()
}
