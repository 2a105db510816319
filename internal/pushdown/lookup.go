package pushdown

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	databricks "github.com/databricks/databricks-sql-go"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/internal/dbsql"
)

// PriceRow is one row of the price_list table: the price a lookup key gets
// from one version, and when that version is in force.
type PriceRow struct {
	Version            string
	ValidFrom, ValidTo time.Time // zero: unbounded
	LookupKey          string
	Price              enrich.Price
}

// PriceRows flattens a price list into the rows the pushdown SQL joins:
// per version, every key enrich.PriceList.Cost would resolve — model names,
// then aliases, then databricks-<model> — with the first that would match
// winning, and the event times the version prices.
func PriceRows(pl *enrich.PriceList) []PriceRow {
	var out []PriceRow
	for i, v := range pl.Versions {
		var from, to time.Time
		if i > 0 {
			from = v.EffectiveFrom
		}
		if i+1 < len(pl.Versions) {
			to = pl.Versions[i+1].EffectiveFrom
		}
		if !from.IsZero() && !to.IsZero() && !to.After(from) {
			continue // shadowed by a later version with the same start
		}
		keys := map[string]enrich.Price{}
		var order []string
		add := func(k string, p enrich.Price) {
			if _, taken := keys[k]; !taken && k != "" {
				keys[k] = p
				order = append(order, k)
			}
		}
		for _, m := range sortedKeys(v.Models) {
			add(m, v.Models[m])
		}
		for _, a := range sortedKeys(v.Aliases) {
			add(a, v.Models[v.Aliases[a]])
		}
		for _, m := range sortedKeys(v.Models) {
			add("databricks-"+m, v.Models[m])
		}
		for _, k := range order {
			out = append(out, PriceRow{Version: v.Version, ValidFrom: from, ValidTo: to, LookupKey: k, Price: keys[k]})
		}
	}
	return out
}

// PriceDigest identifies a price list by its content.
func PriceDigest(pl *enrich.PriceList) string {
	h := sha256.New()
	fmt.Fprintf(h, "input_excludes_cache=%v\n", pl.InputExcludesCache)
	for _, r := range PriceRows(pl) {
		fmt.Fprintf(h, "%q %d %d %q %v %v %v %v\n", r.Version, r.ValidFrom.UnixMicro(), r.ValidTo.UnixMicro(), r.LookupKey,
			r.Price.Input, r.Price.Output, r.Price.CacheRead, r.Price.CacheCreation)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// OrgDigest identifies an org directory by its content.
func OrgDigest(entries []enrich.OrgEntry) string {
	h := sha256.New()
	for _, e := range orgRows(entries) {
		fmt.Fprintf(h, "%q %q %q\n", e.EndUser, e.Team, e.CostCenter)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// orgRows keys the entries as enrich.Directory.Lookup keys them: lower-cased
// and trimmed, sorted.
func orgRows(entries []enrich.OrgEntry) []enrich.OrgEntry {
	out := make([]enrich.OrgEntry, len(entries))
	for i, e := range entries {
		out[i] = enrich.OrgEntry{EndUser: strings.ToLower(strings.TrimSpace(e.EndUser)), Team: e.Team, CostCenter: e.CostCenter}
	}
	slices.SortFunc(out, func(a, b enrich.OrgEntry) int { return strings.Compare(a.EndUser, b.EndUser) })
	return out
}

// lookupBatch bounds the rows of one lookup-table MERGE.
const lookupBatch = 200

// Load returns the statements that put the price list and org directory
// into their tables under their digests. Rows already there are left alone,
// so loading the same list again, or from two runs at once, adds nothing.
func Load(target dbsql.Schema, pl *enrich.PriceList, org []enrich.OrgEntry) []Statement {
	var out []Statement
	digest := PriceDigest(pl)
	rows := PriceRows(pl)
	ts := func(t time.Time) any {
		if t.IsZero() {
			return databricks.Parameter{Type: databricks.SqlVoid}
		}
		return databricks.Parameter{Type: databricks.SqlTimestamp, Value: t.UTC().Format("2006-01-02T15:04:05.999999Z07:00")}
	}
	for lo := 0; lo < len(rows); lo += lookupBatch {
		hi := min(lo+lookupBatch, len(rows))
		var values []string
		var args []any
		for _, r := range rows[lo:hi] {
			values = append(values, "(?, ?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, digest, r.Version, ts(r.ValidFrom), ts(r.ValidTo), r.LookupKey,
				r.Price.Input, r.Price.Output, r.Price.CacheRead, r.Price.CacheCreation)
		}
		out = append(out, Statement{SQL: `MERGE INTO ` + target.Table("price_list") + ` AS t
USING (
  SELECT digest, version, CAST(valid_from AS TIMESTAMP) AS valid_from, CAST(valid_to AS TIMESTAMP) AS valid_to, lookup_key,
    CAST(input_per_m AS DOUBLE) AS input_per_m, CAST(output_per_m AS DOUBLE) AS output_per_m,
    CAST(cache_read_per_m AS DOUBLE) AS cache_read_per_m, CAST(cache_create_per_m AS DOUBLE) AS cache_create_per_m
  FROM (VALUES ` + strings.Join(values, ", ") + `)
    AS v(digest, version, valid_from, valid_to, lookup_key, input_per_m, output_per_m, cache_read_per_m, cache_create_per_m)
) AS s
ON t.digest = s.digest AND t.version = s.version AND t.lookup_key = s.lookup_key
WHEN NOT MATCHED THEN INSERT (digest, version, valid_from, valid_to, lookup_key, input_per_m, output_per_m, cache_read_per_m, cache_create_per_m)
  VALUES (s.digest, s.version, s.valid_from, s.valid_to, s.lookup_key, s.input_per_m, s.output_per_m, s.cache_read_per_m, s.cache_create_per_m)`,
			Args: args})
	}
	if org == nil {
		return out
	}
	digest = OrgDigest(org)
	entries := orgRows(org)
	for lo := 0; lo < len(entries); lo += lookupBatch {
		hi := min(lo+lookupBatch, len(entries))
		var values []string
		var args []any
		for _, e := range entries[lo:hi] {
			values = append(values, "(?, ?, ?, ?)")
			args = append(args, digest, e.EndUser, e.Team, e.CostCenter)
		}
		out = append(out, Statement{SQL: `MERGE INTO ` + target.Table("org_directory") + ` AS t
USING (SELECT * FROM (VALUES ` + strings.Join(values, ", ") + `) AS v(digest, user_key, team, cost_center)) AS s
ON t.digest = s.digest AND t.user_key = s.user_key
WHEN NOT MATCHED THEN INSERT (digest, user_key, team, cost_center) VALUES (s.digest, s.user_key, s.team, s.cost_center)`,
			Args: args})
	}
	return out
}
