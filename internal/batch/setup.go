package batch

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/ingest"
	"github.com/obolus/obolus/ingest/duckdbtable"
	"github.com/obolus/obolus/internal/config"
	duckdbsink "github.com/obolus/obolus/sink/duckdb"
)

// ConfigError is a configuration problem found while assembling a job; the
// user fixes it by editing the configuration.
type ConfigError struct{ Err error }

func (e ConfigError) Error() string { return e.Err.Error() }
func (e ConfigError) Unwrap() error { return e.Err }

// NewEmbedded assembles a job over the configured sources that writes to the
// embedded DuckDB store.
func NewEmbedded(cfg *config.Config, store *duckdbsink.Store, log *slog.Logger) (*Job, error) {
	prices := enrich.DefaultPriceList()
	if cfg.Prices != "" {
		var err error
		if prices, err = enrich.LoadPriceList(cfg.Prices); err != nil {
			return nil, ConfigError{fmt.Errorf("prices: %w", err)}
		}
	}
	var org *enrich.Directory
	if cfg.Org != "" {
		var err error
		if org, err = enrich.LoadDirectory(cfg.Org); err != nil {
			return nil, ConfigError{fmt.Errorf("org: %w", err)}
		}
	}
	job := &Job{
		Name:        cfg.Batch.Job,
		Match:       cfg.MatchConfig(),
		Prices:      prices,
		Org:         org,
		Store:       store,
		Lookback:    cfg.Batch.Lookback,
		AgentMargin: cfg.Batch.AgentMargin,
		Log:         log,
	}
	for _, s := range cfg.Sources {
		spec := ingest.Spec{Kind: ingest.Kind(s.Kind), Path: s.Path, Format: s.Format, AgentEndpoint: s.AgentEndpoint, ServicePrincipal: s.ServicePrincipal}
		var src Source = fileSource{spec}
		if s.Table != "" {
			src = tableSource{store: store, table: s.Table, spec: spec}
		}
		if s.IsAgent() {
			job.Agents = append(job.Agents, src)
		} else {
			job.Usage = append(job.Usage, src)
		}
	}
	if len(job.Usage) == 0 {
		return nil, ConfigError{fmt.Errorf("sources: no usage source; add one with kind usage or legacy_usage (see deploy/obolus.example.yaml)")}
	}
	return job, nil
}

type fileSource struct{ spec ingest.Spec }

func (f fileSource) Name() string { return string(f.spec.Kind) + " " + f.spec.Path }
func (f fileSource) Read(ctx context.Context, w ingest.Window, emit ingest.Emit) (ingest.Stats, error) {
	return ingest.ReadFiles(ctx, f.spec, w, emit)
}

type tableSource struct {
	store *duckdbsink.Store
	table string
	spec  ingest.Spec
}

func (t tableSource) Name() string { return string(t.spec.Kind) + " table " + t.table }
func (t tableSource) Read(ctx context.Context, w ingest.Window, emit ingest.Emit) (ingest.Stats, error) {
	return duckdbtable.Read(ctx, t.store.DB(), t.table, t.spec, w, emit)
}
