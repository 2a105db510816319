package ingest

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// renderRow writes a row of named values as a JSON object, for the Record of
// a dead letter from a typed source (Parquet, a table).
func renderRow(names []string, vals []value) []byte {
	b := make([]byte, 0, 256)
	b = append(b, '{')
	for j := range vals {
		if j > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, names[j])
		b = append(b, ':')
		b = appendValue(b, &vals[j])
	}
	return append(b, '}')
}

func appendValue(b []byte, v *value) []byte {
	switch v.k {
	case vNull:
		return append(b, "null"...)
	case vString, vInvalid:
		return appendJSONString(b, string(v.text))
	case vNumber, vObject, vArray:
		return append(b, v.text...)
	case vBool:
		return strconv.AppendBool(b, v.b)
	case vInt:
		return strconv.AppendInt(b, v.i, 10)
	case vFloat:
		if math.IsNaN(v.f) || math.IsInf(v.f, 0) {
			return appendJSONString(b, strconv.FormatFloat(v.f, 'g', -1, 64))
		}
		return strconv.AppendFloat(b, v.f, 'g', -1, 64)
	case vTime:
		return appendJSONString(b, v.t.UTC().Format(time.RFC3339Nano))
	case vPairs:
		b = append(b, '{')
		for i := range v.pairs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, v.pairs[i].key)
			b = append(b, ':')
			b = appendValue(b, &v.pairs[i].val)
		}
		return append(b, '}')
	}
	return append(b, "null"...)
}

// appendJSONString quotes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, "\ufffd"...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}
