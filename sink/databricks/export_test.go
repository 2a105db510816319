package databricks

import (
	"context"
	"time"

	"github.com/obolus/obolus/schemas"
)

// Timing is a write's timing, for the external tests and benchmarks.
type Timing = timing

// ReplaceTimed is ReplaceAttributionChunks that also says where the time went.
func (s *Store) ReplaceTimed(ctx context.Context, from, to time.Time, chunks ...[]schemas.Attribution) (schemas.WriteStats, Timing, error) {
	return s.replace(ctx, from, to, chunks)
}
