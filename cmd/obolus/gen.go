package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/obolus/obolus/internal/synth"
)

func (a *cli) genCmd() *cobra.Command {
	cfg := synth.Config{}.WithDefaults()
	var out, start string
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Write a synthetic workload with ground truth (input files, org directory, obolus.yaml)",
		Long: `Generates gateway usage, agent logs (payload tables and MLflow traces, some
arriving late), an org directory, a ground-truth file and an obolus.yaml that
points at them. Deterministic for a seed.`,
		Example: `  obolus gen --out demo
  obolus gen --out big --agent-requests 600000 --format parquet`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if start != "" {
				t, err := parseTime("--start", start)
				if err != nil {
					return err
				}
				cfg.Start = t
			}
			// synth reads a zero share as "use the default": an explicit 0 on
			// the command line means none at all.
			for name, share := range map[string]*float64{
				"tagged-share": &cfg.TaggedShare, "late-share": &cfg.LateShare, "duplicate-share": &cfg.DuplicateShare,
				"retry-share": &cfg.RetryShare, "legacy-share": &cfg.LegacyShare,
			} {
				if cmd.Flags().Changed(name) && *share == 0 {
					*share = -1
				}
			}
			if cmd.Flags().Changed("otel-layout") && cfg.AgentLogs != synth.AgentLogsOTel {
				return usageErrorf("--otel-layout: only with --agent-logs otel")
			}
			if out == "" {
				return usageErrorf("--out: name the directory to write the workload into")
			}
			began := time.Now()
			res, err := synth.Generate(cmd.Context(), cfg, out)
			if err != nil {
				return fmt.Errorf("generate workload: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d usage rows (%d legacy, %d duplicates) for %d agent requests (%d late) in %s\n",
				out, res.UsageRows+res.LegacyRows, res.LegacyRows, res.Duplicates, res.AgentRequests, res.LateAgentRequests, time.Since(began).Round(time.Millisecond))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "directory to write (created)")
	f.Int64Var(&cfg.Seed, "seed", cfg.Seed, "random seed")
	f.StringVar(&start, "start", "", "start of the workload, RFC 3339 or date (default "+cfg.Start.Format(time.DateOnly)+")")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "span of the workload")
	f.IntVar(&cfg.Users, "users", cfg.Users, "end users")
	f.IntVar(&cfg.Teams, "teams", cfg.Teams, "teams")
	f.IntVar(&cfg.Agents, "agents", cfg.Agents, "agents, each with its own service principal")
	f.IntVar(&cfg.AgentRequests, "agent-requests", cfg.AgentRequests, "end-user agent requests")
	f.Float64Var(&cfg.TaggedShare, "tagged-share", cfg.TaggedShare, "share of gateway calls carrying an id in request_tags")
	f.Float64Var(&cfg.LateShare, "late-share", cfg.LateShare, "share of agent requests whose log arrives late")
	f.Float64Var(&cfg.DuplicateShare, "duplicate-share", cfg.DuplicateShare, "share of usage rows duplicated")
	f.Float64Var(&cfg.RetryShare, "retry-share", cfg.RetryShare, "share of calls retried")
	f.Float64Var(&cfg.LegacyShare, "legacy-share", cfg.LegacyShare, "share of calls logged in system.serving.endpoint_usage")
	f.Float64Var(&cfg.TagKeyVariantShare, "tag-key-variants", cfg.TagKeyVariantShare, "share of tagged calls whose id tag key is spelled another way (Trace_Id, TRACE-ID, trace.id)")
	f.DurationVar(&cfg.MaxSkew, "max-skew", cfg.MaxSkew, "clock skew between agent and gateway")
	f.IntVar(&cfg.HotServicePrincipals, "hot-agents", cfg.HotServicePrincipals, "agents with heavy concurrency")
	f.StringVar(&cfg.Format, "format", cfg.Format, "file format: jsonl, csv or parquet")
	f.StringVar(&cfg.AgentLogs, "agent-logs", cfg.AgentLogs, "agent logs: mlflow (payload tables and MLflow traces) or otel (OpenTelemetry span tables)")
	f.StringVar(&cfg.OTelLayout, "otel-layout", cfg.OTelLayout, "span table layout with --agent-logs otel: v2 (attributes VARIANT) or v1 (attributes MAP)")
	f.Float64Var(&cfg.GatewaySpanShare, "gateway-spans", cfg.GatewaySpanShare, "share of AI Gateway calls that also get a span in the gateway's unified trace table ("+synth.GatewaySpansFile+"), in their agent's trace")
	return cmd
}
