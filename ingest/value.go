package ingest

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/obolus/obolus/schemas"
)

// vkind says what a column value carried. JSON gives text kinds; CSV gives
// only vString; Parquet and database rows give the typed kinds.
type vkind uint8

const (
	vNull    vkind = iota
	vString        // text: string contents (UTF-8 checked)
	vNumber        // text: a JSON number literal
	vBool          // b
	vObject        // text: a raw JSON object
	vArray         // text: a raw JSON array
	vInt           // i
	vFloat         // f
	vTime          // t
	vPairs         // pairs: a typed map or struct (Parquet, database)
	vInvalid       // text: a string that is not valid UTF-8
)

// value is one column of one row, whatever the input format. Every format is
// turned into values and then through the same field rules, so a CSV cell, a
// Parquet cell and a JSON member with the same content decode the same way.
//
// text may alias the input (a file buffer, an Arrow array): it is valid only
// until the next row and must be copied by whatever keeps it.
type value struct {
	k     vkind
	b     bool
	text  []byte
	i     int64
	f     float64
	t     time.Time
	pairs []pair
}

type pair struct {
	key string
	val value
}

// empty reports whether the value carries nothing: NULL or an empty string.
// Empty values are never applied, so they leave the field at its zero value.
func (v *value) empty() bool {
	return v.k == vNull || (v.k == vString && len(v.text) == 0)
}

// bytesOf views s as bytes without copying; the bytes must not be modified.
func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// stringValue makes a vString (or vInvalid for bad UTF-8) from s without copying.
func stringValue(s string) value {
	if !utf8.ValidString(s) {
		return value{k: vInvalid, text: bytesOf(s)}
	}
	return value{k: vString, text: bytesOf(s)}
}

// FieldError is why a record cannot be used: the field (column) at fault and
// the reason. Field is empty when the record as a whole is malformed.
type FieldError struct{ Field, Reason string }

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return fmt.Sprintf("field %q: %s", e.Field, e.Reason)
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// shown renders a bad value for an error message, bounded so one huge value
// cannot bloat a dead letter.
func (v *value) shown() string {
	const max = 64
	switch v.k {
	case vInt:
		return strconv.FormatInt(v.i, 10)
	case vFloat:
		return strconv.FormatFloat(v.f, 'g', -1, 64)
	case vBool:
		return strconv.FormatBool(v.b)
	case vTime:
		return v.t.Format(time.RFC3339Nano)
	case vPairs:
		return "a map or struct"
	}
	s := string(v.text)
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	if v.k == vObject || v.k == vArray || v.k == vNumber {
		return strings.ToValidUTF8(s, "\uFFFD") // JSON text shows as itself
	}
	return strconv.Quote(s)
}

// decoder holds the scratch space of one decoding goroutine.
type decoder struct {
	sub    []byte       // scratch for nested JSON (a map held in a string)
	intern *internCache // nil: no interning
	val    value        // the value being applied

	// Rows that are converted before they are kept.
	legacy  schemas.LegacyUsage
	payload schemas.PayloadRow
	trace   schemas.TraceRow
	span    schemas.SpanRow

	// spanKeys are the attribute keys span rows are read with (the source's).
	spanKeys *schemas.SpanKeys
	// rowBuf, attrBuf and memberBuf hold unescaped strings of a JSON row, of
	// span attributes and of struct members (status, resource).
	rowBuf, attrBuf, memberBuf []byte
}

// internCache shares one copy of strings that repeat across rows (workspace,
// endpoint, requester, map keys): fewer allocations and less memory per
// batch. It is lossy — a direct-mapped table where a new string evicts the
// one in its slot — so it costs one hash and one compare, never grows, and
// high-cardinality values cannot flood it.
type internCache [1024]string

func (d *decoder) str(b []byte) string { return string(b) }

// common copies b into a string the record may keep, sharing repeated values.
func (d *decoder) common(b []byte) string {
	if d.intern == nil || len(b) > 64 {
		return string(b)
	}
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	slot := &d.intern[h&(uint32(len(d.intern))-1)]
	if *slot == string(b) {
		return *slot
	}
	*slot = string(b)
	return *slot
}

// asString converts a value to a string. Numbers are taken as their text:
// some exports write numeric ids (workspace_id) unquoted.
func (d *decoder) asString(field string, v *value, intern bool) (string, error) {
	switch v.k {
	case vNull:
		return "", nil
	case vString, vNumber:
		if intern {
			return d.common(v.text), nil
		}
		return d.str(v.text), nil
	case vInt:
		return strconv.FormatInt(v.i, 10), nil
	default:
		return "", fieldErr(field, "not a string: %s", v.shown())
	}
}

// asInt converts a value to an integer: a JSON number, a numeric string or a
// typed integer. Integral floats ("12.0", 1.2e3) are accepted because some
// exports type every number as double.
func (d *decoder) asInt(field string, v *value) (int64, error) {
	switch v.k {
	case vNull:
		return 0, nil
	case vInt:
		return v.i, nil
	case vFloat:
		return floatInt(field, v, v.f)
	case vNumber, vString:
		t := v.text
		if v.k == vString {
			t = bytes.TrimSpace(t)
			if len(t) == 0 {
				return 0, nil
			}
		}
		if n, ok := fastInt(t); ok {
			return n, nil
		}
		if n, err := strconv.ParseInt(string(t), 10, 64); err == nil {
			return n, nil
		}
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil {
			return 0, fieldErr(field, "not a number: %s", v.shown())
		}
		return floatInt(field, v, f)
	default:
		return 0, fieldErr(field, "not a number: %s", v.shown())
	}
}

func floatInt(field string, v *value, f float64) (int64, error) {
	if f != math.Trunc(f) || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fieldErr(field, "not an integer: %s", v.shown())
	}
	if f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, fieldErr(field, "out of range: %s", v.shown())
	}
	return int64(f), nil
}

// fastInt parses a plain decimal integer of up to 18 digits.
func fastInt(t []byte) (int64, bool) {
	neg := false
	if len(t) > 0 && t[0] == '-' {
		neg, t = true, t[1:]
	}
	if len(t) == 0 || len(t) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range t {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// asCount is a token count (or a duration): NULL is 0, negative is an error.
func (d *decoder) asCount(field string, v *value) (int64, error) {
	n, err := d.asInt(field, v)
	if err == nil && n < 0 {
		return 0, fieldErr(field, "negative: %d", n)
	}
	return n, err
}

func (d *decoder) asInt32(field string, v *value) (int32, error) {
	n, err := d.asInt(field, v)
	if err == nil && (n < math.MinInt32 || n > math.MaxInt32) {
		return 0, fieldErr(field, "out of range: %d", n)
	}
	return int32(n), err
}

func (d *decoder) asBool(field string, v *value) (bool, error) {
	switch v.k {
	case vNull:
		return false, nil
	case vBool:
		return v.b, nil
	case vInt:
		if v.i == 0 || v.i == 1 {
			return v.i == 1, nil
		}
	case vString, vNumber:
		if b, err := strconv.ParseBool(string(bytes.TrimSpace(v.text))); err == nil {
			return b, nil
		}
	}
	return false, fieldErr(field, "not a boolean: %s", v.shown())
}

// asTime converts a value to a UTC time. See parseTimestamp for the text forms;
// integers are epoch milliseconds.
func (d *decoder) asTime(field string, v *value) (time.Time, error) {
	switch v.k {
	case vNull:
		return time.Time{}, nil
	case vTime:
		return v.t.UTC(), nil
	case vInt:
		return time.UnixMilli(v.i).UTC(), nil
	case vFloat:
		ms, err := floatInt(field, v, v.f)
		if err != nil {
			return time.Time{}, fieldErr(field, "not a timestamp: %s", v.shown())
		}
		return time.UnixMilli(ms).UTC(), nil
	case vNumber:
		ms, err := d.asInt(field, v)
		if err != nil {
			return time.Time{}, fieldErr(field, "not a timestamp: %s", v.shown())
		}
		return time.UnixMilli(ms).UTC(), nil
	case vString:
		t := bytes.TrimSpace(v.text)
		if ms, ok := fastInt(t); ok {
			return time.UnixMilli(ms).UTC(), nil
		}
		if ts, ok := parseTimestamp(t); ok {
			return ts, nil
		}
	}
	return time.Time{}, fieldErr(field, "not a timestamp: %s", v.shown())
}

// parseTimestamp reads `YYYY-MM-DD[T ]hh:mm:ss[.f{1,9}][zone]`, where zone is
// Z, UTC, ±hh, ±hhmm or ±hh:mm, optionally after one space. No zone means UTC,
// which is how Databricks exports TIMESTAMP columns. RFC 3339 is a subset.
func parseTimestamp(b []byte) (time.Time, bool) {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	if c := b[10]; c != 'T' && c != 't' && c != ' ' {
		return time.Time{}, false
	}
	year, ok1 := digitsN(b[0:4])
	month, ok2 := digitsN(b[5:7])
	day, ok3 := digitsN(b[8:10])
	hour, ok4 := digitsN(b[11:13])
	minute, ok5 := digitsN(b[14:16])
	sec, ok6 := digitsN(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	rest := b[19:]
	nsec := 0
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		frac := rest[1:n]
		if len(frac) == 0 || len(frac) > 9 {
			return time.Time{}, false
		}
		f, _ := digitsN(frac)
		for i := len(frac); i < 9; i++ {
			f *= 10
		}
		nsec, rest = f, rest[n:]
	}
	offset, ok := parseZone(rest)
	if !ok {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), true
}

// parseZone returns the zone's offset east of UTC in seconds.
func parseZone(z []byte) (int, bool) {
	if len(z) > 0 && z[0] == ' ' {
		z = z[1:]
	}
	switch string(z) {
	case "", "Z", "z", "UTC":
		return 0, true
	}
	if z[0] != '+' && z[0] != '-' {
		return 0, false
	}
	sign := 1
	if z[0] == '-' {
		sign = -1
	}
	z = z[1:]
	var hh, mm int
	var ok bool
	switch {
	case len(z) == 2:
		hh, ok = digitsN(z)
	case len(z) == 4:
		hh, ok = digitsN(z[:2])
		if ok {
			mm, ok = digitsN(z[2:])
		}
	case len(z) == 5 && z[2] == ':':
		hh, ok = digitsN(z[:2])
		if ok {
			mm, ok = digitsN(z[3:])
		}
	}
	if !ok || hh > 23 || mm > 59 {
		return 0, false
	}
	return sign * (hh*3600 + mm*60), true
}

func digitsN(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// asDurationMS reads a duration in milliseconds: an integer, or a protobuf
// JSON duration such as "1.25s" (MLflow's TraceInfo.to_dict writes those).
// Its plausibility is Limits' to judge, after decoding.
func (d *decoder) asDurationMS(field string, v *value) (int64, error) {
	if v.k == vString {
		t := bytes.TrimSpace(v.text)
		if len(t) > 1 && t[len(t)-1] == 's' {
			secs, err := strconv.ParseFloat(string(t[:len(t)-1]), 64)
			if err != nil || math.IsNaN(secs) || math.IsInf(secs, 0) || secs > math.MaxInt64/1000 {
				return 0, fieldErr(field, "not a duration: %s", v.shown())
			}
			if secs < 0 {
				return 0, fieldErr(field, "negative: %s", v.shown())
			}
			return int64(math.Round(secs * 1000)), nil
		}
	}
	return d.asCount(field, v)
}

// asMap converts a map column: a JSON object, a JSON string holding one, an
// array of {"key","value"} pairs (Spark's map-as-array export) or a typed map.
// Values must be strings; NULL values are dropped (Spark maps allow them, and
// they carry nothing). An empty map comes back nil.
func (d *decoder) asMap(field string, v *value) (map[string]string, error) {
	switch v.k {
	case vNull:
		return nil, nil
	case vObject, vArray:
		return d.jsonMap(field, v.text)
	case vString:
		t := bytes.TrimSpace(v.text)
		if len(t) == 0 || string(t) == "null" {
			return nil, nil
		}
		if t[0] == '{' || t[0] == '[' {
			// The text may live in the caller's scratch buffer; parse from a copy
			// in d.sub so that nested string unescaping cannot overwrite it.
			d.sub = append(d.sub[:0], t...)
			return d.jsonMap(field, d.sub)
		}
	case vPairs:
		if len(v.pairs) == 0 {
			return nil, nil
		}
		m := make(map[string]string, len(v.pairs))
		for i := range v.pairs {
			p := &v.pairs[i]
			switch p.val.k {
			case vNull:
			case vString:
				m[d.common(bytesOf(p.key))] = d.str(p.val.text)
			case vInvalid:
				return nil, fieldErr(field, "value of key %q: invalid UTF-8", strings.ToValidUTF8(p.key, "\uFFFD"))
			default:
				return nil, fieldErr(field, "value of key %q is not a string: %s", p.key, p.val.shown())
			}
		}
		if len(m) == 0 {
			return nil, nil
		}
		return m, nil
	case vInvalid:
		return nil, fieldErr(field, "invalid UTF-8")
	}
	return nil, fieldErr(field, "not a map: %s", v.shown())
}

func (d *decoder) jsonMap(field string, raw []byte) (map[string]string, error) {
	s := scanner{b: raw}
	var m map[string]string
	put := func(k string, v *value) error {
		switch v.k {
		case vNull:
			return nil
		case vString:
			if m == nil {
				m = make(map[string]string, 4)
			}
			m[k] = d.str(v.text)
			return nil
		}
		return fieldErr(field, "value of key %q is not a string: %s", k, v.shown())
	}
	var err error
	if s.peek() == '{' {
		err = s.objectMembers(func(key []byte) error {
			k := d.common(key) // copy before readValue reuses the buffer
			var v value
			if err := s.readValue(&v); err != nil {
				return err
			}
			return put(k, &v)
		})
	} else {
		err = s.arrayElements(func() error {
			var k string
			var val value
			haveKey := false
			if s.peek() != '{' {
				return fieldErr(field, "map entry is not a {\"key\",\"value\"} object")
			}
			err := s.objectMembers(func(name []byte) error {
				var v value
				switch string(name) {
				case "key":
					if err := s.readValue(&v); err != nil {
						return err
					}
					if v.k != vString {
						return fieldErr(field, "map key is not a string: %s", v.shown())
					}
					k, haveKey = d.common(v.text), true
				case "value":
					if err := s.readValue(&v); err != nil {
						return err
					}
					if v.k == vString {
						v.text = append([]byte(nil), v.text...) // outlive the next readString
					}
					val = v
				default:
					return s.skip(0)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if !haveKey {
				return fieldErr(field, "map entry has no \"key\"")
			}
			return put(k, &val)
		})
	}
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return nil, nestedErr(field, err)
	}
	return m, nil
}

// nestedErr names the field for errors found inside a nested JSON value.
func nestedErr(field string, err error) error {
	switch e := err.(type) {
	case *FieldError:
		return e
	case utf8Error:
		return &FieldError{Field: field, Reason: "invalid UTF-8"}
	default:
		return &FieldError{Field: field, Reason: err.Error()}
	}
}

// asTokenDetails converts the token_details struct: a JSON object, a JSON
// string holding one, or a typed struct. Unknown members are ignored.
func (d *decoder) asTokenDetails(field string, v *value) (schemas.TokenDetails, error) {
	var td schemas.TokenDetails
	raw := v.text
	switch v.k {
	case vNull:
		return td, nil
	case vPairs:
		for i := range v.pairs {
			if dst, name := tokenMember(&td, bytesOf(v.pairs[i].key)); dst != nil {
				n, err := d.asCount(name, &v.pairs[i].val)
				if err != nil {
					return schemas.TokenDetails{}, err
				}
				*dst = n
			}
		}
		return td, nil
	case vString:
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || string(raw) == "null" {
			return td, nil
		}
		if raw[0] != '{' {
			return td, fieldErr(field, "not an object: %s", v.shown())
		}
		d.sub = append(d.sub[:0], raw...)
		raw = d.sub
	case vObject:
	case vInvalid:
		return td, fieldErr(field, "invalid UTF-8")
	default:
		return td, fieldErr(field, "not an object: %s", v.shown())
	}
	s := scanner{b: raw}
	var mv value
	err := s.objectMembers(func(key []byte) error {
		dst, name := tokenMember(&td, key)
		if dst == nil {
			return s.skip(0)
		}
		if err := s.readValue(&mv); err != nil {
			return err
		}
		n, err := d.asCount(name, &mv)
		*dst = n
		return err
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return schemas.TokenDetails{}, nestedErr(field, err)
	}
	return td, nil
}

// tokenMember finds the token_details member named key, and the name errors
// about it carry.
func tokenMember(td *schemas.TokenDetails, key []byte) (*int64, string) {
	switch string(key) {
	case "cache_read_input_tokens":
		return &td.CacheReadInputTokens, "token_details.cache_read_input_tokens"
	case "cache_creation_input_tokens":
		return &td.CacheCreationInputTokens, "token_details.cache_creation_input_tokens"
	case "output_reasoning_tokens":
		return &td.OutputReasoningTokens, "token_details.output_reasoning_tokens"
	}
	return nil, ""
}
