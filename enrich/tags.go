package enrich

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Request-tag keys are written by agent code, by hand, in many spellings of
// one name: Trace_Id, TRACE-ID and trace.id all mean trace_id. Unless
// MatchConfig.ExactTagKeys is set, a configured key therefore finds a tag
// whose key is the same after NormalizeTagKey. Only ASCII is folded, so
// that the warehouse SQL (translate over A–Z, '-' and '.') agrees with Go
// byte for byte.

// NormalizeTagKey lower-cases ASCII letters and writes '-' and '.' as '_'.
func NormalizeTagKey(k string) string {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c == '-' || c == '.' || 'A' <= c && c <= 'Z' {
			b := []byte(k)
			for j := i; j < len(b); j++ {
				b[j] = foldTagByte(b[j])
			}
			return string(b)
		}
	}
	return k
}

func foldTagByte(c byte) byte {
	switch {
	case c == '-' || c == '.':
		return '_'
	case 'A' <= c && c <= 'Z':
		return c + ('a' - 'A')
	}
	return c
}

// sameTagKey reports whether NormalizeTagKey(k) == norm, without allocating.
func sameTagKey(k, norm string) bool {
	if len(k) != len(norm) {
		return false
	}
	for i := 0; i < len(k); i++ {
		if foldTagByte(k[i]) != norm[i] {
			return false
		}
	}
	return true
}

// TagValue returns the non-empty value tags hold under key. The key as
// written wins; otherwise, unless exact, the value under the smallest
// (bytewise) key that normalises to the same name, so that the answer does
// not depend on map order and the SQL engine can give the same one.
func TagValue(tags map[string]string, key string, exact bool) string {
	return ReadTags(tags, exact).Value(NewTagKey(key))
}

// TagKey is a configured tag key with its normal form, computed once.
type TagKey struct {
	Name, norm string
}

// NewTagKey prepares key for lookups.
func NewTagKey(key string) TagKey { return TagKey{Name: key, norm: NormalizeTagKey(key)} }

// NewTagKeys prepares keys for lookups.
func NewTagKeys(keys []string) []TagKey {
	out := make([]TagKey, len(keys))
	for i, k := range keys {
		out[i] = NewTagKey(k)
	}
	return out
}

// TagReader looks up one event's tags. The first forgiving lookup that
// misses the key as written checks whether any key is spelled other than in
// normal form; where none is (the usual case), a forgiving lookup is two map
// lookups instead of a walk over the map.
type TagReader struct {
	tags  map[string]string
	exact bool
	fold  int8 // 0 not checked yet, 1 every key normal, 2 some key not
}

// ReadTags returns a reader over tags.
func ReadTags(tags map[string]string, exact bool) *TagReader {
	return &TagReader{tags: tags, exact: exact}
}

// Value is TagValue for a prepared key.
func (r *TagReader) Value(key TagKey) string {
	if v := r.tags[key.Name]; v != "" || r.exact || len(r.tags) == 0 {
		return v
	}
	if r.fold == 0 {
		r.fold = 1
		for k := range r.tags {
			if !isNormalTagKey(k) {
				r.fold = 2
				break
			}
		}
	}
	if r.fold == 1 {
		// Every key is its own normal form: only the normal form itself can
		// match.
		return r.tags[key.norm]
	}
	var bestKey, best string
	for k, v := range r.tags {
		if v != "" && sameTagKey(k, key.norm) && (best == "" || k < bestKey) {
			bestKey, best = k, v
		}
	}
	return best
}

func isNormalTagKey(k string) bool {
	for i := 0; i < len(k); i++ {
		if foldTagByte(k[i]) != k[i] {
			return false
		}
	}
	return true
}

// TagKeyNote says how a tag key seen in usage rows relates to a configured
// key it is not exactly.
type TagKeyNote struct {
	Seen, Configured string
	Rows             int64
	// SameName is true when Seen and Configured are the same after
	// NormalizeTagKey; Matched when the lookup finds Seen under Configured
	// (the same name, and forgiving keys).
	SameName, Matched bool
}

func (n TagKeyNote) String() string {
	if n.Matched {
		return fmt.Sprintf("tag %q (%d rows) is read as %q (forgiving tag keys)", n.Seen, n.Rows, n.Configured)
	}
	if n.SameName {
		return fmt.Sprintf("tag %q (%d rows) is NOT read as %q: match.exact_tag_keys is on; turn it off or add the key to the match tag keys", n.Seen, n.Rows, n.Configured)
	}
	return fmt.Sprintf("tag %q (%d rows) is NOT read: it almost matches %q; add it to the match tag keys if it means the same", n.Seen, n.Rows, n.Configured)
}

// NearTagKeys lists the seen keys (with their row counts) that are spelled
// like a configured key but not exactly: the same after NormalizeTagKey, or
// one edit away from it (two for names of 8 bytes or more), or the same
// without separators. Most rows first.
func NearTagKeys(seen map[string]int64, configured []string, exact bool) []TagKeyNote {
	var out []TagKeyNote
	for k, rows := range seen {
		if slices.Contains(configured, k) {
			continue
		}
		nk := NormalizeTagKey(k)
		for _, c := range configured {
			nc := NormalizeTagKey(c)
			switch {
			case nk == nc:
				out = append(out, TagKeyNote{Seen: k, Configured: c, Rows: rows, SameName: true, Matched: !exact})
			case nearName(nk, nc):
				out = append(out, TagKeyNote{Seen: k, Configured: c, Rows: rows})
			default:
				continue
			}
			break
		}
	}
	slices.SortFunc(out, func(a, b TagKeyNote) int {
		if c := cmp.Compare(b.Rows, a.Rows); c != 0 {
			return c
		}
		return cmp.Compare(a.Seen, b.Seen)
	})
	return out
}

func nearName(a, b string) bool {
	if strings.ReplaceAll(a, "_", "") == strings.ReplaceAll(b, "_", "") {
		return true
	}
	limit := 1
	if len(b) >= 8 {
		limit = 2
	}
	return len(b) >= 4 && editDistance(a, b) <= limit
}

// editDistance is the Levenshtein distance between two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
