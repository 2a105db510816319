package enrich

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
