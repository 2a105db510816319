package databricks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	databricks "github.com/databricks/databricks-sql-go"

	"github.com/obolus/obolus/internal/dbsql"
	"github.com/obolus/obolus/internal/retry"
	"github.com/obolus/obolus/schemas"
)

// AttributionStage is a window replace written in chunks: each Append
// uploads a Parquet part to the staging volume, or inserts its rows into
// stage_attribution under the stage's id, and Commit replaces the window
// from the winning copies with one MERGE. It implements
// schemas.AttributionStage.
//
// Every statement is safe to repeat, so each is retried when its session
// drops: a part is uploaded with OVERWRITE, and each INSERT stages its rows
// under a batch id of its own (<stage id>-<n>), which a retry empties first.
type AttributionStage struct {
	s           *Store
	id          string
	dir         string   // local directory of Parquet parts, volume staging only
	parts       []string // uploaded parts, volume staging only
	rows        int64
	first, last time.Time // event times staged, to bound the MERGE's reads
	tm          timing
	batches     int // INSERTs into stage_attribution sent
	closed      bool
	// calibrate, when set, makes the calibration table (Calibrate).
	calibrate func(schemas.CalibrationStats) schemas.CalibrationResult
}

// Calibrate implements schemas.AttributionStage.
func (a *AttributionStage) Calibrate(fn func(schemas.CalibrationStats) schemas.CalibrationResult) {
	a.calibrate = fn
}

// StageAttributions starts a staged replace. The caller must Close it.
func (s *Store) StageAttributions(ctx context.Context) (schemas.AttributionStage, error) {
	return s.stageAttributions()
}

func (s *Store) stageAttributions() (*AttributionStage, error) {
	id, err := newStageID()
	if err != nil {
		return nil, err
	}
	a := &AttributionStage{s: s, id: id}
	if s.opt.StagingVolume != "" {
		if a.dir, err = os.MkdirTemp(s.opt.LocalDir, "obolus-stage-"); err != nil {
			return nil, fmt.Errorf("staging directory: %w", err)
		}
	}
	return a, nil
}

// dropped retries a statement whose session was lost.
var dropped = retry.Policy{Attempts: 3, Retryable: dbsql.IsDropped}

// Append stages rows.
func (a *AttributionStage) Append(ctx context.Context, rows []schemas.Staged) error {
	if len(rows) == 0 {
		return nil
	}
	if a.closed {
		return errors.New("stage attributions: append after close")
	}
	for i := range rows {
		r := &rows[i]
		if _, err := r.Validate(); err != nil {
			return fmt.Errorf("attribution row %d (invocation_id %q, end_user %q): %w", a.rows+int64(i), r.InvocationID, r.EndUser, err)
		}
		a.first, a.last = minTime(a.first, r.EventTime), maxTime(a.last, r.EventTime)
	}
	t0 := time.Now()
	var err error
	if a.dir != "" {
		err = a.appendPart(ctx, rows)
	} else {
		err = a.s.stageInserts(ctx, a.id, &a.batches, a.rows, rows, &a.tm)
	}
	a.tm.Stage += time.Since(t0)
	if err != nil {
		return fmt.Errorf("stage attributions: %w", err)
	}
	a.rows += int64(len(rows))
	return nil
}

// appendPart writes rows as one Parquet part and uploads it.
func (a *AttributionStage) appendPart(ctx context.Context, rows []schemas.Staged) error {
	name := fmt.Sprintf("obolus-stage-%s-%05d.parquet", a.id, len(a.parts))
	local := filepath.Join(a.dir, name)
	defer os.Remove(local)
	if err := writeParquet(local, rows); err != nil {
		return err
	}
	// Paths are literals: staging commands take no parameters. Both are
	// ours: the volume matched a strict pattern and the name is hex.
	remote := a.s.opt.StagingVolume + "/" + name
	err := retry.Do(ctx, dropped, func(ctx context.Context) error {
		_, err := execOn(stagingContext(ctx, a.dir), a.s.db, "upload stage part to "+remote, "PUT '"+local+"' INTO '"+remote+"' OVERWRITE")
		return err
	})
	a.tm.Statements++
	if err != nil {
		return err
	}
	a.parts = append(a.parts, remote)
	return nil
}

// source is the query that reads the stage back, in schemas.StageColumns
// order; it may bind :stage_batches.
func (a *AttributionStage) source() string {
	cols := schemas.StageColumns()
	switch {
	case a.rows == 0:
		out := make([]string, len(cols))
		for i, c := range cols {
			out[i] = "CAST(NULL AS " + stageType(c) + ") AS " + c
		}
		return "SELECT " + strings.Join(out, ", ") + " FROM " + a.s.schema.Table("attribution") + " WHERE 1 = 0"
	case a.dir != "":
		// The casts pin each column's type whatever the Parquet writer chose.
		casts := make([]string, len(cols))
		for i, c := range cols {
			casts[i] = "CAST(" + c + " AS " + stageType(c) + ") AS " + c
		}
		glob := a.s.opt.StagingVolume + "/obolus-stage-" + a.id + "-*.parquet"
		return "SELECT " + strings.Join(casts, ", ") + " FROM read_files('" + glob + "', format => 'parquet')"
	default:
		return "SELECT " + strings.Join(cols, ", ") + " FROM " + a.s.schema.Table("stage_attribution") + " WHERE stage_id LIKE :stage_batches"
	}
}

// Commit keeps each invocation's winning copy (schemas.LosersSQL) and
// replaces the window with it in one MERGE.
func (a *AttributionStage) Commit(ctx context.Context, from, to time.Time) (schemas.WriteStats, schemas.StagedTotals, error) {
	st := schemas.WriteStats{}
	tot := schemas.StagedTotals{ByMethod: map[string]float64{}}
	if err := checkWindow(from, to); err != nil {
		return st, tot, err
	}
	windowed := !from.IsZero()
	if a.closed {
		return st, tot, errors.New("replace attributions: commit after close")
	}
	if a.rows == 0 && !windowed {
		return st, tot, nil
	}
	// The steps of schemas' staged commit, as common table expressions
	// (each entry ending in a comma, as ReplaceStatementWith takes them):
	// the warehouse plans them as one statement each.
	ctes := "stage AS (" + a.source() + "),\nlosers AS (" + schemas.LosersSQL("stage") + "),\nkept AS (" + schemas.KeptSQL("stage", "losers") + "),\n" +
		"invocations AS (" + schemas.InvocationsSQL("kept") + "),\n"
	with := "WITH " + strings.TrimSuffix(ctes, ",\n") + "\n"
	args := []any{}
	if a.dir == "" && a.rows > 0 {
		args = append(args, databricks.Parameter{Name: "stage_batches", Value: a.id + "-%"})
	}
	query := func(what, q string, scan func(*sql.Rows) error) error {
		err := retry.Do(ctx, dropped, func(ctx context.Context) error {
			rs, err := a.s.db.QueryContext(ctx, q, args...)
			if err != nil {
				return err
			}
			defer rs.Close()
			for rs.Next() {
				if err := scan(rs); err != nil {
					return err
				}
			}
			return rs.Err()
		})
		a.tm.Statements++
		if err != nil {
			return fmt.Errorf("replace attributions: %s: %w", what, err)
		}
		return nil
	}
	source := "SELECT " + strings.Join(attributionColumns, ", ") + " FROM kept"
	if a.calibrate != nil {
		var stats schemas.CalibrationStats
		if err := query("calibration counts", with+schemas.MaskedStatsSQL("kept"), func(rs *sql.Rows) error {
			var m schemas.MaskedStat
			err := rs.Scan(&m.ServicePrincipal, &m.Code, &m.Calls, &m.Correct)
			stats.Masked = append(stats.Masked, m)
			return err
		}); err != nil {
			return st, tot, err
		}
		if err := query("calibration presence", with+schemas.PresenceSQL("kept"), func(rs *sql.Rows) error {
			var p schemas.PresenceStat
			err := rs.Scan(&p.ServicePrincipal, &p.Linked, &p.NotFound)
			stats.Presence = append(stats.Presence, p)
			return err
		}); err != nil {
			return st, tot, err
		}
		cal := a.calibrate(stats)
		if err := a.s.WriteCalibration(ctx, cal.Rows); err != nil {
			return st, tot, fmt.Errorf("replace attributions: %w", err)
		}
		args = append(args, databricks.Parameter{Name: "cal_run", Value: cal.RunID},
			databricks.Parameter{Name: "min_confidence", Type: databricks.SqlDouble, Value: strconv.FormatFloat(cal.MinConfidence, 'g', -1, 64)})
		// From here on, kept is what the confidence gate keeps.
		ctes = "stage AS (" + a.source() + "),\nlosers AS (" + schemas.LosersSQL("stage") + "),\nkept_all AS (" + schemas.KeptSQL("stage", "losers") + "),\n" +
			"calibrated_map AS (" + schemas.CalibrationMapSQL("kept_all", a.s.schema.Table("calibration"), ":cal_run") + "),\n" +
			"gated AS (" + schemas.GatedSQL("kept_all", "calibrated_map", ":min_confidence") + "),\n" +
			"kept AS (" + schemas.GatedKeptSQL("kept_all", "gated") + "),\n" +
			"invocations AS (" + schemas.InvocationsSQL("kept") + "),\n"
		with = "WITH " + strings.TrimSuffix(ctes, ",\n") + "\n"
		source = "SELECT " + schemas.CalibratedSelect("k", "m") + " FROM kept k " + schemas.CalibratedJoin("k", "calibrated_map", "m")
	}
	var bad error
	if err := query("check keys", with+schemas.RepeatedKeySQL("kept", "invocations"), func(rs *sql.Rows) error {
		var id, user string
		var n int64
		err := rs.Scan(&id, &user, &n)
		bad = schemas.RepeatedKeyError(id, user, n)
		return err
	}); err != nil {
		return st, tot, err
	}
	if bad == nil {
		if err := query("check versions", with+schemas.MixedVersionSQL("invocations"), func(rs *sql.Rows) error {
			var id string
			var lo, hi int64
			err := rs.Scan(&id, &lo, &hi)
			bad = schemas.MixedVersionError(id, lo, hi)
			return err
		}); err != nil {
			return st, tot, err
		}
	}
	if bad != nil {
		return st, tot, fmt.Errorf("replace attributions: %w", bad)
	}
	if err := query("totals", with+schemas.TotalsSQL("invocations"), func(rs *sql.Rows) (err error) {
		tot, err = schemas.ScanTotals(rs.Scan)
		return err
	}); err != nil {
		return st, tot, err
	}
	if err := query("weights by method", with+schemas.MethodsSQL("kept"), func(rs *sql.Rows) error {
		return tot.ScanMethod(rs.Scan)
	}); err != nil {
		return st, tot, err
	}
	st.Rows, st.Invocations = tot.Rows, tot.Invocations

	lo, hi := a.first, a.last
	if windowed {
		lo, hi = minTime(lo, from), maxTime(hi, to.Add(-time.Microsecond))
	}
	args = append(args, dateParam("date_from", lo), dateParam("date_to", hi))
	t0 := time.Now()
	if a.rows > 0 {
		// What the version guard will keep out, for the run report. Read
		// before the MERGE, which leaves no trace of it.
		if err := query("count stale attribution rows", staleStatementWith(a.s.schema.Table("attribution"), ctes, source), func(rs *sql.Rows) error {
			return rs.Scan(&st.Stale, &st.StaleInvocations)
		}); err != nil {
			return st, tot, err
		}
	}
	args = append(args, timeParam("window_from", from), timeParam("window_to", to))
	// A MERGE is atomic: repeating one whose session dropped is safe.
	err := retry.Do(ctx, dropped, func(ctx context.Context) error {
		res, err := execOn(ctx, a.s.db, "merge attribution rows", ReplaceStatementWith(a.s.schema.Table("attribution"), ctes, source), args...)
		if err == nil {
			st.Affected, _ = res.RowsAffected()
		}
		return err
	})
	a.tm.Statements++
	a.tm.Merge = time.Since(t0)
	if err != nil {
		return st, tot, err
	}
	return st, tot, nil
}

// Close removes the stage: its rows or parts, and the local directory. The
// stage is only scaffolding, so a failure here is returned but leaves the
// attribution table as the write left it.
func (a *AttributionStage) Close() error {
	if a.closed {
		return nil
	}
	a.closed = true
	ctx := context.Background()
	var errs []error
	if a.dir != "" {
		for _, p := range a.parts {
			if _, err := execOn(stagingContext(ctx, a.dir), a.s.db, "remove "+p, "REMOVE '"+p+"'"); err != nil {
				errs = append(errs, err)
			}
		}
		errs = append(errs, os.RemoveAll(a.dir))
	} else if a.batches > 0 {
		_, err := execOn(ctx, a.s.db, "delete stage "+a.id, "DELETE FROM "+a.s.schema.Table("stage_attribution")+" WHERE stage_id LIKE ?", a.id+"-%")
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkWindow refuses a window with one end set, or from not before to.
func checkWindow(from, to time.Time) error {
	if (!from.IsZero() || !to.IsZero()) && (from.IsZero() || to.IsZero() || !to.After(from)) {
		return fmt.Errorf("replace attributions: window [%s, %s) is not a window: %w", fmtTime(from), fmtTime(to), errWindow)
	}
	return nil
}
