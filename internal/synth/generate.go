package synth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Result counts what Generate wrote.
type Result struct {
	// UsageRows is the number of rows in the ai_gateway_usage files,
	// duplicates included; Duplicates is how many of them repeat an
	// earlier row.
	UsageRows, LegacyRows, Duplicates int
	// AgentRequests is the number of agent requests, LateAgentRequests how
	// many of them were logged under agents_late/.
	AgentRequests, LateAgentRequests int
	// Invocations is the number of distinct invocation ids (gateway and
	// legacy): one ground-truth line each.
	Invocations int
	// Files are the paths written, sorted.
	Files []string
}

// File names in the output directory.
const (
	TruthFile  = "ground_truth.jsonl"
	OrgFile    = "org.csv"
	ConfigFile = "obolus.yaml"
	StoreFile  = "obolus.duckdb"
)

// requestsPerBatch is how many agent requests travel together from the
// generating goroutine to the writing one.
const requestsPerBatch = 512

type batch struct {
	file   int
	lo, hi int
	calls  []call
}

// Generate writes a workload and its ground truth into outDir, which must be
// empty or not exist yet (a stale file from another run would be read along).
// On error outDir may hold partial output.
func Generate(ctx context.Context, cfg Config, outDir string) (Result, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if err := prepareDir(outDir); err != nil {
		return Result{}, err
	}
	w := newWorld(cfg)
	reqs := plan(w)

	var s sink
	switch cfg.Format {
	case FormatParquet:
		ps, err := newParquetSink(ctx, w, outDir)
		if err != nil {
			return Result{}, err
		}
		s = ps
	default:
		s = newTextSink(w, outDir, cfg.Format == FormatCSV)
	}
	truth, err := createOut(outDir, TruthFile)
	if err != nil {
		s.abort()
		return Result{}, err
	}
	var gw *outFile
	if cfg.GatewaySpanShare > 0 {
		if gw, err = createOut(outDir, GatewaySpansFile); err != nil {
			s.abort()
			truth.f.Close()
			return Result{}, err
		}
	}
	res, err := write(ctx, w, reqs, s, truth, gw)
	if err == nil && gw != nil {
		err = gw.close()
	}
	if err != nil {
		s.abort()
		truth.f.Close()
		if gw != nil {
			gw.f.Close()
		}
		return Result{}, err
	}
	if err := truth.close(); err != nil {
		s.abort()
		return Result{}, err
	}
	rels, err := s.finish()
	if err != nil {
		return Result{}, err
	}
	if gw != nil {
		rels = append(rels, GatewaySpansFile)
	}
	if err := writeOrg(w, outDir); err != nil {
		return Result{}, err
	}
	if slices.Contains(rels, legacyFile(cfg.Format)) {
		if err := writeServed(w, outDir); err != nil {
			return Result{}, err
		}
		rels = append(rels, ServedFile)
	}
	if err := writeConfig(w, outDir, rels); err != nil {
		return Result{}, err
	}
	rels = append(rels, TruthFile, OrgFile, ConfigFile)
	for _, rel := range rels {
		res.Files = append(res.Files, filepath.Join(outDir, rel))
	}
	slices.Sort(res.Files)
	return res, nil
}

func prepareDir(dir string) error {
	f, err := os.Open(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("synth: create output directory: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("synth: output directory: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("synth: output directory %s: %w", dir, err)
	}
	if len(names) > 0 {
		return fmt.Errorf("synth: output directory %s is not empty; generate into a new or empty directory", dir)
	}
	return nil
}

// usageFiles is how many ai_gateway_usage files the requests are spread over.
func usageFiles(n int) int { return min(n, 3+(n-1)/100_000) }

// write runs the generation: one goroutine draws the calls of each batch of
// requests, this one encodes and writes them, so both cores stay busy.
func write(ctx context.Context, w *world, reqs []request, s sink, truth, gw *outFile) (Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan *batch, 4)
	free := make(chan *batch, 6)
	for range cap(free) {
		free <- &batch{}
	}
	go func() {
		defer close(ready)
		nf := usageFiles(len(reqs))
		for k := range nf {
			flo, fhi := k*len(reqs)/nf, (k+1)*len(reqs)/nf
			for lo := flo; lo < fhi; lo += requestsPerBatch {
				var b *batch
				select {
				case b = <-free:
				case <-ctx.Done():
					return
				}
				b.file, b.lo, b.hi = k, lo, min(fhi, lo+requestsPerBatch)
				b.calls = b.calls[:0]
				for i := b.lo; i < b.hi; i++ {
					b.calls = w.requestCalls(b.calls, &reqs[i], i)
				}
				select {
				case ready <- b:
				case <-ctx.Done():
					return
				}
			}
		}
	}()

	res := Result{AgentRequests: len(reqs)}
	var te recEnc
	var gwScratch []byte
	cur := -1
	var same, next []call
	flush := func(dups []call) error {
		for i := range dups {
			if err := s.usage(&dups[i]); err != nil {
				return err
			}
		}
		res.UsageRows += len(dups)
		res.Duplicates += len(dups)
		return nil
	}
	for b := range ready {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if b.file != cur {
			if cur >= 0 {
				if err := s.closeUsage(); err != nil {
					return res, err
				}
			}
			if err := s.openUsage(b.file); err != nil {
				return res, err
			}
			cur = b.file
			// Re-delivered rows of the previous file land at the start of this one.
			if err := flush(next); err != nil {
				return res, err
			}
			next = next[:0]
		}
		for i := b.lo; i < b.hi; i++ {
			q := &reqs[i]
			if q.late {
				res.LateAgentRequests++
			}
			if w.cfg.AgentLogs == AgentLogsOTel {
				if err := s.spans(q); err != nil {
					return res, err
				}
				continue
			}
			logs := w.agents[q.agent].logs
			if logs != logTraces {
				if err := s.payload(q); err != nil {
					return res, err
				}
			}
			if logs != logPayload {
				if err := s.trace(q); err != nil {
					return res, err
				}
			}
		}
		for i := range b.calls {
			c := &b.calls[i]
			w.encTruth(&te, c)
			if err := truth.write(te.b); err != nil {
				return res, err
			}
			te.b = te.b[:0]
			res.Invocations++
			if c.legacy {
				res.LegacyRows++
				if err := s.legacy(c); err != nil {
					return res, err
				}
				continue
			}
			res.UsageRows++
			if err := s.usage(c); err != nil {
				return res, err
			}
			if gw != nil && w.gatewaySpanned(c) {
				gwScratch = w.encGatewaySpan(&te, c, gwScratch)
				if err := gw.write(te.b); err != nil {
					return res, err
				}
				te.b = te.b[:0]
			}
			switch c.dup {
			case dupSameFile:
				same = append(same, *c)
			case dupNextFile:
				next = append(next, *c)
			}
		}
		if err := flush(same); err != nil {
			return res, err
		}
		same = same[:0]
		free <- b
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if cur >= 0 {
		if err := flush(next); err != nil {
			return res, err
		}
		if err := s.closeUsage(); err != nil {
			return res, err
		}
	}
	return res, nil
}

func writeOrg(w *world, dir string) error {
	o, err := createOut(dir, OrgFile)
	if err != nil {
		return err
	}
	b := []byte("end_user,team,cost_center\n")
	for _, r := range w.orgRows() {
		b = appendCSVField(b, r[0])
		b = append(b, ',')
		b = appendCSVField(b, r[1])
		b = append(b, ',')
		b = appendCSVField(b, r[2])
		b = append(b, '\n')
	}
	if err := o.write(b); err != nil {
		o.f.Close()
		return err
	}
	return o.close()
}

// Batch job configuration written next to the data.
type jobConfig struct {
	Store   jobStore    `yaml:"store"`
	Org     string      `yaml:"org"`
	Sources []jobSource `yaml:"sources"`
}

type jobStore struct {
	DuckDB string `yaml:"duckdb"`
}

type jobSource struct {
	Kind             string `yaml:"kind"`
	Path             string `yaml:"path"`
	AgentEndpoint    string `yaml:"agent_endpoint,omitempty"`
	ServicePrincipal string `yaml:"service_principal,omitempty"`
}

// Source kinds in obolus.yaml.
const (
	SourceUsage       = "usage"
	SourceLegacyUsage = "legacy_usage"
	SourcePayload     = "payload"
	SourceTrace       = "trace"
	SourceOTelSpans   = "otel_spans"
	// SourceServedEntities gives legacy usage rows their model.
	SourceServedEntities = "served_entities"
)

func writeConfig(w *world, dir string, rels []string) error {
	ext := w.cfg.Format
	have := make(map[string]bool, len(rels))
	for _, r := range rels {
		have[filepath.ToSlash(r)] = true
	}
	cfg := jobConfig{Store: jobStore{DuckDB: StoreFile}, Org: OrgFile}
	if have[filepath.ToSlash(usageFile(0, ext))] {
		cfg.Sources = append(cfg.Sources, jobSource{Kind: SourceUsage, Path: "usage/ai_gateway_usage-*." + ext})
	}
	if have[filepath.ToSlash(legacyFile(ext))] {
		cfg.Sources = append(cfg.Sources, jobSource{Kind: SourceLegacyUsage, Path: "usage/endpoint_usage-*." + ext})
	}
	if have[GatewaySpansFile] {
		// Gateway spans stand for no agent request: no agent, no principal.
		cfg.Sources = append(cfg.Sources, jobSource{Kind: SourceOTelSpans, Path: GatewaySpansFile})
	}
	if have[ServedFile] {
		cfg.Sources = append(cfg.Sources, jobSource{Kind: SourceServedEntities, Path: ServedFile})
	}
	for _, late := range []bool{false, true} {
		for _, ag := range w.agents {
			if w.cfg.AgentLogs == AgentLogsOTel {
				// No service_principal: each span's resource names it
				// (otel.service_principal_attribute).
				rel := filepath.ToSlash(agentFile(ag, late, kindSpans, ext))
				if have[rel] {
					cfg.Sources = append(cfg.Sources, jobSource{Kind: SourceOTelSpans, Path: rel, AgentEndpoint: ag.endpoint})
				}
				continue
			}
			for _, kind := range []string{kindPayload, kindTraces} {
				rel := filepath.ToSlash(agentFile(ag, late, kind, ext))
				if !have[rel] {
					continue
				}
				src := jobSource{Kind: SourcePayload, Path: rel, AgentEndpoint: ag.endpoint, ServicePrincipal: ag.sp}
				if kind == kindTraces {
					src.Kind = SourceTrace
				}
				cfg.Sources = append(cfg.Sources, src)
			}
		}
	}
	body, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("synth: encode %s: %w", ConfigFile, err)
	}
	var head strings.Builder
	fmt.Fprintf(&head, "# Written by obolus gen (seed %d, %d agent requests, format %s).\n", w.cfg.Seed, w.cfg.AgentRequests, ext)
	if w.cfg.AgentLogs == AgentLogsOTel {
		fmt.Fprintf(&head, "# Agent logs are OpenTelemetry span tables, layout %s.\n", w.cfg.OTelLayout)
	}
	head.WriteString("# Paths are relative to this file. agents_late/ holds the agent logs that arrive late.\n")
	o, err := createOut(dir, ConfigFile)
	if err != nil {
		return err
	}
	if err := o.write(append([]byte(head.String()), body...)); err != nil {
		o.f.Close()
		return err
	}
	return o.close()
}

// ServedFile holds system.serving.served_entities rows for the legacy
// serving endpoints (always JSON lines: a small dimension table).
const ServedFile = "served_entities.jsonl"

// writeServed writes the served entities of the gateway endpoints that
// legacy usage rows name: two versions before the workload (the model the
// endpoint serves), and for the gpt-5-mini endpoint a third halfway through
// that repoints it at an external gpt-5, so that a run has to pick the
// version in force at each call.
func writeServed(w *world, dir string) error {
	o, err := createOut(dir, ServedFile)
	if err != nil {
		return err
	}
	e := recEnc{}
	row := func(ep *gatewayEndpoint, version string, at time.Time, entityType, entityName string) {
		e.begin()
		e.str("served_entity_id", ep.servedEntityID)
		e.str("account_id", w.accountID)
		e.str("workspace_id", w.workspaceID)
		e.str("endpoint_name", ep.name)
		e.str("endpoint_id", ep.id)
		e.str("served_entity_name", ep.name)
		e.str("entity_type", entityType)
		e.str("entity_name", entityName)
		e.str("entity_version", version)
		task := "llm/v1/chat"
		if ep.model.embedding {
			task = "llm/v1/embeddings"
		}
		e.str("task", task)
		e.ts("change_time", at.UnixMicro())
		e.end()
	}
	start := w.cfg.Start
	for _, ep := range w.endpoints {
		entityType, entityName := "FOUNDATION_MODEL", ep.destName
		if ep.destType == "EXTERNAL_MODEL" {
			entityType, entityName = "EXTERNAL_MODEL", ep.model.name
		}
		row(ep, "1", start.Add(-60*24*time.Hour), entityType, entityName)
		row(ep, "2", start.Add(-7*24*time.Hour), entityType, entityName)
		if ep.idx == mGPT5Mini {
			row(ep, "3", start.Add(w.cfg.Duration/2), "EXTERNAL_MODEL", models[mGPT5].name)
		}
	}
	if err := o.write(e.b); err != nil {
		o.f.Close()
		return err
	}
	return o.close()
}
