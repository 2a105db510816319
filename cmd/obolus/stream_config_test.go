package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/config"
)

func TestStreamDefaultsAreValid(t *testing.T) {
	c, s, err := config.LoadWithStream(config.New(), "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Grace != 5*time.Minute || s.Horizon != time.Hour || s.Topics.Usage != "obolus.usage" || !s.HasStage(config.StageJoin) || s.HasStage(config.StageLoad) {
		t.Errorf("unexpected stream defaults: %+v", s)
	}
	if o := s.OTLP; o.Listen != "" || o.MaxBodyBytes != 8<<20 || o.MaxInFlight != 16 || o.Timeout != 5*time.Second || o.RetryAfter != time.Second || o.BearerToken != "" {
		t.Errorf("unexpected stream.otlp defaults: %+v", o)
	}
	if c.Match.Skew != 2*time.Second {
		t.Errorf("main section not loaded: %+v", c.Match)
	}
}

func TestStreamSectionLoads(t *testing.T) {
	p := writeConfig(t, `
sources:
  - {kind: payload, path: a.jsonl, agent_endpoint: bot, service_principal: sp-from-source}
  - {kind: trace, path: b.jsonl, agent_endpoint: Other-Bot, service_principal: sp-2}
stream:
  brokers: [k1:9092, k2:9093]
  grace: 90s
  duckdb: true
  agents:
    - {agent_endpoint: bot, service_principal: sp-override}
  tls: {enabled: true, ca_file: ca.pem}
`)
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), "ca.pem"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OBOLUS_STREAM_SASL_MECHANISM", "scram-sha-512")
	t.Setenv("OBOLUS_STREAM_SASL_USERNAME", "svc")
	t.Setenv("OBOLUS_STREAM_SASL_PASSWORD", "s3cret")
	t.Setenv("OBOLUS_STREAM_OTLP_BEARER_TOKEN", "tok")
	t.Setenv("OBOLUS_STREAM_OTLP_LISTEN", "0.0.0.0:4318")
	c, s, err := config.LoadWithStream(config.New(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Brokers) != 2 || s.Grace != 90*time.Second || !s.HasStage(config.StageLoad) || s.SASL.Password != "s3cret" {
		t.Errorf("stream section: %+v", s)
	}
	if s.OTLP.BearerToken != "tok" || s.OTLP.Listen != "0.0.0.0:4318" {
		t.Errorf("stream.otlp from the environment: %+v", s.OTLP)
	}
	if s.TLS.CAFile != filepath.Join(filepath.Dir(p), "ca.pem") {
		t.Errorf("ca_file not resolved against the config file: %s", s.TLS.CAFile)
	}
	sps := c.ServicePrincipals(*s)
	if sps["bot"] != "sp-override" || sps["Other-Bot"] != "sp-2" {
		t.Errorf("service principals %v: stream.agents must win and endpoint case must survive", sps)
	}
}

func TestStreamValidate(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"no brokers", "stream: {brokers: []}", "stream.brokers: empty"},
		{"broker without port", "stream: {brokers: [kafka]}", "stream.brokers[0]"},
		{"bad topic", "stream: {topics: {usage: 'a b'}}", "stream.topics.usage"},
		{"same topic twice", "stream: {topics: {output: obolus.usage}}", "stream.topics.output"},
		{"horizon below grace", "stream: {grace: 2h}", "stream.horizon"},
		{"agent retention below horizon", "stream: {horizon: 8h}", "stream.agent_retention"},
		{"zero idle flush", "stream: {idle_flush: 0s}", "stream.idle_flush"},
		{"zero producer delay", "stream: {producer_delay: 0s}", "stream.producer_delay"},
		{"tiny max message", "stream: {max_message_bytes: 10}", "stream.max_message_bytes"},
		{"unknown stage", "stream: {stages: [rekey, shuffle]}", "stream.stages[1]"},
		{"bad http", "stream: {http: localhost}", "stream.http"},
		{"tls file while off", "stream: {tls: {ca_file: /etc/hostname}}", "stream.tls.ca_file"},
		{"missing tls file", "stream: {tls: {enabled: true, ca_file: /no/such.pem}}", "cannot read"},
		{"cert without key", "stream: {tls: {enabled: true, cert_file: /etc/hostname}}", "stream.tls: set both"},
		{"unknown sasl", "stream: {sasl: {mechanism: kerberos}}", "stream.sasl.mechanism"},
		{"sasl without password", "stream: {sasl: {mechanism: plain, username: u}}", "stream.sasl.password"},
		{"password without mechanism", "stream: {sasl: {password: p}}", "stream.sasl.mechanism"},
		{"agent without principal", "stream: {agents: [{agent_endpoint: bot}]}", "stream.agents[0].service_principal"},
		{"bad otlp listen", "stream: {otlp: {listen: 4318}}", "stream.otlp.listen"},
		{"tiny otlp body", "stream: {otlp: {max_body_bytes: 10}}", "stream.otlp.max_body_bytes"},
		{"no otlp slots", "stream: {otlp: {max_in_flight: 0}}", "stream.otlp.max_in_flight"},
		{"zero otlp timeout", "stream: {otlp: {timeout: 0s}}", "stream.otlp.timeout"},
		{"otlp token with a space", "stream: {otlp: {bearer_token: 'a b'}}", "stream.otlp.bearer_token"},
		{"unknown key", "stream: {grase: 1m}", "grase"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := config.LoadWithStream(config.New(), writeConfig(t, tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one naming %s", err, tt.want)
			}
		})
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "obolus.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
