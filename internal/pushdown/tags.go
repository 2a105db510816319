package pushdown

import (
	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/schemas"
)

// foldTagKey is enrich.NormalizeTagKey in SQL: translate folds ASCII case
// and writes '-' and '.' as '_', byte for byte as Go does.
func foldTagKey(expr string) string {
	return "translate(" + expr + ", 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__')"
}

// tagLookup writes enrich.TagValue for one configured key over a
// MAP<STRING, STRING> expression: the value under the key as written, else
// (forgiving keys) the value under the smallest key that folds to the same
// name. NULL where there is none.
type tagLookup struct {
	key, norm string // bound parameter markers
	exact     bool
}

func newTagLookup(p *params, name, key string, exact bool) tagLookup {
	l := tagLookup{key: p.bind(name, key), exact: exact}
	if !exact {
		l.norm = p.bind(name+"_norm", enrich.NormalizeTagKey(key))
	}
	return l
}

// TagLookupSQL is the SQL for enrich.TagValue over the map expression m,
// with the key and its normal form bound as keyParam and normParam (":name"
// markers); NULL where the map holds no value.
func TagLookupSQL(m, keyParam, normParam string, exact bool) string {
	return tagLookup{key: keyParam, norm: normParam, exact: exact}.inMap(m, "")
}

// FoldedTagKeysSQL is every key of the map expression m folded
// (foldTagKey), each between chr(1)s: a key folds to a name exactly when
// this string contains that name between chr(1)s. A row computes it once,
// and each forgiving lookup then tests it before it folds the map's keys one
// by one: that per-key fold is a lambda per row and lookup, and it made the
// lookups the costliest step of a pushdown run (4 s of 6 s on 270,000
// rows in the local warehouse).
func FoldedTagKeysSQL(m string) string {
	return foldTagKey("concat(chr(1), array_join(map_keys(" + m + "), chr(1)), chr(1))")
}

// smallestKey is the smallest key of m that folds to the configured name and
// holds a value, or NULL.
func (l tagLookup) smallestKey(m string) string {
	return "array_min(filter(map_keys(" + m + "), tag_key -> " + foldTagKey("tag_key") + " = " + l.norm +
		" AND " + m + "[tag_key] <> ''))"
}

// inMap is the lookup over a request_tags map; folded is the row's
// FoldedTagKeysSQL of m as a column, or "" to compute it here.
func (l tagLookup) inMap(m, folded string) string {
	exact := "nullif(" + m + "[" + l.key + "], '')"
	if l.exact {
		return exact
	}
	if folded == "" {
		folded = FoldedTagKeysSQL(m)
	}
	// The key as written first; then, only where some key of the map folds
	// to the name, the smallest such key. CASE evaluates a branch only for
	// the rows that reach it.
	return "CASE WHEN " + exact + " IS NOT NULL THEN " + exact +
		"\n      WHEN coalesce(instr(" + folded + ", concat(chr(1), " + l.norm + ", chr(1))), 0) = 0 THEN NULL" +
		"\n      ELSE nullif(" + m + "[" + l.smallestKey(m) + "], '') END"
}

// inLegacy is the lookup over a legacy row, whose tags are usage_context
// (ctx, "" when the table has none) plus client_request_id (cid) under
// schemas.LegacyClientRequestIDTag unless usage_context has that key: see
// schemas.LegacyUsage.UsageEvent. key is the configured key as written.
func (l tagLookup) inLegacy(ctx, folded, cid, key string) string {
	own := schemas.LegacyClientRequestIDTag
	ownMatches := key == own || !l.exact && enrich.NormalizeTagKey(key) == own
	if ctx == "" {
		if !ownMatches {
			return "CAST(NULL AS STRING)"
		}
		return "nullif(" + cid + ", '')"
	}
	if !ownMatches {
		return l.inMap(ctx, folded)
	}
	if l.exact {
		return "nullif(coalesce(" + ctx + "[" + l.key + "], " + cid + "), '')"
	}
	// The own key is present when usage_context lacks it and it has a value.
	present := "(NOT coalesce(array_contains(map_keys(" + ctx + "), '" + own + "'), false) AND " + cid + " <> '')"
	exact := "nullif(" + ctx + "[" + l.key + "], '')"
	smallest := l.smallestKey(ctx)
	b := "nullif(CASE\n      WHEN " + exact + " IS NOT NULL THEN " + ctx + "[" + l.key + "]\n"
	if key == own {
		b += "      WHEN " + present + " THEN " + cid + "\n"
	}
	b += "      WHEN " + present + " AND (" + smallest + " IS NULL OR '" + own + "' < " + smallest + ") THEN " + cid + "\n" +
		"      ELSE " + ctx + "[" + smallest + "]\n    END, '')"
	return b
}
