package pushdown

import (
	"fmt"
	"strconv"
	"strings"

	databricks "github.com/databricks/databricks-sql-go"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/schemas"
)

// CalibrationInsert returns the statements that compute run runID's
// calibration table in the warehouse from the counts of CalibrationStats,
// exactly as enrich.Calibrate computes it in Go, and write it (replacing
// rows of the run, as the store's WriteCalibration does): for a job script,
// which has no Go to run. Exactly means the same double operations in the
// same order, so the confidences are bit-identical: the rule's confidence
// of a bucket as enrich.loneConfidence and maskedKey derive it (the same
// expression the attribution statement gives time-window rows, which the
// calibration map joins on), presence as enrich.Presence, and each smoothing
// step as enrich's smooth: (correct + 20 × prior) / (calls + 20).
// Pushdown has no ambiguity: likely, so likely codes do not occur.
func CalibrationInsert(cfg Config, w Windows, runID string) ([]Statement, error) {
	stats, err := CalibrationStats(cfg, w)
	if err != nil {
		return nil, err
	}
	return CalibrationFromStats(cfg.Target.Table("calibration"), stats, runID), nil
}

// CalibrationFromStats is CalibrationInsert for the counts stats returns
// (rows kind, requester, code, calls, correct, as CalibrationStats gives
// them), written to table.
func CalibrationFromStats(table string, stats Statement, runID string) []Statement {
	p := &params{args: append([]any(nil), stats.Args...), seen: map[string]bool{}}
	for _, a := range stats.Args {
		if n := paramName(a); n != "" {
			p.seen[n] = true
		}
	}
	run := p.bind("run_id", runID)
	prior := strconv.FormatFloat(enrich.CalibrationPrior, 'e', -1, 64)
	smooth := func(correct, calls, rule string) string {
		return "(CAST(" + correct + " AS DOUBLE) + " + prior + " * " + rule + ") / (CAST(" + calls + " AS DOUBLE) + " + prior + ")"
	}
	// A masked code is count×1000 + edge×100 + method×10 (schemas.MaskedCode
	// with its correct digit zero); integer parts are taken without integer
	// division, which the two dialects spell differently.
	digits := "CAST((code - code % 1000) / 1000 AS BIGINT) AS cnt, CAST((code % 1000 - code % 100) / 100 AS BIGINT) AS edge,\n" +
		"      CAST((code % 100 - code % 10) / 10 AS BIGINT) AS digit"
	lone := windowBaseConfidence + " / CAST(cnt AS DOUBLE)"
	insert := `INSERT INTO ` + table + ` (` + strings.Join(schemas.CalibrationColumns(), ", ") + `)
SELECT ` + run + `, service_principal, method, CAST(candidates AS INT), rule_confidence, calls, correct, present, confidence
FROM (
  WITH stats AS (
    SELECT * FROM (
` + strings.TrimSpace(stats.SQL) + `
    ) s
  ),
  -- Each masked outcome's bucket: the method, candidates and rule confidence
  -- (enrich.maskedKey).
  masked AS (
    SELECT requester AS sp,
      CASE WHEN digit = ` + fmt.Sprint(schemas.MaskedTimeWindow) + ` THEN '` + schemas.MethodTimeWindow + `' ELSE '` + schemas.MethodTimeWindowNearest + `' END AS method,
      CASE WHEN digit = ` + fmt.Sprint(schemas.MaskedTimeWindow) + ` THEN 1 ELSE cnt END AS candidates,
      CASE WHEN digit = ` + fmt.Sprint(schemas.MaskedTimeWindow) + ` AND edge = 1 THEN ` + lone + ` * ` + skewEdgeFactor + ` ELSE ` + lone + ` END AS rule,
      calls, correct
    FROM (
      SELECT requester, ` + digits + `, calls, correct
      FROM stats WHERE kind = 'm'
    ) c
    WHERE cnt > 0 AND digit IN (` + fmt.Sprint(schemas.MaskedTimeWindow) + `, ` + fmt.Sprint(schemas.MaskedNearest) + `)
  ),
  buckets AS (
    SELECT sp, method, candidates, rule, CAST(sum(calls) AS BIGINT) AS calls, CAST(sum(correct) AS BIGINT) AS correct
    FROM masked GROUP BY sp, method, candidates, rule
  ),
  pooled AS (
    SELECT method, candidates, rule, CAST(sum(calls) AS BIGINT) AS calls, CAST(sum(correct) AS BIGINT) AS correct
    FROM masked GROUP BY method, candidates, rule
  ),
  -- enrich.Presence: (linked + 1) / (linked + not_found + 1).
  presence AS (
    SELECT requester AS sp, calls AS linked, correct AS not_found,
      (CAST(calls AS DOUBLE) + 1e0) / (CAST(calls + correct AS DOUBLE) + 1e0) AS present
    FROM stats WHERE kind = 'p'
  )
  SELECT sp AS service_principal, '' AS method, 0 AS candidates, 0e0 AS rule_confidence,
    linked + not_found AS calls, linked AS correct, present, present AS confidence
  FROM presence
  UNION ALL
  SELECT '', method, candidates, rule, calls, correct, 1e0, ` + smooth("correct", "calls", "rule") + `
  FROM pooled
  UNION ALL
  SELECT b.sp, b.method, b.candidates, b.rule, b.calls, b.correct, coalesce(pr.present, 1e0),
    ` + smooth("b.correct", "b.calls", "("+smooth("p.correct", "p.calls", "b.rule")+")") + ` * coalesce(pr.present, 1e0)
  FROM buckets b
  JOIN pooled p ON p.method = b.method AND p.candidates = b.candidates AND p.rule = b.rule
  LEFT JOIN presence pr ON pr.sp = b.sp
) calibrated`
	return []Statement{
		{SQL: "DELETE FROM " + table + " WHERE run_id = :run_id", Args: p.args[len(p.args)-1:]},
		{SQL: insert, Args: p.args},
	}
}

// paramName is the name of a bound named parameter, or "".
func paramName(a any) string {
	if p, ok := a.(databricks.Parameter); ok {
		return p.Name
	}
	return ""
}
