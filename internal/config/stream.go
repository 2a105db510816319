package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/viper"
)

// Stream stages: what one `obolus stream` process runs.
const (
	StageRekey = "rekey" // decode the input topics, dead-letter bad messages, key by service principal
	StageJoin  = "join"  // attribute the keyed topic and produce to the output topic
	StageLoad  = "load"  // load the output and dead-letter topics into the DuckDB store
)

// SASL mechanisms.
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// StreamTopics names the topics of the streaming path.
type StreamTopics struct {
	// Usage holds system.ai_gateway.usage rows as JSON objects (or, with the
	// header obolus-kind: legacy_usage, system.serving.endpoint_usage rows).
	Usage string `mapstructure:"usage"`
	// Agents holds agent payload-table rows and MLflow trace rows.
	Agents string `mapstructure:"agents"`
	// Keyed is internal: both kinds, decoded and keyed by service principal.
	Keyed string `mapstructure:"keyed"`
	// Output receives attribution rows, keyed by invocation id.
	Output string `mapstructure:"output"`
	// DeadLetter receives messages that could not be used, with the reason.
	DeadLetter string `mapstructure:"dead_letter"`
	// Alerts receives budget alerts (budgets.alerts), keyed by alert id.
	Alerts string `mapstructure:"alerts"`
}

// StreamAgent names the service principal an agent endpoint calls the gateway as.
type StreamAgent struct {
	AgentEndpoint    string `mapstructure:"agent_endpoint"`
	ServicePrincipal string `mapstructure:"service_principal"`
}

// StreamTLS configures TLS to the brokers.
type StreamTLS struct {
	Enabled            bool   `mapstructure:"enabled"`
	CAFile             string `mapstructure:"ca_file"`
	CertFile           string `mapstructure:"cert_file"`
	KeyFile            string `mapstructure:"key_file"`
	ServerName         string `mapstructure:"server_name"`
	InsecureSkipVerify bool   `mapstructure:"insecure_skip_verify"`
}

// StreamSASL configures SASL authentication to the brokers. The password is
// best given as OBOLUS_STREAM_SASL_PASSWORD.
type StreamSASL struct {
	Mechanism string `mapstructure:"mechanism"`
	Username  string `mapstructure:"username"`
	Password  string `mapstructure:"password"`
}

// StreamOTLP configures the OTLP/HTTP trace intake (POST /v1/traces).
type StreamOTLP struct {
	// Listen is the intake's listen address; empty disables it. Its own
	// listener, not stream.http's: agents reach it from other hosts, and
	// stream.http serves profiles that must stay on loopback.
	Listen string `mapstructure:"listen"`
	// MaxBodyBytes bounds a request body, as sent and after gzip (413).
	MaxBodyBytes int64 `mapstructure:"max_body_bytes"`
	// MaxInFlight bounds requests being produced at once (429 beyond).
	MaxInFlight int `mapstructure:"max_in_flight"`
	// Timeout bounds producing one request's spans (503 beyond).
	Timeout time.Duration `mapstructure:"timeout"`
	// RetryAfter is what 429 and 503 answers ask the client to wait.
	RetryAfter time.Duration `mapstructure:"retry_after"`
	// BearerToken, when set, is required as "Authorization: Bearer <token>";
	// best given as OBOLUS_STREAM_OTLP_BEARER_TOKEN.
	BearerToken string `mapstructure:"bearer_token"`
}

// Stream configures `obolus stream` and `obolus dev`.
type Stream struct {
	Brokers []string `mapstructure:"brokers"`
	// Group prefixes the consumer groups: <group>.rekey, <group>.join, <group>.load.
	Group string `mapstructure:"group"`
	// ClientID names this process to the brokers (their logs, quotas and
	// group descriptions); a pod name is a good choice.
	ClientID string       `mapstructure:"client_id"`
	Topics   StreamTopics `mapstructure:"topics"`
	// CreateTopics creates missing topics with Partitions partitions at start.
	CreateTopics bool `mapstructure:"create_topics"`
	Partitions   int  `mapstructure:"partitions"`
	// Agents maps agent endpoints to service principals, in addition to the
	// payload and trace entries of sources.
	Agents []StreamAgent `mapstructure:"agents"`
	// Grace is how long, in event time, a usage event waits for its agent request.
	Grace time.Duration `mapstructure:"grace"`
	// Horizon is how long an attributed event stays open for restatement.
	Horizon time.Duration `mapstructure:"horizon"`
	// AgentRetention is how long, in usage event time, agent requests are
	// held behind the watermark for usage that arrives later than Horizon.
	AgentRetention time.Duration `mapstructure:"agent_retention"`
	// IdleFlush is how long an input partition must be quiet and read to
	// its end before it claims to be idle, and how long, in message time,
	// a keyed partition may get no record before its waiting events are
	// released.
	IdleFlush time.Duration `mapstructure:"idle_flush"`
	// ProducerDelay is how long after its timestamp a message can become
	// readable: producer batching and linger plus clock skew between
	// producers and workers. An idle input partition claims that every
	// message still to come is stamped at least now minus ProducerDelay.
	ProducerDelay time.Duration `mapstructure:"producer_delay"`
	// CommitInterval is how often outputs are flushed and offsets committed.
	CommitInterval time.Duration `mapstructure:"commit_interval"`
	// MaxMessageBytes is the largest input message accepted; larger ones are dead-lettered.
	MaxMessageBytes int `mapstructure:"max_message_bytes"`
	// MaxFuture dead-letters records whose event time is this far ahead of the clock.
	MaxFuture time.Duration `mapstructure:"max_future"`
	// Stages lists what this process runs.
	Stages []string `mapstructure:"stages"`
	// DuckDB adds the load stage: attributions and dead letters go into store.duckdb too.
	DuckDB bool `mapstructure:"duckdb"`
	// HTTP is the listen address of /healthz, /readyz and /status; empty disables it.
	HTTP             string        `mapstructure:"http"`
	SessionTimeout   time.Duration `mapstructure:"session_timeout"`
	RebalanceTimeout time.Duration `mapstructure:"rebalance_timeout"`
	TLS              StreamTLS     `mapstructure:"tls"`
	SASL             StreamSASL    `mapstructure:"sasl"`
	// OTLP is the OTLP/HTTP trace intake: spans become agent logs on the
	// agent topic.
	OTLP StreamOTLP `mapstructure:"otlp"`
}

// StreamDefaults puts the stream section's defaults into v.
func StreamDefaults(v *viper.Viper) {
	v.SetDefault("stream.brokers", []string{"127.0.0.1:9092"})
	v.SetDefault("stream.group", "obolus")
	v.SetDefault("stream.client_id", "obolus")
	v.SetDefault("stream.topics.usage", "obolus.usage")
	v.SetDefault("stream.topics.agents", "obolus.agent_requests")
	v.SetDefault("stream.topics.keyed", "obolus.keyed")
	v.SetDefault("stream.topics.output", "obolus.attribution")
	v.SetDefault("stream.topics.dead_letter", "obolus.dead_letter")
	v.SetDefault("stream.topics.alerts", "obolus.alerts")
	v.SetDefault("stream.create_topics", true)
	v.SetDefault("stream.partitions", 12)
	v.SetDefault("stream.agents", []map[string]any{})
	v.SetDefault("stream.grace", 5*time.Minute)
	v.SetDefault("stream.horizon", time.Hour)
	v.SetDefault("stream.agent_retention", 6*time.Hour)
	v.SetDefault("stream.idle_flush", 5*time.Second)
	v.SetDefault("stream.producer_delay", 5*time.Second)
	v.SetDefault("stream.commit_interval", time.Second)
	v.SetDefault("stream.max_message_bytes", 1<<20)
	v.SetDefault("stream.max_future", time.Hour)
	v.SetDefault("stream.stages", []string{StageRekey, StageJoin})
	v.SetDefault("stream.duckdb", false)
	v.SetDefault("stream.http", "127.0.0.1:8080")
	v.SetDefault("stream.session_timeout", 10*time.Second)
	v.SetDefault("stream.rebalance_timeout", 10*time.Second)
	v.SetDefault("stream.tls.enabled", false)
	v.SetDefault("stream.tls.ca_file", "")
	v.SetDefault("stream.tls.cert_file", "")
	v.SetDefault("stream.tls.key_file", "")
	v.SetDefault("stream.tls.server_name", "")
	v.SetDefault("stream.tls.insecure_skip_verify", false)
	v.SetDefault("stream.sasl.mechanism", "")
	v.SetDefault("stream.sasl.username", "")
	v.SetDefault("stream.sasl.password", "")
	v.SetDefault("stream.otlp.listen", "")
	v.SetDefault("stream.otlp.max_body_bytes", 8<<20)
	v.SetDefault("stream.otlp.max_in_flight", 16)
	v.SetDefault("stream.otlp.timeout", 5*time.Second)
	v.SetDefault("stream.otlp.retry_after", time.Second)
	v.SetDefault("stream.otlp.bearer_token", "")
}

// kafkaName is Kafka's rule for topic and group names.
var kafkaName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)

// Validate reports every problem in the stream section, each naming its key.
func (s Stream) Validate() []error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("stream.%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if len(s.Brokers) == 0 {
		bad("brokers", "empty; list bootstrap servers as host:port, e.g. [kafka-1:9092]")
	}
	for i, b := range s.Brokers {
		if host, port, err := net.SplitHostPort(b); err != nil || host == "" || port == "" {
			bad(fmt.Sprintf("brokers[%d]", i), "%q is not host:port", b)
		}
	}
	if !kafkaName.MatchString(s.Group) {
		bad("group", "%q: use 1 to 249 letters, digits, '.', '_' or '-'", s.Group)
	}
	seen := map[string]string{}
	for _, t := range []struct{ key, name string }{
		{"usage", s.Topics.Usage}, {"agents", s.Topics.Agents}, {"keyed", s.Topics.Keyed},
		{"output", s.Topics.Output}, {"dead_letter", s.Topics.DeadLetter}, {"alerts", s.Topics.Alerts},
	} {
		switch {
		case !kafkaName.MatchString(t.name) || t.name == "." || t.name == "..":
			bad("topics."+t.key, "%q is not a topic name: use 1 to 249 letters, digits, '.', '_' or '-'", t.name)
		case seen[t.name] != "":
			bad("topics."+t.key, "%q is also stream.topics.%s; every topic must be distinct", t.name, seen[t.name])
		default:
			seen[t.name] = t.key
		}
	}
	if s.Partitions < 1 || s.Partitions > 10000 {
		bad("partitions", "%d: use 1 to 10000", s.Partitions)
	}
	for i, a := range s.Agents {
		key := fmt.Sprintf("agents[%d]", i)
		if a.AgentEndpoint == "" {
			bad(key+".agent_endpoint", "empty; name the agent's serving endpoint")
		}
		if a.ServicePrincipal == "" {
			bad(key+".service_principal", "empty; name the service principal (application id) the agent calls the gateway as")
		}
	}
	positive := func(key string, d time.Duration, example string) {
		if d <= 0 {
			bad(key, "%s: must be positive, e.g. %s", d, example)
		}
	}
	positive("grace", s.Grace, "5m")
	positive("horizon", s.Horizon, "1h")
	positive("agent_retention", s.AgentRetention, "6h")
	positive("idle_flush", s.IdleFlush, "5s")
	positive("producer_delay", s.ProducerDelay, "5s")
	positive("commit_interval", s.CommitInterval, "1s")
	positive("max_future", s.MaxFuture, "1h")
	positive("session_timeout", s.SessionTimeout, "10s")
	positive("rebalance_timeout", s.RebalanceTimeout, "10s")
	if s.Grace > 0 && s.Horizon < s.Grace {
		bad("horizon", "%s is shorter than stream.grace %s; an event must stay open at least as long as it waited", s.Horizon, s.Grace)
	}
	if s.Horizon > 0 && s.AgentRetention > 0 && s.AgentRetention < s.Horizon {
		bad("agent_retention", "%s is shorter than stream.horizon %s; an agent request must be held at least as long as the events it could restate", s.AgentRetention, s.Horizon)
	}
	if s.MaxMessageBytes < 1<<10 || s.MaxMessageBytes > 64<<20 {
		bad("max_message_bytes", "%d: use 1024 to 67108864", s.MaxMessageBytes)
	}
	if len(s.Stages) == 0 {
		bad("stages", "empty; use any of %s, %s, %s", StageRekey, StageJoin, StageLoad)
	}
	for i, st := range s.Stages {
		if !slices.Contains([]string{StageRekey, StageJoin, StageLoad}, st) {
			bad(fmt.Sprintf("stages[%d]", i), "%q is not a stage; use %s, %s or %s", st, StageRekey, StageJoin, StageLoad)
		}
	}
	if s.HTTP != "" {
		if _, _, err := net.SplitHostPort(s.HTTP); err != nil {
			bad("http", "%q is not host:port (empty disables the endpoints)", s.HTTP)
		}
	}
	if s.OTLP.Listen != "" {
		if _, _, err := net.SplitHostPort(s.OTLP.Listen); err != nil {
			bad("otlp.listen", "%q is not host:port (empty disables the OTLP intake)", s.OTLP.Listen)
		}
	}
	if s.OTLP.MaxBodyBytes < 1<<10 || s.OTLP.MaxBodyBytes > 1<<30 {
		bad("otlp.max_body_bytes", "%d: use 1024 to 1073741824", s.OTLP.MaxBodyBytes)
	}
	if s.OTLP.MaxInFlight < 1 || s.OTLP.MaxInFlight > 10000 {
		bad("otlp.max_in_flight", "%d: use 1 to 10000", s.OTLP.MaxInFlight)
	}
	positive("otlp.timeout", s.OTLP.Timeout, "5s")
	positive("otlp.retry_after", s.OTLP.RetryAfter, "1s")
	if strings.ContainsAny(s.OTLP.BearerToken, " \t\r\n") {
		// Never the token itself in the message.
		bad("otlp.bearer_token", "contains whitespace, which no Authorization header can carry")
	}
	for _, f := range []struct{ key, path string }{{"tls.ca_file", s.TLS.CAFile}, {"tls.cert_file", s.TLS.CertFile}, {"tls.key_file", s.TLS.KeyFile}} {
		if f.path == "" {
			continue
		}
		if !s.TLS.Enabled {
			bad(f.key, "set, but stream.tls.enabled is false")
		} else if _, err := os.Stat(f.path); err != nil {
			bad(f.key, "cannot read %s: %v", f.path, err)
		}
	}
	if (s.TLS.CertFile == "") != (s.TLS.KeyFile == "") {
		bad("tls", "set both cert_file and key_file for a client certificate, or neither")
	}
	switch strings.ToLower(s.SASL.Mechanism) {
	case "":
		if s.SASL.Username != "" || s.SASL.Password != "" {
			bad("sasl.mechanism", "empty but a username or password is set; use %s, %s or %s", SASLPlain, SASLScramSHA256, SASLScramSHA512)
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if s.SASL.Username == "" {
			bad("sasl.username", "empty; SASL needs a username")
		}
		if s.SASL.Password == "" {
			bad("sasl.password", "empty; set it, or OBOLUS_STREAM_SASL_PASSWORD")
		}
	default:
		bad("sasl.mechanism", "%q: use %s, %s or %s", s.SASL.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
	}
	return errs
}

// HasStage reports whether the process runs stage (load runs when listed or
// when DuckDB is set).
func (s Stream) HasStage(stage string) bool {
	return slices.Contains(s.Stages, stage) || stage == StageLoad && s.DuckDB
}

// ServicePrincipals maps agent endpoints to service principals from
// stream.agents and from the payload and trace sources; stream.agents wins
// where both name an endpoint.
func (c *Config) ServicePrincipals(s Stream) map[string]string {
	m := map[string]string{}
	for _, src := range c.Sources {
		if src.IsAgent() && src.AgentEndpoint != "" && src.ServicePrincipal != "" {
			m[src.AgentEndpoint] = src.ServicePrincipal
		}
	}
	for _, a := range s.Agents {
		m[a.AgentEndpoint] = a.ServicePrincipal
	}
	return m
}

// ResolvePaths makes the TLS file paths absolute against dir, the
// configuration file's directory.
func (s *Stream) ResolvePaths(dir string) {
	for _, p := range []*string{&s.TLS.CAFile, &s.TLS.CertFile, &s.TLS.KeyFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

// LoadWithStream is Load for the stream commands, returning the stream
// section beside the configuration it belongs to.
func LoadWithStream(v *viper.Viper, file string) (*Config, *Stream, error) {
	c, err := Load(v, file)
	if err != nil {
		return nil, nil, err
	}
	return c, &c.Stream, nil
}
