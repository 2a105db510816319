// Package warehouse is a local stand-in for a Databricks SQL warehouse for tests and demos:
// it speaks HiveServer2 Thrift over HTTP to the real databricks-sql-go driver and runs the SQL on DuckDB.
//
// See README.md for what is supported.
package warehouse
