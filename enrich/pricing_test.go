package enrich

import (
	"strings"
	"testing"
)

// A price list whose meaning would be unclear, or whose costs could not be
// computed, is refused at load, naming the key.
func TestParsePriceListRefuses(t *testing.T) {
	version := func(name, from, models string) string {
		return "  - version: " + name + "\n    effective_from: " + from + "\n    models:\n" + models
	}
	model := func(name, input string) string {
		return "      " + name + ": {input: " + input + ", output: 1}\n"
	}
	tests := []struct{ name, yaml, want string }{
		{"NaN", "versions:\n" + version("v1", "2026-01-01T00:00:00Z", model("m", ".nan")), "versions[0].models.m.input: NaN is not a price"},
		{"Inf", "versions:\n" + version("v1", "2026-01-01T00:00:00Z", model("m", ".inf")), "versions[0].models.m.input: +Inf is not a price"},
		{"overflowing", "versions:\n" + version("v1", "2026-01-01T00:00:00Z", model("m", "1e308")), "versions[0].models.m.input: 1e+308 is not a price"},
		{"negative", "versions:\n" + version("v1", "2026-01-01T00:00:00Z", model("m", "-1")), "versions[0].models.m.input: -1 is not a price"},
		{"same effective_from", "versions:\n" + version("v1", "2026-01-01T00:00:00Z", model("m", "1")) + version("v2", "2026-01-01T00:00:00Z", model("m", "2")),
			`versions[1].effective_from: 2026-01-01T00:00:00Z is also the effective_from of version "v1"`},
		{"same instant, other zone", "versions:\n" + version("v1", "2026-01-01T01:00:00+01:00", model("m", "1")) + version("v2", "2026-01-01T00:00:00Z", model("m", "2")),
			"versions[1].effective_from"},
		{"model twice by case", "versions:\n" + version("v1", "2026-01-01T00:00:00Z", model("GPT-x", "1")+model("gpt-x", "2")), "same name in other case"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePriceList([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to mention %q", err, tt.want)
			}
		})
	}
	if _, err := ParsePriceList([]byte("versions:\n" + version("v1", "2026-01-01T00:00:00Z", model("m", "1000000")))); err != nil {
		t.Errorf("price at the bound refused: %v", err)
	}
}
