// Package ingest reads gateway usage and agent request logs (JSONL, CSV,
// Parquet files, database rows) into canonical records, dead-lettering rows it cannot use.
package ingest
