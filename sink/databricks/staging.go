package databricks

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/databricks/databricks-sql-go/driverctx"

	"github.com/obolus/obolus/internal/retry"
	"github.com/obolus/obolus/schemas"
)

// stageInserts inserts rows into stage_attribution in batches that stay
// within the parameter budget, each under stage id <stageID>-<n>, n counting
// in *batches; first is the position of rows[0] among the stage's rows, for
// messages.
func (s *Store) stageInserts(ctx context.Context, stageID string, batches *int, first int64, rows []schemas.Staged, st *timing) error {
	stage := s.schema.Table("stage_attribution")
	cols := schemas.StageColumns()
	perRow := len(cols) + 1
	batch := max(1, s.opt.InsertParams/perRow)
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", perRow), ", ") + ")"
	head := "INSERT INTO " + stage + " (stage_id, " + strings.Join(cols, ", ") + ") VALUES "
	args := make([]any, 0, batch*perRow)
	var q strings.Builder
	for lo := 0; lo < len(rows); lo += batch {
		hi := min(lo+batch, len(rows))
		q.Reset()
		q.WriteString(head)
		args = args[:0]
		batchID := fmt.Sprintf("%s-%06d", stageID, *batches)
		*batches++
		for i := lo; i < hi; i++ {
			if i > lo {
				q.WriteString(", ")
			}
			q.WriteString(row)
			r := &rows[i]
			args = appendRowArgs(append(args, batchID), &r.Attribution)
			args = r.Copy.AppendValues(args)
		}
		// An INSERT whose session dropped may or may not have landed:
		// empty its batch before sending it again.
		retried := false
		err := retry.Do(ctx, dropped, func(ctx context.Context) error {
			if retried {
				if _, err := execOn(ctx, s.db, "empty stage batch "+batchID, "DELETE FROM "+stage+" WHERE stage_id = ?", batchID); err != nil {
					return err
				}
			}
			retried = true
			_, err := execOn(ctx, s.db, fmt.Sprintf("stage attribution rows %d..%d", first+int64(lo), first+int64(hi)), q.String(), args...)
			return err
		})
		st.Statements++
		if err != nil {
			return err
		}
	}
	return nil
}

// appendRowArgs binds one attribution row in column order. Timestamps go as
// explicit TIMESTAMP parameters: an untyped time.Time would also work, but
// processed_at may be zero, which must bind as NULL.
func appendRowArgs(args []any, r *schemas.Attribution) []any {
	return append(args,
		r.InvocationID, r.RequestID, timeParam("", r.EventTime), dateParam("", r.EventTime), r.AccountID, r.WorkspaceID,
		r.EndpointID, r.EndpointName, r.DestinationModel, r.Requester, r.StatusCode, r.UsageSource,
		r.EndUser, r.Team, r.CostCenter, r.AgentEndpoint, r.TraceID, r.AgentRequestID, r.Session,
		r.MatchMethod, r.MatchConfidence, r.Candidates, r.Weight, r.Reason,
		r.InputTokens, r.OutputTokens, r.TotalTokens, r.CacheReadInputTokens,
		r.CacheCreationInputTokens, r.OutputReasoningTokens,
		r.CostUSD, r.PriceListVersion, r.Version, r.RunID, timeParam("", r.ProcessedAt),
	)
}

// stagingContext allows the driver's staging commands to read and write dir.
func stagingContext(ctx context.Context, dir string) context.Context {
	return driverctx.NewContextWithStagingInfo(ctx, []string{dir})
}

var volumePath = regexp.MustCompile(`^/Volumes/[A-Za-z_][A-Za-z0-9_]*/[A-Za-z_][A-Za-z0-9_]*/[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z0-9_.-]+)*/?$`)

func checkVolume(p string) error {
	if !volumePath.MatchString(p) || strings.Contains(p, "..") {
		return fmt.Errorf("%q: want /Volumes/<catalog>/<schema>/<volume>[/dir] of letters, digits, _, . and -", p)
	}
	return nil
}
