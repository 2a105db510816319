package enrich

import (
	_ "embed"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/obolus/obolus/schemas"
)

// Price is what one model costs, in USD per million tokens.
type Price struct {
	Input         float64 `yaml:"input"`
	Output        float64 `yaml:"output"`
	CacheRead     float64 `yaml:"cache_read"`
	CacheCreation float64 `yaml:"cache_creation"`
}

// PriceVersion is one edition of the price list, in force from EffectiveFrom
// until the next version's EffectiveFrom.
type PriceVersion struct {
	Version       string           `yaml:"version"`
	EffectiveFrom time.Time        `yaml:"effective_from"`
	Models        map[string]Price `yaml:"models"`
	// Aliases map other spellings of a model (destination_name, a provider
	// prefix) to a key of Models.
	Aliases map[string]string `yaml:"aliases"`
}

// PriceList prices invocations by destination_model and event time.
//
// input_tokens is taken to include cache reads and cache creations (the
// OpenAI convention, and Databricks' total_tokens = input + output agrees),
// so those are priced at their own rates and removed from the input count.
// Set input_excludes_cache when a provider reports them separately.
type PriceList struct {
	Currency           string         `yaml:"currency"`
	InputExcludesCache bool           `yaml:"input_excludes_cache"`
	Versions           []PriceVersion `yaml:"versions"`
}

// MaxPrice bounds a price, in USD per million tokens: far above any model's,
// and low enough that no call's cost can overflow (see ingest.Limits).
const MaxPrice = 1_000_000

// UnpricedVersion marks an invocation whose model no price list version knows.
const UnpricedVersion = "unpriced"

//go:embed prices.default.yaml
var defaultPrices []byte

// DefaultPriceList is the example list obolus ships with; see
// deploy/prices.example.yaml. Real deployments should configure their own.
func DefaultPriceList() *PriceList {
	pl, err := ParsePriceList(defaultPrices)
	if err != nil {
		panic(fmt.Sprintf("embedded price list: %v", err)) // a build defect, not input data
	}
	return pl
}

// LoadPriceList reads a price list YAML file.
func LoadPriceList(path string) (*PriceList, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read price list: %w", err)
	}
	pl, err := ParsePriceList(b)
	if err != nil {
		return nil, fmt.Errorf("price list %s: %w", path, err)
	}
	return pl, nil
}

// ParsePriceList parses and validates a price list.
func ParsePriceList(b []byte) (*PriceList, error) {
	var pl PriceList
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&pl); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if pl.Currency == "" {
		pl.Currency = "USD"
	}
	if pl.Currency != "USD" {
		return nil, fmt.Errorf("currency: %q is not supported; obolus prices in USD", pl.Currency)
	}
	if len(pl.Versions) == 0 {
		return nil, fmt.Errorf("versions: at least one version is needed")
	}
	seen := map[string]bool{}
	effective := map[time.Time]string{}
	for i := range pl.Versions {
		v := &pl.Versions[i]
		if v.Version == "" {
			return nil, fmt.Errorf("versions[%d].version: missing", i)
		}
		if seen[v.Version] {
			return nil, fmt.Errorf("versions[%d].version: %q appears twice", i, v.Version)
		}
		seen[v.Version] = true
		if other, ok := effective[v.EffectiveFrom.UTC()]; ok {
			// Which of the two is in force would depend on their order in the file.
			return nil, fmt.Errorf("versions[%d].effective_from: %s is also the effective_from of version %q; give each version its own",
				i, v.EffectiveFrom.UTC().Format(time.RFC3339), other)
		}
		effective[v.EffectiveFrom.UTC()] = v.Version
		norm := make(map[string]Price, len(v.Models))
		for _, name := range slices.Sorted(maps.Keys(v.Models)) {
			p := v.Models[name]
			for _, f := range []struct {
				key string
				usd float64
			}{{"input", p.Input}, {"output", p.Output}, {"cache_read", p.CacheRead}, {"cache_creation", p.CacheCreation}} {
				if math.IsNaN(f.usd) || f.usd < 0 || f.usd > MaxPrice {
					return nil, fmt.Errorf("versions[%d].models.%s.%s: %v is not a price; use USD per million tokens, from 0 to %v", i, name, f.key, f.usd, MaxPrice)
				}
			}
			key := modelKey(name)
			if _, dup := norm[key]; dup {
				return nil, fmt.Errorf("versions[%d].models.%s: another model of this version has the same name in other case or spacing", i, name)
			}
			norm[key] = p
		}
		v.Models = norm
		aliases := make(map[string]string, len(v.Aliases))
		for _, from := range slices.Sorted(maps.Keys(v.Aliases)) {
			to := v.Aliases[from]
			if _, ok := norm[modelKey(to)]; !ok {
				return nil, fmt.Errorf("versions[%d].aliases.%s: target %q is not a model of this version", i, from, to)
			}
			aliases[modelKey(from)] = modelKey(to)
		}
		v.Aliases = aliases
	}
	sort.SliceStable(pl.Versions, func(i, j int) bool { return pl.Versions[i].EffectiveFrom.Before(pl.Versions[j].EffectiveFrom) })
	return &pl, nil
}

func modelKey(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// version returns the version in force at t: the latest whose EffectiveFrom
// is not after t, or the earliest if t precedes them all.
func (pl *PriceList) version(t time.Time) *PriceVersion {
	i := sort.Search(len(pl.Versions), func(i int) bool { return pl.Versions[i].EffectiveFrom.After(t) })
	if i == 0 {
		return &pl.Versions[0]
	}
	return &pl.Versions[i-1]
}

// Cost prices token counts of one model at time t, returning the cost in USD
// and the price-list version used (UnpricedVersion if the model is unknown).
func (pl *PriceList) Cost(model, destinationName string, t time.Time, tok Tokens) (float64, string) {
	v := pl.version(t)
	p, ok := v.lookup(model)
	if !ok {
		p, ok = v.lookup(destinationName)
	}
	if !ok {
		return 0, UnpricedVersion
	}
	input := tok.Input
	if !pl.InputExcludesCache {
		input -= tok.CacheRead + tok.CacheCreation
		if input < 0 {
			input = 0
		}
	}
	usd := (float64(input)*p.Input + float64(tok.Output)*p.Output +
		float64(tok.CacheRead)*p.CacheRead + float64(tok.CacheCreation)*p.CacheCreation) / 1e6
	return usd, v.Version
}

func (v *PriceVersion) lookup(name string) (Price, bool) {
	if name == "" {
		return Price{}, false
	}
	k := modelKey(name)
	if p, ok := v.Models[k]; ok {
		return p, true
	}
	if to, ok := v.Aliases[k]; ok {
		return v.Models[to], true
	}
	// Pay-per-token endpoints are often named databricks-<model>.
	if p, ok := v.Models[strings.TrimPrefix(k, "databricks-")]; ok {
		return p, true
	}
	return Price{}, false
}

// Tokens are the counts a price applies to.
type Tokens struct {
	Input, Output, CacheRead, CacheCreation int64
}

// TokensOf returns the priced counts of a usage event.
func TokensOf(ev *schemas.UsageEvent) Tokens {
	return Tokens{
		Input:         ev.InputTokens,
		Output:        ev.OutputTokens,
		CacheRead:     ev.TokenDetails.CacheReadInputTokens,
		CacheCreation: ev.TokenDetails.CacheCreationInputTokens,
	}
}
