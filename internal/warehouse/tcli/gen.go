// Package tcli holds the Go bindings generated from
// ../thrift/TCLIService.thrift (HiveServer2 TCLIService plus Databricks extensions).
package tcli

//go:generate sh ../thrift/generate.sh
