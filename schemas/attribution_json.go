package schemas

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends a's JSON encoding to b: byte for byte what
// encoding/json's Marshal gives (FuzzAppendJSON holds it to that), without
// Marshal's reflection. The stream worker encodes every answer it produces,
// and Marshal was a tenth of its CPU.
func (a *Attribution) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"invocation_id":`...)
	b = appendJSONString(b, a.InvocationID)
	b = append(b, `,"request_id":`...)
	b = appendJSONString(b, a.RequestID)
	b = append(b, `,"event_time":`...)
	if b, err = appendJSONTime(b, a.EventTime); err != nil {
		return b, fmt.Errorf("event_time: %w", err)
	}
	b = append(b, `,"event_date":`...)
	b = appendJSONString(b, a.EventDate)
	b = append(b, `,"account_id":`...)
	b = appendJSONString(b, a.AccountID)
	b = append(b, `,"workspace_id":`...)
	b = appendJSONString(b, a.WorkspaceID)
	b = append(b, `,"endpoint_id":`...)
	b = appendJSONString(b, a.EndpointID)
	b = append(b, `,"endpoint_name":`...)
	b = appendJSONString(b, a.EndpointName)
	b = append(b, `,"destination_model":`...)
	b = appendJSONString(b, a.DestinationModel)
	b = append(b, `,"requester":`...)
	b = appendJSONString(b, a.Requester)
	b = append(b, `,"status_code":`...)
	b = strconv.AppendInt(b, int64(a.StatusCode), 10)
	b = append(b, `,"usage_source":`...)
	b = appendJSONString(b, a.UsageSource)
	b = append(b, `,"end_user":`...)
	b = appendJSONString(b, a.EndUser)
	b = append(b, `,"team":`...)
	b = appendJSONString(b, a.Team)
	b = append(b, `,"cost_center":`...)
	b = appendJSONString(b, a.CostCenter)
	b = append(b, `,"agent_endpoint":`...)
	b = appendJSONString(b, a.AgentEndpoint)
	b = append(b, `,"trace_id":`...)
	b = appendJSONString(b, a.TraceID)
	b = append(b, `,"agent_request_id":`...)
	b = appendJSONString(b, a.AgentRequestID)
	b = append(b, `,"session":`...)
	b = appendJSONString(b, a.Session)
	b = append(b, `,"match_method":`...)
	b = appendJSONString(b, a.MatchMethod)
	b = append(b, `,"match_confidence":`...)
	if b, err = appendJSONFloat(b, a.MatchConfidence); err != nil {
		return b, fmt.Errorf("match_confidence: %w", err)
	}
	b = append(b, `,"candidates":`...)
	b = strconv.AppendInt(b, int64(a.Candidates), 10)
	b = append(b, `,"weight":`...)
	if b, err = appendJSONFloat(b, a.Weight); err != nil {
		return b, fmt.Errorf("weight: %w", err)
	}
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, a.Reason)
	b = append(b, `,"input_tokens":`...)
	b = strconv.AppendInt(b, a.InputTokens, 10)
	b = append(b, `,"output_tokens":`...)
	b = strconv.AppendInt(b, a.OutputTokens, 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, a.TotalTokens, 10)
	b = append(b, `,"cache_read_input_tokens":`...)
	b = strconv.AppendInt(b, a.CacheReadInputTokens, 10)
	b = append(b, `,"cache_creation_input_tokens":`...)
	b = strconv.AppendInt(b, a.CacheCreationInputTokens, 10)
	b = append(b, `,"output_reasoning_tokens":`...)
	b = strconv.AppendInt(b, a.OutputReasoningTokens, 10)
	b = append(b, `,"cost_usd":`...)
	if b, err = appendJSONFloat(b, a.CostUSD); err != nil {
		return b, fmt.Errorf("cost_usd: %w", err)
	}
	b = append(b, `,"price_list_version":`...)
	b = appendJSONString(b, a.PriceListVersion)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, a.Version, 10)
	b = append(b, `,"run_id":`...)
	b = appendJSONString(b, a.RunID)
	b = append(b, `,"processed_at":`...)
	if b, err = appendJSONTime(b, a.ProcessedAt); err != nil {
		return b, fmt.Errorf("processed_at: %w", err)
	}
	return append(b, '}'), nil
}

// appendJSONString quotes s as Marshal does. Strings of printable ASCII
// that Marshal leaves alone (it escapes <, > and & for HTML) are copied;
// anything else goes through Marshal itself, so escaping rules live in one
// place.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONTime writes t as Time.MarshalJSON does (RFC 3339 with
// nanoseconds), which refuses years outside [0, 9999].
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	if t.Location() != time.UTC {
		q, err := t.MarshalJSON()
		return append(b, q...), err
	}
	if y := t.Year(); y < 0 || y > 9999 {
		return b, fmt.Errorf("year %d outside of range [0,9999]", y)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// appendJSONFloat writes f as Marshal does: like ES6's number to string,
// %f between 1e-6 and 1e21, otherwise an exponent without padding.
func appendJSONFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, fmt.Errorf("unsupported value %s", strconv.FormatFloat(f, 'g', -1, 64))
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}
