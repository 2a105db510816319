// Package enrich attributes gateway invocations to end users: the matching
// engine, the price list and the org directory. It knows neither Kafka nor SQL.
package enrich
