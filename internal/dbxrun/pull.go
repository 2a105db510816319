// Package dbxrun attributes windows against Databricks, in pull mode (the
// batch job over warehouse tables and a Delta store) or pushdown mode.
package dbxrun

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"

	"github.com/databricks/databricks-sql-go/driverctx"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/ingest"
	databricksingest "github.com/obolus/obolus/ingest/databricks"
	"github.com/obolus/obolus/internal/batch"
	"github.com/obolus/obolus/internal/config"
	databrickssink "github.com/obolus/obolus/sink/databricks"
)

// Sources returns the configured Databricks tables as batch sources: usage
// (then legacy usage) and agent logs (payload tables, then trace tables, in
// configuration order — the order in which they are merged, which pushdown
// reproduces).
func Sources(db databricksingest.Querier, d config.Databricks) (usage, agents []*databricksingest.Source, err error) {
	add := func(dst *[]*databricksingest.Source, t databricksingest.Table) error {
		s, err := databricksingest.NewSource(db, t)
		if err != nil {
			return err
		}
		*dst = append(*dst, s)
		return nil
	}
	if d.Usage != "" {
		if err := add(&usage, databricksingest.Table{Name: d.Usage, Spec: ingest.Spec{Kind: ingest.KindUsage}}); err != nil {
			return nil, nil, err
		}
	}
	if d.LegacyUsage != "" {
		if err := add(&usage, databricksingest.Table{Name: d.LegacyUsage, Spec: ingest.Spec{Kind: ingest.KindLegacyUsage}}); err != nil {
			return nil, nil, err
		}
	}
	for _, group := range []struct {
		kind   ingest.Kind
		tables []config.DatabricksAgentTable
	}{{ingest.KindPayload, d.Payloads}, {ingest.KindTrace, d.Traces}} {
		for _, t := range group.tables {
			spec := ingest.Spec{Kind: group.kind, AgentEndpoint: t.AgentEndpoint, ServicePrincipal: t.ServicePrincipal}
			if err := add(&agents, databricksingest.Table{Name: t.Table, Spec: spec, Columns: t.Columns}); err != nil {
				return nil, nil, err
			}
		}
	}
	return usage, agents, nil
}

// Enrichment loads the configured price list and org directory (defaults:
// the built-in example list, nobody in any team).
func Enrichment(cfg *config.Config) (*enrich.PriceList, *enrich.Directory, error) {
	prices := enrich.DefaultPriceList()
	if cfg.Prices != "" {
		var err error
		if prices, err = enrich.LoadPriceList(cfg.Prices); err != nil {
			return nil, nil, batch.ConfigError{Err: fmt.Errorf("prices: %w", err)}
		}
	}
	var org *enrich.Directory
	if cfg.Org != "" {
		var err error
		if org, err = enrich.LoadDirectory(cfg.Org); err != nil {
			return nil, nil, batch.ConfigError{Err: fmt.Errorf("org: %w", err)}
		}
	}
	return prices, org, nil
}

// NewPullJob assembles the batch job of pull mode: the configured Databricks
// tables as sources, the Go engine, and store as the sink.
func NewPullJob(cfg *config.Config, db *sql.DB, store *databrickssink.Store, log *slog.Logger) (*batch.Job, error) {
	prices, org, err := Enrichment(cfg)
	if err != nil {
		return nil, err
	}
	usage, agents, err := Sources(db, cfg.Databricks)
	if err != nil {
		return nil, batch.ConfigError{Err: err}
	}
	job := &batch.Job{
		Name:        cfg.Batch.Job,
		Match:       cfg.MatchConfig(),
		Prices:      prices,
		Org:         org,
		Store:       store,
		Lookback:    cfg.Batch.Lookback,
		AgentMargin: cfg.Batch.AgentMargin,
		Log:         log,
	}
	for _, s := range usage {
		job.Usage = append(job.Usage, s)
	}
	for _, s := range agents {
		job.Agents = append(job.Agents, s)
	}
	if len(job.Usage) == 0 {
		return nil, batch.ConfigError{Err: fmt.Errorf("databricks.usage: no usage table; name system.ai_gateway.usage or a legacy_usage table")}
	}
	return job, nil
}

// NewStore returns the Delta store the configuration names, staging pull
// writes as configured.
func NewStore(db *sql.DB, d config.Databricks) (*databrickssink.Store, error) {
	opt := databrickssink.Options{}
	if d.Staging == config.StagingVolume {
		opt.StagingVolume = d.Volume()
	}
	return databrickssink.New(db, d.Catalog, d.Schema, opt)
}

// WithQueryTags labels every statement sent with the returned context: the
// configured query tags plus extra (statement-level tags replace the
// session's, so both are sent). They land in system.query.history.query_tags.
func WithQueryTags(ctx context.Context, configured, extra map[string]string) context.Context {
	tags := make(map[string]string, len(configured)+len(extra))
	for k, v := range configured {
		tags[k] = v
	}
	for k, v := range extra {
		tags[k] = v
	}
	return driverctx.NewContextWithQueryTags(ctx, tags)
}
