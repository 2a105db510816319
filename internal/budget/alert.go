package budget

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// Crossing is a budget level reached by a subject in a period: what a
// streaming alert announces. Its identity leaves out the spend and the
// time it was seen at, so the same crossing has the same id in every run,
// replay and restart, and a level is alerted once per subject and period.
type Crossing struct {
	Scope, Name string
	// Period is "day" or "month"; Start its first instant, UTC.
	Period string
	Start  time.Time
	Level  Level
}

// ID is the crossing's alert id: the first 16 bytes, in hex, of the
// SHA-256 of a version tag and its fields, NUL-separated, so that no two
// crossings share the text hashed unless a name holds a NUL.
func (c Crossing) ID() string {
	h := sha256.Sum256([]byte(strings.Join([]string{"obolus-budget-alert/v1", c.Scope, c.Name, c.Period,
		c.Start.UTC().Format(time.DateOnly), c.Level.String()}, "\x00")))
	return hex.EncodeToString(h[:16])
}

// Reached lists the levels a spend has reached in its budget, lowest
// first: none below warn, warn, or warn and critical. A spend that jumps
// past both thresholds at once reaches both, so the set of crossings of a
// growing spend is the same however its increments were batched.
func Reached(spend, limit float64, t Thresholds) []Level {
	_, l := Evaluate(spend, limit, t)
	var out []Level
	for x := Warn; x <= l; x++ {
		out = append(out, x)
	}
	return out
}

// Threshold is a level's fraction of the budget (0 for OK).
func (t Thresholds) Threshold(l Level) float64 {
	switch l {
	case Warn:
		return t.Warn
	case Critical:
		return t.Critical
	}
	return 0
}

// PeriodBounds is the UTC day or calendar month ("day", "month") holding t.
func PeriodBounds(period string, t time.Time) (start, end time.Time) {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if period == "month" {
		start = day.AddDate(0, 0, 1-day.Day())
		return start, start.AddDate(0, 1, 0)
	}
	return day, day.AddDate(0, 0, 1)
}
