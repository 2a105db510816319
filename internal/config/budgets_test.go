package config

import (
	"strings"
	"testing"
)

func TestBudgetsLoad(t *testing.T) {
	p := write(t, `budgets:
  basis: allocated
  warn: 0.75
  default_user: {month: 50}
  limits:
    - {scope: user, name: Alice.Smith@Example.com, day: 5, month: 100}
    - {scope: team, name: search, month: 2000}
`)
	c, err := Load(New(), p)
	if err != nil {
		t.Fatal(err)
	}
	b := c.Budgets
	// Names keep their case and dots: they are values, not viper keys.
	if b.Basis != BasisAllocated || b.Warn != 0.75 || b.Critical != 1 || b.DefaultUser.Month != 50 || len(b.Limits) != 2 ||
		b.Limits[0].Name != "Alice.Smith@Example.com" || b.Limits[0].Day != 5 || b.Limits[1].Month != 2000 {
		t.Errorf("budgets = %+v", b)
	}
}

// TestBudgetAlertsLoad: alerts are on by default; the webhook's secret
// comes from the environment as any key does, and no error quotes it or
// the URL (which may carry a token).
func TestBudgetAlertsLoad(t *testing.T) {
	t.Setenv("OBOLUS_BUDGETS_ALERTS_WEBHOOK_SECRET", "from-env")
	c, err := Load(New(), write(t, "budgets: {alerts: {webhook: {url: 'https://hooks.example.com/T0/B0/token', timeout: 3s}}}"))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Budgets.Alerts
	if !a.Enabled || a.Webhook.Secret != "from-env" || a.Webhook.Timeout.Seconds() != 3 || a.Webhook.Attempts != 5 || c.Stream.Topics.Alerts != "obolus.alerts" {
		t.Errorf("alerts = %+v, topic %q", a, c.Stream.Topics.Alerts)
	}
	_, err = Load(New(), write(t, "budgets: {alerts: {webhook: {url: 'ftp://hooks.example.com/T0/token', secret: s3cr3t, attempts: 0}}}"))
	if err == nil || strings.Contains(err.Error(), "token") || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("Load = %v, want an error that quotes neither the URL nor the secret", err)
	}
}

func TestBudgetsValidate(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"basis", "budgets: {basis: invoice}", `budgets.basis: "invoice": use list`},
		{"warn", "budgets: {warn: 0}", "budgets.warn: 0: use a positive fraction"},
		{"critical below warn", "budgets: {warn: 0.9, critical: 0.5}", "budgets.critical: 0.5 is below warn (0.9)"},
		{"negative default", "budgets: {default_user: {day: -1}}", "budgets.default_user.day: -1: use an amount in USD"},
		{"scope", "budgets: {limits: [{scope: org, name: x, day: 1}]}", `budgets.limits[0].scope: "org": use user, team or cost_center`},
		{"name", "budgets: {limits: [{scope: team, name: ' ', day: 1}]}", "budgets.limits[0].name: empty"},
		{"no amount", "budgets: {limits: [{scope: team, name: a}]}", "budgets.limits[0]: neither day nor month is set"},
		{"duplicate", "budgets: {limits: [{scope: team, name: a, day: 1}, {scope: team, name: a, month: 9}]}", `budgets.limits[1]: team "a" already has a budget at limits[0]`},
		{"unknown key", "budgets: {limits: [{scope: team, name: a, daily: 1}]}", "daily"},
		{"webhook url", "budgets: {alerts: {webhook: {url: 'hooks.slack.com/x', secret: s}}}", "budgets.alerts.webhook.url: not an http:// or https:// URL"},
		{"webhook secret", "budgets: {alerts: {webhook: {url: 'https://hooks.example.com/x'}}}", "budgets.alerts.webhook.secret: empty"},
		{"webhook timeout", "budgets: {alerts: {webhook: {url: 'https://h/x', secret: s, timeout: 0s}}}", "budgets.alerts.webhook.timeout: 0s"},
		{"webhook attempts", "budgets: {alerts: {webhook: {url: 'https://h/x', secret: s, attempts: 0}}}", "budgets.alerts.webhook.attempts: 0: use 1 to 100"},
		{"webhook every", "budgets: {alerts: {webhook: {url: 'https://h/x', secret: s, every: -1s}}}", "budgets.alerts.webhook.every"},
		{"alerts topic", "stream: {topics: {alerts: obolus.attribution}}", "stream.topics.alerts: \"obolus.attribution\" is also stream.topics.output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(New(), write(t, tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
