package ingest

import (
	"time"

	"github.com/obolus/obolus/schemas"
)

// EarliestEventTime is the earliest event or request time accepted, in
// batch and stream alike: anything before is a zero value or a unit mistake.
var EarliestEventTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Limits bound what a decoded record may claim. A record beyond them is a
// unit mistake or a corrupt row; it is dead-lettered, because one such row
// would otherwise fail a whole write (times no store keeps), overflow sums
// (token counts near 2^63) or capture every call of its service principal in
// time-window matching (a request lasting years).
type Limits struct {
	// MaxTokens bounds each token count of one call: input, output, total
	// and each token_details count.
	MaxTokens int64
	// MaxRequestDuration bounds an agent request's duration.
	MaxRequestDuration time.Duration
}

// DefaultLimits are the limits a zero Limits stands for. 100 million tokens
// is ten times the largest context window offered in 2026; no single call
// comes near it, and 92 billion calls at that bound still sum within int64.
var DefaultLimits = Limits{MaxTokens: 100_000_000, MaxRequestDuration: 24 * time.Hour}

// OrDefault fills the zero fields of l from DefaultLimits.
func (l Limits) OrDefault() Limits {
	if l.MaxTokens <= 0 {
		l.MaxTokens = DefaultLimits.MaxTokens
	}
	if l.MaxRequestDuration <= 0 {
		l.MaxRequestDuration = DefaultLimits.MaxRequestDuration
	}
	return l
}

// CheckUsage returns a *FieldError naming the first field of u beyond the
// limits, nil if there is none. Fields are named as the source table names
// them (legacy rows have input_token_count and request_time).
func (l Limits) CheckUsage(u *schemas.UsageEvent) error {
	l = l.OrDefault()
	legacy := u.Source == schemas.SourceServingEndpoint
	timeField, in, out := "event_time", "input_tokens", "output_tokens"
	if legacy {
		timeField, in, out = "request_time", "input_token_count", "output_token_count"
	}
	if err := checkTime(timeField, u.EventTime); err != nil {
		return err
	}
	counts := []struct {
		name string
		n    int64
	}{
		{in, u.InputTokens}, {out, u.OutputTokens},
		{"total_tokens", u.TotalTokens},
		{"token_details.cache_read_input_tokens", u.TokenDetails.CacheReadInputTokens},
		{"token_details.cache_creation_input_tokens", u.TokenDetails.CacheCreationInputTokens},
		{"token_details.output_reasoning_tokens", u.TokenDetails.OutputReasoningTokens},
	}
	if legacy {
		counts = counts[:2] // total_tokens is their sum, details are absent
	}
	for _, c := range counts {
		if c.n > l.MaxTokens {
			return fieldErr(c.name, "%d tokens in one call is more than %d (limits.max_tokens): not a plausible count", c.n, l.MaxTokens)
		}
	}
	return nil
}

// CheckAgent returns a *FieldError naming the first field of a beyond the
// limits, nil if there is none. Fields are named as the source names them
// (spans have start_time_unix_nano and end_time_unix_nano).
func (l Limits) CheckAgent(a *schemas.AgentRequest) error {
	l = l.OrDefault()
	start, dur := "request_time", "execution_duration_ms"
	if a.Source == schemas.SourceOTelSpan {
		start, dur = "start_time_unix_nano", "end_time_unix_nano"
	}
	if err := checkTime(start, a.StartTime); err != nil {
		return err
	}
	if a.DurationMS > l.MaxRequestDuration.Milliseconds() {
		return fieldErr(dur, "%d ms is longer than %s (match.max_request_duration): not a plausible agent request", a.DurationMS, l.MaxRequestDuration)
	}
	return nil
}

func checkTime(field string, t time.Time) error {
	if t.Before(EarliestEventTime) {
		return fieldErr(field, "%s is before %s: not a plausible time", t.UTC().Format(time.RFC3339), EarliestEventTime.Format(time.DateOnly))
	}
	return nil
}
