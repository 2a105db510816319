package budget

import (
	"slices"
	"testing"
	"time"
)

func TestCrossingID(t *testing.T) {
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	base := Crossing{Scope: "user", Name: "ann@example.com", Period: "day", Start: day, Level: Warn}
	if got, want := base.ID(), base.ID(); got != want || len(got) != 32 {
		t.Fatalf("ID %q then %q: want one stable 32-digit id", got, want)
	}
	// The id docs/streaming.md shows, computed there with Python's hashlib.
	doc := Crossing{Scope: "user", Name: "ann@example.com", Period: "day", Start: day, Level: Critical}
	if got := doc.ID(); got != "3740686f4d36377c8c179319bd88729a" {
		t.Errorf("documented example id = %s; docs/streaming.md says 3740686f4d36377c8c179319bd88729a", got)
	}
	// The same instant in another zone is the same crossing.
	same := base
	same.Start = day.In(time.FixedZone("X", 5*3600))
	if same.ID() != base.ID() {
		t.Errorf("ID depends on the time zone of Start")
	}
	for _, c := range []struct {
		name string
		mod  func(*Crossing)
	}{
		{"level", func(c *Crossing) { c.Level = Critical }},
		{"scope", func(c *Crossing) { c.Scope = "team" }},
		{"name", func(c *Crossing) { c.Name = "bob@example.com" }},
		{"period", func(c *Crossing) { c.Period = "month" }},
		{"next day", func(c *Crossing) { c.Start = day.AddDate(0, 0, 1) }},
		{"name and scope run together", func(c *Crossing) { c.Scope, c.Name = "user"+"ann", "@example.com" }},
	} {
		x := base
		c.mod(&x)
		if x.ID() == base.ID() {
			t.Errorf("%s: same id as the base crossing", c.name)
		}
	}
}

func TestReached(t *testing.T) {
	th := Thresholds{Warn: 0.8, Critical: 1}
	for _, c := range []struct {
		spend, limit float64
		want         []Level
	}{
		{0, 100, nil},
		{79.99, 100, nil},
		{80, 100, []Level{Warn}},
		{99.99, 100, []Level{Warn}},
		{100, 100, []Level{Warn, Critical}}, // a jump past both raises both
		{500, 100, []Level{Warn, Critical}},
		{500, 0, nil}, // no budget, no alert
	} {
		if got := Reached(c.spend, c.limit, th); !slices.Equal(got, c.want) {
			t.Errorf("Reached(%v, %v) = %v, want %v", c.spend, c.limit, got, c.want)
		}
	}
}

func TestPeriodBounds(t *testing.T) {
	at := time.Date(2026, 12, 31, 23, 59, 59, 0, time.FixedZone("west", -3600)) // 2027-01-01T00:59:59Z
	for _, c := range []struct {
		period     string
		start, end string
	}{
		{"day", "2027-01-01", "2027-01-02"},
		{"month", "2027-01-01", "2027-02-01"},
	} {
		s, e := PeriodBounds(c.period, at)
		if s.Format(time.DateOnly) != c.start || e.Format(time.DateOnly) != c.end || s.Location() != time.UTC {
			t.Errorf("%s: [%s, %s), want [%s, %s) UTC", c.period, s, e, c.start, c.end)
		}
	}
}
