package schemas

import "time"

// BudgetSpend is one invocation's spend charged to one budget subject (an
// end user, team or cost center), as the stream's alerting ledger holds
// it: the highest spend any answer of the invocation gave the subject, in
// micro-USD. Integer micro-units make the ledger's sums exact, so whether
// a sum reaches a threshold does not depend on the order it was added in.
type BudgetSpend struct {
	InvocationID string
	Scope, Name  string
	EventTime    time.Time
	CostMicros   int64
}

// PeriodSpend is a subject's spend in one budget period (a UTC day or
// calendar month) from the ledger, with the latest event time counted.
type PeriodSpend struct {
	Scope, Name string
	// Period is "day" or "month"; Start its first instant, UTC.
	Period      string
	Start       time.Time
	CostMicros  int64
	LatestEvent time.Time
}

// Budget periods, UTC.
const (
	PeriodDay   = "day"
	PeriodMonth = "month"
)

// Alert delivery channels.
const (
	ChannelKafka   = "kafka"   // the alerts topic
	ChannelWebhook = "webhook" // budgets.alerts.webhook
)

// Alert delivery states of the budget_alerts outbox's webhook column.
const (
	WebhookOff       = "off"       // no webhook was configured when the alert was raised
	WebhookPending   = "pending"   // not yet accepted by the receiver
	WebhookDelivered = "delivered" // the receiver answered 2xx
	WebhookFailed    = "failed"    // the receiver refused it (a 4xx other than 408 and 429)
)

// BudgetAlert is a budget level crossed in a period: the JSON value of
// the alerts topic, the body of the webhook (with a text line) and a row
// of the budget_alerts outbox.
type BudgetAlert struct {
	// ID is a digest of scope, name, period, period start and level: the
	// same crossing always has the same id, in every run and replay.
	ID    string `json:"alert_id"`
	Scope string `json:"scope"` // user, team or cost_center
	Name  string `json:"subject"`
	// Period is day or month; the period runs over [PeriodStart, PeriodEnd), UTC.
	Period      string    `json:"period"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	Level       string    `json:"level"` // warn or critical
	// Spend, Share and LatestEventTime describe the ledger when the
	// alert was raised (spend so far, its share of the budget, the latest
	// usage event counted): they depend on how far loading had got,
	// unlike the alert's identity.
	SpendUSD        float64   `json:"spend_usd"`
	BudgetUSD       float64   `json:"budget_usd"`
	Share           float64   `json:"share"`
	Threshold       float64   `json:"threshold"` // the level's fraction of the budget
	Basis           string    `json:"basis"`     // list: attribution cost_usd
	LatestEventTime time.Time `json:"latest_event_time"`
	RaisedAt        time.Time `json:"raised_at"`
}
