package config

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/viper"

	"github.com/obolus/obolus/internal/dbsql"
)

// Databricks execution modes.
const (
	ModePull     = "pull"     // read windows through the driver, attribute in Go, write back
	ModePushdown = "pushdown" // one generated SQL statement per window runs the join in the warehouse
)

// Pull-mode staging.
const (
	StagingVolume  = "volume"
	StagingInserts = "inserts"
)

// Databricks authentication types.
const (
	AuthToken    = "token"     // personal access token
	AuthOAuthM2M = "oauth_m2m" // service principal client id and secret
)

// Environment variables the Databricks tools use for credentials; obolus reads
// them when the configuration leaves the credential empty.
const (
	EnvDatabricksToken        = dbsql.EnvToken
	EnvDatabricksClientID     = dbsql.EnvClientID
	EnvDatabricksClientSecret = dbsql.EnvClientSecret
)

// DatabricksAuth says how obolus signs in. Secrets may come from the
// configuration, from OBOLUS_DATABRICKS_AUTH_* or from the DATABRICKS_*
// variables; they never appear in logs or errors.
type DatabricksAuth struct {
	Type         string `mapstructure:"type"`
	Token        string `mapstructure:"token"`
	ClientID     string `mapstructure:"client_id"`
	ClientSecret string `mapstructure:"client_secret"`
}

// DatabricksAgentTable is one agent log table: an agent endpoint's payload
// (inference) table or an MLflow trace table.
type DatabricksAgentTable struct {
	Table            string `mapstructure:"table"`
	AgentEndpoint    string `mapstructure:"agent_endpoint"`
	ServicePrincipal string `mapstructure:"service_principal"`
	// Columns maps obolus's column names (databricks_request_id,
	// request_time, requester, ...) to the table's own, for tables whose
	// columns are named differently. Unmapped columns keep their names.
	Columns map[string]string `mapstructure:"columns"`
}

// Databricks configures the Databricks path: where the SQL warehouse is, how
// to sign in, which tables to read and where the results go.
type Databricks struct {
	// Host is the workspace host name (adb-123.4.azuredatabricks.net), or
	// http://127.0.0.1:PORT for `obolus warehouse serve`.
	Host string `mapstructure:"host"`
	Port int    `mapstructure:"port"`
	// CAFile is a PEM file of certificate authorities to trust besides the
	// system's, for a TLS-inspecting proxy or a local warehouse with its own
	// certificate. Empty trusts the system's roots only.
	CAFile string `mapstructure:"ca_file"`
	// CloudFetch lets the warehouse answer large results with links to
	// files in cloud storage, downloaded in parallel (the driver's default).
	// Turn it off where the network reaches the workspace but not its
	// storage account or bucket.
	CloudFetch bool `mapstructure:"cloud_fetch"`
	// HTTPPath is the warehouse's HTTP path; WarehouseID is a shorthand for
	// /sql/1.0/warehouses/<id>.
	HTTPPath    string         `mapstructure:"http_path"`
	WarehouseID string         `mapstructure:"warehouse_id"`
	Auth        DatabricksAuth `mapstructure:"auth"`
	// Catalog and Schema hold obolus's tables and views.
	Catalog string `mapstructure:"catalog"`
	Schema  string `mapstructure:"schema"`
	// QueryTags label every statement obolus runs (system.query.history).
	QueryTags map[string]string `mapstructure:"query_tags"`
	// Mode is pull or pushdown.
	Mode string `mapstructure:"mode"`
	// Usage and LegacyUsage are the gateway usage tables; empty skips one.
	Usage       string `mapstructure:"usage"`
	LegacyUsage string `mapstructure:"legacy_usage"`
	// ServedEntities is system.serving.served_entities, where legacy usage
	// rows get their model and endpoint name; empty leaves them unpriced.
	ServedEntities string `mapstructure:"served_entities"`
	// Payloads and Traces are the agent log tables; OTelSpans are
	// OpenTelemetry span tables (MLflow traces in Unity Catalog,
	// {prefix}_otel_spans), read with the otel section's attribute keys.
	Payloads  []DatabricksAgentTable `mapstructure:"payloads"`
	Traces    []DatabricksAgentTable `mapstructure:"traces"`
	OTelSpans []DatabricksAgentTable `mapstructure:"otel_spans"`
	// Staging is how pull mode gets its rows into the warehouse: volume
	// (upload one Parquet file per window, then MERGE from it) or inserts
	// (batched INSERTs into a staging table, then MERGE).
	Staging string `mapstructure:"staging"`
	// StagingVolume is the volume path staging uses
	// (/Volumes/<catalog>/<schema>/<volume>[/dir]); empty means the volume
	// `staging` that `obolus init` creates in catalog.schema.
	StagingVolume string `mapstructure:"staging_volume"`
	// Timeout bounds each statement; 0 leaves it to the warehouse.
	Timeout time.Duration `mapstructure:"timeout"`
	// Retries is how often a failed request (429, 503, dropped connection)
	// is retried, waiting between RetryWaitMin and RetryWaitMax (or what
	// the warehouse's Retry-After says).
	Retries      int           `mapstructure:"retries"`
	RetryWaitMin time.Duration `mapstructure:"retry_wait_min"`
	RetryWaitMax time.Duration `mapstructure:"retry_wait_max"`
	// DoctorLookback is how far back `obolus doctor` samples gateway rows.
	DoctorLookback time.Duration `mapstructure:"doctor_lookback"`
}

// DatabricksDefaults puts the databricks section's defaults into v.
func DatabricksDefaults(v *viper.Viper) {
	v.SetDefault("databricks.host", "")
	v.SetDefault("databricks.port", 443)
	v.SetDefault("databricks.ca_file", "")
	v.SetDefault("databricks.cloud_fetch", true)
	v.SetDefault("databricks.http_path", "")
	v.SetDefault("databricks.warehouse_id", "")
	v.SetDefault("databricks.auth.type", AuthToken)
	v.SetDefault("databricks.auth.token", "")
	v.SetDefault("databricks.auth.client_id", "")
	v.SetDefault("databricks.auth.client_secret", "")
	v.SetDefault("databricks.catalog", "main")
	v.SetDefault("databricks.schema", "obolus")
	v.SetDefault("databricks.query_tags", map[string]string{"app": "obolus"})
	v.SetDefault("databricks.mode", ModePull)
	v.SetDefault("databricks.usage", "system.ai_gateway.usage")
	v.SetDefault("databricks.legacy_usage", "")
	v.SetDefault("databricks.served_entities", "")
	v.SetDefault("databricks.payloads", []map[string]any{})
	v.SetDefault("databricks.traces", []map[string]any{})
	v.SetDefault("databricks.otel_spans", []map[string]any{})
	v.SetDefault("databricks.staging", StagingVolume)
	v.SetDefault("databricks.staging_volume", "")
	v.SetDefault("databricks.timeout", 30*time.Minute)
	v.SetDefault("databricks.retries", 4)
	v.SetDefault("databricks.retry_wait_min", time.Second)
	v.SetDefault("databricks.retry_wait_max", 30*time.Second)
	v.SetDefault("databricks.doctor_lookback", 24*time.Hour)
}

// Enabled reports whether a Databricks workspace is configured.
func (d Databricks) Enabled() bool { return d.Host != "" }

// Path is the warehouse HTTP path, from http_path or warehouse_id.
func (d Databricks) Path() string {
	if d.HTTPPath != "" {
		return d.HTTPPath
	}
	if d.WarehouseID != "" {
		return "/sql/1.0/warehouses/" + d.WarehouseID
	}
	return ""
}

// Volume is the staging volume path: staging_volume, or the volume
// `staging` of catalog.schema.
func (d Databricks) Volume() string {
	if d.StagingVolume != "" {
		return d.StagingVolume
	}
	return "/Volumes/" + d.Catalog + "/" + d.Schema + "/staging"
}

// Credentials returns the auth section with empty secrets filled from the
// DATABRICKS_* environment variables (lookup is os.LookupEnv in production).
func (d Databricks) Credentials(lookup func(string) (string, bool)) DatabricksAuth {
	a := d.Auth
	fill := func(dst *string, env string) {
		if *dst == "" && lookup != nil {
			if v, ok := lookup(env); ok {
				*dst = v
			}
		}
	}
	switch a.Type {
	case AuthOAuthM2M:
		fill(&a.ClientID, EnvDatabricksClientID)
		fill(&a.ClientSecret, EnvDatabricksClientSecret)
	default:
		fill(&a.Token, EnvDatabricksToken)
	}
	return a
}

var (
	// A warehouse id is hex; being strict keeps it out of URL games.
	warehouseID   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	httpPath      = regexp.MustCompile(`^/[A-Za-z0-9_./-]*$`)
	volumePath    = regexp.MustCompile(`^/Volumes/[A-Za-z_][A-Za-z0-9_]*/[A-Za-z_][A-Za-z0-9_]*/[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z0-9_.-]+)*/?$`)
	queryTagKey   = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
	hostName      = regexp.MustCompile(`^(https?://)?[A-Za-z0-9.-]+$`)
	agentColumns  = []string{"databricks_request_id", "client_request_id", "request_time", "status_code", "execution_duration_ms", "requester", "served_entity_id"}
	traceColumns  = []string{"trace_id", "client_request_id", "request_time", "execution_duration_ms", "state", "trace_metadata", "tags"}
	spanColumns   = []string{"trace_id", "span_id", "parent_span_id", "name", "kind", "start_time_unix_nano", "end_time_unix_nano", "attributes", "status", "resource"}
	validIdentity = regexp.MustCompile(`^[^\x00-\x1f]+$`)
)

// Validate reports every problem of the section, each naming its key. An
// empty host means the section is unused and only its enumerations are
// checked. otel is the otel section span tables are read with.
func (d Databricks) Validate(otel OTel) []error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("databricks.%s: %s", key, fmt.Sprintf(format, a...)))
	}
	switch d.Mode {
	case ModePull, ModePushdown:
	default:
		bad("mode", "%q: use %s or %s", d.Mode, ModePull, ModePushdown)
	}
	switch d.Staging {
	case StagingVolume, StagingInserts:
	default:
		bad("staging", "%q: use %s or %s", d.Staging, StagingVolume, StagingInserts)
	}
	switch d.Auth.Type {
	case AuthToken, AuthOAuthM2M:
	default:
		bad("auth.type", "%q: use %s or %s", d.Auth.Type, AuthToken, AuthOAuthM2M)
	}
	if d.Timeout < 0 {
		bad("timeout", "%s is negative; use a duration such as 30m, or 0 for none", d.Timeout)
	}
	if d.Retries < -1 {
		bad("retries", "%d: use -1 (never retry), 0 or more", d.Retries)
	}
	if d.RetryWaitMin < 0 || d.RetryWaitMax < d.RetryWaitMin {
		bad("retry_wait_min", "%s..%s: use 0 <= retry_wait_min <= retry_wait_max", d.RetryWaitMin, d.RetryWaitMax)
	}
	if d.DoctorLookback <= 0 {
		bad("doctor_lookback", "%s: use a positive duration such as 24h", d.DoctorLookback)
	}
	if !d.Enabled() {
		return errs
	}
	if !hostName.MatchString(d.Host) {
		bad("host", "%q is not a host name; use the workspace host (adb-123.4.azuredatabricks.net) or http://127.0.0.1:PORT for a local warehouse", d.Host)
	} else if h, ok := strings.CutPrefix(d.Host, "http://"); ok && !loopback(h) {
		// The driver would send the bearer token in cleartext.
		bad("host", "%q: plain http is only for a local warehouse on a loopback address (127.0.0.1, ::1, localhost); use https:// or the bare host name", d.Host)
	}
	if d.Port <= 0 || d.Port > 65535 {
		bad("port", "%d is not a TCP port", d.Port)
	}
	switch {
	case d.HTTPPath == "" && d.WarehouseID == "":
		bad("http_path", "empty; set http_path (/sql/1.0/warehouses/<id>, from the warehouse's connection details) or warehouse_id")
	case d.HTTPPath != "" && d.WarehouseID != "":
		bad("http_path", "set http_path or warehouse_id, not both")
	case d.WarehouseID != "" && !warehouseID.MatchString(d.WarehouseID):
		bad("warehouse_id", "%q: use the warehouse id (letters, digits, - and _)", d.WarehouseID)
	case d.HTTPPath != "" && !httpPath.MatchString(d.HTTPPath):
		bad("http_path", "%q: use a path such as /sql/1.0/warehouses/<id>", d.HTTPPath)
	}
	for _, f := range []struct{ key, v string }{{"catalog", d.Catalog}, {"schema", d.Schema}} {
		if !identPart.MatchString(f.v) {
			bad(f.key, "%q: use letters, digits and _ (not starting with a digit)", f.v)
		}
	}
	for _, k := range sortedKeys(d.QueryTags) {
		if !queryTagKey.MatchString(k) || strings.ContainsAny(d.QueryTags[k], "\x00\n") {
			bad("query_tags."+k, "use keys of letters, digits, '.', '-' and '_' and one-line values")
		}
	}
	for _, f := range []struct{ key, v string }{{"usage", d.Usage}, {"legacy_usage", d.LegacyUsage}, {"served_entities", d.ServedEntities}} {
		if f.v != "" && !ValidTableName(f.v) {
			bad(f.key, "%q is not a table name; use catalog.schema.name of letters, digits and _", f.v)
		}
	}
	if d.Usage == "" && d.LegacyUsage == "" {
		bad("usage", "empty, and so is legacy_usage; name at least one gateway usage table (default system.ai_gateway.usage)")
	}
	if d.StagingVolume != "" && !volumePath.MatchString(d.StagingVolume) {
		bad("staging_volume", "%q: use /Volumes/<catalog>/<schema>/<volume>[/dir] of letters, digits and _", d.StagingVolume)
	}
	for i, t := range d.Payloads {
		errs = append(errs, t.validate(fmt.Sprintf("databricks.payloads[%d]", i), agentColumns)...)
	}
	for i, t := range d.Traces {
		errs = append(errs, t.validate(fmt.Sprintf("databricks.traces[%d]", i), traceColumns)...)
	}
	for i, t := range d.OTelSpans {
		key := fmt.Sprintf("databricks.otel_spans[%d]", i)
		if t.ServicePrincipal == "" && otel.ServicePrincipalAttribute != "" {
			// The span's resource names it; validate the rest.
			t.ServicePrincipal = "(" + otel.ServicePrincipalAttribute + ")"
		}
		errs = append(errs, t.validate(key, spanColumns)...)
	}
	if len(d.OTelSpans) > 0 && d.Mode == ModePushdown {
		bad("otel_spans", "pushdown mode does not read span tables yet; use mode pull, or remove the span tables")
	}
	if a := d.Credentials(nil); a.Type == AuthOAuthM2M && (a.ClientID == "") != (a.ClientSecret == "") {
		bad("auth", "oauth_m2m needs both client_id and client_secret (or neither, to read %s and %s)", EnvDatabricksClientID, EnvDatabricksClientSecret)
	}
	return errs
}

func (t DatabricksAgentTable) validate(key string, known []string) []error {
	var errs []error
	bad := func(sub, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", key, sub, fmt.Sprintf(format, a...)))
	}
	if !ValidTableName(t.Table) || strings.Count(t.Table, ".") != 2 {
		bad(".table", "%q: use catalog.schema.name of letters, digits and _", t.Table)
	}
	if t.ServicePrincipal == "" {
		bad(".service_principal", "empty; name the service principal (application id) the agent calls the gateway as — time-window matching needs it")
	} else if !validIdentity.MatchString(t.ServicePrincipal) {
		bad(".service_principal", "contains control characters")
	}
	if t.AgentEndpoint != "" && !validIdentity.MatchString(t.AgentEndpoint) {
		bad(".agent_endpoint", "contains control characters")
	}
	for _, k := range sortedKeys(t.Columns) {
		if !slices.Contains(known, k) {
			bad(".columns."+k, "not a column obolus reads; map one of %s", strings.Join(known, ", "))
			continue
		}
		if !identPart.MatchString(t.Columns[k]) {
			bad(".columns."+k, "%q: use the table's column name (letters, digits and _)", t.Columns[k])
		}
	}
	return errs
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ConnectOptions is how to reach the warehouse; credentials the section
// leaves empty are read through lookup (os.LookupEnv) from DATABRICKS_*.
func (d Databricks) ConnectOptions(lookup func(string) (string, bool)) dbsql.Options {
	c := d.Credentials(lookup)
	return dbsql.Options{
		Host: d.Host, Port: d.Port, CAFile: d.CAFile, NoCloudFetch: !d.CloudFetch, HTTPPath: d.Path(), QueryTags: d.QueryTags,
		Timeout: d.Timeout, Retries: d.Retries, RetryWaitMin: d.RetryWaitMin, RetryWaitMax: d.RetryWaitMax,
		Token: c.Token, ClientID: c.ClientID, ClientSecret: c.ClientSecret, OAuth: c.Type == AuthOAuthM2M,
	}
}

// loopback reports whether host names this machine.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
