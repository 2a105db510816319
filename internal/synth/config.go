package synth

import (
	"fmt"
	"math"
	"time"
)

// Output formats.
const (
	FormatJSONL   = "jsonl"
	FormatCSV     = "csv"
	FormatParquet = "parquet"
)

// Config describes the workload. Zero fields take the defaults listed on each
// field; use a negative share to ask for exactly zero.
type Config struct {
	// Seed makes the output deterministic: the same seed and configuration
	// produce byte-identical files.
	Seed int64
	// Start is when the workload begins (default 2026-11-01T00:00:00Z).
	Start time.Time
	// Duration is how long it runs (default 24h).
	Duration time.Duration

	// Users, Teams and Agents size the organisation (defaults 500, 12, 6).
	Users, Teams, Agents int
	// AgentRequests is the number of end-user requests to agents (default 20000).
	AgentRequests int

	// TaggedShare is the share of gateway calls whose request_tags (or, on the
	// legacy path, client_request_id) carry an id of the agent request or the
	// end user (default 0.8).
	TaggedShare float64
	// LateShare is the share of agent requests whose log lands in agents_late/
	// instead of agents/ (default 0.03).
	LateShare float64
	// DuplicateShare is the share of ai_gateway usage rows written twice with
	// the same invocation_id and identical content (default 0.01).
	DuplicateShare float64
	// RetryShare is the share of calls that fail once (429 or 503, no output
	// tokens) and are retried under a new invocation_id and the same
	// request_id (default 0.02).
	RetryShare float64
	// LegacyShare is the share of calls made through /serving-endpoints and
	// therefore logged in system.serving.endpoint_usage (default 0.05).
	LegacyShare float64
	// MaxSkew bounds the difference between an agent's clock and the
	// gateway's: each agent gets a fixed offset plus per-request jitter
	// (default 500ms).
	MaxSkew time.Duration
	// TagKeyVariantShare is the share of tagged calls whose id tag key is
	// spelled another way: Mlflow_Trace_Id, AGENT-REQUEST-ID or
	// end.user instead of the snake-case key (default 0: none).
	TagKeyVariantShare float64
	// HotServicePrincipals is how many agents carry heavy, overlapping
	// traffic (default 1).
	HotServicePrincipals int
	// Format is FormatJSONL (default), FormatCSV or FormatParquet.
	Format string
	// AgentLogs is AgentLogsMLflow (default: payload tables and MLflow
	// traces, as each agent's archetype logs) or AgentLogsOTel (every agent
	// writes OpenTelemetry span tables instead). Only the agent log files
	// differ: usage, ground truth and org are the same for both.
	AgentLogs string
	// OTelLayout is the span tables' layout with AgentLogsOTel: OTelV2
	// (default) or OTelV1.
	OTelLayout string
	// GatewaySpanShare is the share of AI Gateway calls (legacy calls never)
	// that also get a span in the gateway's unified trace table
	// (GatewaySpansFile), in their agent request's trace. 0 writes none.
	GatewaySpanShare float64
}

// Defaults.
const (
	DefaultUsers                = 500
	DefaultTeams                = 12
	DefaultAgents               = 6
	DefaultAgentRequests        = 20_000
	DefaultTaggedShare          = 0.8
	DefaultLateShare            = 0.03
	DefaultDuplicateShare       = 0.01
	DefaultRetryShare           = 0.02
	DefaultLegacyShare          = 0.05
	DefaultMaxSkew              = 500 * time.Millisecond
	DefaultHotServicePrincipals = 1
	DefaultDuration             = 24 * time.Hour
)

// DefaultStart is the default Start.
var DefaultStart = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// Limits keep a typo from asking for a workload that cannot fit on disk.
const (
	maxUsers         = 1_000_000
	maxTeams         = 10_000
	maxAgents        = 200
	maxAgentRequests = 10_000_000 // about 90M usage rows; requests are held in memory (~100 B each)
)

// WithDefaults returns cfg with every zero field set to its default and
// negative shares, skew and hot count turned into zero.
func (c Config) WithDefaults() Config {
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	c.Start = c.Start.UTC()
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Users == 0 {
		c.Users = DefaultUsers
	}
	if c.Teams == 0 {
		c.Teams = DefaultTeams
	}
	if c.Agents == 0 {
		c.Agents = DefaultAgents
	}
	if c.AgentRequests == 0 {
		c.AgentRequests = DefaultAgentRequests
	}
	share := func(v *float64, def float64) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			*v = 0
		}
	}
	share(&c.TaggedShare, DefaultTaggedShare)
	share(&c.LateShare, DefaultLateShare)
	share(&c.DuplicateShare, DefaultDuplicateShare)
	share(&c.RetryShare, DefaultRetryShare)
	share(&c.LegacyShare, DefaultLegacyShare)
	c.TagKeyVariantShare = max(c.TagKeyVariantShare, 0)
	switch {
	case c.MaxSkew == 0:
		c.MaxSkew = DefaultMaxSkew
	case c.MaxSkew < 0:
		c.MaxSkew = 0
	}
	switch {
	case c.HotServicePrincipals == 0:
		c.HotServicePrincipals = DefaultHotServicePrincipals
	case c.HotServicePrincipals < 0:
		c.HotServicePrincipals = 0
	}
	if c.Format == "" {
		c.Format = FormatJSONL
	}
	if c.AgentLogs == "" {
		c.AgentLogs = AgentLogsMLflow
	}
	if c.OTelLayout == "" {
		c.OTelLayout = OTelV2
	}
	return c
}

// Validate reports the first field that cannot work, naming it. It expects
// defaults to have been applied.
func (c Config) Validate() error {
	if c.Duration < time.Minute {
		return fmt.Errorf("synth: duration %s is shorter than a minute", c.Duration)
	}
	for _, f := range []struct {
		name   string
		v, max int
	}{
		{"users", c.Users, maxUsers},
		{"teams", c.Teams, maxTeams},
		{"agents", c.Agents, maxAgents},
		{"agent_requests", c.AgentRequests, maxAgentRequests},
	} {
		if f.v < 1 || f.v > f.max {
			return fmt.Errorf("synth: %s is %d; use 1 to %d", f.name, f.v, f.max)
		}
	}
	if c.Teams > c.Users {
		return fmt.Errorf("synth: teams (%d) exceeds users (%d)", c.Teams, c.Users)
	}
	if c.HotServicePrincipals > c.Agents {
		return fmt.Errorf("synth: hot_service_principals (%d) exceeds agents (%d)", c.HotServicePrincipals, c.Agents)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"tagged_share", c.TaggedShare},
		{"late_share", c.LateShare},
		{"duplicate_share", c.DuplicateShare},
		{"retry_share", c.RetryShare},
		{"legacy_share", c.LegacyShare},
		{"tag_key_variant_share", c.TagKeyVariantShare},
	} {
		if math.IsNaN(f.v) || f.v < 0 || f.v > 1 {
			return fmt.Errorf("synth: %s is %v; use a share between 0 and 1", f.name, f.v)
		}
	}
	if c.MaxSkew > time.Minute {
		return fmt.Errorf("synth: max_skew %s exceeds a minute", c.MaxSkew)
	}
	switch c.Format {
	case FormatJSONL, FormatCSV, FormatParquet:
	default:
		return fmt.Errorf("synth: format %q is not supported; use %s, %s or %s", c.Format, FormatJSONL, FormatCSV, FormatParquet)
	}
	if c.AgentLogs != AgentLogsMLflow && c.AgentLogs != AgentLogsOTel {
		return fmt.Errorf("synth: agent_logs %q is not supported; use %s or %s", c.AgentLogs, AgentLogsMLflow, AgentLogsOTel)
	}
	if !(c.GatewaySpanShare >= 0 && c.GatewaySpanShare <= 1) {
		return fmt.Errorf("synth: gateway_span_share %v is not a share; use 0 to 1", c.GatewaySpanShare)
	}
	if c.OTelLayout != OTelV1 && c.OTelLayout != OTelV2 {
		return fmt.Errorf("synth: otel_layout %q is not supported; use %s or %s", c.OTelLayout, OTelV1, OTelV2)
	}
	return nil
}
