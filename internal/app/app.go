// Package app is the composition root: it turns the configuration into the
// jobs, stores and workers the commands run. Only it and cmd/ read internal/config.
package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"time"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/ingest"
	databricksingest "github.com/obolus/obolus/ingest/databricks"
	"github.com/obolus/obolus/internal/batch"
	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/dbxrun"
	"github.com/obolus/obolus/internal/pushdown"
	"github.com/obolus/obolus/schemas"
	databrickssink "github.com/obolus/obolus/sink/databricks"
	"github.com/obolus/obolus/sink/duckdb"
)

// UsageError is a problem the user fixes in flags or configuration; the
// CLI exits with code 2 for it.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

func usage(format string, a ...any) error { return UsageError{fmt.Errorf(format, a...)} }

// Enrichment loads the configured price list and org directory (defaults:
// the built-in example list, nobody in any team).
func Enrichment(cfg *config.Config) (*enrich.PriceList, *enrich.Directory, error) {
	prices := enrich.DefaultPriceList()
	if cfg.Prices != "" {
		var err error
		if prices, err = enrich.LoadPriceList(cfg.Prices); err != nil {
			return nil, nil, usage("prices: %w", err)
		}
	}
	var org *enrich.Directory
	if cfg.Org != "" {
		var err error
		if org, err = enrich.LoadDirectory(cfg.Org); err != nil {
			return nil, nil, usage("org: %w", err)
		}
	}
	return prices, org, nil
}

// job is the part of a batch job every target shares.
func job(cfg *config.Config, store batch.Store, log *slog.Logger) (*batch.Job, error) {
	prices, org, err := Enrichment(cfg)
	if err != nil {
		return nil, err
	}
	return &batch.Job{
		Name:        cfg.Batch.Job,
		Match:       cfg.MatchConfig(),
		Prices:      prices,
		Org:         org,
		Store:       store,
		Lookback:    cfg.Batch.Lookback,
		AgentMargin: cfg.Batch.AgentMargin,
		Log:         log,
	}, nil
}

// EmbeddedJob assembles the batch job over the configured sources (files,
// or tables of the store's DuckDB database) that writes to the embedded store.
func EmbeddedJob(cfg *config.Config, store *duckdb.Store, log *slog.Logger) (*batch.Job, error) {
	j, err := job(cfg, store, log)
	if err != nil {
		return nil, err
	}
	j.Usage, j.Agents, j.Served = EmbeddedSources(cfg, store.DB())
	if len(j.Usage) == 0 {
		return nil, usage("sources: no usage source; add one with kind usage or legacy_usage (see deploy/obolus.example.yaml)")
	}
	return j, nil
}

// EmbeddedSources are the configured sources: files, or tables of db (the
// store's DuckDB database).
func EmbeddedSources(cfg *config.Config, db *sql.DB) (usage, agents, served []batch.Source) {
	for i, spec := range Specs(cfg) {
		s := cfg.Sources[i]
		src := batch.FileSource(spec)
		if s.Table != "" {
			src = batch.TableSource(db, s.Table, spec)
		}
		switch {
		case s.IsAgent():
			agents = append(agents, src)
		case s.IsServed():
			served = append(served, src)
		default:
			usage = append(usage, src)
		}
	}
	return usage, agents, served
}

// ServedEntities reads the served_entities file sources whole, for the
// stream, which loads them when it starts; nil when none is configured.
// Dead-lettered rows are counted in the error-free result's log line only:
// a row that cannot be read names no model either way.
func ServedEntities(ctx context.Context, cfg *config.Config, log *slog.Logger) (*enrich.ServedEntities, error) {
	var srcs []batch.Source
	for i, spec := range Specs(cfg) {
		s := cfg.Sources[i]
		if !s.IsServed() {
			continue
		}
		if s.Table != "" {
			return nil, usage("sources[%d]: the stream reads served entities from files (path), not store tables", i)
		}
		srcs = append(srcs, batch.FileSource(spec))
	}
	if len(srcs) == 0 {
		return nil, nil
	}
	se, st, err := batch.ReadServed(ctx, srcs, func(d schemas.DeadLetter) error {
		log.Warn("served entity row dead-lettered", "source", d.Source, "location", d.Location, "field", d.Field, "reason", d.Reason)
		return nil
	})
	if err != nil {
		return nil, err
	}
	log.Info("served entities loaded", "rows", st.Rows, "dead_lettered", st.Dead, "entities", se.Len())
	return se, nil
}

// DatabricksStore is the Delta store the databricks section names, staging
// pull writes as configured.
func DatabricksStore(db *sql.DB, d config.Databricks) (*databrickssink.Store, error) {
	s, err := databrickssink.New(db, d.Catalog, d.Schema, databrickssink.Options{StagingVolume: stagingVolume(d)})
	if err != nil {
		return nil, UsageError{err}
	}
	return s, nil
}

// stagingVolume is the volume pull writes stage through, "" when they
// stage with INSERTs.
func stagingVolume(d config.Databricks) string {
	if d.Staging == config.StagingVolume {
		return d.Volume()
	}
	return ""
}

// DatabricksSources returns the configured Databricks tables as sources:
// usage (then legacy usage) and agent logs (payload tables, then trace
// tables, then span tables, in configuration order — the order in which they are merged,
// which pushdown reproduces).
func DatabricksSources(db databricksingest.Querier, cfg *config.Config) (usage, agents, served []*databricksingest.Source, err error) {
	d, limits := cfg.Databricks, cfg.IngestLimits()
	add := func(dst *[]*databricksingest.Source, t databricksingest.Table) error {
		s, err := databricksingest.NewSource(db, t)
		if err != nil {
			return err
		}
		*dst = append(*dst, s)
		return nil
	}
	if d.Usage != "" {
		if err := add(&usage, databricksingest.Table{Name: d.Usage, Spec: ingest.Spec{Kind: ingest.KindUsage, Limits: limits}}); err != nil {
			return nil, nil, nil, UsageError{err}
		}
	}
	if d.LegacyUsage != "" {
		if err := add(&usage, databricksingest.Table{Name: d.LegacyUsage, Spec: ingest.Spec{Kind: ingest.KindLegacyUsage, Limits: limits}}); err != nil {
			return nil, nil, nil, UsageError{err}
		}
	}
	for _, group := range []struct {
		kind   ingest.Kind
		tables []config.DatabricksAgentTable
	}{{ingest.KindPayload, d.Payloads}, {ingest.KindTrace, d.Traces}, {ingest.KindOTelSpans, d.OTelSpans}} {
		for _, t := range group.tables {
			spec := ingest.Spec{Kind: group.kind, AgentEndpoint: t.AgentEndpoint, ServicePrincipal: t.ServicePrincipal, Limits: limits,
				SpanKeys: cfg.OTel.SpanKeys()}
			if err := add(&agents, databricksingest.Table{Name: t.Table, Spec: spec, Columns: t.Columns}); err != nil {
				return nil, nil, nil, UsageError{err}
			}
		}
	}
	if d.ServedEntities != "" {
		if err := add(&served, databricksingest.Table{Name: d.ServedEntities, Spec: ingest.Spec{Kind: ingest.KindServedEntities, Limits: limits}}); err != nil {
			return nil, nil, nil, UsageError{err}
		}
	}
	return usage, agents, served, nil
}

// PullJob assembles the batch job of pull mode: the configured Databricks
// tables as sources, the Go engine, and store as the sink.
func PullJob(cfg *config.Config, db *sql.DB, store *databrickssink.Store, log *slog.Logger) (*batch.Job, error) {
	j, err := job(cfg, store, log)
	if err != nil {
		return nil, err
	}
	usageSrcs, agents, served, err := DatabricksSources(db, cfg)
	if err != nil {
		return nil, err
	}
	for _, s := range usageSrcs {
		j.Usage = append(j.Usage, s)
	}
	for _, s := range agents {
		j.Agents = append(j.Agents, s)
	}
	for _, s := range served {
		j.Served = append(j.Served, s)
	}
	if len(j.Usage) == 0 {
		return nil, usage("databricks.usage: no usage table; name system.ai_gateway.usage or a legacy_usage table")
	}
	return j, nil
}

// PushdownJob assembles pushdown mode: the warehouse matches, prices and
// MERGEs.
func PushdownJob(cfg *config.Config, db *sql.DB, store *databrickssink.Store, log *slog.Logger) (*dbxrun.Pushdown, error) {
	prices, _, err := Enrichment(cfg)
	if err != nil {
		return nil, err
	}
	var org []enrich.OrgEntry
	if cfg.Org != "" {
		if org, err = pushdown.OrgEntries(cfg.Org); err != nil {
			return nil, usage("org: %w", err)
		}
	}
	if len(cfg.Databricks.OTelSpans) > 0 {
		// --mode pushdown overrides the configured mode, which Validate checked.
		return nil, usage("databricks.otel_spans: pushdown mode does not read span tables yet; use --mode pull, or remove the span tables")
	}
	usageSrcs, agents, served, err := DatabricksSources(db, cfg)
	if err != nil {
		return nil, err
	}
	if len(usageSrcs) == 0 {
		return nil, UsageError{errors.New("databricks.usage: no usage table")}
	}
	return &dbxrun.Pushdown{
		Name: cfg.Batch.Job, QueryTags: cfg.Databricks.QueryTags, DB: db, Store: store, Usage: usageSrcs, Agents: agents, Served: served,
		Match: cfg.MatchConfig(), Prices: prices, Org: org, Limits: cfg.IngestLimits(),
		Lookback: cfg.Batch.Lookback, AgentMargin: cfg.Batch.AgentMargin, Log: log,
	}, nil
}

// DoctorOptions is what obolus doctor checks for the configuration.
func DoctorOptions(cfg *config.Config, db *sql.DB) dbxrun.DoctorOptions {
	d := cfg.Databricks
	opt := dbxrun.DoctorOptions{Endpoint: d.Host + d.Path()}
	usageSrcs, agents, served, err := DatabricksSources(db, cfg)
	opt.Sources, opt.SourcesErr = slices.Concat(usageSrcs, agents, served), err
	opt.Store, opt.StoreErr = DatabricksStore(db, d)
	opt.StagingVolume = stagingVolume(d)
	m := cfg.MatchConfig()
	opt.Match = m
	opt.Tags = dbxrun.TagOptions{UsageTable: d.Usage, Lookback: d.DoctorLookback, ExactKeys: m.ExactTagKeys}
	for _, ks := range [][]string{m.UserTagKeys, m.TraceTagKeys, m.RequestTagKeys} {
		for _, k := range ks {
			if !slices.Contains(opt.Tags.Keys, k) {
				opt.Tags.Keys = append(opt.Tags.Keys, k)
			}
		}
	}
	opt.Agents = map[string]string{}
	for _, t := range slices.Concat(d.Payloads, d.Traces, d.OTelSpans) {
		if t.ServicePrincipal == "" {
			opt.Tags.PrincipalsInSpans = true // named by each span's resource
			continue
		}
		if t.AgentEndpoint != "" {
			opt.Agents[t.ServicePrincipal] = t.AgentEndpoint
		}
		if !slices.Contains(opt.Tags.ServicePrincipals, t.ServicePrincipal) {
			opt.Tags.ServicePrincipals = append(opt.Tags.ServicePrincipals, t.ServicePrincipal)
		}
	}
	return opt
}

// Specs are the configured sources as readers take them.
func Specs(cfg *config.Config) []ingest.Spec {
	out := make([]ingest.Spec, len(cfg.Sources))
	limits := cfg.IngestLimits()
	for i, s := range cfg.Sources {
		out[i] = ingest.Spec{Kind: ingest.Kind(s.Kind), Path: s.Path, Format: s.Format, AgentEndpoint: s.AgentEndpoint,
			ServicePrincipal: s.ServicePrincipal, Limits: limits, SpanKeys: cfg.OTel.SpanKeys()}
	}
	return out
}

// OpenStore opens, or creates, the embedded store of cfg with its memory
// limit (store.memory_limit).
func OpenStore(ctx context.Context, cfg *config.Config) (*duckdb.Store, error) {
	limit, err := config.ParseBytes(cfg.Store.MemoryLimit)
	if err != nil {
		return nil, usage("store.memory_limit: %v", err)
	}
	return duckdb.OpenWith(ctx, cfg.Store.DuckDB, duckdb.Options{MemoryLimit: limit})
}

// LimitHeap sets batch.memory_limit as the Go heap's soft limit for the
// rest of the process, unless GOMEMLIMIT, which the runtime reads itself,
// is set.
func LimitHeap(cfg *config.Config) error {
	if os.Getenv("GOMEMLIMIT") != "" {
		return nil
	}
	n, err := config.ParseBytes(cfg.Batch.MemoryLimit)
	if err != nil {
		return usage("batch.memory_limit: %v", err)
	}
	if n > 0 {
		debug.SetMemoryLimit(n)
	}
	return nil
}

// PushdownScript renders the configured pushdown job as one SQL script that
// a scheduled SQL task runs without obolus (obolus pushdown render). A
// non-zero now fixes the run's time, for tests stepping through windows;
// zero leaves it to current_timestamp() when the script runs.
func PushdownScript(ctx context.Context, cfg *config.Config, db *sql.DB, store *databrickssink.Store, now time.Time) (string, error) {
	job, err := PushdownJob(cfg, db, store, nil)
	if err != nil {
		return "", err
	}
	expr := ""
	if !now.IsZero() {
		if expr, err = pushdown.Literal(now.UTC()); err != nil {
			return "", err
		}
	}
	return job.Script(ctx, expr)
}
