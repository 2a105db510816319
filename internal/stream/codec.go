package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/obolus/obolus/schemas"
)

// Kind is what a keyed record carries.
type Kind byte

// Record kinds.
const (
	KindUsage Kind = 'u' // a gateway usage event
	KindAgent Kind = 'a' // an agent request
	// KindProgress is an input source's progress report.
	KindProgress Kind = 'p'
	// KindMarker marks a place a replay may start from; the join writes one
	// into each of its partitions every so often.
	KindMarker Kind = 'm'
)

func (k Kind) String() string {
	switch k {
	case KindUsage:
		return "usage"
	case KindAgent:
		return "agent_request"
	case KindProgress:
		return "progress"
	case KindMarker:
		return "marker"
	default:
		return fmt.Sprintf("kind(%d)", byte(k))
	}
}

// Record is one entry of the keyed topic: a canonical record already decoded
// and validated by the re-keying stage, a source's progress, or a marker.
type Record struct {
	Kind Kind
	// Offset is the record's position in its keyed partition; the reader sets it.
	Offset int64
	// Source and SourceOffset say where a usage or agent record was read:
	// the input partition (SourceID) and the offset in it. They identify a
	// record across redeliveries.
	Source       uint32
	SourceOffset int64
	// Stamp is the input partition's running maximum of message timestamps
	// up to and including this record (millisecond precision). It never
	// decreases along an input partition, and it orders the records of all
	// sources for the join: see Partition.
	Stamp time.Time
	Usage schemas.UsageEvent
	Agent schemas.AgentRequest
	// Progress is a progress record's report.
	Progress Progress
	// SourceTime is when the original message was produced, so latency can be
	// measured from the producer to the attribution.
	SourceTime time.Time
}

// codecVersion is the first byte of every keyed record. The keyed topic is
// internal, so a compact binary form is used instead of JSON: the raw input
// was decoded once by the shared decoders, and decoding JSON again on the
// join side would double the CPU per event.
const codecVersion = 3

// codecV2 records also carry endpoint_tags, destination_type,
// destination_id, requester_type, api_type and user_agent, which UsageEvent
// no longer has; they are still decoded, and dropped, so a keyed topic
// written before an upgrade is read to its end.
const codecV2 = 2

// noTime encodes the zero time.Time; UnixNano of the zero time is undefined.
const noTime = math.MinInt64

// AppendRecord appends the binary form of r (without Offset) to dst.
func AppendRecord(dst []byte, r *Record) []byte {
	dst = append(dst, codecVersion, byte(r.Kind))
	dst = appendTime(dst, r.SourceTime)
	if r.Kind == KindUsage || r.Kind == KindAgent {
		dst = binary.AppendUvarint(dst, uint64(r.Source))
		dst = binary.AppendVarint(dst, r.SourceOffset)
		dst = appendTime(dst, r.Stamp)
	}
	switch r.Kind {
	case KindUsage:
		u := &r.Usage
		for _, s := range [...]string{u.InvocationID, u.RequestID, u.AccountID, u.WorkspaceID} {
			dst = appendString(dst, s)
		}
		dst = binary.AppendVarint(dst, int64(u.SchemaVersion))
		dst = appendTime(dst, u.EventTime)
		dst = appendString(dst, u.EndpointID)
		dst = appendString(dst, u.EndpointName)
		for _, s := range [...]string{u.DestinationName, u.DestinationModel, u.Requester} {
			dst = appendString(dst, s)
		}
		dst = appendMap(dst, u.RequestTags)
		for _, n := range [...]int64{u.InputTokens, u.OutputTokens, u.TotalTokens,
			u.TokenDetails.CacheReadInputTokens, u.TokenDetails.CacheCreationInputTokens, u.TokenDetails.OutputReasoningTokens,
			int64(u.StatusCode), u.LatencyMS} {
			dst = binary.AppendVarint(dst, n)
		}
		dst = appendString(dst, u.Source)
	case KindAgent:
		a := &r.Agent
		for _, s := range [...]string{a.AgentRequestID, a.TraceID, a.ClientRequestID, a.EndUser, a.Session,
			a.AgentEndpoint, a.ServicePrincipal} {
			dst = appendString(dst, s)
		}
		dst = appendTime(dst, a.StartTime)
		dst = binary.AppendVarint(dst, a.DurationMS)
		dst = appendString(dst, a.Status)
		dst = appendString(dst, a.Source)
	case KindProgress:
		pr := &r.Progress
		dst = binary.AppendUvarint(dst, uint64(pr.Source))
		dst = binary.AppendUvarint(dst, uint64(pr.Sources))
		dst = appendTime(dst, pr.Time)
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(dst, noTime)
	}
	return binary.AppendVarint(dst, t.UnixNano())
}

func appendMap(dst []byte, m map[string]string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(m)))
	// Map order does not matter to the decoder; the bytes of one record may
	// differ between encodings, which nothing relies on.
	for k, v := range m {
		dst = appendString(dst, k)
		dst = appendString(dst, v)
	}
	return dst
}

// ErrCodec is wrapped by every DecodeRecord error.
var ErrCodec = errors.New("keyed record")

// DecodeRecord decodes b into r, leaving r.Offset alone. Strings in r share
// one allocation with each other, not with b.
func DecodeRecord(b []byte, r *Record) error {
	if len(b) < 2 {
		return fmt.Errorf("%w: %d bytes, too short", ErrCodec, len(b))
	}
	if b[0] != codecVersion && b[0] != codecV2 {
		return fmt.Errorf("%w: codec version %d, want %d (written by a newer obolus?)", ErrCodec, b[0], codecVersion)
	}
	v2 := b[0] == codecV2
	d := decoder{s: string(b), i: 2}
	kind := Kind(b[1])
	*r = Record{Kind: kind, Offset: r.Offset}
	r.SourceTime = d.time("source_time")
	if kind == KindUsage || kind == KindAgent {
		r.Source = uint32(d.uvarint("source"))
		r.SourceOffset = d.varint("source_offset")
		r.Stamp = d.time("stamp")
	}
	switch kind {
	case KindUsage:
		u := &r.Usage
		u.InvocationID = d.str("invocation_id")
		u.RequestID = d.str("request_id")
		u.AccountID = d.str("account_id")
		u.WorkspaceID = d.str("workspace_id")
		u.SchemaVersion = int32(d.varint("schema_version"))
		u.EventTime = d.time("event_time")
		u.EndpointID = d.str("endpoint_id")
		u.EndpointName = d.str("endpoint_name")
		if v2 {
			d.strMap("endpoint_tags")
			d.str("destination_type")
		}
		u.DestinationName = d.str("destination_name")
		if v2 {
			d.str("destination_id")
		}
		u.DestinationModel = d.str("destination_model")
		u.Requester = d.str("requester")
		if v2 {
			d.str("requester_type")
			d.str("api_type")
			d.str("user_agent")
		}
		u.RequestTags = d.strMap("request_tags")
		u.InputTokens = d.varint("input_tokens")
		u.OutputTokens = d.varint("output_tokens")
		u.TotalTokens = d.varint("total_tokens")
		u.TokenDetails.CacheReadInputTokens = d.varint("cache_read_input_tokens")
		u.TokenDetails.CacheCreationInputTokens = d.varint("cache_creation_input_tokens")
		u.TokenDetails.OutputReasoningTokens = d.varint("output_reasoning_tokens")
		u.StatusCode = int32(d.varint("status_code"))
		u.LatencyMS = d.varint("latency_ms")
		u.Source = d.str("source")
	case KindAgent:
		a := &r.Agent
		a.AgentRequestID = d.str("agent_request_id")
		a.TraceID = d.str("trace_id")
		a.ClientRequestID = d.str("client_request_id")
		a.EndUser = d.str("end_user")
		a.Session = d.str("session")
		a.AgentEndpoint = d.str("agent_endpoint")
		a.ServicePrincipal = d.str("service_principal")
		a.StartTime = d.time("start_time")
		a.DurationMS = d.varint("duration_ms")
		a.Status = d.str("status")
		a.Source = d.str("source")
	case KindProgress:
		pr := &r.Progress
		pr.Source = uint32(d.uvarint("source"))
		pr.Sources = uint32(d.uvarint("sources"))
		pr.Time = d.time("progress")
	case KindMarker:
	default:
		return fmt.Errorf("%w: unknown kind %d", ErrCodec, byte(kind))
	}
	if d.err != nil {
		return d.err
	}
	if d.i != len(d.s) {
		return fmt.Errorf("%w: %d trailing bytes after a %s record", ErrCodec, len(d.s)-d.i, kind)
	}
	return nil
}

type decoder struct {
	s   string
	i   int
	err error
}

func (d *decoder) fail(field, why string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: field %s at byte %d: %s", ErrCodec, field, d.i, why)
	}
	d.i = len(d.s)
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	var x uint64
	var shift uint
	for j := 0; j < binary.MaxVarintLen64; j++ {
		if d.i >= len(d.s) {
			d.fail(field, "truncated")
			return 0
		}
		c := d.s[d.i]
		d.i++
		if c < 0x80 {
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	d.fail(field, "varint overflows 64 bits")
	return 0
}

func (d *decoder) varint(field string) int64 {
	ux := d.uvarint(field)
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) str(field string) string {
	n := d.uvarint(field)
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.s)-d.i) {
		d.fail(field, fmt.Sprintf("string of %d bytes overruns the record", n))
		return ""
	}
	s := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return s
}

func (d *decoder) time(field string) time.Time {
	n := d.varint(field)
	if d.err != nil || n == noTime {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func (d *decoder) strMap(field string) map[string]string {
	n := d.uvarint(field)
	if d.err != nil || n == 0 {
		return nil
	}
	// Each entry takes at least two bytes, which bounds a corrupt count.
	if n > uint64(len(d.s)-d.i)/2 {
		d.fail(field, fmt.Sprintf("map of %d entries overruns the record", n))
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := d.str(field)
		v := d.str(field)
		if d.err != nil {
			return nil
		}
		m[k] = v
	}
	return m
}
