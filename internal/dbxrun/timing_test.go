package dbxrun_test

import (
	"context"
	"sync"
	"time"

	"github.com/obolus/obolus/ingest"
	"github.com/obolus/obolus/internal/batch"
	"github.com/obolus/obolus/schemas"
)

// stopwatch adds up time per stage.
type stopwatch struct {
	mu sync.Mutex
	d  map[string]time.Duration
}

func (s *stopwatch) add(stage string, t0 time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.d == nil {
		s.d = map[string]time.Duration{}
	}
	s.d[stage] += time.Since(t0)
}

// timedSource times a source's reads: the driver transfer and the decoding
// into records, excluding what the job does with each batch.
type timedSource struct {
	batch.Source
	sw *stopwatch
}

func (s timedSource) Read(ctx context.Context, w ingest.Window, emit ingest.Emit) (ingest.Stats, error) {
	t0 := time.Now()
	var inner time.Duration
	wrap := ingest.Emit{Dead: emit.Dead}
	if emit.Usage != nil {
		wrap.Usage = func(evs []schemas.UsageEvent) error {
			t := time.Now()
			defer func() { inner += time.Since(t) }()
			return emit.Usage(evs)
		}
	}
	if emit.Agents != nil {
		wrap.Agents = func(rs []schemas.AgentRequest) error {
			t := time.Now()
			defer func() { inner += time.Since(t) }()
			return emit.Agents(rs)
		}
	}
	st, err := s.Source.Read(ctx, w, wrap)
	s.sw.mu.Lock()
	if s.sw.d == nil {
		s.sw.d = map[string]time.Duration{}
	}
	s.sw.d["read"] += time.Since(t0) - inner
	s.sw.mu.Unlock()
	return st, err
}

type timedStore struct {
	batch.Store
	sw *stopwatch
}

func (s timedStore) RefreshCoverage(ctx context.Context, from, to time.Time) error {
	defer s.sw.add("write", time.Now())
	return s.Store.RefreshCoverage(ctx, from, to)
}

// timed wraps a job's sources and store; the engine's share is the rest of
// the run.
func timed(j *batch.Job) *stopwatch {
	sw := &stopwatch{}
	for i, s := range j.Usage {
		j.Usage[i] = timedSource{s, sw}
	}
	for i, s := range j.Agents {
		j.Agents[i] = timedSource{s, sw}
	}
	j.Store = timedStore{j.Store, sw}
	return sw
}

func (s timedStore) StageAttributions(ctx context.Context) (schemas.AttributionStage, error) {
	defer s.sw.add("write", time.Now())
	st, err := s.Store.StageAttributions(ctx)
	if err != nil {
		return nil, err
	}
	return timedStage{st, s.sw}, nil
}

// timedStage counts staging and the commit as writing.
type timedStage struct {
	schemas.AttributionStage
	sw *stopwatch
}

func (s timedStage) Append(ctx context.Context, rows []schemas.Staged) error {
	defer s.sw.add("write", time.Now())
	return s.AttributionStage.Append(ctx, rows)
}

func (s timedStage) Commit(ctx context.Context, from, to time.Time) (schemas.WriteStats, schemas.StagedTotals, error) {
	defer s.sw.add("write", time.Now())
	return s.AttributionStage.Commit(ctx, from, to)
}
