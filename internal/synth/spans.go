package synth

import (
	"math/bits"
	"strconv"
	"time"
)

// Agent logs as OpenTelemetry span rows (Config.AgentLogs = AgentLogsOTel):
// MLflow 3 traces stored in Unity Catalog, `{prefix}_otel_spans`. Every
// agent logs each request as one trace: a root span that carries the
// request's ids, end user and session, and one or two child spans (a model
// call, a retrieval) that carry none, as an agent's inner steps do. The
// spans are drawn from the request's own ids, not from a random stream, so
// asking for spans leaves every other file of the workload unchanged.

// Agent log kinds (Config.AgentLogs).
const (
	AgentLogsMLflow = "mlflow" // payload tables and MLflow traces, by agent
	AgentLogsOTel   = "otel"   // OpenTelemetry span tables
)

// Span table layouts (Config.OTelLayout).
const (
	OTelV1 = "v1" // attributes MAP<STRING,STRING>
	OTelV2 = "v2" // attributes VARIANT, plus record_id, time, date, service_name
)

const kindSpans = "otel_spans"

// spanSPKey is the resource attribute that names the service principal
// (obolus's default otel.service_principal_attribute).
const spanSPKey = "obolus.service_principal"

// spanColumns are a span table's columns in the layout. attributes and
// resource.attributes are VARIANT in v2, held as JSON text in Parquet.
func spanColumns(layout string) []column {
	attrs, res := tMap, "STRUCT(attributes MAP(VARCHAR, VARCHAR), dropped_attributes_count INTEGER)"
	var cols []column
	if layout == OTelV2 {
		attrs, res = tVarchar, "STRUCT(attributes VARCHAR, dropped_attributes_count INTEGER)"
		cols = []column{{"record_id", tVarchar}, {"time", tTimestamp}, {"date", "DATE"}, {"service_name", tVarchar}}
	}
	return append(cols,
		column{"trace_id", tVarchar},
		column{"span_id", tVarchar},
		column{"trace_state", tVarchar},
		column{"parent_span_id", tVarchar},
		column{"flags", tInt},
		column{"name", tVarchar},
		column{"kind", tVarchar},
		column{"start_time_unix_nano", tBigint},
		column{"end_time_unix_nano", tBigint},
		column{"attributes", attrs},
		column{"dropped_attributes_count", tInt},
		column{"status", "STRUCT(message VARCHAR, code VARCHAR)"},
		column{"resource", res},
	)
}

// attr is one span attribute; number marks a value a VARIANT holds as a
// number (v1's MAP holds it as text).
type attr struct {
	key, val string
	number   bool
}

// span is one generated span row.
type span struct {
	id, parent     uint64
	name, kind     string
	startNS, endNS int64
	attrs          []attr
	status         string
}

// mlflowValue is how MLflow stores a span attribute it sets: JSON-encoded.
func mlflowValue(s string) string { return string(appendJSONString(nil, s)) }

// spans returns the request's spans, root first.
func (w *world) spans(q *request, dst []span) []span {
	ag := w.agents[q.agent]
	u := w.users[q.user].email
	startNS := agentTimeUS(q) * 1000
	durNS := q.durMS * int64(time.Millisecond)
	status := "STATUS_CODE_OK"
	if q.failed {
		status = "STATUS_CODE_ERROR"
	}
	root := span{id: q.trace.lo | 1, name: ag.endpoint, kind: "SPAN_KIND_SERVER", startNS: startNS, endNS: startNS + durNS, status: status}
	root.attrs = append(root.attrs,
		attr{key: "mlflow.traceRequestId", val: mlflowValue(q.trace.traceID())},
		attr{key: "mlflow.spanType", val: mlflowValue("AGENT")})
	// Agents name the user as their framework does: MLflow metadata copied
	// onto the root span (JSON-encoded), OpenTelemetry's enduser.id, or
	// OpenInference's user.id.
	switch ag.idx % 3 {
	case 0:
		root.attrs = append(root.attrs, attr{key: "mlflow.trace.user", val: mlflowValue(u)})
	case 1:
		root.attrs = append(root.attrs, attr{key: "enduser.id", val: u})
	default:
		root.attrs = append(root.attrs, attr{key: "user.id", val: u})
	}
	if ag.idx%2 == 0 {
		root.attrs = append(root.attrs, attr{key: "mlflow.trace.session", val: mlflowValue(q.session.uuid())})
	} else {
		root.attrs = append(root.attrs, attr{key: "session.id", val: q.session.uuid()})
	}
	root.attrs = append(root.attrs, attr{key: "client_request_id", val: q.id.uuid()})
	dst = append(dst, root)
	// One or two inner steps, inside the root's interval.
	children := 1 + int(q.id.lo>>7&1)
	for k := range children {
		c := span{id: q.trace.hi ^ uint64(k+1)*0x9e3779b97f4a7c15 | 1, parent: root.id, status: "STATUS_CODE_OK",
			startNS: startNS + durNS*int64(5+55*k)/100, endNS: startNS + durNS*int64(60+35*k)/100}
		if k == 0 {
			c.name, c.kind = "ChatModel", "SPAN_KIND_CLIENT"
			c.attrs = []attr{{key: "mlflow.spanType", val: mlflowValue("CHAT_MODEL")},
				{key: "gen_ai.usage.input_tokens", val: strconv.FormatInt(int64(q.calls)*350, 10), number: true}}
		} else {
			c.name, c.kind = "retriever", "SPAN_KIND_INTERNAL"
			c.attrs = []attr{{key: "mlflow.spanType", val: mlflowValue("RETRIEVER")}}
		}
		dst = append(dst, c)
	}
	return dst
}

// resourceAttrs are the resource attributes of an agent's spans.
func (w *world) resourceAttrs(ag *agent) []attr {
	return []attr{{key: "service.name", val: ag.endpoint}, {key: spanSPKey, val: ag.sp}, {key: "telemetry.sdk.language", val: "python"}}
}

// appendAttrs writes attributes as a JSON object; v2 (a VARIANT) keeps
// numbers as numbers.
func appendAttrs(b []byte, attrs []attr, v2 bool) []byte {
	b = append(b, '{')
	for i, a := range attrs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, a.key)
		b = append(b, ':')
		if a.number && v2 {
			b = append(b, a.val...)
		} else {
			b = appendJSONString(b, a.val)
		}
	}
	return append(b, '}')
}

func attrPairs(attrs []attr) [][2]string {
	kv := make([][2]string, len(attrs))
	for i, a := range attrs {
		kv[i] = [2]string{a.key, a.val}
	}
	return kv
}

func spanHex(id uint64) string { return string(appendHex64(nil, id, 16)) }

// recordID is a v2 row's record_id: the trace and span, as a UUID.
func recordID(q *request, sp *span) id128 {
	return id128{q.trace.hi + sp.id, q.trace.lo ^ bits.RotateLeft64(sp.id, 17)}
}

// encSpan writes one span row of q's trace as JSON or CSV in the layout's
// column order, as the agent's.
func (w *world) encSpan(e *recEnc, q *request, sp *span, v2 bool, scratch []byte) []byte {
	ag := w.agents[q.agent]
	return encSpanOf(e, q, sp, v2, ag.endpoint, w.resourceAttrs(ag), scratch)
}

// encSpanOf writes one span row of q's trace, written by service.
func encSpanOf(e *recEnc, q *request, sp *span, v2 bool, service string, resource []attr, scratch []byte) []byte {
	e.begin()
	if v2 {
		e.uuid("record_id", recordID(q, sp))
		e.ts("time", sp.startNS/1000)
		e.str("date", time.Unix(0, sp.startNS).UTC().Format(time.DateOnly))
		e.str("service_name", service)
	}
	e.str("trace_id", q.trace.hex())
	e.str("span_id", spanHex(sp.id))
	e.str("trace_state", "")
	parent := ""
	if sp.parent != 0 {
		parent = spanHex(sp.parent)
	}
	e.str("parent_span_id", parent)
	e.int("flags", 1)
	e.str("name", sp.name)
	e.str("kind", sp.kind)
	e.int("start_time_unix_nano", sp.startNS)
	e.int("end_time_unix_nano", sp.endNS)
	scratch = appendAttrs(scratch[:0], sp.attrs, v2)
	e.rawJSON("attributes", scratch, false)
	e.int("dropped_attributes_count", 0)
	scratch = append(scratch[:0], `{"message":"","code":`...)
	scratch = append(appendJSONString(scratch, sp.status), '}')
	e.rawJSON("status", scratch, false)
	scratch = append(scratch[:0], `{"attributes":`...)
	scratch = appendAttrs(scratch, resource, v2)
	scratch = append(scratch, `,"dropped_attributes_count":0}`...)
	e.rawJSON("resource", scratch, false)
	e.end()
	return scratch
}

// The gateway's unified trace table (Config.GatewaySpanShare): the AI
// Gateway logs each call as a span; when the agent sent a traceparent the
// span is in the agent's trace, a child of its root span. Which attribute
// names the usage row is not confirmed; the generator writes obolus's
// default (schemas.DefaultSpanKeys.GatewayLink) with the row's request_id,
// and enduser.id as the gateway saw the caller: the service principal.

// GatewaySpansFile is the unified trace table's gateway spans, always JSON
// lines, in the otel layout.
const GatewaySpansFile = "unified_trace.jsonl"

const (
	gatewayService = "databricks-ai-gateway"
	gatewayLinkKey = "databricks.ai_gateway.request_id"
)

// gatewaySpanned reports whether call c gets a gateway span: drawn from
// its invocation id, so that asking for spans changes no other file.
func (w *world) gatewaySpanned(c *call) bool {
	return !c.legacy && float64(c.inv.lo%10_000) < w.cfg.GatewaySpanShare*10_000
}

// encGatewaySpan writes call c's gateway span.
func (w *world) encGatewaySpan(e *recEnc, c *call, scratch []byte) []byte {
	q := c.req
	sp := span{id: c.span | 1, parent: q.trace.lo | 1, name: "ai_gateway " + c.ep.name, kind: "SPAN_KIND_SERVER",
		startNS: c.eventUS * 1000, endNS: (c.eventUS + c.latencyMS*1000) * 1000, status: "STATUS_CODE_OK",
		attrs: []attr{{key: gatewayLinkKey, val: c.gwReq.uuid()}, {key: "enduser.id", val: w.agents[q.agent].sp}}}
	if c.status != 200 {
		sp.status = "STATUS_CODE_ERROR"
	}
	return encSpanOf(e, q, &sp, w.cfg.OTelLayout == OTelV2, gatewayService, []attr{{key: "service.name", val: gatewayService}}, scratch)
}
