package batch

import (
	"context"
	"fmt"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/ingest"
	"github.com/obolus/obolus/schemas"
)

// ReadServed reads served_entities sources whole — no window applies: an
// entity stays in force after its change time — into the index legacy
// usage rows take their model from. Each row that cannot be used goes to
// dead. The stats sum those of the sources.
func ReadServed(ctx context.Context, srcs []Source, dead func(schemas.DeadLetter) error) (*enrich.ServedEntities, ingest.Stats, error) {
	var rows []schemas.ServedEntity
	var total ingest.Stats
	for _, src := range srcs {
		st, err := src.Read(ctx, ingest.Window{}, ingest.Emit{
			Served: func(r []schemas.ServedEntity) error { rows = append(rows, r...); return nil },
			Dead:   dead,
		})
		if err == nil && !st.Balanced() {
			err = fmt.Errorf("%d rows read, but %d emitted + %d dead-lettered + %d skipped", st.Rows, st.Emitted, st.Dead, st.Skipped)
		}
		if err != nil {
			return nil, total, fmt.Errorf("read served entities: source %s: %w", src.Name(), err)
		}
		total.Files += st.Files
		total.Rows += st.Rows
		total.Emitted += st.Emitted
		total.Dead += st.Dead
	}
	return enrich.NewServedEntities(rows), total, nil
}
