package duckdb

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/obolus/obolus/schemas"
)

// Refreshing is the store for continuous writes (the stream loader): it
// keeps the coverage table current for the dates written, recomputing it
// at most every RefreshEvery (0: 10s) rather than after every write.
type Refreshing struct {
	*Store
	RefreshEvery time.Duration

	mu       sync.Mutex
	from, to time.Time // event-time range written since the last refresh
	last     time.Time
}

// ReplaceAttributionChunks is Store.ReplaceAttributionChunks, and marks the
// dates written for the next coverage refresh.
func (s *Refreshing) ReplaceAttributionChunks(ctx context.Context, from, to time.Time, chunks [][]schemas.Attribution) (schemas.WriteStats, error) {
	st, err := s.Store.ReplaceAttributionChunks(ctx, from, to, chunks)
	if err != nil {
		return st, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	widen := func(t time.Time) {
		if t.IsZero() {
			return
		}
		if s.from.IsZero() || t.Before(s.from) {
			s.from = t
		}
		if t.After(s.to) {
			s.to = t
		}
	}
	widen(from)
	if !to.IsZero() {
		widen(to.Add(-time.Nanosecond))
	}
	for _, rows := range chunks {
		for i := range rows {
			widen(rows[i].EventTime)
		}
	}
	return st, s.refresh(ctx, false)
}

func (s *Refreshing) refresh(ctx context.Context, force bool) error {
	every := s.RefreshEvery
	if every == 0 {
		every = 10 * time.Second
	}
	if s.from.IsZero() || !force && time.Since(s.last) < every {
		return nil
	}
	if err := s.Store.RefreshCoverage(ctx, s.from, s.to.Add(time.Nanosecond)); err != nil {
		return fmt.Errorf("refresh coverage: %w", err)
	}
	s.from, s.to, s.last = time.Time{}, time.Time{}, time.Now()
	return nil
}

// Flush refreshes the coverage of what was written since the last refresh.
func (s *Refreshing) Flush(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refresh(ctx, true)
}
