package pushdown

import "strings"

// traceKeyCTE writes a CTE named name over the rows of from (a CTE or
// table), adding the column trace_key: enrich.NormalizeTraceID of the string
// column col. A W3C traceparent value yields its trace id; "tr-<hex>" and
// "trace:/<location>/<hex>" yield the hex; a bare 32-hex id itself (all
// lower-cased, all-zero ids excepted); anything else comes back trimmed and
// lower-cased. NULL stays NULL.
//
// Unlike Go's strings.TrimSpace, SQL trim removes spaces only: an id padded
// with tabs or newlines normalises differently in pull and pushdown mode.
func traceKeyCTE(name, from, col string) string {
	zeros32, zeros16 := strings.Repeat("0", 32), strings.Repeat("0", 16)
	return name + ` AS (
  -- tp: the value if it is a traceparent (vv-<trace 32>-<parent 16>-ff[-...]);
  -- hex: the value without a tr- or trace:/<location>/ prefix, if 32 hex digits.
  SELECT x.*,
    CASE
      WHEN x.tp <> '' AND substr(x.tp, 4, 32) <> '` + zeros32 + `' AND substr(x.tp, 37, 16) <> '` + zeros16 + `'
        AND substr(x.tp, 1, 2) <> 'ff' AND (substr(x.tp, 1, 2) <> '00' OR length(x.tp) = 55)
        THEN substr(x.tp, 4, 32)
      WHEN x.hex NOT IN ('', '` + zeros32 + `') THEN x.hex
      ELSE x.s
    END AS trace_key
  FROM (
    SELECT y.*,
      regexp_extract(y.s, '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-.*)?$', 0) AS tp,
      regexp_extract(lower(CASE
        WHEN lower(trim(y.` + col + `)) LIKE 'tr-%' THEN substr(trim(y.` + col + `), 4)
        WHEN lower(trim(y.` + col + `)) LIKE 'trace:/%' THEN regexp_extract(trim(y.` + col + `), '([^/]*)$', 1)
        ELSE trim(y.` + col + `)
      END), '^[0-9a-f]{32}$', 0) AS hex
    FROM (SELECT z.*, lower(trim(z.` + col + `)) AS s FROM ` + from + ` z) y
  ) x
),
`
}
