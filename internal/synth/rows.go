package synth

import (
	"slices"
	"strconv"
	"strings"
)

// Row encoders for JSON and CSV. Field order follows columns.go.

const (
	contentJSON   = "application/json"
	contentStream = "text/event-stream"
)

func (w *world) encUsage(e *recEnc, c *call, scratch []byte) []byte {
	ag := w.agents[c.req.agent]
	ep := c.ep
	e.begin()
	e.uuid("invocation_id", c.inv)
	e.uuid("request_id", c.gwReq)
	e.str("account_id", w.accountID)
	e.str("workspace_id", w.workspaceID)
	e.int("schema_version", 1)
	e.ts("event_time", c.eventUS)
	e.str("endpoint_id", ep.id)
	e.str("endpoint_name", ep.name)
	e.rawJSON("endpoint_tags", ep.tagsJSON, true)
	e.str("destination_type", ep.destType)
	e.str("destination_name", ep.destName)
	e.str("destination_id", ep.destID)
	e.str("destination_model", ep.model.name)
	e.str("requester", ag.sp)
	e.str("requester_type", "SERVICE_PRINCIPAL")
	e.str("api_type", ep.model.apiType)
	e.str("user_agent", ag.userAgent)
	scratch = w.appendRequestTags(scratch[:0], c)
	e.rawJSON("request_tags", scratch, true)
	e.int("input_tokens", c.in)
	e.int("output_tokens", c.out)
	e.int("total_tokens", c.in+c.out)
	scratch = appendTokenDetails(scratch[:0], c)
	e.rawJSON("token_details", scratch, false)
	e.int("status_code", int64(c.status))
	e.int("latency_ms", c.latencyMS)
	e.int("time_to_first_byte_ms", c.ttfbMS)
	e.str("response_content_type", contentType(c))
	e.end()
	return scratch
}

func contentType(c *call) string {
	if c.stream {
		return contentStream
	}
	return contentJSON
}

func appendTokenDetails(b []byte, c *call) []byte {
	b = append(b, `{"cache_read_input_tokens":`...)
	b = strconv.AppendInt(b, c.cacheRead, 10)
	b = append(b, `,"cache_creation_input_tokens":`...)
	b = strconv.AppendInt(b, c.cacheNew, 10)
	b = append(b, `,"output_reasoning_tokens":`...)
	b = strconv.AppendInt(b, c.reasoning, 10)
	return append(b, '}')
}

// appendRequestTags writes the call's request_tags as a JSON object with
// sorted keys, or nothing when it has none.
func (w *world) appendRequestTags(b []byte, c *call) []byte {
	var kv [3][2]string
	n := w.requestTagPairs(&kv, c, true)
	if n == 0 {
		return b
	}
	b = append(b, '{')
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, kv[i][0])
		b = append(b, ':')
		if kv[i][1] == "" {
			b = w.appendTagValue(b, c)
		} else {
			b = appendJSONString(b, kv[i][1])
		}
	}
	return append(b, '}')
}

// requestTagPairs lists the call's request tags in key order. With lazy, the
// value of the id tag is left empty for appendTagValue to write without
// allocating.
func (w *world) requestTagPairs(kv *[3][2]string, c *call, lazy bool) int {
	n := 0
	idKey := ""
	switch c.tag {
	case tagTraceID:
		idKey = "mlflow_trace_id"
	case tagTraceparent:
		idKey = "traceparent"
	case tagRequestID:
		idKey = "agent_request_id"
	case tagEndUser:
		idKey = "end_user"
	}
	if c.keyVariant > 0 {
		idKey = keyVariants[c.keyVariant-1](idKey)
	}
	idVal := ""
	if idKey != "" && !lazy {
		idVal = string(w.appendTagValue(nil, c))
	}
	// Key order: agent_request_id, end_user, mlflow_trace_id < project, team < traceparent.
	if idKey != "" && idKey != "traceparent" {
		kv[n] = [2]string{idKey, idVal}
		n++
	}
	if c.harmless {
		ag := w.agents[c.req.agent]
		kv[n] = [2]string{"project", ag.project}
		kv[n+1] = [2]string{"team", ag.ownerTeam}
		n += 2
	}
	if idKey == "traceparent" {
		kv[n] = [2]string{idKey, idVal}
		n++
	}
	if c.keyVariant > 0 {
		// Spelled keys sort elsewhere; keep the object's keys in order.
		slices.SortFunc(kv[:n], func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	}
	return n
}

// keyVariants are other spellings of a snake-case tag key that agent code
// writes: Title_Snake, UPPER-KEBAB, dot.separated.
var keyVariants = [...]func(string) string{
	func(k string) string {
		parts := strings.Split(k, "_")
		for i, p := range parts {
			if p != "" {
				parts[i] = strings.ToUpper(p[:1]) + p[1:]
			}
		}
		return strings.Join(parts, "_")
	},
	func(k string) string { return strings.ToUpper(strings.ReplaceAll(k, "_", "-")) },
	func(k string) string { return strings.ReplaceAll(k, "_", ".") },
}

// appendTagValue writes the JSON string value of the call's id tag.
func (w *world) appendTagValue(b []byte, c *call) []byte {
	q := c.req
	switch c.tag {
	case tagTraceID:
		b = append(b, `"tr-`...)
		b = q.trace.appendHex(b)
		return append(b, '"')
	case tagTraceparent:
		b = append(b, '"')
		b = q.trace.appendTraceparent(b, c.span)
		return append(b, '"')
	case tagRequestID:
		b = append(b, '"')
		b = q.id.appendUUID(b)
		return append(b, '"')
	case tagEndUser:
		return appendJSONString(b, w.users[q.user].email)
	}
	return append(b, `""`...)
}

func (w *world) encLegacy(e *recEnc, c *call, scratch []byte) []byte {
	ag := w.agents[c.req.agent]
	e.begin()
	e.str("workspace_id", w.workspaceID)
	e.str("account_id", w.accountID)
	if c.tagged() {
		e.uuid("client_request_id", c.req.id)
	} else {
		e.str("client_request_id", "")
	}
	e.uuid("databricks_request_id", c.inv)
	e.str("requester", ag.sp)
	e.int("status_code", int64(c.status))
	e.ts("request_time", c.eventUS)
	e.int("input_token_count", c.in)
	e.int("output_token_count", c.out)
	e.int("input_character_count", c.inChars)
	e.int("output_character_count", c.outChars)
	scratch = appendStringMap(scratch[:0], w.usageContext(c))
	if len(scratch) == 2 {
		scratch = scratch[:0]
	}
	e.rawJSON("usage_context", scratch, true)
	e.bool("request_streaming", c.stream)
	e.str("served_entity_id", c.ep.servedEntityID)
	e.end()
	return scratch
}

// usageContext is a legacy call's usage_context: the calling application,
// and the end user when the agent names them.
func (w *world) usageContext(c *call) [][2]string {
	var kv [][2]string
	if c.harmless {
		kv = append(kv, [2]string{"application", w.agents[c.req.agent].endpoint})
	}
	if c.tag == tagEndUser {
		kv = append(kv, [2]string{"end_user", w.users[c.req.user].email})
	}
	return kv
}

// agentTimeUS is when the agent's clock says the request started, to the
// millisecond as MLflow and the payload table keep it.
func agentTimeUS(q *request) int64 {
	us := q.startUS + q.skewUS
	return us - ((us%1000)+1000)%1000
}

// clientRequestID is what a front end puts in client_request_id: only some
// agents' callers set one.
func clientRequestID(ag *agent, q *request) string {
	if ag.logs != logPayload || ag.idx%2 == 1 {
		return ""
	}
	return "ui-" + string(appendHex64(nil, q.session.lo^q.id.hi, 16))
}

func (w *world) encPayload(e *recEnc, q *request) {
	ag := w.agents[q.agent]
	e.begin()
	e.uuid("databricks_request_id", q.id)
	e.str("client_request_id", clientRequestID(ag, q))
	e.ts("request_time", agentTimeUS(q))
	status := int64(200)
	if q.failed {
		status = 500
	}
	e.int("status_code", status)
	e.int("execution_duration_ms", q.durMS)
	e.str("requester", w.users[q.user].email)
	e.str("served_entity_id", ag.servedEntityID)
	e.end()
}

func (w *world) traceMetadata(q *request) [][2]string {
	ag := w.agents[q.agent]
	return [][2]string{
		{"mlflow.databricks.modelServingEndpointName", ag.endpoint},
		{"mlflow.modelId", ag.modelID},
		{"mlflow.trace.session", q.session.uuid()},
		{"mlflow.trace.user", w.users[q.user].email},
		{"mlflow.trace_schema.version", "3"},
	}
}

// traceTags carry mlflow.user, who created the trace: the agent's developer,
// not the end user. An engine that reads it attributes everything to them.
func (w *world) traceTags(q *request) [][2]string {
	ag := w.agents[q.agent]
	return [][2]string{{"mlflow.traceName", ag.endpoint}, {"mlflow.user", ag.ownerEmail}}
}

func traceState(q *request) string {
	if q.failed {
		return "ERROR"
	}
	return "OK"
}

func (w *world) encTrace(e *recEnc, q *request, scratch []byte) []byte {
	e.begin()
	e.traceID("trace_id", q.trace)
	e.uuid("client_request_id", q.id)
	e.ts("request_time", agentTimeUS(q))
	e.int("execution_duration_ms", q.durMS)
	e.str("state", traceState(q))
	scratch = appendStringMap(scratch[:0], w.traceMetadata(q))
	e.rawJSON("trace_metadata", scratch, true)
	scratch = appendStringMap(scratch[:0], w.traceTags(q))
	e.rawJSON("tags", scratch, true)
	e.end()
	return scratch
}

// encTruth writes a ground-truth line; always JSON.
func (w *world) encTruth(e *recEnc, c *call) {
	q := c.req
	ag := w.agents[q.agent]
	e.begin()
	e.uuid("invocation_id", c.inv)
	e.str("end_user", w.users[q.user].email)
	e.uuid("agent_request_id", q.id)
	e.str("agent_endpoint", ag.endpoint)
	e.str("service_principal", ag.sp)
	e.bool("tagged", c.tagged())
	e.bool("late", q.late)
	e.end()
}
