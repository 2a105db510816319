package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/obolus/obolus/internal/budget"
	"github.com/obolus/obolus/schemas"
)

// The streaming budget alerts' tables: the spend ledger and the outbox
// (schemas/ddl/duckdb/17_budget_spend.sql, 18_budget_alerts.sql).

const stageBudgetSpend = "obolus_stage_budget_spend"

var budgetSpendColumns = []string{"invocation_id", "scope", "name", "event_time", "cost_micros"}

// RecordBudgetSpend adds rows to the ledger, keeping per (invocation,
// scope, name) the highest cost ever recorded, and returns the spend, per
// subject, of every day and month the rows fall in, for the subjects the
// rows name. Recording the same rows again changes nothing: the loader
// calls it again for answers it reads again after a restart.
func (s *Store) RecordBudgetSpend(ctx context.Context, rows []schemas.BudgetSpend) ([]schemas.PeriodSpend, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	type key struct{ inv, scope, name string }
	best := make(map[key]int, len(rows))
	for i, r := range rows {
		if r.InvocationID == "" || r.Scope == "" || r.Name == "" || r.EventTime.IsZero() {
			return nil, fmt.Errorf("budget spend %d (invocation %q, %s %q): invocation, scope, name and event time must be set", i, r.InvocationID, r.Scope, r.Name)
		}
		k := key{r.InvocationID, r.Scope, r.Name}
		if j, ok := best[k]; !ok || rows[j].CostMicros < r.CostMicros {
			best[k] = i
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("record budget spend: %w", err)
	}
	defer conn.Close()
	defer dropStage(conn, stageBudgetSpend)
	err = stage(ctx, conn, "budget_spend", stageBudgetSpend, func(ap *duckdb.Appender) error {
		for k, i := range best {
			r := &rows[i]
			if err := ap.AppendRow(k.inv, k.scope, k.name, r.EventTime.UTC(), r.CostMicros); err != nil {
				return fmt.Errorf("append budget spend of invocation %s: %w", k.inv, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record budget spend: %w", err)
	}
	type pkey struct {
		scope, name, period string
		start               time.Time
	}
	// Only the periods the rows fall in: the others' spend did not change.
	touched := map[pkey]bool{}
	var from, to time.Time
	for k, i := range best {
		day, _ := budget.PeriodBounds(schemas.PeriodDay, rows[i].EventTime)
		month, end := budget.PeriodBounds(schemas.PeriodMonth, rows[i].EventTime)
		touched[pkey{k.scope, k.name, schemas.PeriodDay, day}] = true
		touched[pkey{k.scope, k.name, schemas.PeriodMonth, month}] = true
		if from.IsZero() || month.Before(from) {
			from = month
		}
		if end.After(to) {
			to = end
		}
	}
	sums := map[pkey]*schemas.PeriodSpend{}
	err = inTx(ctx, conn, func(tx *sql.Tx) error {
		cols := columnList("budget_spend")
		if _, err := tx.ExecContext(ctx, `INSERT INTO budget_spend (`+cols+`) SELECT `+cols+` FROM temp.main.`+quoteIdent(stageBudgetSpend)+`
ON CONFLICT (invocation_id, scope, name) DO UPDATE SET cost_micros = greatest(budget_spend.cost_micros, excluded.cost_micros)`); err != nil {
			return fmt.Errorf("upsert: %w", err)
		}
		// Daily sums of the touched subjects from the first touched month
		// to the end of the last (a range, which DuckDB's zone maps skip
		// row groups by); the monthly sums add them up. Integer sums:
		// exact in any order.
		q := `WITH subjects AS (SELECT DISTINCT scope, name FROM temp.main.` + quoteIdent(stageBudgetSpend) + `)
SELECT b.scope, b.name, date_trunc('day', b.event_time), CAST(sum(b.cost_micros) AS BIGINT), max(b.event_time)
FROM budget_spend b JOIN subjects USING (scope, name)
WHERE b.event_time >= make_timestamp(?) AND b.event_time < make_timestamp(?)
GROUP BY 1, 2, 3`
		rs, err := tx.QueryContext(ctx, q, from.UnixMicro(), to.UnixMicro())
		if err != nil {
			return fmt.Errorf("sum: %w", err)
		}
		defer rs.Close()
		for rs.Next() {
			var (
				scope, name string
				day, latest time.Time
				micros      int64
			)
			if err := rs.Scan(&scope, &name, &day, &micros, &latest); err != nil {
				return fmt.Errorf("sum: %w", err)
			}
			day, latest = day.UTC(), latest.UTC()
			month, _ := budget.PeriodBounds(schemas.PeriodMonth, day)
			for _, k := range []pkey{{scope, name, schemas.PeriodDay, day}, {scope, name, schemas.PeriodMonth, month}} {
				p := sums[k]
				if p == nil {
					p = &schemas.PeriodSpend{Scope: k.scope, Name: k.name, Period: k.period, Start: k.start}
					sums[k] = p
				}
				p.CostMicros += micros
				if latest.After(p.LatestEvent) {
					p.LatestEvent = latest
				}
			}
		}
		return rs.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("record budget spend: %w", err)
	}
	out := make([]schemas.PeriodSpend, 0, len(touched))
	for k := range touched {
		if p := sums[k]; p != nil {
			out = append(out, *p)
		}
	}
	return out, nil
}

// InsertBudgetAlerts writes the alerts whose id the outbox does not hold
// yet an alert raised again (the same
// level, subject and period, after a restart or a later flush) changes
// nothing. It returns the alerts it wrote.
func (s *Store) InsertBudgetAlerts(ctx context.Context, alerts []schemas.BudgetAlert, webhook string) ([]schemas.BudgetAlert, error) {
	if len(alerts) == 0 {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("insert budget alerts: %w", err)
	}
	defer conn.Close()
	var added []schemas.BudgetAlert
	err = inTx(ctx, conn, func(tx *sql.Tx) error {
		for _, a := range alerts {
			res, err := tx.ExecContext(ctx, `INSERT INTO budget_alerts (alert_id, scope, name, period, period_start, period_end, level,
	spend_usd, budget_usd, share, threshold, basis, latest_event_time, raised_at, produced_at, webhook, webhook_at)
VALUES (?, ?, ?, ?, make_timestamp(?), make_timestamp(?), ?, ?, ?, ?, ?, ?, make_timestamp(?), make_timestamp(?), NULL, ?, NULL)
ON CONFLICT (alert_id) DO NOTHING`,
				a.ID, a.Scope, a.Name, a.Period, micros(a.PeriodStart), micros(a.PeriodEnd), a.Level,
				finite(a.SpendUSD), finite(a.BudgetUSD), finite(a.Share), finite(a.Threshold), a.Basis, micros(a.LatestEventTime), micros(a.RaisedAt), webhook)
			if err != nil {
				return fmt.Errorf("alert %s: %w", a.ID, err)
			}
			k, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("alert %s: %w", a.ID, err)
			}
			if k > 0 {
				added = append(added, a)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("insert budget alerts: %w", err)
	}
	return added, nil
}

func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// PendingBudgetAlerts returns the alerts not yet delivered on channel
// (schemas.ChannelKafka: not produced; schemas.ChannelWebhook: webhook pending), oldest first.
func (s *Store) PendingBudgetAlerts(ctx context.Context, channel string) ([]schemas.BudgetAlert, error) {
	var where string
	switch channel {
	case schemas.ChannelKafka:
		where = "produced_at IS NULL"
	case schemas.ChannelWebhook:
		where = "webhook = '" + schemas.WebhookPending + "'"
	default:
		return nil, fmt.Errorf("pending budget alerts: unknown channel %q", channel)
	}
	return s.budgetAlerts(ctx, where)
}

// BudgetAlerts returns every alert of the outbox, oldest first.
func (s *Store) BudgetAlerts(ctx context.Context) ([]schemas.BudgetAlert, error) {
	return s.budgetAlerts(ctx, "true")
}

func (s *Store) budgetAlerts(ctx context.Context, where string) ([]schemas.BudgetAlert, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT alert_id, scope, name, period, period_start, period_end, level, spend_usd, budget_usd,
	share, threshold, basis, latest_event_time, raised_at
FROM budget_alerts WHERE `+where+` ORDER BY raised_at, alert_id`)
	if err != nil {
		return nil, fmt.Errorf("read budget alerts: %w", err)
	}
	defer rows.Close()
	var out []schemas.BudgetAlert
	for rows.Next() {
		var (
			a      schemas.BudgetAlert
			latest sql.NullTime
		)
		if err := rows.Scan(&a.ID, &a.Scope, &a.Name, &a.Period, &a.PeriodStart, &a.PeriodEnd, &a.Level, &a.SpendUSD, &a.BudgetUSD,
			&a.Share, &a.Threshold, &a.Basis, &latest, &a.RaisedAt); err != nil {
			return nil, fmt.Errorf("read budget alerts: %w", err)
		}
		a.PeriodStart, a.PeriodEnd, a.RaisedAt = a.PeriodStart.UTC(), a.PeriodEnd.UTC(), a.RaisedAt.UTC()
		if latest.Valid {
			a.LatestEventTime = latest.Time.UTC()
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read budget alerts: %w", err)
	}
	return out, nil
}

// MarkBudgetAlertsProduced records that the alerts topic holds ids.
func (s *Store) MarkBudgetAlertsProduced(ctx context.Context, ids []string, at time.Time) error {
	return s.markAlerts(ctx, "produced_at = make_timestamp(?)", "produced_at IS NULL", ids, micros(at))
}

// MarkBudgetAlertWebhook records the webhook delivery of ids: delivered or failed.
func (s *Store) MarkBudgetAlertWebhook(ctx context.Context, ids []string, state string, at time.Time) error {
	if state != schemas.WebhookDelivered && state != schemas.WebhookFailed {
		return fmt.Errorf("mark budget alerts: webhook state %q: want %s or %s", state, schemas.WebhookDelivered, schemas.WebhookFailed)
	}
	return s.markAlerts(ctx, "webhook = ?, webhook_at = make_timestamp(?)", "webhook = '"+schemas.WebhookPending+"'", ids, state, micros(at))
}

func (s *Store) markAlerts(ctx context.Context, set, unless string, ids []string, args ...any) error {
	if len(ids) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("mark budget alerts: %w", err)
	}
	defer conn.Close()
	err = inTx(ctx, conn, func(tx *sql.Tx) error {
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE budget_alerts SET `+set+` WHERE alert_id = ? AND `+unless, append(args[:len(args):len(args)], id)...); err != nil {
				return fmt.Errorf("alert %s: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark budget alerts: %w", err)
	}
	return nil
}
