// Package budget evaluates spend against budgets: the level a spend has
// reached, the trend of its last days and a forecast to the end of the
// period. It knows neither SQL nor the configuration, so the batch report
// (obolus report budgets) and, later, the streaming alerts can both call it
// with the spend they have so far.
package budget

import (
	"fmt"
	"math"
	"time"
)

// Level is how far a spend has gone into its budget.
type Level int

// Levels, in increasing severity.
const (
	OK       Level = iota // below the warn fraction
	Warn                  // at or above the warn fraction
	Critical              // at or above the critical fraction
)

func (l Level) String() string {
	switch l {
	case Warn:
		return "warn"
	case Critical:
		return "critical"
	}
	return "ok"
}

// Thresholds are the warn and critical levels as fractions of the budget
// (0.8 and 1.0: warn at 80%, critical once the budget is spent).
type Thresholds struct {
	Warn, Critical float64
}

// Validate checks 0 < warn <= critical.
func (t Thresholds) Validate() error {
	if !(t.Warn > 0) || math.IsInf(t.Warn, 0) {
		return fmt.Errorf("budget: warn %v is not a positive fraction", t.Warn)
	}
	if !(t.Critical >= t.Warn) || math.IsInf(t.Critical, 0) {
		return fmt.Errorf("budget: critical %v is below warn %v", t.Critical, t.Warn)
	}
	return nil
}

// Evaluate returns spend's share of limit and the level it reached. A
// non-positive limit is no budget: share 0, level OK, so that an unset
// budget never alerts.
func Evaluate(spend, limit float64, t Thresholds) (share float64, level Level) {
	if !(limit > 0) {
		return 0, OK
	}
	share = spend / limit
	switch {
	case share >= t.Critical:
		return share, Critical
	case share >= t.Warn:
		return share, Warn
	}
	return share, OK
}

// Forecast is the spend a period is expected to end with: a linear
// run-rate, spend so far divided by the time elapsed and multiplied by the
// period's length. Chosen over a fit of the recent days because it needs
// no history before the period, cannot go below the spend already made, and
// is what a reader checks by hand; the trend (Trend) shows acceleration
// separately. asOf is clamped to the period: after its end the forecast is
// the spend; at or before its start there is nothing to extrapolate from,
// and the forecast is the spend too.
func Forecast(spend float64, start, end, asOf time.Time) float64 {
	total := end.Sub(start)
	elapsed := asOf.Sub(start)
	if elapsed <= 0 || elapsed >= total {
		return spend
	}
	return spend * float64(total) / float64(elapsed)
}

// Trend compares the recent spend rate with the period's: recent, the
// spend over the recentDays days before asOf, per day, divided by the
// period's spend per day so far. Above 1 the spend is accelerating. 0 when
// there is no rate to compare (no spend in the period, or no time elapsed).
func Trend(recent, recentDays, periodSpend float64, start, asOf time.Time) float64 {
	elapsedDays := asOf.Sub(start).Hours() / 24
	if !(recentDays > 0) || elapsedDays <= 0 || !(periodSpend > 0) {
		return 0
	}
	return (recent / recentDays) / (periodSpend / elapsedDays)
}
