package enrich

import "strings"

// NormalizeTraceID reduces the spellings of one trace id to a single key, so
// that an MLflow trace id ("tr-<32 hex>", or "trace:/<location>/<32 hex>" for
// traces stored in Unity Catalog), a bare W3C trace id and a W3C traceparent
// header value ("00-<32 hex>-<16 hex>-<2 hex>") for the same trace compare
// equal. MLflow derives its trace id from the OpenTelemetry trace id, which is
// what makes this sound. A value that is none of these is returned trimmed and
// lower-cased; the empty string means no usable id.
func NormalizeTraceID(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	if hex, ok := traceparentTraceID(v); ok {
		return hex
	}
	// Prefixes in any case: lower-casing the result must not make a new
	// prefix appear (NormalizeTraceID is idempotent).
	s := strings.ToLower(v)
	switch {
	case strings.HasPrefix(s, "tr-"):
		s = s[len("tr-"):]
	case strings.HasPrefix(s, "trace:/"):
		if i := strings.LastIndexByte(s, '/'); i >= 0 {
			s = s[i+1:]
		}
	}
	if isHex(s, 32) && !allZero(s) {
		return s
	}
	return strings.ToLower(v)
}

// traceparentTraceID extracts the trace id of a W3C traceparent value:
// version "-" trace-id "-" parent-id "-" flags. Version ff is invalid, and an
// all-zero trace id means "no trace".
func traceparentTraceID(v string) (string, bool) {
	parts := strings.Split(v, "-")
	if len(parts) < 4 {
		return "", false
	}
	version, trace, parent, flags := strings.ToLower(parts[0]), strings.ToLower(parts[1]), parts[2], parts[3]
	if !isHex(version, 2) || version == "ff" || !isHex(trace, 32) || !isHex(parent, 16) || !isHex(flags, 2) {
		return "", false
	}
	// Version 00 has exactly four fields; later versions may append more.
	if version == "00" && len(parts) != 4 {
		return "", false
	}
	if allZero(trace) || allZero(parent) {
		return "", false
	}
	return trace, true
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}
