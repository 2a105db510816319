package pushdown

import "strings"

// The parts of a W3C traceparent value: version "-" trace-id "-" parent-id
// "-" flags, with more fields allowed after a version other than 00.
const traceparentPattern = `^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$`

// NormalizeTraceID is the SQL for enrich.NormalizeTraceID applied to the
// string expression v: a traceparent value yields its trace id, "tr-<hex>"
// and "trace:/<location>/<hex>" yield the hex, a bare 32-hex id itself (all
// lower-cased, all-zero ids excepted); anything else comes back trimmed and
// lower-cased. NULL stays NULL.
//
// Unlike Go's strings.TrimSpace, SQL trim removes spaces only: an id padded
// with tabs or newlines compares differently in pull and pushdown mode.
func NormalizeTraceID(v string) string {
	s := "lower(trim(" + v + "))"
	tp := func(group string) string {
		return "regexp_extract(" + s + ", '" + traceparentPattern + "', " + group + ")"
	}
	stripped := "CASE WHEN trim(" + v + ") LIKE 'tr-%' THEN substr(trim(" + v + "), 4)" +
		" WHEN trim(" + v + ") LIKE 'trace:/%' THEN regexp_extract(trim(" + v + "), '([^/]*)$', 1)" +
		" ELSE trim(" + v + ") END"
	hex32 := "regexp_extract(lower(" + stripped + "), '^[0-9a-f]{32}$', 0)"
	zeros := strings.Repeat("0", 32)
	return "CASE" +
		"\n      WHEN " + tp("2") + " NOT IN ('', '" + zeros + "')" +
		"\n        AND " + tp("3") + " <> '" + strings.Repeat("0", 16) + "'" +
		"\n        AND " + tp("1") + " <> 'ff'" +
		"\n        AND (" + tp("1") + " <> '00' OR length(" + s + ") = 55)" +
		"\n        THEN " + tp("2") +
		"\n      WHEN " + hex32 + " NOT IN ('', '" + zeros + "') THEN " + hex32 +
		"\n      ELSE " + s +
		"\n    END"
}
