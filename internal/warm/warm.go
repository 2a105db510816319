package warm

import (
	_ "github.com/apache/arrow-go/v18/parquet/pqarrow"
	_ "github.com/databricks/databricks-sql-go"
	_ "github.com/duckdb/duckdb-go/v2"
	_ "github.com/segmentio/kafka-go"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
	_ "github.com/twmb/franz-go/pkg/kfake"
	_ "go.opentelemetry.io/otel/sdk/metric"
)
