package schemas

import "strings"

// CalibrationQuery reads the calibration rows of run runID from table, or,
// when runID is "", of the latest run (the greatest run id: ids start with
// their time). It returns the query and its arguments (? markers).
func CalibrationQuery(table, runID string) (string, []any) {
	run, args := "?", []any{runID}
	if runID == "" {
		run, args = "(SELECT max(run_id) FROM "+table+")", nil
	}
	return "SELECT " + strings.Join(CalibrationColumns(), ", ") + " FROM " + table + " WHERE run_id = " + run +
		" ORDER BY service_principal, method, candidates, rule_confidence DESC", args
}
