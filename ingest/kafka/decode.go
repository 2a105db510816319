package kafka

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/obolus/obolus/ingest"
	"github.com/obolus/obolus/internal/stream"
	"github.com/obolus/obolus/schemas"
)

// Message headers obolus reads on the input topics and writes on its own.
const (
	// HeaderKind says what a message holds: usage or legacy_usage on the
	// usage topic, payload, trace or otel_spans on the agent topic.
	HeaderKind = "obolus-kind"
	// HeaderAgentEndpoint names the agent endpoint an agent log row belongs
	// to (payload rows do not carry it; trace rows fall back to their metadata).
	HeaderAgentEndpoint = "obolus-agent-endpoint"
	// HeaderServicePrincipal overrides the configured service principal of an agent log row.
	HeaderServicePrincipal = "obolus-service-principal"

	// Dead letters carry where the message came from and why it was refused.
	HeaderSourceTopic     = "obolus-source-topic"
	HeaderSourcePartition = "obolus-source-partition"
	HeaderSourceOffset    = "obolus-source-offset"
	HeaderReason          = "obolus-reason"
)

// Decoder turns input messages into keyed records. Usage events are keyed
// by requester, agent requests by the service principal their agent endpoint
// runs as, so both meet in one keyed partition.
type Decoder struct {
	UsageTopic, AgentsTopic string
	// ServicePrincipals maps agent endpoints to service principals.
	ServicePrincipals map[string]string
	// MaxBytes refuses larger messages.
	MaxBytes int
	// MaxFuture refuses event times this far ahead of Now.
	MaxFuture time.Duration
	Now       func() time.Time
	// Limits bound what a record may claim; zero fields mean
	// ingest.DefaultLimits.
	Limits ingest.Limits
	// SpanKeys are the attributes span rows (otel_spans) name the end user,
	// session, request id, agent and service principal by; the zero value
	// means schemas.DefaultSpanKeys.
	SpanKeys schemas.SpanKeys
}

// Decode returns the keyed record and its key, or the dead letter saying
// why the message cannot be used. A message that stands for no record (a
// span that is not an agent request: a child span naming no user) returns
// neither a key nor a dead letter, and is skipped.
func (d *Decoder) Decode(m *kafka.Message) (stream.Record, string, *schemas.DeadLetter) {
	kind := header(m, HeaderKind)
	refuse := func(k, field, format string, a ...any) (stream.Record, string, *schemas.DeadLetter) {
		return stream.Record{}, "", d.deadLetter(m, k, field, fmt.Sprintf(format, a...))
	}
	recKind := schemas.KindUsage
	if m.Topic == d.AgentsTopic {
		recKind = schemas.KindAgentRequest
	}
	if len(m.Value) > d.MaxBytes {
		return refuse(recKind, "", "message is %d bytes, over the limit of %d (stream.max_message_bytes)", len(m.Value), d.MaxBytes)
	}
	if !utf8.Valid(m.Value) {
		return refuse(recKind, "", "message is not valid UTF-8 (at byte %d)", invalidUTF8At(m.Value))
	}
	rec := stream.Record{SourceTime: m.Time}
	switch m.Topic {
	case d.UsageTopic:
		var err error
		switch kind {
		case "", string(ingest.KindUsage):
			rec.Usage, err = ingest.DecodeUsage(m.Value)
		case string(ingest.KindLegacyUsage):
			rec.Usage, err = ingest.DecodeLegacyUsage(m.Value)
		default:
			return refuse(recKind, HeaderKind, "header %s %q: use usage or legacy_usage on topic %s", HeaderKind, kind, m.Topic)
		}
		if err != nil {
			return refuse(recKind, fieldOf(err), "%s", reasonOf(err))
		}
		if err := d.Limits.CheckUsage(&rec.Usage); err != nil {
			return refuse(recKind, fieldOf(err), "%s", reasonOf(err))
		}
		if field, why := d.checkFuture("event_time", rec.Usage.EventTime); why != "" {
			return refuse(recKind, field, "%s", why)
		}
		rec.Kind = stream.KindUsage
		return rec, rec.Usage.Requester, nil
	case d.AgentsTopic:
		if kind == "" {
			kind = sniffAgentKind(m.Value)
		}
		endpoint := header(m, HeaderAgentEndpoint)
		var a schemas.AgentRequest
		switch kind {
		case string(ingest.KindPayload):
			p, err := ingest.DecodePayload(m.Value)
			if err != nil {
				return refuse(recKind, fieldOf(err), "%s", reasonOf(err))
			}
			if endpoint == "" {
				return refuse(recKind, HeaderAgentEndpoint, "payload row names no agent endpoint: set header %s", HeaderAgentEndpoint)
			}
			a = p.AgentRequest(endpoint, "")
		case string(ingest.KindTrace):
			t, err := ingest.DecodeTrace(m.Value)
			if err != nil {
				return refuse(recKind, fieldOf(err), "%s", reasonOf(err))
			}
			a = t.AgentRequest(endpoint, "")
			if a.AgentEndpoint == "" {
				return refuse(recKind, HeaderAgentEndpoint, "trace names no agent endpoint (no %s in trace_metadata): set header %s",
					schemas.TraceEndpointKey, HeaderAgentEndpoint)
			}
		case string(ingest.KindOTelSpans):
			// The span table's decoder, with the configured principals in
			// the place of a source's service_principal: they win over
			// the span's resource, which the agent's own code writes.
			keys := d.SpanKeys.OrDefault()
			spHeader := header(m, HeaderServicePrincipal)
			var err error
			a, err = ingest.DecodeSpanRequest(m.Value, &keys, endpoint, func(ep string) string {
				return cmp.Or(spHeader, d.ServicePrincipals[ep])
			})
			if errors.Is(err, ingest.ErrSpanSkipped) {
				return stream.Record{}, "", nil
			}
			if err != nil {
				return refuse(recKind, fieldOf(err), "%s", reasonOf(err))
			}
		default:
			return refuse(recKind, HeaderKind, "header %s %q: use payload, trace or otel_spans on topic %s (without the header, a row with databricks_request_id is a payload row, one with span_id a span, one with trace_id a trace)",
				HeaderKind, kind, m.Topic)
		}
		// The header, then the configured principal of the endpoint; a
		// span may name its own (resource attribute) where neither does.
		a.ServicePrincipal = cmp.Or(header(m, HeaderServicePrincipal), d.ServicePrincipals[a.AgentEndpoint], a.ServicePrincipal)
		if a.ServicePrincipal == "" {
			return refuse(recKind, "agent_endpoint", "agent endpoint %q has no service principal: add it to stream.agents (or a payload/trace source), or set header %s",
				a.AgentEndpoint, HeaderServicePrincipal)
		}
		if err := d.Limits.CheckAgent(&a); err != nil {
			return refuse(recKind, fieldOf(err), "%s", reasonOf(err))
		}
		if field, why := d.checkFuture("request_time", a.StartTime); why != "" {
			return refuse(recKind, field, "%s", why)
		}
		rec.Kind, rec.Agent = stream.KindAgent, a
		return rec, a.ServicePrincipal, nil
	default:
		return refuse(recKind, "", "topic %s is neither the usage topic %s nor the agent topic %s", m.Topic, d.UsageTopic, d.AgentsTopic)
	}
}

func (d *Decoder) checkFuture(field string, t time.Time) (string, string) {
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	if t.After(now().Add(d.MaxFuture)) {
		return field, fmt.Sprintf("%s %s is more than %s ahead of the clock (stream.max_future)", field, t.Format(time.RFC3339), d.MaxFuture)
	}
	return "", ""
}

// sniffAgentKind tells a payload row from a trace and a span by its
// top-level keys.
func sniffAgentKind(b []byte) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	var payload, trace, span bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		switch tok {
		case "databricks_request_id":
			payload = true
		case "trace_id":
			trace = true
		case "span_id":
			span = true
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return ""
		}
	}
	switch {
	case span && trace && !payload:
		return string(ingest.KindOTelSpans)
	case payload && !trace:
		return string(ingest.KindPayload)
	case trace && !payload:
		return string(ingest.KindTrace)
	default:
		return "unknown"
	}
}

func header(m *kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func fieldOf(err error) string {
	var fe *ingest.FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

// reasonOf is the reason without the field, which the dead letter carries apart.
func reasonOf(err error) string {
	var fe *ingest.FieldError
	if errors.As(err, &fe) && fe.Field != "" {
		return fe.Reason
	}
	return err.Error()
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// deadLetter describes a refused message. Record keeps its first bytes.
func (d *Decoder) deadLetter(m *kafka.Message, kind, field, reason string) *schemas.DeadLetter {
	rec := m.Value
	if len(rec) > schemas.MaxDeadLetterRecord {
		rec = rec[:schemas.MaxDeadLetterRecord]
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	return &schemas.DeadLetter{
		Source:         m.Topic,
		Location:       Location(m.Partition, m.Offset),
		Kind:           kind,
		Field:          field,
		Reason:         reason,
		Record:         string(rec),
		DeadLetteredAt: now().UTC(),
	}
}

// Location is a message's place in its topic, as dead letters name it.
func Location(partition int, offset int64) string {
	return "partition " + strconv.Itoa(partition) + " offset " + strconv.FormatInt(offset, 10)
}

// DeadLetterMessage is the message written to the dead-letter topic: the
// DeadLetter as JSON, keyed by source topic and location so a re-delivered
// refusal is recognisable, with headers naming the source and the reason
// for tools like kcat.
func DeadLetterMessage(dl *schemas.DeadLetter, partition int, offset int64) (kafka.Message, error) {
	b, err := json.Marshal(dl)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode dead letter of %s %s: %w", dl.Source, dl.Location, err)
	}
	return kafka.Message{
		Key:   []byte(dl.Source + "/" + strconv.Itoa(partition) + "/" + strconv.FormatInt(offset, 10)),
		Value: b,
		Headers: []kafka.Header{
			{Key: HeaderSourceTopic, Value: []byte(dl.Source)},
			{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(partition))},
			{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(offset, 10))},
			{Key: HeaderReason, Value: []byte(dl.Reason)},
		},
	}, nil
}
