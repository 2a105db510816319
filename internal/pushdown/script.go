package pushdown

import (
	"errors"
	"fmt"
	"strings"
	"time"

	databricks "github.com/databricks/databricks-sql-go"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/ingest"
	"github.com/obolus/obolus/schemas"
	databrickssink "github.com/obolus/obolus/sink/databricks"
)

// ScriptOptions is what a job script needs besides the configuration.
type ScriptOptions struct {
	// Job names the checkpoint the script reads and advances (batch.job).
	Job string
	// Lookback widens the window back from the checkpoint (batch.lookback);
	// AgentMargin reads agent logs that much earlier still (batch.agent_margin).
	Lookback, AgentMargin time.Duration
	// Now is the SQL expression for the run's time, which ends the window
	// and versions its rows; empty is current_timestamp(). Tests set a
	// TIMESTAMP literal to step through windows.
	Now string
}

// RecordComment opens the script's run record statement.
const RecordComment = "Record the run in runs, reconciled as obolus batch reconciles it: every invocation of the\n" +
	"window written by this run, and as many tokens out as in (status failed, and why, otherwise)."

// Script variables, all session variables of the script's session, named
// with the obolus_ prefix so they cannot meet a user's.
const (
	varNow         = "obolus_now"
	varCheckpoint  = "obolus_checkpoint"
	varWindowTo    = "obolus_window_to"
	varUsageFrom   = "obolus_usage_from"
	varAgentFrom   = "obolus_agent_from"
	varAgentTo     = "obolus_agent_to"
	varReplaceFrom = "obolus_replace_from"
	varDateFrom    = "obolus_date_from"
	varDateTo      = "obolus_date_to"
	varVersion     = "obolus_version"
	varRunID       = "obolus_run_id"
)

// ref is how statements read a script variable: fully qualified, so that no
// column of the same name can shadow it (Databricks resolves a bare name to
// a column first).
func ref(name string) string { return "system.session." + name }

// openTime stands for "no lower bound" where the window is open (the job's
// first run): earlier than any time obolus reads (ingest.EarliestEventTime).
const openTime = "TIMESTAMP '1900-01-01 00:00:00'"

// Script returns one SQL script that runs a pushdown batch run of cfg on a
// SQL warehouse without obolus: it reads the job's checkpoint, computes the
// windows as batch.ResolveWindow and dbxrun.Pushdown.Run do, loads the price
// list and org directory, MERGEs the window's attribution, refreshes
// coverage and advances the checkpoint. The statements are those of the
// pushdown generators (Load, Summary, Build) and of the Databricks store
// (coverage, checkpoint), with the windows and run as session variables and
// every other parameter written in as a literal.
//
// With match.calibrate it computes the run's calibration table in SQL
// (CalibrationInsert), bit-identical to enrich.Calibrate. It records the
// run in runs, reconciled, and fails before the checkpoint moves when it
// does not reconcile (see docs/databricks.md, "Databricks job").
func Script(cfg Config, opt ScriptOptions) (string, error) {
	// The script computes the calibration table itself (CalibrationInsert)
	// and the MERGE always reads it: a run whose table is empty reads no
	// rows, which leaves every confidence as the rule's, as an uncalibrated
	// statement does.
	calibrate := cfg.Match.Calibrate && cfg.Match.TimeWindow
	cfg.Calibrated = calibrate
	if err := cfg.Validate(); err != nil {
		return "", err
	}
	if opt.Job == "" {
		return "", errors.New("pushdown render: no job name (batch.job)")
	}
	if opt.Lookback < 0 || opt.AgentMargin < 0 {
		return "", fmt.Errorf("pushdown render: lookback %s and agent margin %s must not be negative", opt.Lookback, opt.AgentMargin)
	}
	now := opt.Now
	if now == "" {
		now = "current_timestamp()"
	}
	job := stringLiteral(opt.Job)
	checkpoints := cfg.Target.Table("checkpoints")

	// The generators take Go windows; these stand-ins are never written:
	// every window and run marker is replaced by a variable below.
	t0 := time.Unix(0, 0).UTC()
	stand := ingest.Window{From: t0, To: t0.Add(time.Hour)}
	w := Windows{Usage: stand, Agents: stand, Replace: stand}
	run := enrich.Run{ID: "run", Version: 1, ProcessedAt: t0}
	vars := map[string]string{
		"usage_from": ref(varUsageFrom), "usage_to": ref(varWindowTo),
		"agent_from": ref(varAgentFrom), "agent_to": ref(varAgentTo),
		"window_from": ref(varReplaceFrom), "window_to": ref(varWindowTo),
		"date_from": ref(varDateFrom), "date_to": ref(varDateTo),
		"version": ref(varVersion), "run_id": ref(varRunID), "cal_run": ref(varRunID), "processed_at": ref(varNow),
	}

	var b strings.Builder
	stmt := func(comment, sql string) {
		if comment != "" {
			b.WriteString("\n-- " + strings.ReplaceAll(comment, "\n", "\n-- "))
		}
		b.WriteString("\n" + strings.TrimSpace(sql) + ";\n")
	}
	fmt.Fprintf(&b, `-- obolus pushdown job script for job %s, rendered by obolus pushdown render.
-- Run it as one SQL task on a SQL warehouse: one session (the statements
-- share session variables), session time zone UTC, one run at a time. Each
-- run attributes [checkpoint - lookback, now) as obolus batch --mode pushdown
-- does, refreshes coverage and advances the checkpoint to now. Generated:
-- change the configuration and render again rather than editing it.
`, strings.ReplaceAll(opt.Job, "\n", " "))

	stmt("The run's time: it ends the window and versions the rows.", "DECLARE OR REPLACE VARIABLE "+varNow+" TIMESTAMP DEFAULT "+now)
	for _, v := range []struct{ name, typ string }{{varCheckpoint, "TIMESTAMP"}, {varWindowTo, "TIMESTAMP"}, {varUsageFrom, "TIMESTAMP"},
		{varAgentFrom, "TIMESTAMP"}, {varAgentTo, "TIMESTAMP"}, {varReplaceFrom, "TIMESTAMP"}, {varDateFrom, "DATE"}, {varDateTo, "DATE"},
		{varVersion, "BIGINT"}, {varRunID, "STRING"}} {
		stmt("", "DECLARE OR REPLACE VARIABLE "+v.name+" "+v.typ)
	}
	setVar := func(comment, name, expr string) { stmt(comment, "SET VAR "+name+" = "+expr) }
	setVar("Where the job's last run ended (NULL before its first run).", varCheckpoint,
		"(SELECT max(window_end) FROM "+checkpoints+" WHERE job = "+job+")")
	setVar("The window ends now; a checkpoint at or after now stops the run, as obolus batch stops.", varWindowTo,
		"CASE WHEN "+ref(varCheckpoint)+" >= "+ref(varNow)+" THEN raise_error("+
			stringLiteral("obolus: the checkpoint of job "+opt.Job+" is not before now: an earlier run was given a window end in the future; run obolus batch --from <when to resume> once")+
			") ELSE "+ref(varNow)+" END")
	setVar("Usage from the checkpoint less batch.lookback ("+opt.Lookback.String()+"); all of it before the first run.", varUsageFrom,
		"coalesce("+ref(varCheckpoint)+" - "+interval(opt.Lookback)+", "+openTime+")")
	setVar("Agent logs from batch.agent_margin ("+opt.AgentMargin.String()+") before the usage window", varAgentFrom,
		"coalesce("+ref(varCheckpoint)+" - "+interval(opt.Lookback)+" - "+interval(opt.AgentMargin)+", "+openTime+")")
	setVar("to match.skew ("+cfg.Match.Skew.String()+") and a minute after its end.", varAgentTo,
		ref(varWindowTo)+" + "+interval(cfg.Match.Skew+time.Minute))

	sum, err := Summary(cfg, w)
	if err != nil {
		return "", err
	}
	first, err := sum.Inline(vars)
	if err != nil {
		return "", fmt.Errorf("pushdown render: summary: %w", err)
	}
	setVar("Stored rows of [replace_from, now) are replaced: from the usage window's start, or on the\n"+
		"first run from the earliest event (the window's end less a microsecond when there is none).", varReplaceFrom,
		"coalesce("+ref(varCheckpoint)+" - "+interval(opt.Lookback)+", least("+ref(varWindowTo)+" - INTERVAL '0.000001' SECOND, (\n"+
			"SELECT first_event FROM (\n"+strings.TrimSpace(first)+"\n) window_summary)))")
	setVar("The dates the replaced rows fall on (for pruning).", varDateFrom, "CAST("+ref(varReplaceFrom)+" AS DATE)")
	setVar("", varDateTo, "CAST("+ref(varWindowTo)+" - INTERVAL '0.000001' SECOND AS DATE)")
	setVar("The rows' version: microseconds since the epoch of the run's time, higher than earlier runs'.", varVersion,
		"unix_micros("+ref(varNow)+")")
	setVar("", varRunID, "concat('sqljob-', CAST("+ref(varVersion)+" AS STRING))")

	for i, st := range Load(cfg.Target, cfg.Prices, cfg.Org) {
		q, err := st.Inline(nil)
		if err != nil {
			return "", fmt.Errorf("pushdown render: load statement %d: %w", i+1, err)
		}
		comment := ""
		if i == 0 {
			comment = "The price list and org directory, under their digests (rows already there stay)."
		}
		stmt(comment, q)
	}

	if calibrate {
		cal, err := CalibrationInsert(cfg, w, run.ID)
		if err != nil {
			return "", err
		}
		for i, st := range cal {
			q, err := st.Inline(vars)
			if err != nil {
				return "", fmt.Errorf("pushdown render: calibration: %w", err)
			}
			comment := ""
			if i == 0 {
				comment = "Calibration (match.calibrate): the run's table, computed as enrich.Calibrate computes it, from the\n" +
					"masked outcomes of the window's id-linked calls; the MERGE reads it."
			}
			stmt(comment, q)
		}
	}

	merge, err := Build(cfg, w, run)
	if err != nil {
		return "", err
	}
	merge.SQL = strings.TrimPrefix(merge.SQL, header(w, run))
	q, err := merge.Inline(vars)
	if err != nil {
		return "", fmt.Errorf("pushdown render: attribution: %w", err)
	}
	stmt("Attribute the window and replace its rows in attribution (the pushdown MERGE).", q)

	cov := Statement{SQL: databrickssink.CoverageStatement(cfg.Target.Table("coverage"), cfg.Target.Table("attribution"))}
	if q, err = cov.Inline(vars); err != nil {
		return "", fmt.Errorf("pushdown render: coverage: %w", err)
	}
	stmt("Recompute coverage for the replaced dates.", q)

	// The run record and the batch's reconciliation (batch.Report.Run and
	// Reconciled): the window's summary against what this run wrote, counted
	// as dbxrun.Pushdown counts it, per method. Pushdown defines duplicates as
	// what is left, so invocations and tokens are the checks.
	summary, err := sum.Inline(vars)
	if err != nil {
		return "", fmt.Errorf("pushdown render: run record: %w", err)
	}
	str := func(e string) string { return "CAST(" + e + " AS STRING)" }
	ok := "i.invocations = o.attributed + o.unattributed AND i.total_tokens_in = o.tokens"
	source := `SELECT ` + ref(varRunID) + ` AS run_id, ` + job + ` AS job, ` + ref(varNow) + ` AS started_at, current_timestamp() AS finished_at,
    ` + ref(varCheckpoint) + ` - ` + interval(opt.Lookback) + ` AS window_from, ` + ref(varWindowTo) + ` AS window_to,
    i.rows_read, CAST(0 AS BIGINT) AS outside_window, i.rows_read - i.dead_lettered - i.invocations AS duplicates, i.dead_lettered,
    o.attributed, o.unattributed, i.input_tokens_in, i.total_tokens_in, o.tokens AS total_tokens_out,
    CASE WHEN ` + ok + ` THEN '` + schemas.RunOK + `' ELSE '` + schemas.RunFailed + `' END AS status,
    CASE WHEN ` + ok + ` THEN '' ELSE concat('run ', ` + ref(varRunID) + `, ' does not reconcile: NOT RECONCILED: usage rows ', ` + str("i.rows_read") + `,
      ' = invocations ', ` + str("i.invocations") + `, ' (attributed ', ` + str("o.attributed") + `, ' + unattributed ', ` + str("o.unattributed") + `,
      ') + duplicates ', ` + str("i.rows_read - i.dead_lettered - i.invocations") + `, ' + dead-lettered ', ` + str("i.dead_lettered") + `,
      ' + outside window 0; tokens in ', ` + str("i.total_tokens_in") + `, ' = tokens out ', ` + str("o.tokens") + `) END AS error,
    CAST(0 AS BIGINT) AS stale, CAST(0 AS BIGINT) AS stale_invocations
  FROM (
` + strings.TrimSpace(summary) + `
  ) i
  CROSS JOIN (
    SELECT
      CAST(coalesce(sum(CASE WHEN match_method <> '` + schemas.MethodUnattributed + `' THEN invocations END), 0) AS BIGINT) AS attributed,
      CAST(coalesce(sum(CASE WHEN match_method = '` + schemas.MethodUnattributed + `' THEN invocations END), 0) AS BIGINT) AS unattributed,
      CAST(coalesce(sum(tokens), 0) AS BIGINT) AS tokens
    FROM (
      SELECT match_method, count(DISTINCT invocation_id) AS invocations, coalesce(sum(total_tokens), 0) AS tokens
      FROM ` + cfg.Target.Table("attribution") + `
      WHERE run_id = ` + ref(varRunID) + ` AND event_date BETWEEN ` + ref(varDateFrom) + ` AND ` + ref(varDateTo) + `
      GROUP BY match_method
    ) m
  ) o`
	stmt(RecordComment, databrickssink.RunStatement(cfg.Target.Table("runs"), source))
	stmt("Fail here when the run did not reconcile, before the checkpoint moves.",
		`SELECT CASE WHEN r.status <> '`+schemas.RunOK+`' THEN raise_error(concat('obolus: ', r.error, '. The checkpoint stays; the next run covers the window again.'))
  ELSE 'reconciled' END AS reconciliation
FROM `+cfg.Target.Table("runs")+` r
WHERE r.run_id = `+ref(varRunID))

	cp := Statement{SQL: databrickssink.CheckpointStatement(checkpoints),
		Args: []any{databricks.Parameter{Name: "job", Value: opt.Job}}}
	if q, err = cp.Inline(map[string]string{"window_end": ref(varWindowTo), "updated_at": "current_timestamp()"}); err != nil {
		return "", fmt.Errorf("pushdown render: checkpoint: %w", err)
	}
	stmt("Advance the checkpoint to the window's end.", q)
	return b.String(), nil
}

// interval is the SQL for d, split into whole seconds and microseconds as
// the generators split bound durations (DuckDB multiplies an interval by a
// 32-bit integer only).
func interval(d time.Duration) string {
	return fmt.Sprintf("(%d * INTERVAL '1' SECOND + %d * INTERVAL '0.000001' SECOND)", int64(d/time.Second), (d % time.Second).Microseconds())
}
