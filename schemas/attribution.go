package schemas

import "time"

// Match methods, in the order the engine tries them.
const (
	MethodTagUser           = "tag_user"            // request_tags names the end user
	MethodTraceID           = "trace_id"            // request_tags carries the agent's trace id
	MethodRequestID         = "request_id"          // request_tags carries the agent's request id
	MethodTimeWindow        = "time_window"         // exactly one agent request of the service principal was running
	MethodTimeWindowSplit   = "time_window_split"   // several were running; cost split across them
	MethodTimeWindowNearest = "time_window_nearest" // several were running; the nearest one took it
	MethodTimeWindowLikely  = "time_window_likely"  // several were running; the timing model's likeliest took it
	MethodUnattributed      = "unattributed"        // no end user found; the service principal keeps it
)

// IDMethod reports whether a method links through an identifier rather than time.
func IDMethod(method string) bool {
	return method == MethodTagUser || method == MethodTraceID || method == MethodRequestID
}

// UnassignedTeam is the team of end users the org directory does not know,
// and of unattributed rows.
const UnassignedTeam = "unassigned"

// Attribution is one output row: a gateway invocation assigned to an end user.
// An invocation has exactly one row, except under the split policy, where it
// has one row per candidate end user and the rows' Weight sums to 1.
//
// Token counts on split rows are the invocation's counts apportioned by weight
// with largest-remainder rounding, so they sum exactly to the invocation's.
type Attribution struct {
	InvocationID     string    `json:"invocation_id"`
	RequestID        string    `json:"request_id"`
	EventTime        time.Time `json:"event_time"`
	EventDate        string    `json:"event_date"` // YYYY-MM-DD, UTC
	AccountID        string    `json:"account_id"`
	WorkspaceID      string    `json:"workspace_id"`
	EndpointID       string    `json:"endpoint_id"`
	EndpointName     string    `json:"endpoint_name"`
	DestinationModel string    `json:"destination_model"`
	Requester        string    `json:"requester"`
	StatusCode       int32     `json:"status_code"`
	UsageSource      string    `json:"usage_source"`

	// EndUser is the person who spent the tokens; for unattributed rows it is
	// the requester (the service principal), which keeps ownership.
	EndUser         string  `json:"end_user"`
	Team            string  `json:"team"`
	CostCenter      string  `json:"cost_center"`
	AgentEndpoint   string  `json:"agent_endpoint"`
	TraceID         string  `json:"trace_id"`
	AgentRequestID  string  `json:"agent_request_id"`
	Session         string  `json:"session"`
	MatchMethod     string  `json:"match_method"`
	MatchConfidence float64 `json:"match_confidence"`
	Candidates      int32   `json:"candidates"`
	Weight          float64 `json:"weight"`
	// Reason says why a row is unattributed (no_candidate, ambiguous,
	// id_not_found, no_rule_matched); empty when attributed.
	Reason string `json:"reason"`

	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	TotalTokens              int64 `json:"total_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	OutputReasoningTokens    int64 `json:"output_reasoning_tokens"`

	CostUSD          float64 `json:"cost_usd"`
	PriceListVersion string  `json:"price_list_version"`

	// Version orders restatements of the same invocation: a later answer
	// (e.g. after a late agent request arrived) carries a higher version.
	Version     int64     `json:"version"`
	RunID       string    `json:"run_id"`
	ProcessedAt time.Time `json:"processed_at"`
}

// Attributed reports whether the row names an end user other than the service principal.
func (a Attribution) Attributed() bool { return a.MatchMethod != MethodUnattributed }

// DeadLetter is an input record obolus could not use, kept with the reason.
type DeadLetter struct {
	// Source names where the record came from: a file path, a table, or a topic.
	Source string `json:"source"`
	// Location is the record's place in the source: "line 12", "row 40",
	// or "partition 3 offset 1234".
	Location string `json:"location"`
	// Kind is what the record should have been: "usage" or "agent_request".
	Kind   string `json:"kind"`
	Field  string `json:"field"`
	Reason string `json:"reason"`
	// Record is the raw input, cut to a bounded size.
	Record         string    `json:"record"`
	RunID          string    `json:"run_id"`
	DeadLetteredAt time.Time `json:"dead_lettered_at"`
}

// Record kinds.
const (
	KindUsage        = "usage"
	KindAgentRequest = "agent_request"
	KindServedEntity = "served_entity"
)

// MaxDeadLetterRecord bounds the raw bytes kept per dead letter.
const MaxDeadLetterRecord = 4096
