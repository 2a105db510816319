package schemas

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// Validate checks what a store would reject with an unhelpful message, or
// store and then mis-sum, and returns the row's event date (midnight UTC).
// Every store validates with it, so they refuse the same rows.
func (a *Attribution) Validate() (day time.Time, err error) {
	if a.InvocationID == "" {
		return time.Time{}, errors.New("invocation_id is empty")
	}
	if a.EventTime.IsZero() {
		return time.Time{}, errors.New("event_time is zero")
	}
	y, m, d := a.EventTime.UTC().Date()
	day = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	if a.EventDate != "" {
		var buf [16]byte
		if string(day.AppendFormat(buf[:0], time.DateOnly)) != a.EventDate {
			return time.Time{}, fmt.Errorf("event_date %q is not the UTC date of event_time %s", a.EventDate, a.EventTime.UTC().Format(time.RFC3339Nano))
		}
	}
	if a.MatchMethod == "" {
		return time.Time{}, errors.New("match_method is empty")
	}
	for _, f := range [...]struct {
		name string
		v    float64
	}{{"weight", a.Weight}, {"match_confidence", a.MatchConfidence}, {"cost_usd", a.CostUSD}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return time.Time{}, fmt.Errorf("%s is %v", f.name, f.v)
		}
	}
	if a.Weight < 0 || a.Weight > 1 {
		return time.Time{}, fmt.Errorf("weight %v is outside [0, 1]", a.Weight)
	}
	for _, f := range [...]struct{ name, v string }{
		{"invocation_id", a.InvocationID}, {"request_id", a.RequestID}, {"account_id", a.AccountID},
		{"workspace_id", a.WorkspaceID}, {"endpoint_id", a.EndpointID}, {"endpoint_name", a.EndpointName},
		{"destination_model", a.DestinationModel}, {"requester", a.Requester}, {"usage_source", a.UsageSource},
		{"end_user", a.EndUser}, {"team", a.Team}, {"cost_center", a.CostCenter},
		{"agent_endpoint", a.AgentEndpoint}, {"trace_id", a.TraceID}, {"agent_request_id", a.AgentRequestID},
		{"session", a.Session}, {"match_method", a.MatchMethod}, {"reason", a.Reason},
		{"price_list_version", a.PriceListVersion}, {"run_id", a.RunID},
	} {
		if !utf8.ValidString(f.v) {
			return time.Time{}, fmt.Errorf("%s is not valid UTF-8: %q", f.name, f.v)
		}
	}
	return day, nil
}

// RowSet describes a set of attribution rows a store is asked to write.
type RowSet struct {
	Rows, Invocations int64
	// First and Last are the least and greatest event_time.
	First, Last time.Time
}

// CheckRows validates rows held in chunks as one write: each row, the
// (invocation_id, end_user) key unique, one version per invocation. day, if
// not nil, is called with each row's position and event date.
func CheckRows(chunks [][]Attribution, day func(i int, d time.Time)) (RowSet, error) {
	type key struct{ inv, user string }
	var n int
	for _, c := range chunks {
		n += len(c)
	}
	set := RowSet{Rows: int64(n)}
	seen := make(map[key]struct{}, n)
	versions := make(map[string]int64, n)
	i := 0
	for _, c := range chunks {
		for k := range c {
			r := &c[k]
			d, err := r.Validate()
			if err != nil {
				return set, fmt.Errorf("attribution row %d (invocation_id %q, end_user %q): %w", i, r.InvocationID, r.EndUser, err)
			}
			kk := key{r.InvocationID, r.EndUser}
			if _, dup := seen[kk]; dup {
				return set, fmt.Errorf("attribution row %d: (invocation_id %q, end_user %q) repeats an earlier row: the key must be unique", i, r.InvocationID, r.EndUser)
			}
			seen[kk] = struct{}{}
			if v, ok := versions[r.InvocationID]; ok && v != r.Version {
				return set, fmt.Errorf("attribution row %d: invocation_id %q carries versions %d and %d: all rows of one invocation must share its version", i, r.InvocationID, v, r.Version)
			}
			versions[r.InvocationID] = r.Version
			if set.First.IsZero() || r.EventTime.Before(set.First) {
				set.First = r.EventTime
			}
			if r.EventTime.After(set.Last) {
				set.Last = r.EventTime
			}
			if day != nil {
				day(i, d)
			}
			i++
		}
	}
	set.Invocations = int64(len(versions))
	return set, nil
}
