// Package otlp is obolus's OTLP/HTTP trace intake: POST /v1/traces in
// protobuf or JSON, gzip-encoded or not. It does one thing to a span: turn
// it into the row a span table (otel_spans, v2 layout) would hold, so that
// the span table's decoder — and nothing else — decides which spans are
// agent requests and who their user is. What happens to the rows (the
// stream produces them to its agent topic) is the Exporter's business.
package otlp

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/obolus/obolus/ingest"
	"github.com/obolus/obolus/schemas"
)

// Span is one OTLP span as a span-table row.
type Span struct {
	// TraceID and SpanID are the span's ids in lowercase hex, as a span
	// table holds them (for keys and messages; the row carries them too).
	TraceID, SpanID string
	// Row is the span as a JSON object in the otel_spans layout (v2:
	// attributes and resource.attributes as objects). Only the attributes
	// the span keys read are kept: a span's attributes can hold whole
	// prompts, which must not reach Kafka.
	Row []byte
	// Err, when set, says why the span cannot even be written as a row (an
	// id of the wrong length): the exporter dead-letters it with Row as the
	// record.
	Err *ingest.FieldError
}

// row is the JSON a span becomes: the span table's column names.
type row struct {
	TraceID      string         `json:"trace_id,omitempty"`
	SpanID       string         `json:"span_id,omitempty"`
	ParentSpanID string         `json:"parent_span_id,omitempty"`
	Name         string         `json:"name,omitempty"`
	Kind         string         `json:"kind,omitempty"`
	Start        uint64         `json:"start_time_unix_nano"`
	End          uint64         `json:"end_time_unix_nano"`
	Attributes   map[string]any `json:"attributes,omitempty"`
	Status       *rowStatus     `json:"status,omitempty"`
	Resource     *rowResource   `json:"resource,omitempty"`
}

type rowStatus struct {
	Message string `json:"message,omitempty"`
	Code    string `json:"code"`
}

type rowResource struct {
	Attributes map[string]any `json:"attributes,omitempty"`
}

// Rows appends the request's spans, in request order, as span-table rows.
// keys says which attributes to keep (schemas.SpanKeys.Wanted and
// WantedResource: the same test the span table's reader applies).
func Rows(dst []Span, req []*tracepb.ResourceSpans, keys *schemas.SpanKeys) []Span {
	for _, rs := range req {
		var res *rowResource
		if r := rs.GetResource(); r != nil {
			if attrs := keep(r.GetAttributes(), keys.WantedResource); attrs != nil {
				res = &rowResource{Attributes: attrs}
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				dst = append(dst, convert(sp, res, keys))
			}
		}
	}
	return dst
}

func convert(sp *tracepb.Span, res *rowResource, keys *schemas.SpanKeys) Span {
	r := row{
		TraceID:      hex.EncodeToString(sp.GetTraceId()),
		SpanID:       hex.EncodeToString(sp.GetSpanId()),
		ParentSpanID: hex.EncodeToString(sp.GetParentSpanId()),
		Name:         sp.GetName(),
		Kind:         sp.GetKind().String(),
		Start:        sp.GetStartTimeUnixNano(),
		End:          sp.GetEndTimeUnixNano(),
		Attributes:   keep(sp.GetAttributes(), keys.Wanted),
		Resource:     res,
	}
	if st := sp.GetStatus(); st != nil && st.GetCode() != tracepb.Status_STATUS_CODE_UNSET {
		r.Status = &rowStatus{Message: st.GetMessage(), Code: st.GetCode().String()}
	}
	s := Span{TraceID: r.TraceID, SpanID: r.SpanID}
	// An id of another length would still be a string to the span table's
	// decoder, and a trace id that matches nothing: refuse it here, where
	// its length is known.
	switch {
	case len(sp.GetTraceId()) != 16 && len(sp.GetTraceId()) != 0:
		s.Err = &ingest.FieldError{Field: "trace_id", Reason: fmt.Sprintf("%d bytes, want 16", len(sp.GetTraceId()))}
	case len(sp.GetSpanId()) != 8 && len(sp.GetSpanId()) != 0:
		s.Err = &ingest.FieldError{Field: "span_id", Reason: fmt.Sprintf("%d bytes, want 8", len(sp.GetSpanId()))}
	case len(sp.GetParentSpanId()) != 8 && len(sp.GetParentSpanId()) != 0:
		s.Err = &ingest.FieldError{Field: "parent_span_id", Reason: fmt.Sprintf("%d bytes, want 8 or none", len(sp.GetParentSpanId()))}
	case sp.GetStartTimeUnixNano() > math.MaxInt64 || sp.GetEndTimeUnixNano() > math.MaxInt64:
		s.Err = &ingest.FieldError{Field: "start_time_unix_nano", Reason: "beyond the year 2262"}
	}
	b, err := json.Marshal(&r)
	if err != nil {
		// Every value above is a string, an integer or a finite number.
		b = []byte(`{}`)
		if s.Err == nil {
			s.Err = &ingest.FieldError{Reason: "cannot render the span as a row: " + err.Error()}
		}
	}
	s.Row = b
	return s
}

// keep renders the attributes want keeps as a JSON object's members: a
// VARIANT's values, as the span table's reader reads them. Nested values
// (lists, maps) and bytes are left out: the reader passes over them, and no
// identity is one.
func keep(kvs []*commonpb.KeyValue, want func(string) bool) map[string]any {
	var m map[string]any
	for _, kv := range kvs {
		if !want(kv.GetKey()) {
			continue
		}
		var v any
		switch x := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			v = x.StringValue
		case *commonpb.AnyValue_BoolValue:
			v = x.BoolValue
		case *commonpb.AnyValue_IntValue:
			v = x.IntValue
		case *commonpb.AnyValue_DoubleValue:
			if math.IsNaN(x.DoubleValue) || math.IsInf(x.DoubleValue, 0) {
				v = strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
			} else {
				v = x.DoubleValue
			}
		default:
			continue
		}
		if m == nil {
			m = make(map[string]any, 4)
		}
		m[kv.GetKey()] = v
	}
	return m
}

// fixJSONIDs undoes what protojson does to OTLP/JSON's ids. OTLP/JSON
// writes trace and span ids as hex, where protobuf's JSON mapping expects
// base64 for bytes; protojson decodes the hex text as base64. Hex digits are
// base64 digits, and a 32- or 16-digit id has no padding, so the decoding is
// lossless: encoding the bytes again gives back the hex text. A trace id
// that decoded to 24 bytes (32 hex digits) or a span id to 12 (16) is
// restored this way; any other length is left for the row's checks.
func fixJSONIDs(rss []*tracepb.ResourceSpans) error {
	for i, rs := range rss {
		for j, ss := range rs.GetScopeSpans() {
			for k, sp := range ss.GetSpans() {
				for _, id := range [...]struct {
					name string
					b    *[]byte
					want int
				}{{"traceId", &sp.TraceId, 16}, {"spanId", &sp.SpanId, 8}, {"parentSpanId", &sp.ParentSpanId, 8}} {
					if len(*id.b) != id.want*3/2 {
						continue
					}
					out, err := hex.DecodeString(base64.StdEncoding.EncodeToString(*id.b))
					if err != nil {
						return fmt.Errorf("resourceSpans[%d].scopeSpans[%d].spans[%d].%s: not a hex id", i, j, k, id.name)
					}
					*id.b = out
				}
			}
		}
	}
	return nil
}
