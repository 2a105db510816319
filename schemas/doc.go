// Package schemas holds obolus's canonical records — one Go type per concept —
// and the SQL DDL of every table obolus writes, one embedded file per table and dialect.
package schemas
