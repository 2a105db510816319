// Package telemetry sets up obolus's own observability: structured logs
// (log/slog) and OpenTelemetry metrics and traces of the pipeline.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// NewLogger returns the process logger. Secrets never reach it: values that
// look like credentials are redacted by attribute name as a last line of defence.
// level is debug, info, warn or error; format text or json.
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(strings.ToUpper(level)))
	opts := &slog.HandlerOptions{Level: l, ReplaceAttr: redact}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

var secretWords = []string{"token", "secret", "password", "authorization", "dsn", "key"}

func redact(_ []string, a slog.Attr) slog.Attr {
	k := strings.ToLower(a.Key)
	for _, w := range secretWords {
		if strings.Contains(k, w) && a.Value.Kind() == slog.KindString && a.Value.String() != "" {
			return slog.String(a.Key, "[REDACTED]")
		}
	}
	return a
}

// Exporter says where metrics and traces go.
type Exporter struct {
	// Kind is none, stdout or otlp.
	Kind string
	// Endpoint is the OTLP/HTTP endpoint (host:port) for otlp.
	Endpoint string
	Insecure bool
}

// Setup installs global meter and tracer providers for the configured
// exporter and returns a function that flushes and stops them. Exporter
// "none" installs nothing: the OpenTelemetry API then records nothing, at no cost.
func Setup(ctx context.Context, c Exporter, service, version string, stdout io.Writer) (func(context.Context) error, error) {
	if c.Kind == "none" || c.Kind == "" {
		return func(context.Context) error { return nil }, nil
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(service), semconv.ServiceVersion(version)))
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	var mexp sdkmetric.Exporter
	var texp sdktrace.SpanExporter
	switch c.Kind {
	case "stdout":
		if mexp, err = stdoutmetric.New(stdoutmetric.WithWriter(stdout)); err != nil {
			return nil, fmt.Errorf("telemetry stdout metrics: %w", err)
		}
		if texp, err = stdouttrace.New(stdouttrace.WithWriter(stdout)); err != nil {
			return nil, fmt.Errorf("telemetry stdout traces: %w", err)
		}
	case "otlp":
		mopts := []otlpmetrichttp.Option{otlpmetrichttp.WithEndpoint(c.Endpoint)}
		topts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(c.Endpoint)}
		if c.Insecure {
			mopts = append(mopts, otlpmetrichttp.WithInsecure())
			topts = append(topts, otlptracehttp.WithInsecure())
		}
		if mexp, err = otlpmetrichttp.New(ctx, mopts...); err != nil {
			return nil, fmt.Errorf("telemetry otlp metrics to %s: %w", c.Endpoint, err)
		}
		if texp, err = otlptracehttp.New(ctx, topts...); err != nil {
			return nil, fmt.Errorf("telemetry otlp traces to %s: %w", c.Endpoint, err)
		}
	default:
		return nil, fmt.Errorf("telemetry.exporter: %q: use none, stdout or otlp", c.Kind)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, sdkmetric.WithInterval(15*time.Second))))
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(texp))
	otel.SetMeterProvider(mp)
	otel.SetTracerProvider(tp)
	return func(ctx context.Context) error {
		return errors.Join(tp.Shutdown(ctx), mp.Shutdown(ctx))
	}, nil
}
