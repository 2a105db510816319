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
	if v := tags[key]; v != "" || exact {
		return v
	}
	norm := NormalizeTagKey(key)
	var bestKey, best string
	for k, v := range tags {
		if v != "" && sameTagKey(k, norm) && (best == "" || k < bestKey) {
			bestKey, best = k, v
		}
	}
	return best
}
