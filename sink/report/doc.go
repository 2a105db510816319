// Package report builds obolus's FinOps chargeback: who spent what on which
// agent and model in a period, reconciled to the Databricks bill, as Markdown, CSV, Parquet, FOCUS and HTML.
//
// Data comes through a Source (a *sql.DB and its SQL dialect), so the same
// report runs on the embedded DuckDB store and on Databricks. The money
// arithmetic lives in internal/chargeback; this package reads, groups and renders.
package report
