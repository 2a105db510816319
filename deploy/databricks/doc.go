// Package databricks holds the Databricks Asset Bundle that schedules
// obolus as a SQL job (databricks.yml), the views and dashboard it deploys,
// and the test that checks the bundle's structure. It has no Go code of its
// own; see docs/deploy.md, "Databricks job".
package databricks
