package duckdb

import (
	"context"
	"testing"
	"time"

	"github.com/obolus/obolus/schemas"
)

// TestBudgetSpendLedger: the ledger keeps each invocation's highest spend
// per subject, so a restatement that lowers it, or a replay, changes no
// sum; sums come back for the touched days and months only.
func TestBudgetSpendLedger(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	sp := func(inv, name string, t time.Time, micros int64) schemas.BudgetSpend {
		return schemas.BudgetSpend{InvocationID: inv, Scope: "user", Name: name, EventTime: t, CostMicros: micros}
	}
	steps := []struct {
		name string
		rows []schemas.BudgetSpend
		want map[string]int64 // period/start → ann's spend
	}{
		{"first answers", []schemas.BudgetSpend{sp("i1", "ann", at, 1_000_000), sp("i2", "ann", at.Add(time.Hour), 500_000), sp("i3", "bob", at.AddDate(0, 0, -1), 7)},
			map[string]int64{"day 2026-03-02": 1_500_000, "month 2026-03-01": 1_500_000}},
		{"restated lower, max kept", []schemas.BudgetSpend{sp("i1", "ann", at, 10)}, map[string]int64{"day 2026-03-02": 1_500_000, "month 2026-03-01": 1_500_000}},
		{"restated higher", []schemas.BudgetSpend{sp("i2", "ann", at.Add(time.Hour), 600_000)}, map[string]int64{"day 2026-03-02": 1_600_000, "month 2026-03-01": 1_600_000}},
		{"other day, same month", []schemas.BudgetSpend{sp("i4", "ann", at.AddDate(0, 0, 3), 1)}, map[string]int64{"day 2026-03-05": 1, "month 2026-03-01": 1_600_001}},
		{"replay", []schemas.BudgetSpend{sp("i4", "ann", at.AddDate(0, 0, 3), 1), sp("i4", "ann", at.AddDate(0, 0, 3), 1)}, map[string]int64{"day 2026-03-05": 1, "month 2026-03-01": 1_600_001}},
	}
	for _, st := range steps {
		got, err := s.RecordBudgetSpend(ctx, st.rows)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		have := map[string]int64{}
		for _, p := range got {
			if p.Name == "ann" {
				have[p.Period+" "+p.Start.Format(time.DateOnly)] = p.CostMicros
			}
		}
		if len(have) != len(st.want) {
			t.Errorf("%s: periods %v, want %v", st.name, have, st.want)
		}
		for k, v := range st.want {
			if have[k] != v {
				t.Errorf("%s: %s = %d, want %d", st.name, k, have[k], v)
			}
		}
	}
}

// TestBudgetAlertOutbox: an alert id is written once; each channel marks
// its own delivery.
func TestBudgetAlertOutbox(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	a := schemas.BudgetAlert{ID: "a1", Scope: "team", Name: "ml", Period: schemas.PeriodMonth, PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0),
		Level: "warn", SpendUSD: 80, BudgetUSD: 100, Share: 0.8, Threshold: 0.8, Basis: "list", LatestEventTime: start.Add(time.Hour), RaisedAt: start.Add(2 * time.Hour)}
	b := a
	b.ID, b.Level, b.SpendUSD = "a2", "critical", 120
	for i, batch := range [][]schemas.BudgetAlert{{a}, {a, b}, {b, a}} {
		added, err := s.InsertBudgetAlerts(ctx, batch, schemas.WebhookPending)
		n := len(added)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{1, 1, 0}[i]; n != want {
			t.Errorf("insert %d wrote %d alerts, want %d", i, n, want)
		}
	}
	pending := func(ch string) []string {
		as, err := s.PendingBudgetAlerts(ctx, ch)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, x := range as {
			ids = append(ids, x.ID)
		}
		return ids
	}
	if got := pending(schemas.ChannelKafka); len(got) != 2 {
		t.Fatalf("pending kafka %v, want a1 a2", got)
	}
	if err := s.MarkBudgetAlertsProduced(ctx, []string{"a1"}, start); err != nil {
		t.Fatal(err)
	}
	if got := pending(schemas.ChannelKafka); len(got) != 1 || got[0] != "a2" {
		t.Errorf("pending kafka %v, want a2", got)
	}
	if err := s.MarkBudgetAlertWebhook(ctx, []string{"a2"}, schemas.WebhookFailed, start); err != nil {
		t.Fatal(err)
	}
	if got := pending(schemas.ChannelWebhook); len(got) != 1 || got[0] != "a1" {
		t.Errorf("pending webhook %v, want a1", got)
	}
	all, err := s.BudgetAlerts(ctx)
	if err != nil || len(all) != 2 || all[0] != a {
		t.Errorf("alerts %+v (%v), want a1 first as written", all, err)
	}
}
