// Package telemetry sets up obolus's own observability: structured logs
// (log/slog) and OpenTelemetry metrics and traces of the pipeline.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/push"
	"github.com/prometheus/common/expfmt"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
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
	// Prometheus adds a reader that Telemetry.Metrics serves in the
	// Prometheus text format, whatever Kind is: long-running commands
	// (stream, dev, warehouse serve) mount it at /metrics on their HTTP server.
	Prometheus bool
	// MetricsFile and Pushgateway hand a short job's figures (obolus batch)
	// to Prometheus, which cannot scrape a process that is gone: at Shutdown
	// every obolus instrument is written, in the Prometheus text format, to
	// MetricsFile (atomically, for node_exporter's textfile collector)
	// and/or pushed to the Pushgateway at that URL, under job "obolus".
	MetricsFile, Pushgateway string
}

// Telemetry is what Setup installed: the meter provider every instrument
// records into, and the handler serving it to Prometheus.
type Telemetry struct {
	// MeterProvider is the provider Setup built (the global one too);
	// a no-op provider when nothing reads the metrics.
	MeterProvider metric.MeterProvider
	// Metrics serves every instrument of MeterProvider, plus the process's
	// and the Go runtime's figures, in the Prometheus exposition format;
	// nil unless Exporter.Prometheus.
	Metrics  http.Handler
	shutdown func(context.Context) error
	// final gathers obolus's instruments for MetricsFile and Pushgateway.
	final                    prometheus.Gatherer
	metricsFile, pushgateway string
}

// Meter is the named meter of the provider.
func (t *Telemetry) Meter(name string) metric.Meter { return t.MeterProvider.Meter(name) }

// Shutdown hands the figures to MetricsFile and Pushgateway, then flushes
// and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	var ferr, perr error
	if t.metricsFile != "" {
		ferr = writeMetricsFile(t.final, t.metricsFile)
	}
	if t.pushgateway != "" {
		if perr = push.New(t.pushgateway, "obolus").Gatherer(t.final).PushContext(ctx); perr != nil {
			perr = fmt.Errorf("telemetry.pushgateway %s: %w", t.pushgateway, perr)
		}
	}
	return errors.Join(ferr, perr, t.shutdown(ctx))
}

// writeMetricsFile writes what g gathers to path in the Prometheus text
// format, through a temporary file renamed into place, so that a collector
// never reads half a file.
func writeMetricsFile(g prometheus.Gatherer, path string) error {
	mfs, err := g.Gather()
	if err != nil {
		return fmt.Errorf("telemetry.metrics_file: gather: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("telemetry.metrics_file: %w", err)
	}
	defer os.Remove(tmp.Name())
	enc := expfmt.NewEncoder(tmp, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err = enc.Encode(mf); err != nil {
			break
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("telemetry.metrics_file %s: %w", path, err)
	}
	return nil
}

// Setup installs global meter and tracer providers for the configured
// exporter and returns them with a function that flushes and stops them.
// Exporter "none" without Prometheus installs nothing: the OpenTelemetry
// API then records nothing, at no cost.
func Setup(ctx context.Context, c Exporter, service, version string, stdout io.Writer) (*Telemetry, error) {
	if (c.Kind == "none" || c.Kind == "") && !c.Prometheus && c.MetricsFile == "" && c.Pushgateway == "" {
		return &Telemetry{MeterProvider: noop.NewMeterProvider()}, nil
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(service), semconv.ServiceVersion(version)))
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	var mexp sdkmetric.Exporter
	var texp sdktrace.SpanExporter
	switch c.Kind {
	case "none", "":
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
	t := &Telemetry{}
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	if mexp != nil {
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, sdkmetric.WithInterval(15*time.Second))))
	}
	if c.Prometheus {
		// A registry of our own, not client_golang's global default: two
		// Setups in one process (tests) must not collide on registration.
		reg := prometheus.NewRegistry()
		if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
			return nil, fmt.Errorf("telemetry prometheus process collector: %w", err)
		}
		if err := reg.Register(collectors.NewGoCollector()); err != nil {
			return nil, fmt.Errorf("telemetry prometheus go collector: %w", err)
		}
		// Without scope labels: every obolus instrument's name already says
		// which part of obolus records it.
		pexp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
		if err != nil {
			return nil, fmt.Errorf("telemetry prometheus exporter: %w", err)
		}
		mopts = append(mopts, sdkmetric.WithReader(pexp))
		t.Metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: promLog{}, ErrorHandling: promhttp.ContinueOnError})
	}
	if c.MetricsFile != "" || c.Pushgateway != "" {
		// Only obolus's instruments: process_* and go_* of a process that is
		// about to exit would collide with the collector's own.
		reg := prometheus.NewRegistry()
		fexp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
		if err != nil {
			return nil, fmt.Errorf("telemetry metrics file exporter: %w", err)
		}
		mopts = append(mopts, sdkmetric.WithReader(fexp))
		t.final, t.metricsFile, t.pushgateway = reg, c.MetricsFile, c.Pushgateway
	}
	mp := sdkmetric.NewMeterProvider(mopts...)
	t.MeterProvider = mp
	otel.SetMeterProvider(mp)
	var tp *sdktrace.TracerProvider
	if texp != nil {
		tp = sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(texp))
		otel.SetTracerProvider(tp)
	}
	t.shutdown = func(ctx context.Context) error {
		var terr error
		if tp != nil {
			terr = tp.Shutdown(ctx)
		}
		return errors.Join(terr, mp.Shutdown(ctx))
	}
	return t, nil
}

// promLog sends the Prometheus handler's collection errors to the process log.
type promLog struct{}

func (promLog) Println(v ...any) { slog.Warn("prometheus /metrics", "err", fmt.Sprint(v...)) }
