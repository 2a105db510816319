// Package dbxrun attributes windows against Databricks, in pull mode (the
// batch job over warehouse tables and a Delta store) or pushdown mode.
package dbxrun

import (
	"context"

	"github.com/databricks/databricks-sql-go/driverctx"
)

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
