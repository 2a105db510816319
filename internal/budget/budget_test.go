package budget

import (
	"math"
	"testing"
	"time"
)

func TestEvaluate(t *testing.T) {
	th := Thresholds{Warn: 0.8, Critical: 1.0}
	for _, tc := range []struct {
		name         string
		spend, limit float64
		th           Thresholds
		share        float64
		level        Level
	}{
		{"nothing spent", 0, 100, th, 0, OK},
		{"below warn", 79.99, 100, th, 0.7999, OK},
		{"at warn", 80, 100, th, 0.8, Warn},
		{"between", 95, 100, th, 0.95, Warn},
		{"at critical", 100, 100, th, 1, Critical},
		{"over", 250, 100, th, 2.5, Critical},
		{"no budget", 1e6, 0, th, 0, OK},
		{"negative budget", 5, -1, th, 0, OK},
		{"critical below the budget", 90, 100, Thresholds{Warn: 0.5, Critical: 0.9}, 0.9, Critical},
		{"warn equals critical", 60, 100, Thresholds{Warn: 0.6, Critical: 0.6}, 0.6, Critical},
	} {
		t.Run(tc.name, func(t *testing.T) {
			share, level := Evaluate(tc.spend, tc.limit, tc.th)
			if math.Abs(share-tc.share) > 1e-9 || level != tc.level {
				t.Errorf("Evaluate(%v, %v) = %v, %s; want %v, %s", tc.spend, tc.limit, share, level, tc.share, tc.level)
			}
		})
	}
}

func TestThresholdsValidate(t *testing.T) {
	for _, tc := range []struct {
		th Thresholds
		ok bool
	}{
		{Thresholds{0.8, 1}, true},
		{Thresholds{1, 1}, true},
		{Thresholds{0, 1}, false},
		{Thresholds{0.9, 0.8}, false},
		{Thresholds{math.NaN(), 1}, false},
		{Thresholds{0.8, math.Inf(1)}, false},
	} {
		if err := tc.th.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: Validate() = %v, want ok=%v", tc.th, err, tc.ok)
		}
	}
}

func TestForecast(t *testing.T) {
	nov := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	dec := nov.AddDate(0, 1, 0)
	day := nov.AddDate(0, 0, 10)
	for _, tc := range []struct {
		name       string
		spend      float64
		start, end time.Time
		asOf       time.Time
		want       float64
	}{
		{"a third of the month", 100, nov, dec, nov.AddDate(0, 0, 10), 300},
		{"half the month", 50, nov, dec, nov.Add(15 * 24 * time.Hour), 100},
		{"closed period: the spend", 123, nov, dec, dec.AddDate(0, 0, 6), 123},
		{"at the end", 123, nov, dec, dec, 123},
		{"at the start: nothing to extrapolate", 5, nov, dec, nov, 5},
		{"before the start", 5, nov, dec, nov.Add(-time.Hour), 5},
		{"nothing spent", 0, nov, dec, nov.AddDate(0, 0, 3), 0},
		{"day budget at 06:00", 2, day, day.AddDate(0, 0, 1), day.Add(6 * time.Hour), 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Forecast(tc.spend, tc.start, tc.end, tc.asOf); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("Forecast = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTrend(t *testing.T) {
	nov := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		recent float64
		days   float64
		spend  float64
		asOf   time.Time
		want   float64
	}{
		{"steady", 70, 7, 300, nov.AddDate(0, 0, 30), 1},
		{"doubling", 140, 7, 300, nov.AddDate(0, 0, 30), 2},
		{"quiet last week", 0, 7, 300, nov.AddDate(0, 0, 30), 0},
		{"no spend in the period", 10, 7, 0, nov.AddDate(0, 0, 30), 0},
		{"at the start", 10, 7, 10, nov, 0},
		{"day period, recent days before it", 7, 7, 2, nov.Add(24 * time.Hour), 0.5},
		{"early in the month, a window of the 3 days elapsed", 30, 3, 30, nov.AddDate(0, 0, 3), 1},
		{"no window", 5, 0, 5, nov.AddDate(0, 0, 3), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Trend(tc.recent, tc.days, tc.spend, nov, tc.asOf); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("Trend = %v, want %v", got, tc.want)
			}
		})
	}
}
