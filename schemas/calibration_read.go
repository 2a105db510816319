package schemas

import "strings"

// CalibrationSQL reads the calibration rows of one run from table: the run
// bound as the one ? marker, or, when latest, the latest run (the greatest
// run id: ids start with their time) and no marker.
func CalibrationSQL(table string, latest bool) string {
	run := "?"
	if latest {
		run = "(SELECT max(run_id) FROM " + table + ")"
	}
	return "SELECT " + strings.Join(CalibrationColumns(), ", ") + " FROM " + table + " WHERE run_id = " + run +
		" ORDER BY service_principal, method, candidates, rule_confidence DESC"
}
