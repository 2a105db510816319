package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "obolus.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsAreValid(t *testing.T) {
	c, err := Load(New(), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Match.Skew != 2*time.Second || c.Match.Ambiguity != "unattributed" || c.Batch.Lookback != 2*time.Hour {
		t.Errorf("unexpected defaults: %+v", c)
	}
}

func TestExampleConfigIsValidAndComplete(t *testing.T) {
	// deploy/obolus.example.yaml documents every key with its default; it
	// must load and must not drift from the defaults.
	c, err := Load(New(), filepath.Join("..", "..", "deploy", "obolus.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := Load(New(), "")
	if c.Match.Skew != d.Match.Skew || c.Batch.Lookback != d.Batch.Lookback || c.Match.Ambiguity != d.Match.Ambiguity ||
		strings.Join(c.Match.TraceTagKeys, ",") != strings.Join(d.Match.TraceTagKeys, ",") ||
		c.IngestLimits() != d.IngestLimits() {
		t.Errorf("example config drifted from the defaults:\nexample %+v\ndefault %+v", c.Match, d.Match)
	}
}

func TestRelativePathsResolveAgainstConfigFile(t *testing.T) {
	p := write(t, "store: {duckdb: out.duckdb}\nsources:\n  - {kind: usage, path: usage/}\n")
	c, err := Load(New(), p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	if c.Store.DuckDB != filepath.Join(dir, "out.duckdb") || c.Sources[0].Path != filepath.Join(dir, "usage") {
		t.Errorf("paths not resolved: %s, %s", c.Store.DuckDB, c.Sources[0].Path)
	}
}

func TestEnvOverrides(t *testing.T) {
	t.Setenv("OBOLUS_MATCH_SKEW", "750ms")
	t.Setenv("OBOLUS_MATCH_AMBIGUITY", "split")
	c, err := Load(New(), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Match.Skew != 750*time.Millisecond || c.Match.Ambiguity != "split" {
		t.Errorf("env not applied: skew %s ambiguity %s", c.Match.Skew, c.Match.Ambiguity)
	}
}

func TestInvalidConfigNamesTheKey(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"unknown key", "match: {skw: 1s}\n", "skw"},
		{"bad policy", "match: {ambiguity: guess}\n", "match.ambiguity"},
		{"bad duration", "match: {skew: soon}\n", "skew"},
		{"negative lookback", "batch: {lookback: -1h}\n", "batch.lookback"},
		{"bad kind", "sources: [{kind: logs, path: x}]\n", "sources[0].kind"},
		{"agent without principal", "sources: [{kind: payload, path: x}]\n", "sources[0].service_principal"},
		{"no path", "sources: [{kind: usage}]\n", "sources[0]: set path"},
		{"table injection", "sources: [{kind: usage, table: \"x; DROP TABLE y\"}]\n", "sources[0].table"},
		{"missing org file", "org: nowhere.csv\n", "org: cannot read"},
		{"bad format", "sources: [{kind: usage, path: x, format: xml}]\n", "sources[0].format"},
		{"bad exporter", "telemetry: {exporter: zipkin}\n", "telemetry.exporter"},
		{"duration without unit", "match: {skew: 300}\n", "'match.skew' 300 is a bare number; a duration needs a unit"},
		{"float duration without unit", "stream: {grace: 1.5}\n", "'stream.grace' 1.5 is a bare number"},
		{"zero token limit", "limits: {max_tokens: 0}\n", "limits.max_tokens"},
		{"memory limit without unit", "store: {memory_limit: 512}\n", "store.memory_limit: \"512\" has no unit"},
		{"memory limit not a size", "batch: {memory_limit: lots}\n", "batch.memory_limit: \"lots\" is not a size"},
		{"negative request duration", "match: {max_request_duration: -1h}\n", "match.max_request_duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(New(), write(t, tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// Zero needs no unit, and a string with a unit still parses.
func TestDurationUnits(t *testing.T) {
	c, err := Load(New(), write(t, "match: {skew: 0, crowd_margin: 300ms}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Match.Skew != 0 || c.Match.CrowdMargin != 300*time.Millisecond {
		t.Errorf("skew %s, crowd_margin %s", c.Match.Skew, c.Match.CrowdMargin)
	}
}

func TestValidTableName(t *testing.T) {
	for name, ok := range map[string]bool{
		"usage": true, "system.ai_gateway.usage": true, "a.b.c.d": false, "x;y": false, `a"b`: false, "": false, "1abc": false, "main.t_2": true,
	} {
		if ValidTableName(name) != ok {
			t.Errorf("ValidTableName(%q) = %v, want %v", name, !ok, ok)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"0", 0, false}, {"256MiB", 256 << 20, false}, {"2GB", 2e9, false}, {"512 KiB", 512 << 10, false}, {"1B", 1, false},
		{"512", 0, true}, {"1.5GB", 0, true}, {"-1MiB", 0, true}, {"lots", 0, true}, {"", 0, true}, {"9999999999TiB", 0, true},
	} {
		got, err := ParseBytes(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.bad)
		}
	}
}
