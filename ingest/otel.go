package ingest

import (
	"bytes"
	"errors"
	"strconv"
	"time"
	"unsafe"

	"github.com/obolus/obolus/schemas"
)

// OpenTelemetry span rows (KindOTelSpans): MLflow 3 traces in Unity Catalog
// (`{prefix}_otel_spans`), one span a row. Two layouts are read alike:
//   - v2: attributes VARIANT, resource STRUCT<attributes VARIANT, ...>. A
//     VARIANT reaches obolus as JSON: an object in JSON Lines, JSON text in a
//     string column (Parquet, CSV, a warehouse's result).
//   - v1: attributes MAP<STRING,STRING>, resource STRUCT<attributes MAP<...>>.
//
// start_time_unix_nano and end_time_unix_nano are integers of nanoseconds
// since the epoch (or numeric strings, as OTLP JSON writes 64-bit integers);
// a timestamp text is accepted too. status is STRUCT<message, code>.
var spanFields = newFieldSet(
	required(fStr("trace_id", func(s *schemas.SpanRow) *string { return &s.TraceID })),
	required(fStr("span_id", func(s *schemas.SpanRow) *string { return &s.SpanID })),
	fStr("parent_span_id", func(s *schemas.SpanRow) *string { return &s.ParentSpanID }),
	fCommon("name", func(s *schemas.SpanRow) *string { return &s.Name }),
	fCommon("kind", func(s *schemas.SpanRow) *string { return &s.Kind }),
	required(field[schemas.SpanRow]{name: "start_time_unix_nano", set: func(d *decoder, s *schemas.SpanRow, n string, v *value) (err error) {
		s.StartTime, err = d.asUnixNano(n, v)
		return err
	}}),
	required(field[schemas.SpanRow]{name: "end_time_unix_nano", set: func(d *decoder, s *schemas.SpanRow, n string, v *value) (err error) {
		s.EndTime, err = d.asUnixNano(n, v)
		return err
	}}),
	field[schemas.SpanRow]{name: "attributes", set: func(d *decoder, s *schemas.SpanRow, n string, v *value) (err error) {
		s.Attributes, err = d.asAttrs(n, v, false)
		return err
	}},
	field[schemas.SpanRow]{name: "status", set: func(d *decoder, s *schemas.SpanRow, n string, v *value) error {
		if v.k == vString && !bytes.HasPrefix(bytes.TrimSpace(v.text), []byte("{")) {
			s.StatusCode = d.common(bytes.TrimSpace(v.text)) // a bare code
			return nil
		}
		return d.member(n, v, "code", func(m *value) (err error) {
			s.StatusCode, err = d.asString(n+".code", m, true)
			return err
		})
	}},
	field[schemas.SpanRow]{name: "resource", set: func(d *decoder, s *schemas.SpanRow, n string, v *value) error {
		return d.member(n, v, "attributes", func(m *value) (err error) {
			s.ResourceAttributes, err = d.asAttrs(n+".attributes", m, true)
			return err
		})
	}},
)

// ErrSpanSkipped marks a span that stands for no agent request (a child span
// naming no user): counted in Stats.Skipped, neither emitted nor dead.
var ErrSpanSkipped = errors.New("span stands for no agent request")

// errSkipped is ErrSpanSkipped under the name the readers compare with.
var errSkipped = ErrSpanSkipped

// DecodeSpanRequest decodes one span row given as a JSON object, in the
// layout of a span table (v1 or v2, see spanFields), into the agent request
// it stands for: the same decoder and the same rules as the otel_spans
// source, for callers that get spans one at a time (the stream). endpoint
// names the agent as a source's agent_endpoint does ("": the span's
// resource names it); principal, when set, is asked for the service
// principal of the agent the span names, which wins over the span's
// resource as a source's service_principal does. A span that stands for no
// agent request returns ErrSpanSkipped; a malformed one a *FieldError.
// Safe for concurrent use.
func DecodeSpanRequest(b []byte, keys *schemas.SpanKeys, endpoint string, principal func(agentEndpoint string) string) (schemas.AgentRequest, error) {
	d := decoders.Get().(*decoder)
	defer decoders.Put(d)
	d.span, d.spanKeys = schemas.SpanRow{}, keys
	defer func() { d.spanKeys = nil }()
	if err := decodeJSON(d, spanFields, b, &d.span); err != nil {
		return schemas.AgentRequest{}, err
	}
	sp := ""
	if principal != nil {
		sp = principal(d.span.AgentEndpoint(endpoint, keys))
	}
	var r schemas.AgentRequest
	if err := d.spanRequest(endpoint, sp, &r); err != nil {
		return schemas.AgentRequest{}, err
	}
	return r, nil
}

// spanRequest turns the decoded span in d.span into dst, or reports why not.
func (d *decoder) spanRequest(endpoint, sp string, dst *schemas.AgentRequest) error {
	s := &d.span
	if s.EndTime.Before(s.StartTime) {
		return fieldErr("end_time_unix_nano", "%s is before start_time_unix_nano %s",
			s.EndTime.Format(time.RFC3339Nano), s.StartTime.Format(time.RFC3339Nano))
	}
	r, ok := s.AgentRequest(endpoint, sp, d.spanKeys)
	if !ok {
		return errSkipped
	}
	if r.ServicePrincipal == "" && r.GatewayLinkID == "" {
		key := d.spanKeys.ServicePrincipal
		return fieldErr("resource.attributes."+key, "missing: the source names no service_principal, so the span's resource must")
	}
	*dst = r
	return nil
}

// asUnixNano reads a time given in nanoseconds since the epoch: an integer,
// a numeric string, or (from exports that render it) a timestamp.
func (d *decoder) asUnixNano(field string, v *value) (time.Time, error) {
	switch v.k {
	case vNull:
		return time.Time{}, nil
	case vTime:
		return v.t.UTC(), nil
	case vString:
		if ts, ok := parseTimestamp(bytes.TrimSpace(v.text)); ok {
			return ts, nil
		}
	}
	n, err := d.asInt(field, v)
	if err != nil || n <= 0 {
		return time.Time{}, fieldErr(field, "not a time in nanoseconds since the epoch: %s", v.shown())
	}
	return time.Unix(0, n).UTC(), nil
}

// asAttrs reads an attribute map, keeping only the keys d.spanKeys wants of
// span attributes, or with resource of resource attributes (a span's
// attributes can hold whole prompts): a typed map or struct (v1's MAP, a
// database's VARIANT as a Go map), a JSON object, or a JSON string holding
// one (v2's VARIANT). Unlike a MAP<STRING,STRING> column, a VARIANT's values
// may be numbers or booleans, kept as their text, or nested, skipped: no
// identity is a list. A string value that is itself JSON-encoded — MLflow
// writes every span attribute through json.dumps, so a user reads
// "\"ann@example.com\"" — is decoded once.
func (d *decoder) asAttrs(field string, v *value, resource bool) (map[string]string, error) {
	switch v.k {
	case vNull:
		return nil, nil
	case vObject:
		return d.jsonAttrs(field, v.text, resource)
	case vArray:
		m, err := d.asMap(field, v) // Spark's map-as-array export of a MAP
		for k := range m {
			if !d.wantAttr(k, resource) {
				delete(m, k)
			}
		}
		return m, err
	case vString:
		t := bytes.TrimSpace(v.text)
		if len(t) == 0 || string(t) == "null" {
			return nil, nil
		}
		if t[0] == '{' {
			return d.jsonAttrs(field, bytes.Clone(t), resource)
		}
	case vPairs:
		var m map[string]string
		for i := range v.pairs {
			p := &v.pairs[i]
			if p.val.k == vInvalid {
				return nil, fieldErr(field, "value of key %q: invalid UTF-8", p.key)
			}
			if !d.wantAttr(p.key, resource) {
				continue
			}
			if s, ok := attrText(&p.val); ok {
				if m == nil {
					m = make(map[string]string, 2)
				}
				m[d.common(bytesOf(p.key))] = s
			}
		}
		return m, nil
	case vInvalid:
		return nil, fieldErr(field, "invalid UTF-8")
	}
	return nil, fieldErr(field, "not a map: %s", v.shown())
}

// wantAttr reports whether a span (or with resource, a resource) attribute
// is one the span keys read. key is only looked at, never kept.
func (d *decoder) wantAttr(key string, resource bool) bool {
	if resource {
		return d.spanKeys.WantedResource(key)
	}
	return d.spanKeys.Wanted(key)
}

func (d *decoder) jsonAttrs(field string, raw []byte, resource bool) (map[string]string, error) {
	// Unescaped values land in the decoder's buffer, reused row after row
	// (MLflow's JSON-encoded values are all escapes).
	s := scanner{b: raw, buf: d.attrBuf[:0]}
	defer func() { d.attrBuf = s.buf }()
	if s.peek() != '{' {
		return nil, fieldErr(field, "not a JSON object")
	}
	var m map[string]string
	var mv value
	err := s.objectMembers(func(key []byte) error {
		// A view of the key, not a copy: most keys are passed over.
		if !d.wantAttr(unsafe.String(unsafe.SliceData(key), len(key)), resource) {
			return s.skip(0)
		}
		k := d.common(key) // copy before readValue reuses the buffer
		if err := s.readValue(&mv); err != nil {
			return err
		}
		if t, ok := attrText(&mv); ok {
			if m == nil {
				m = make(map[string]string, 2)
			}
			m[k] = t
		}
		return nil
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return nil, nestedErr(field, err)
	}
	return m, nil
}

// attrText is an attribute value as text: strings (JSON-encoded ones
// decoded), numbers and booleans; not NULL, empty or nested values.
func attrText(v *value) (string, bool) {
	switch v.k {
	case vString:
		t := v.text
		if len(t) >= 2 && t[0] == '"' && t[len(t)-1] == '"' {
			s := scanner{b: t}
			var inner value
			if s.readValue(&inner) == nil && s.end() == nil {
				t = inner.text
			}
		}
		return string(t), len(t) > 0
	case vNumber:
		return string(v.text), true
	case vInt:
		return strconv.FormatInt(v.i, 10), true
	case vFloat:
		return strconv.FormatFloat(v.f, 'g', -1, 64), true
	case vBool:
		return strconv.FormatBool(v.b), true
	}
	return "", false
}

// member finds member name of a struct column — typed (Parquet, a
// database), a JSON object, or a JSON string holding one — and calls fn with
// its value; a NULL struct or a missing member calls nothing.
func (d *decoder) member(field string, v *value, name string, fn func(*value) error) error {
	var raw []byte
	switch v.k {
	case vNull:
		return nil
	case vPairs:
		for i := range v.pairs {
			if v.pairs[i].key == name {
				return fn(&v.pairs[i].val)
			}
		}
		return nil
	case vObject:
		raw = v.text
	case vString:
		t := bytes.TrimSpace(v.text)
		if len(t) == 0 || string(t) == "null" {
			return nil
		}
		raw = bytes.Clone(t) // fn may reuse d.sub, which may hold t
	case vInvalid:
		return fieldErr(field, "invalid UTF-8")
	default:
		return fieldErr(field, "not an object: %s", v.shown())
	}
	// Its own buffer: fn may decode attributes into d.attrBuf.
	s := scanner{b: raw, buf: d.memberBuf[:0]}
	defer func() { d.memberBuf = s.buf }()
	if s.peek() != '{' {
		return fieldErr(field, "not an object: %s", v.shown())
	}
	var mv value
	err := s.objectMembers(func(key []byte) error {
		if string(key) != name {
			return s.skip(0)
		}
		if err := s.readValue(&mv); err != nil {
			return err
		}
		return fn(&mv)
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return nestedErr(field, err)
	}
	return nil
}
