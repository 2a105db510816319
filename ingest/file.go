package ingest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/obolus/obolus/schemas"
)

// Kind is what a source holds.
type Kind string

// Source kinds.
const (
	KindUsage       Kind = "usage"        // system.ai_gateway.usage rows
	KindLegacyUsage Kind = "legacy_usage" // system.serving.endpoint_usage rows
	KindPayload     Kind = "payload"      // an agent endpoint's payload (inference) table
	KindTrace       Kind = "trace"        // MLflow traces (TraceInfo rows)
	KindOTelSpans   Kind = "otel_spans"   // OpenTelemetry span rows (MLflow traces in Unity Catalog)
	// KindServedEntities is system.serving.served_entities: what legacy
	// usage rows' served_entity_id served, for their model and price.
	KindServedEntities Kind = "served_entities"
)

// Columns lists the column names the kind reads, older aliases included;
// table readers select only these.
func (k Kind) Columns() []string {
	switch k {
	case KindUsage:
		return usageFields.columns()
	case KindLegacyUsage:
		return legacyFields.columns()
	case KindPayload:
		return payloadFields.columns()
	case KindTrace:
		return traceFields.columns()
	case KindOTelSpans:
		return spanFields.columns()
	case KindServedEntities:
		return servedFields.columns()
	}
	return nil
}

// TimeColumns lists the columns the window applies to, preferred first
// (the canonical name, then its alias).
func (k Kind) TimeColumns() []string {
	switch k {
	case KindUsage:
		return []string{"event_time"}
	case KindLegacyUsage:
		return []string{"request_time"}
	case KindPayload, KindTrace:
		return []string{"request_time", "timestamp_ms"}
	case KindOTelSpans:
		return []string{"start_time_unix_nano"}
	}
	return nil
}

// EpochUnit is the unit of the kind's time column when a table holds it as
// an integer: nanoseconds for spans, milliseconds otherwise.
func (k Kind) EpochUnit() time.Duration {
	if k == KindOTelSpans {
		return time.Nanosecond
	}
	return time.Millisecond
}

// Spec says what to read and how to label it.
type Spec struct {
	Kind Kind
	// Path is a file, a directory (every data file below it, sorted), or a
	// glob. Inside directories and globs, names starting with "." or "_"
	// (Spark's _SUCCESS, Delta's _delta_log) are skipped.
	Path string
	// Format is "jsonl", "csv" or "parquet"; empty means from the extension
	// (.jsonl .ndjson .json, .csv, .parquet; a further .gz is gunzipped).
	Format string
	// AgentEndpoint is the agent endpoint payload, trace and span rows
	// belong to (traces fall back to their metadata when empty, spans to
	// their resource's SpanKeys.AgentEndpoint attribute).
	AgentEndpoint string
	// ServicePrincipal is the identity that agent calls the gateway as.
	// Span rows fall back to their resource's SpanKeys.ServicePrincipal
	// attribute when it is empty.
	ServicePrincipal string
	// Limits bound what a row may claim; a row beyond them is dead-lettered.
	// Zero fields mean DefaultLimits.
	Limits Limits
	// SpanKeys are the attributes span rows name the end user, session,
	// request id, service principal and agent with; zero means
	// schemas.DefaultSpanKeys.
	SpanKeys schemas.SpanKeys
}

// Window is the half-open time range [From, To) a run reads; a zero bound is
// unbounded.
type Window struct{ From, To time.Time }

// Contains reports whether t is inside the window.
func (w Window) Contains(t time.Time) bool {
	return (w.From.IsZero() || !t.Before(w.From)) && (w.To.IsZero() || t.Before(w.To))
}

// Emit receives what a reader produces. Usage is called for usage and
// legacy_usage sources, Agents for payload, trace and otel_spans sources, in batches of
// up to BatchSize; a batch slice belongs to the callee. Dead receives each
// row that could not be used; the callee stamps RunID and DeadLetteredAt.
// Calls are made one at a time on the goroutine that called the reader,
// while the reader decodes ahead on another goroutine; batches come in input
// order, each dead letter as soon as it is found. An error from any of them
// stops the read and is returned.
type Emit struct {
	Usage  func([]schemas.UsageEvent) error
	Agents func([]schemas.AgentRequest) error
	// Served is called for served_entities sources, which no window limits:
	// an entity stays in force after its change time.
	Served func([]schemas.ServedEntity) error
	Dead   func(schemas.DeadLetter) error
}

// BatchSize is the largest batch passed to Emit.Usage or Emit.Agents.
const BatchSize = 8192

// Stats counts what a read saw. Every row is exactly one of emitted, outside
// the window, dead or skipped: Rows == Emitted + OutsideWindow + Dead +
// Skipped. Skipped rows are well-formed rows that stand for no record: span
// rows of a trace's inner steps (KindOTelSpans), which name no end user.
type Stats struct{ Files, Rows, Emitted, OutsideWindow, Dead, Skipped int64 }

// Balanced reports whether every row is accounted for.
func (s Stats) Balanced() bool { return s.Rows == s.Emitted+s.OutsideWindow+s.Dead+s.Skipped }

// ErrNoFiles is returned when a directory or glob holds no data files.
var ErrNoFiles = errors.New("no input files")

// MaxLine is the longest JSONL line read; a longer line is dead-lettered.
const MaxLine = 16 << 20

// ReadFiles reads every file of spec, decodes each row into canonical
// records, keeps those inside w and emits them in batches. A row that cannot
// be decoded becomes a dead letter (Location "line N" for JSONL, "row N" for
// CSV and Parquet, counting data rows from 1) and reading goes on. Only I/O
// failures (a missing or unreadable file, a corrupt Parquet footer, wrapped
// with the path), cancellation and errors from emit are returned; the Stats
// returned count what was read before the failure. Emit is called on the
// caller's goroutine while decoding runs ahead on another (see Emit).
func ReadFiles(ctx context.Context, spec Spec, w Window, emit Emit) (Stats, error) {
	c, err := newCollector(ctx, spec, w, emit)
	if err != nil {
		return Stats{}, err
	}
	if spec.Format != "" && !knownFormat(spec.Format) {
		return Stats{}, fmt.Errorf("spec.Format %q is not one of jsonl, csv, parquet", spec.Format)
	}
	paths, err := resolve(spec)
	if err != nil {
		return Stats{}, err
	}
	return c.run(func() error {
		for _, path := range paths {
			if err := c.ctx.Err(); err != nil {
				return err
			}
			format, gz := formatOf(path)
			if spec.Format != "" {
				format = spec.Format
			}
			if format == "" {
				return fmt.Errorf("%s: cannot tell the format from the extension; set spec.Format", path)
			}
			c.source = path
			c.stats.Files++
			if err := readFile(c, path, format, gz); err != nil {
				return err
			}
		}
		return nil
	})
}

func readFile(c *collector, path, format string, gz bool) error {
	if format == "parquet" {
		return readParquet(c, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return err // *PathError names the path
	}
	defer f.Close()
	var r io.Reader = f
	if gz {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	switch format {
	case "jsonl":
		err = readJSONL(c, r)
	default:
		err = readCSV(c, r)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func knownFormat(f string) bool { return f == "jsonl" || f == "csv" || f == "parquet" }

// formatOf tells the format from the file name.
func formatOf(path string) (format string, gz bool) {
	name := strings.ToLower(filepath.Base(path))
	if strings.HasSuffix(name, ".gz") {
		name, gz = strings.TrimSuffix(name, ".gz"), true
	}
	switch filepath.Ext(name) {
	case ".jsonl", ".ndjson", ".json":
		return "jsonl", gz
	case ".csv":
		return "csv", gz
	case ".parquet":
		if gz {
			return "", false // Parquet compresses inside; a gzipped file cannot be read
		}
		return "parquet", false
	}
	return "", gz
}

// resolve lists the files of spec.Path, sorted.
func resolve(spec Spec) ([]string, error) {
	if spec.Path == "" {
		return nil, errors.New("spec.Path is empty")
	}
	var roots []string
	if strings.ContainsAny(spec.Path, "*?[") {
		m, err := filepath.Glob(spec.Path)
		if err != nil {
			return nil, fmt.Errorf("spec.Path %q: %w", spec.Path, err)
		}
		roots = m
	} else {
		st, err := os.Stat(spec.Path)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			return []string{spec.Path}, nil // named explicitly: read whatever it is
		}
		roots = []string{spec.Path}
	}
	wanted := func(path string) bool {
		name := filepath.Base(path)
		if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			return false
		}
		f, _ := formatOf(path)
		return f != "" && (spec.Format == "" || f == spec.Format)
	}
	var files []string
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != root && (strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_")) {
					return filepath.SkipDir
				}
				return nil
			}
			if wanted(path) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: %w", spec.Path, ErrNoFiles)
	}
	slices.Sort(files)
	return slices.Compact(files), nil
}

// errLineTooLong marks a JSONL line over MaxLine.
var errLineTooLong = &FieldError{Reason: fmt.Sprintf("line longer than %d bytes", MaxLine)}

func readJSONL(c *collector, r io.Reader) error {
	br := bufio.NewReaderSize(r, 256<<10)
	var long []byte // a line that did not fit the reader's buffer
	var lineNo int64
	for {
		line, err := br.ReadSlice('\n')
		tooLong := false
		if err == bufio.ErrBufferFull {
			long = append(long[:0], line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				if len(long)+len(line) <= MaxLine {
					long = append(long, line...)
				} else {
					tooLong = true // keep the head for the dead letter, drop the rest
				}
			}
			line = long
		}
		if err != nil && err != io.EOF {
			return err
		}
		if len(line) == 0 && err == io.EOF {
			return nil
		}
		lineNo++
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		line = bytes.TrimRight(line, "\r\n")
		if !tooLong && len(bytes.TrimSpace(line)) == 0 {
			if err == io.EOF {
				return nil
			}
			continue
		}
		if e := c.begin(); e != nil {
			return e
		}
		var e error
		if tooLong {
			e = c.dead("line", lineNo, errLineTooLong, line)
		} else {
			e = c.decoded(c.json(line), "line", lineNo, func() []byte { return line })
		}
		if e != nil {
			return e
		}
		if err == io.EOF {
			return nil
		}
	}
}
