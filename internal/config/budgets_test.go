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
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(New(), write(t, tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
