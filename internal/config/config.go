// Package config loads obolus's configuration: a YAML file, overridden by
// OBOLUS_* environment variables and command-line flags, validated at start.
package config

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/ingest"
	"github.com/obolus/obolus/schemas"
)

// Source kinds.
const (
	KindUsage       = "usage"
	KindLegacyUsage = "legacy_usage"
	KindPayload     = "payload"
	KindTrace       = "trace"
	KindOTelSpans   = "otel_spans"
	// KindServedEntities is system.serving.served_entities: what legacy
	// usage rows' served_entity_id served (their model and endpoint).
	KindServedEntities = "served_entities"
)

// Source is one input: files (path) or a table of the embedded store (table).
type Source struct {
	Kind             string `mapstructure:"kind"`
	Path             string `mapstructure:"path"`
	Table            string `mapstructure:"table"`
	Format           string `mapstructure:"format"`
	AgentEndpoint    string `mapstructure:"agent_endpoint"`
	ServicePrincipal string `mapstructure:"service_principal"`
}

// IsAgent reports whether the source holds agent requests rather than usage.
func (s Source) IsAgent() bool {
	return s.Kind == KindPayload || s.Kind == KindTrace || s.Kind == KindOTelSpans
}

// IsServed reports whether the source holds served entities, which are
// read whole by every run rather than by window.
func (s Source) IsServed() bool { return s.Kind == KindServedEntities }

// OTel says which attributes of OpenTelemetry span rows (otel_spans sources,
// databricks.otel_spans tables) name what; see schemas.SpanKeys. Each list is
// a precedence list: the first attribute with a value wins.
type OTel struct {
	UserAttributes      []string `mapstructure:"user_attributes"`
	SessionAttributes   []string `mapstructure:"session_attributes"`
	RequestIDAttributes []string `mapstructure:"request_id_attributes"`
	// ServicePrincipalAttribute is the resource attribute naming the
	// service principal, read when a source configures none.
	ServicePrincipalAttribute string `mapstructure:"service_principal_attribute"`
	// AgentEndpointAttribute is the resource attribute naming the agent,
	// read when a source configures no agent_endpoint.
	AgentEndpointAttribute string `mapstructure:"agent_endpoint_attribute"`
	// GatewayLinkAttributes name a usage row on an AI Gateway span of the
	// unified trace table; GatewayLinkColumn is the usage column they hold
	// (request_id or invocation_id; empty: no linking). Neither is confirmed
	// by Databricks: see docs/sources.md.
	GatewayLinkAttributes []string `mapstructure:"gateway_link_attributes"`
	GatewayLinkColumn     string   `mapstructure:"gateway_link_column"`
}

// SpanKeys converts the section for the readers.
func (o OTel) SpanKeys() schemas.SpanKeys {
	return schemas.SpanKeys{User: o.UserAttributes, Session: o.SessionAttributes, RequestID: o.RequestIDAttributes,
		ServicePrincipal: o.ServicePrincipalAttribute, AgentEndpoint: o.AgentEndpointAttribute, GatewayLink: o.GatewayLinkAttributes}
}

// Validate reports every problem of the otel section, each naming its key.
func (o OTel) Validate() []error {
	var errs []error
	for _, l := range []struct {
		key  string
		keys []string
	}{{"user_attributes", o.UserAttributes}, {"session_attributes", o.SessionAttributes}, {"request_id_attributes", o.RequestIDAttributes},
		{"gateway_link_attributes", o.GatewayLinkAttributes}} {
		for i, k := range l.keys {
			if strings.TrimSpace(k) == "" || strings.ContainsAny(k, "\x00\n") {
				errs = append(errs, fmt.Errorf("otel.%s[%d]: %q is not an attribute key; remove it or name an attribute such as enduser.id", l.key, i, k))
			}
		}
	}
	if len(o.UserAttributes) == 0 {
		errs = append(errs, fmt.Errorf("otel.user_attributes: empty; list the span attributes that name the end user, e.g. [%s]", strings.Join(schemas.DefaultSpanKeys.User, ", ")))
	}
	return errs
}

// Store configures the embedded DuckDB store.
type Store struct {
	DuckDB string `mapstructure:"duckdb"`
	// MemoryLimit caps DuckDB's memory (e.g. 256MiB); beyond it DuckDB
	// spills to <duckdb>.tmp. "0" leaves DuckDB's default, 80% of RAM.
	MemoryLimit string `mapstructure:"memory_limit"`
}

// Rules switches match rules on and off.
type Rules struct {
	TagUser    bool `mapstructure:"tag_user"`
	TraceID    bool `mapstructure:"trace_id"`
	RequestID  bool `mapstructure:"request_id"`
	TimeWindow bool `mapstructure:"time_window"`
}

// Match configures the attribution engine; see enrich.MatchConfig.
type Match struct {
	UserTagKeys         []string      `mapstructure:"user_tag_keys"`
	TraceTagKeys        []string      `mapstructure:"trace_tag_keys"`
	RequestTagKeys      []string      `mapstructure:"request_tag_keys"`
	Rules               Rules         `mapstructure:"rules"`
	Skew                time.Duration `mapstructure:"skew"`
	CrowdMargin         time.Duration `mapstructure:"crowd_margin"`
	Ambiguity           string        `mapstructure:"ambiguity"`
	LikelihoodRatio     float64       `mapstructure:"likelihood_ratio"`
	MaxSplitUsers       int           `mapstructure:"max_split_users"`
	UntrustedIDFallback bool          `mapstructure:"untrusted_id_fallback"`
	ExactTagKeys        bool          `mapstructure:"exact_tag_keys"`
	Calibrate           bool          `mapstructure:"calibrate"`
	MinConfidence       float64       `mapstructure:"min_confidence"`
	// MaxRequestDuration dead-letters agent requests claiming to last longer.
	MaxRequestDuration time.Duration `mapstructure:"max_request_duration"`
}

// Limits bounds what an input row may claim; see ingest.Limits.
type Limits struct {
	MaxTokens int64 `mapstructure:"max_tokens"`
}

// Batch configures `obolus batch`.
type Batch struct {
	// Job names the checkpoint, so several schedules can share a store.
	Job string `mapstructure:"job"`
	// Lookback re-processes this much usage before the window, so rows left
	// unattributed because their agent log was late get attributed once it lands.
	Lookback time.Duration `mapstructure:"lookback"`
	// AgentMargin reads agent requests that started this long before the
	// usage window: a long agent request makes gateway calls long after it starts.
	AgentMargin time.Duration `mapstructure:"agent_margin"`
	// ExportDir, when set, receives Parquet copies of the attribution and
	// coverage tables after each run.
	ExportDir string `mapstructure:"export_dir"`
	// PersistAllocation, after a successful run, allocates the bill of each
	// UTC calendar month the run rewrote (its window widened by the
	// lookback) and writes it into cost_allocation, for the months that
	// have billing records; as obolus report chargeback --persist does.
	PersistAllocation bool `mapstructure:"persist_allocation"`
	// MemoryLimit is the Go heap's soft limit during a run (e.g. 512MiB):
	// the garbage collector works harder as the heap nears it. "0" sets
	// none; the GOMEMLIMIT environment variable, when set, wins.
	MemoryLimit string `mapstructure:"memory_limit"`
}

// Log configures structured logging.
type Log struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// Telemetry configures OpenTelemetry metrics and traces of the pipeline itself.
type Telemetry struct {
	// Exporter is none, stdout or otlp.
	Exporter string `mapstructure:"exporter"`
	// Endpoint is the OTLP/HTTP endpoint (host:port) for exporter otlp.
	Endpoint string `mapstructure:"endpoint"`
	Insecure bool   `mapstructure:"insecure"`
	// MetricsFile and Pushgateway receive a command's figures when it ends
	// (obolus batch: the run's), for Prometheus, which cannot scrape a job
	// that has exited: a file for node_exporter's textfile collector, and
	// a Pushgateway URL. Empty: neither.
	MetricsFile string `mapstructure:"metrics_file"`
	Pushgateway string `mapstructure:"pushgateway"`
}

// Config is the whole configuration.
type Config struct {
	Store      Store      `mapstructure:"store"`
	Sources    []Source   `mapstructure:"sources"`
	Prices     string     `mapstructure:"prices"`
	Org        string     `mapstructure:"org"`
	Match      Match      `mapstructure:"match"`
	Limits     Limits     `mapstructure:"limits"`
	Batch      Batch      `mapstructure:"batch"`
	Log        Log        `mapstructure:"log"`
	Telemetry  Telemetry  `mapstructure:"telemetry"`
	Databricks Databricks `mapstructure:"databricks"`
	Stream     Stream     `mapstructure:"stream"`
	OTel       OTel       `mapstructure:"otel"`
	Budgets    Budgets    `mapstructure:"budgets"`

	// File is the configuration file read, if any; relative paths in it are
	// resolved against its directory.
	File string `mapstructure:"-"`
}

// Defaults puts every key's default into v; deploy/obolus.example.yaml
// documents the same values.
func Defaults(v *viper.Viper) {
	m := enrich.DefaultMatchConfig()
	v.SetDefault("store.duckdb", "obolus.duckdb")
	v.SetDefault("store.memory_limit", "256MiB")
	v.SetDefault("sources", []map[string]any{})
	v.SetDefault("prices", "")
	v.SetDefault("org", "")
	v.SetDefault("match.user_tag_keys", m.UserTagKeys)
	v.SetDefault("match.trace_tag_keys", m.TraceTagKeys)
	v.SetDefault("match.request_tag_keys", m.RequestTagKeys)
	v.SetDefault("match.rules.tag_user", m.TagUser)
	v.SetDefault("match.rules.trace_id", m.TraceID)
	v.SetDefault("match.rules.request_id", m.RequestID)
	v.SetDefault("match.rules.time_window", m.TimeWindow)
	v.SetDefault("match.skew", m.Skew)
	v.SetDefault("match.crowd_margin", m.CrowdMargin)
	v.SetDefault("match.ambiguity", m.Ambiguity)
	v.SetDefault("match.likelihood_ratio", m.LikelihoodRatio)
	v.SetDefault("match.max_split_users", m.MaxSplitUsers)
	v.SetDefault("match.untrusted_id_fallback", m.UntrustedIDFallback)
	v.SetDefault("match.exact_tag_keys", m.ExactTagKeys)
	v.SetDefault("match.calibrate", m.Calibrate)
	v.SetDefault("match.min_confidence", m.MinConfidence)
	v.SetDefault("match.max_request_duration", ingest.DefaultLimits.MaxRequestDuration)
	v.SetDefault("limits.max_tokens", ingest.DefaultLimits.MaxTokens)
	v.SetDefault("batch.job", "default")
	v.SetDefault("batch.lookback", 2*time.Hour)
	v.SetDefault("batch.agent_margin", time.Hour)
	v.SetDefault("batch.export_dir", "")
	v.SetDefault("batch.persist_allocation", false)
	v.SetDefault("batch.memory_limit", "512MiB")
	v.SetDefault("log.level", "info")
	v.SetDefault("log.format", "text")
	v.SetDefault("telemetry.exporter", "none")
	v.SetDefault("telemetry.endpoint", "localhost:4318")
	v.SetDefault("telemetry.insecure", true)
	v.SetDefault("telemetry.metrics_file", "")
	v.SetDefault("telemetry.pushgateway", "")
	v.SetDefault("otel.user_attributes", schemas.DefaultSpanKeys.User)
	v.SetDefault("otel.session_attributes", schemas.DefaultSpanKeys.Session)
	v.SetDefault("otel.request_id_attributes", schemas.DefaultSpanKeys.RequestID)
	v.SetDefault("otel.service_principal_attribute", schemas.DefaultSpanKeys.ServicePrincipal)
	v.SetDefault("otel.agent_endpoint_attribute", schemas.DefaultSpanKeys.AgentEndpoint)
	v.SetDefault("otel.gateway_link_attributes", schemas.DefaultSpanKeys.GatewayLink)
	v.SetDefault("otel.gateway_link_column", m.GatewayLinkColumn)
	DatabricksDefaults(v)
	StreamDefaults(v)
	BudgetsDefaults(v)
}

// New returns a viper instance with defaults and OBOLUS_* environment
// overrides (OBOLUS_MATCH_SKEW overrides match.skew).
func New() *viper.Viper {
	v := viper.New()
	Defaults(v)
	v.SetEnvPrefix("OBOLUS")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	return v
}

// Load reads file (if not empty) into v and returns the validated
// configuration. Unknown keys are errors: a misspelt key silently ignored is
// a setting the user believes is in force.
func Load(v *viper.Viper, file string) (*Config, error) {
	if file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("config %s: %w", file, err)
		}
	}
	var c Config
	err := v.UnmarshalExact(&c, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		durationNeedsUnit,
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
	)))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w (see deploy/obolus.example.yaml for every key)", describe(file), err)
	}
	c.File = file
	c.resolvePaths()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", describe(file), err)
	}
	return &c, nil
}

// durationNeedsUnit refuses a bare number where a duration is expected:
// mapstructure would take `skew: 300` as 300 nanoseconds.
func durationNeedsUnit(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[time.Duration]() || from == to {
		return data, nil
	}
	switch from.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		if reflect.ValueOf(data).IsZero() {
			return time.Duration(0), nil // zero is zero in any unit
		}
		return nil, fmt.Errorf("%v is a bare number; a duration needs a unit, such as %vs or %vms", data, data, data)
	}
	return data, nil
}

func describe(file string) string {
	if file == "" {
		return "(defaults and environment)"
	}
	return file
}

func (c *Config) resolvePaths() {
	if c.File == "" {
		return
	}
	dir := filepath.Dir(c.File)
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	c.Store.DuckDB = abs(c.Store.DuckDB)
	c.Prices = abs(c.Prices)
	c.Org = abs(c.Org)
	c.Telemetry.MetricsFile = abs(c.Telemetry.MetricsFile)
	c.Batch.ExportDir = abs(c.Batch.ExportDir)
	for i := range c.Sources {
		c.Sources[i].Path = abs(c.Sources[i].Path)
	}
	c.Stream.ResolvePaths(dir)
}

var identPart = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidTableName reports whether name is a table, schema.table or
// catalog.schema.table of plain identifiers.
func ValidTableName(name string) bool {
	parts := strings.Split(name, ".")
	if len(parts) > 3 {
		return false
	}
	for _, p := range parts {
		if !identPart.MatchString(p) {
			return false
		}
	}
	return true
}

// Validate reports every problem it finds, each naming its key and the fix.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if c.Store.DuckDB == "" {
		bad("store.duckdb", "empty; name the DuckDB file to write, e.g. obolus.duckdb")
	}
	for _, f := range []struct{ key, value string }{{"store.memory_limit", c.Store.MemoryLimit}, {"batch.memory_limit", c.Batch.MemoryLimit}} {
		if _, err := ParseBytes(f.value); err != nil {
			bad(f.key, "%v", err)
		}
	}
	for i, s := range c.Sources {
		key := fmt.Sprintf("sources[%d]", i)
		switch s.Kind {
		case KindUsage, KindLegacyUsage, KindServedEntities:
		case KindPayload, KindTrace:
			if s.ServicePrincipal == "" {
				bad(key+".service_principal", "empty; name the service principal (application id) the agent calls the gateway as — time-window matching needs it")
			}
		case KindOTelSpans:
			if s.ServicePrincipal == "" && c.OTel.ServicePrincipalAttribute == "" {
				bad(key+".service_principal", "empty, and so is otel.service_principal_attribute; name the service principal the agent calls the gateway as, or the resource attribute that names it")
			}
		default:
			bad(key+".kind", "%q is not a source kind; use usage, legacy_usage, payload, trace, otel_spans or served_entities", s.Kind)
		}
		switch {
		case s.Path == "" && s.Table == "":
			bad(key, "set path (files) or table (a table of the DuckDB store)")
		case s.Path != "" && s.Table != "":
			bad(key, "set path or table, not both")
		case s.Table != "" && !ValidTableName(s.Table):
			bad(key+".table", "%q is not a table name; use name, schema.name or catalog.schema.name of letters, digits and _", s.Table)
		}
		switch s.Format {
		case "", "jsonl", "csv", "parquet":
		default:
			bad(key+".format", "%q is not a format; use jsonl, csv or parquet (or leave empty to use the file extension)", s.Format)
		}
	}
	for _, f := range []struct{ key, path string }{{"prices", c.Prices}, {"org", c.Org}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			bad(f.key, "cannot read %s: %v", f.path, errors.Unwrap(err))
		}
	}
	if err := c.MatchConfig().Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Match.MaxRequestDuration <= 0 {
		bad("match.max_request_duration", "%s is not positive; use a duration such as 24h", c.Match.MaxRequestDuration)
	}
	if c.Limits.MaxTokens <= 0 {
		bad("limits.max_tokens", "%d is not positive; use a token count such as %d", c.Limits.MaxTokens, ingest.DefaultLimits.MaxTokens)
	}
	if c.Batch.Lookback < 0 {
		bad("batch.lookback", "%s is negative; use a duration such as 2h", c.Batch.Lookback)
	}
	if c.Batch.AgentMargin < 0 {
		bad("batch.agent_margin", "%s is negative; use a duration such as 1h", c.Batch.AgentMargin)
	}
	if c.Batch.Job == "" || !identPart.MatchString(strings.ReplaceAll(c.Batch.Job, "-", "_")) {
		bad("batch.job", "%q: use letters, digits, - and _", c.Batch.Job)
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q: use debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q: use text or json", c.Log.Format)
	}
	switch c.Telemetry.Exporter {
	case "none", "stdout", "otlp":
	default:
		bad("telemetry.exporter", "%q: use none, stdout or otlp", c.Telemetry.Exporter)
	}
	if p := c.Telemetry.Pushgateway; p != "" {
		if u, err := url.Parse(p); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("telemetry.pushgateway", "%q: use the Pushgateway's URL, e.g. http://pushgateway:9091", p)
		}
	}
	errs = append(errs, c.Databricks.Validate(c.OTel)...)
	errs = append(errs, c.Stream.Validate()...)
	errs = append(errs, c.OTel.Validate()...)
	errs = append(errs, c.Budgets.Validate()...)
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// IngestLimits are the bounds readers dead-letter rows beyond.
func (c *Config) IngestLimits() ingest.Limits {
	return ingest.Limits{MaxTokens: c.Limits.MaxTokens, MaxRequestDuration: c.Match.MaxRequestDuration}
}

// MatchConfig converts the match section for the engine.
func (c *Config) MatchConfig() enrich.MatchConfig {
	return enrich.MatchConfig{
		UserTagKeys:         c.Match.UserTagKeys,
		TraceTagKeys:        c.Match.TraceTagKeys,
		RequestTagKeys:      c.Match.RequestTagKeys,
		TagUser:             c.Match.Rules.TagUser,
		TraceID:             c.Match.Rules.TraceID,
		RequestID:           c.Match.Rules.RequestID,
		TimeWindow:          c.Match.Rules.TimeWindow,
		Skew:                c.Match.Skew,
		CrowdMargin:         c.Match.CrowdMargin,
		Ambiguity:           c.Match.Ambiguity,
		LikelihoodRatio:     c.Match.LikelihoodRatio,
		MaxSplitUsers:       c.Match.MaxSplitUsers,
		UntrustedIDFallback: c.Match.UntrustedIDFallback,
		ExactTagKeys:        c.Match.ExactTagKeys,
		Calibrate:           c.Match.Calibrate,
		MinConfidence:       c.Match.MinConfidence,
		GatewayLinkColumn:   c.OTel.GatewayLinkColumn,
	}
}

// sizeUnits are the units ParseBytes takes, with their sizes.
var sizeUnits = map[string]int64{
	"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
}

var sizePattern = regexp.MustCompile(`^([0-9]+)\s*([KMGT]i?B|B)?$`)

// ParseBytes reads a memory size such as 512MiB or 2GB; "0" (no unit
// needed) means no limit and comes back 0.
func ParseBytes(s string) (int64, error) {
	m := sizePattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size; use a number with a unit, e.g. 512MiB or 2GB, or 0 for no limit", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	if m[2] == "" {
		if n != 0 {
			return 0, fmt.Errorf("%q has no unit; write e.g. %dMiB, or 0 for no limit", s, n)
		}
		return 0, nil
	}
	unit := sizeUnits[m[2]]
	if n > math.MaxInt64/unit {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * unit, nil
}
