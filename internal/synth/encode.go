package synth

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// recEnc writes one record as a JSON object or a CSV line, field by field, in
// the order the fields are written. CSV headers come from columns.go;
// TestColumnsMatchEncoders keeps the encoders in that order.
type recEnc struct {
	csv bool
	b   []byte
	n   int // fields written in this record
}

func (e *recEnc) begin() {
	e.n = 0
	if !e.csv {
		e.b = append(e.b, '{')
	}
}

func (e *recEnc) end() {
	if !e.csv {
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, '\n')
}

func (e *recEnc) key(name string) {
	if e.n > 0 {
		e.b = append(e.b, ',')
	}
	e.n++
	if !e.csv {
		e.b = appendJSONString(e.b, name)
		e.b = append(e.b, ':')
	}
}

func (e *recEnc) str(name, v string) {
	e.key(name)
	if e.csv {
		e.b = appendCSVField(e.b, v)
	} else {
		e.b = appendJSONString(e.b, v)
	}
}

// uuid writes an id in UUID form; ids need no escaping or CSV quoting.
func (e *recEnc) uuid(name string, id id128) {
	e.key(name)
	if !e.csv {
		e.b = append(e.b, '"')
	}
	e.b = id.appendUUID(e.b)
	if !e.csv {
		e.b = append(e.b, '"')
	}
}

// traceID writes an id as an MLflow trace id.
func (e *recEnc) traceID(name string, id id128) {
	e.key(name)
	if !e.csv {
		e.b = append(e.b, '"')
	}
	e.b = append(e.b, "tr-"...)
	e.b = id.appendHex(e.b)
	if !e.csv {
		e.b = append(e.b, '"')
	}
}

func (e *recEnc) int(name string, v int64) {
	e.key(name)
	e.b = strconv.AppendInt(e.b, v, 10)
}

func (e *recEnc) bool(name string, v bool) {
	e.key(name)
	e.b = strconv.AppendBool(e.b, v)
}

// ts writes a timestamp given in Unix microseconds, RFC 3339 in UTC.
func (e *recEnc) ts(name string, us int64) {
	e.key(name)
	if !e.csv {
		e.b = append(e.b, '"')
	}
	e.b = time.UnixMicro(us).UTC().AppendFormat(e.b, time.RFC3339Nano)
	if !e.csv {
		e.b = append(e.b, '"')
	}
}

// rawJSON writes a field whose value is JSON text (a map or a struct). With
// omitEmpty, JSON leaves an empty value out, as the schemas' omitempty does;
// CSV always leaves the field empty, which readers take as NULL.
func (e *recEnc) rawJSON(name string, v []byte, omitEmpty bool) {
	if len(v) == 0 && omitEmpty && !e.csv {
		return
	}
	e.key(name)
	switch {
	case len(v) == 0:
		if !e.csv {
			e.b = append(e.b, "null"...)
		}
	case e.csv:
		e.b = appendCSVField(e.b, string(v))
	default:
		e.b = append(e.b, v...)
	}
}

// csvHeader is the header line for a table's columns.
func csvHeader(cols []column) []byte {
	var b []byte
	for i, c := range cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCSVField(b, c.name)
	}
	return append(b, '\n')
}

func appendCSVField(b []byte, s string) []byte {
	quote := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ',', '"', '\n', '\r':
			quote = true
		}
	}
	if !quote {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// appendJSONString quotes s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			b = append(b, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// appendStringMap writes a map given as key-sorted pairs as a JSON object.
func appendStringMap(b []byte, kv [][2]string) []byte {
	b = append(b, '{')
	for i, p := range kv {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, p[0])
		b = append(b, ':')
		b = appendJSONString(b, p[1])
	}
	return append(b, '}')
}
