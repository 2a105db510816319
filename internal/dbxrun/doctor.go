package dbxrun

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	databricks "github.com/databricks/databricks-sql-go"
	"github.com/databricks/databricks-sql-go/driverctx"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/ingest"
	databricksingest "github.com/obolus/obolus/ingest/databricks"
	"github.com/obolus/obolus/internal/batch"
	"github.com/obolus/obolus/internal/dbsql"
	"github.com/obolus/obolus/internal/pushdown"
	"github.com/obolus/obolus/schemas"
	databrickssink "github.com/obolus/obolus/sink/databricks"
)

// Check outcomes.
const (
	CheckOK   = "ok"
	CheckWarn = "warn"
	CheckFail = "FAIL"
)

// Check is one finding of Doctor.
type Check struct {
	Name, Status, Detail string
}

// TagShare is how many recent gateway rows carry the configured request tags.
type TagShare struct {
	From, To time.Time
	// Rows and Tagged count all recent rows; AgentRows and AgentTagged the
	// rows whose requester is a configured agent's service principal.
	Rows, Tagged, AgentRows, AgentTagged int64
	// ByKey counts rows carrying each configured key (a non-empty value).
	ByKey map[string]int64
}

// DoctorOptions is what Doctor checks.
type DoctorOptions struct {
	// Endpoint names the warehouse in messages (host and path).
	Endpoint string
	// Sources are the configured source tables; SourcesErr why some could
	// not be named.
	Sources    []*databricksingest.Source
	SourcesErr error
	// Store is obolus's schema; StoreErr why it could not be named.
	Store    *databrickssink.Store
	StoreErr error
	// StagingVolume is the volume pull writes stage through ("" for none).
	StagingVolume string
	// Tags says which request tags RequestTagShare counts.
	Tags TagOptions
	// Match is the match configuration: the survey of recent rows checks
	// tag keys and agent logs against it.
	Match enrich.MatchConfig
	// Agents names the configured service principals by agent endpoint.
	Agents map[string]string
}

// TagOptions is what RequestTagShare counts.
type TagOptions struct {
	// UsageTable is the gateway usage table.
	UsageTable string
	// Keys are the request tag keys attribution by id reads.
	Keys []string
	// ServicePrincipals are the configured agents' principals.
	ServicePrincipals []string
	// PrincipalsInSpans reports agent tables (span tables) whose principal
	// only their spans' resources name: their rows are not counted here.
	PrincipalsInSpans bool
	// Lookback is how far back from the newest row to count.
	Lookback time.Duration
	// ExactKeys counts a key only as written (match.exact_tag_keys).
	ExactKeys bool
}

// Doctor checks what a Databricks run needs, in order: the connection and
// credentials, each source table and its columns, the objects obolus init
// creates, the right to write them (and to the staging volume), and what
// share of recent gateway rows carry the request tags attribution by id
// needs. It never writes data.
func Doctor(ctx context.Context, db *sql.DB, opt DoctorOptions) ([]Check, *TagShare) {
	var out []Check
	add := func(name, status, format string, a ...any) {
		out = append(out, Check{Name: name, Status: status, Detail: fmt.Sprintf(format, a...)})
	}
	var user string
	if err := db.QueryRowContext(ctx, "SELECT current_user()").Scan(&user); err != nil {
		add("connect", CheckFail, "%s: %v", opt.Endpoint, err)
		return out, nil
	}
	add("connect", CheckOK, "%s as %s", opt.Endpoint, user)

	if opt.SourcesErr != nil {
		add("sources", CheckFail, "%v", opt.SourcesErr)
	}
	for _, s := range opt.Sources {
		name := "read " + s.Table().Name
		have, missing, err := s.Resolve(ctx)
		switch {
		case err != nil:
			add(name, CheckFail, "%v", err)
		case len(missing) > 0:
			add(name, CheckWarn, "%d columns; optional columns missing (read as empty): %s", len(have), strings.Join(missing, ", "))
		default:
			add(name, CheckOK, "all %d columns obolus reads", len(have))
		}
	}

	store := opt.Store
	if opt.StoreErr != nil {
		add("target", CheckFail, "%v", opt.StoreErr)
		return out, nil
	}
	schema := store.Schema().String()
	stmts, err := schemas.DDL("databricks")
	if err != nil {
		add("target", CheckFail, "%v", err)
		return out, nil
	}
	var absent []string
	for _, st := range stmts {
		if st.Name == "staging" {
			continue // a volume, checked below
		}
		rows, err := db.QueryContext(ctx, "SELECT * FROM "+store.Table(st.Name)+" LIMIT 0")
		if err != nil {
			absent = append(absent, st.Name)
			continue
		}
		rows.Close()
	}
	if len(absent) > 0 {
		add("objects in "+schema, CheckFail, "missing or unreadable: %s — run obolus init --target databricks", strings.Join(absent, ", "))
	} else if err := store.CheckVersion(ctx); err != nil {
		add("schema version of "+schema, CheckFail, "%v", err)
	} else {
		add("objects in "+schema, CheckOK, "%d tables and views", len(stmts)-1)
		// A DELETE that matches nothing needs MODIFY and changes nothing.
		if _, err := db.ExecContext(ctx, "DELETE FROM "+store.Table("checkpoints")+" WHERE 1 = 0"); err != nil {
			add("write "+schema, CheckFail, "cannot modify obolus tables: %v", err)
		} else {
			add("write "+schema, CheckOK, "can modify obolus tables")
		}
	}
	if opt.StagingVolume != "" {
		out = append(out, volumeCheck(ctx, db, opt.StagingVolume))
	}

	share, err := RequestTagShare(ctx, db, opt.Tags)
	switch {
	case err != nil:
		add("request tags", CheckFail, "%v", err)
	case share.Rows == 0:
		add("request tags", CheckWarn, "no gateway rows in the last %s of data", opt.Tags.Lookback)
	default:
		status, detail := CheckOK, ""
		if share.AgentRows > 0 {
			pct := 100 * float64(share.AgentTagged) / float64(share.AgentRows)
			detail = fmt.Sprintf("%.1f%% of %d agent rows carry a configured tag", pct, share.AgentRows)
			if pct < 50 {
				status = CheckWarn
				detail += ": attribution falls back to time windows; see docs/databricks.md, For agent authors"
			}
		} else {
			status, detail = CheckWarn, "none of the recent rows was made by a configured agent service principal"
			if opt.Tags.PrincipalsInSpans {
				detail += " (span tables that leave service_principal to their spans' resources are not counted: name it on databricks.otel_spans for this check)"
			}
		}
		add("request tags", status, "%s (%.1f%% of all %d rows, %s .. %s)", detail,
			100*float64(share.Tagged)/float64(share.Rows), share.Rows, share.From.Format(time.RFC3339), share.To.Format(time.RFC3339))
	}
	if opt.SourcesErr == nil && share != nil && share.Rows > 0 {
		var usage, agents, served []batch.Source
		for _, src := range opt.Sources {
			switch src.Table().Spec.Kind {
			case ingest.KindUsage, ingest.KindLegacyUsage:
				usage = append(usage, src)
			case ingest.KindServedEntities:
				served = append(served, src)
			default:
				agents = append(agents, src)
			}
		}
		w := ingest.Window{From: share.From, To: share.To.Add(time.Microsecond)}
		if sv, err := batch.SurveySources(ctx, usage, agents, served, w, opt.Match, SurveyRows); err != nil {
			add("survey", CheckWarn, "%v", err)
		} else {
			out = append(out, SurveyChecks(sv, opt.Match)...)
		}
	}
	if opt.Store != nil && opt.StoreErr == nil {
		if cal, err := opt.Store.Calibration(ctx, ""); err != nil {
			add("calibration", CheckWarn, "%v", err)
		} else {
			out = append(out, CalibrationChecks(cal, opt.Agents)...)
		}
	}
	return out, share
}

// volumeCheck uploads and removes a probe file in the staging volume. The
// paths are literals (staging commands take no parameters); the volume
// matched a strict pattern when the configuration was validated.
func volumeCheck(ctx context.Context, db *sql.DB, volume string) Check {
	c := Check{Name: "staging volume " + volume}
	dir, err := os.MkdirTemp("", "obolus-doctor-")
	if err != nil {
		c.Status, c.Detail = CheckFail, err.Error()
		return c
	}
	defer os.RemoveAll(dir)
	local := filepath.Join(dir, "probe.txt")
	if err := os.WriteFile(local, []byte("obolus doctor\n"), 0o600); err != nil {
		c.Status, c.Detail = CheckFail, err.Error()
		return c
	}
	remote := strings.TrimSuffix(volume, "/") + "/obolus-doctor-probe.txt"
	sctx := driverctx.NewContextWithStagingInfo(ctx, []string{dir})
	if _, err := db.ExecContext(sctx, "PUT '"+local+"' INTO '"+remote+"' OVERWRITE"); err != nil {
		c.Status, c.Detail = CheckFail, "cannot upload (needs WRITE VOLUME; run obolus init --target databricks, or set databricks.staging: inserts): "+err.Error()
		return c
	}
	if _, err := db.ExecContext(sctx, "REMOVE '"+remote+"'"); err != nil {
		c.Status, c.Detail = CheckWarn, "uploaded, but cannot remove: "+err.Error()
		return c
	}
	c.Status, c.Detail = CheckOK, "can upload and remove files"
	return c
}

// RequestTagShare counts, over the last databricks.doctor_lookback of data
// in the gateway usage table, the rows carrying the configured user, trace
// and request tag keys, overall and for the configured agents' service
// principals.
func RequestTagShare(ctx context.Context, db *sql.DB, opt TagOptions) (*TagShare, error) {
	if opt.UsageTable == "" {
		return nil, fmt.Errorf("databricks.usage is empty: no gateway usage table to look at")
	}
	table, err := dbsql.Name(opt.UsageTable)
	if err != nil {
		return nil, fmt.Errorf("databricks.usage: %w", err)
	}
	keys, sps := opt.Keys, opt.ServicePrincipals
	args := []any{databricks.Parameter{Name: "lookback_s", Type: databricks.SqlBigInt, Value: fmt.Sprint(int64(opt.Lookback / time.Second))}}
	var anyTag, byKey []string
	for i, k := range keys {
		p := fmt.Sprintf("key_%d", i)
		args = append(args, databricks.Parameter{Name: p, Type: databricks.SqlString, Value: k})
		if !opt.ExactKeys {
			args = append(args, databricks.Parameter{Name: p + "_norm", Type: databricks.SqlString, Value: enrich.NormalizeTagKey(k)})
		}
		cond := pushdown.TagLookupSQL("request_tags", ":"+p, ":"+p+"_norm", opt.ExactKeys) + " IS NOT NULL"
		anyTag = append(anyTag, cond)
		byKey = append(byKey, "count(*) FILTER (WHERE "+cond+")")
	}
	tagged := "FALSE"
	if len(anyTag) > 0 {
		tagged = "(" + strings.Join(anyTag, " OR ") + ")"
	}
	agent := "FALSE"
	if len(sps) > 0 {
		var ps []string
		for i, sp := range sps {
			p := fmt.Sprintf("sp_%d", i)
			args = append(args, databricks.Parameter{Name: p, Type: databricks.SqlString, Value: sp})
			ps = append(ps, ":"+p)
		}
		agent = "requester IN (" + strings.Join(ps, ", ") + ")"
	}
	q := `WITH latest AS (SELECT max(event_time) AS t FROM ` + table + `),
recent AS (
  SELECT u.requester, u.request_tags, u.event_time FROM ` + table + ` u, latest
  WHERE u.event_time > latest.t - :lookback_s * INTERVAL '1' SECOND
)
SELECT min(event_time), max(event_time), count(*),
  count(*) FILTER (WHERE ` + tagged + `),
  count(*) FILTER (WHERE ` + agent + `),
  count(*) FILTER (WHERE ` + agent + ` AND ` + tagged + `)`
	for _, b := range byKey {
		q += ",\n  " + b
	}
	q += "\nFROM recent"
	share := &TagShare{ByKey: map[string]int64{}}
	var from, to sql.NullTime
	counts := make([]int64, len(keys))
	dest := []any{&from, &to, &share.Rows, &share.Tagged, &share.AgentRows, &share.AgentTagged}
	for i := range counts {
		dest = append(dest, &counts[i])
	}
	if err := db.QueryRowContext(ctx, q, args...).Scan(dest...); err != nil {
		return nil, fmt.Errorf("count request tags in %s: %w", opt.UsageTable, err)
	}
	share.From, share.To = from.Time.UTC(), to.Time.UTC()
	for i, k := range keys {
		share.ByKey[k] = counts[i]
	}
	return share, nil
}
