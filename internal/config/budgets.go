package config

import (
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/viper"
)

// Budget bases: what spend is measured in.
const (
	BasisList      = "list"      // attribution.cost_usd, list price
	BasisAllocated = "allocated" // cost_allocation.allocated_cost, the bill's share
)

// Budget scopes.
const (
	ScopeUser       = "user"
	ScopeTeam       = "team"
	ScopeCostCenter = "cost_center"
)

// BudgetAmounts are a budget per UTC day and per UTC calendar month, in
// USD; 0 is no budget for that period.
type BudgetAmounts struct {
	Day   float64 `mapstructure:"day"`
	Month float64 `mapstructure:"month"`
}

// BudgetLimit is the budget of one user, team or cost center. It is a list
// entry rather than a map key because viper lowercases map keys and splits
// them at dots, which would mangle end-user emails.
type BudgetLimit struct {
	Scope         string `mapstructure:"scope"`
	Name          string `mapstructure:"name"`
	BudgetAmounts `mapstructure:",squash"`
}

// Budgets configures obolus report budgets (and, later, streaming alerts).
type Budgets struct {
	// Basis is list (attribution's list-price cost_usd) or allocated
	// (cost_allocation.allocated_cost, falling back to list, with a note,
	// for a period with no persisted bill).
	Basis string `mapstructure:"basis"`
	// Warn and Critical are fractions of a budget.
	Warn     float64 `mapstructure:"warn"`
	Critical float64 `mapstructure:"critical"`
	// DefaultUser applies to every end user without a limit of their own.
	DefaultUser BudgetAmounts `mapstructure:"default_user"`
	Limits      []BudgetLimit `mapstructure:"limits"`
	// Alerts configures the stream's budget alerts (the load stage).
	Alerts BudgetAlerts `mapstructure:"alerts"`
}

// BudgetAlerts configures streaming budget alerts: raised by the stream's
// load stage, produced to stream.topics.alerts and optionally posted to a
// webhook.
type BudgetAlerts struct {
	// Enabled raises alerts when the load stage runs and a budget is set.
	Enabled bool          `mapstructure:"enabled"`
	Webhook BudgetWebhook `mapstructure:"webhook"`
}

// BudgetWebhook is where alerts are posted, as Slack-compatible JSON signed
// with HMAC-SHA256. The secret, like every secret, is best given in the
// environment (OBOLUS_BUDGETS_ALERTS_WEBHOOK_SECRET, and _URL for a URL
// that carries a token, as Slack's do); neither is ever logged.
type BudgetWebhook struct {
	URL      string        `mapstructure:"url"` // "": no webhook
	Secret   string        `mapstructure:"secret"`
	Timeout  time.Duration `mapstructure:"timeout"`  // one attempt
	Attempts int           `mapstructure:"attempts"` // tries per round
	Backoff  time.Duration `mapstructure:"backoff"`  // the n-th retry waits n×backoff
	// Every is how often alerts still pending after a round's attempts are
	// tried again.
	Every time.Duration `mapstructure:"every"`
}

// BudgetsDefaults puts the budgets section's defaults into v: no budget.
func BudgetsDefaults(v *viper.Viper) {
	v.SetDefault("budgets.basis", BasisList)
	v.SetDefault("budgets.warn", 0.8)
	v.SetDefault("budgets.critical", 1.0)
	v.SetDefault("budgets.default_user.day", 0.0)
	v.SetDefault("budgets.default_user.month", 0.0)
	v.SetDefault("budgets.limits", []map[string]any{})
	v.SetDefault("budgets.alerts.enabled", true)
	v.SetDefault("budgets.alerts.webhook.url", "")
	v.SetDefault("budgets.alerts.webhook.secret", "")
	v.SetDefault("budgets.alerts.webhook.timeout", 10*time.Second)
	v.SetDefault("budgets.alerts.webhook.attempts", 5)
	v.SetDefault("budgets.alerts.webhook.backoff", time.Second)
	v.SetDefault("budgets.alerts.webhook.every", 30*time.Second)
}

// Validate reports every problem of the budgets section, each naming its key and the fix.
func (b Budgets) Validate() []error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("budgets.%s: %s", key, fmt.Sprintf(format, a...)))
	}
	switch b.Basis {
	case BasisList, BasisAllocated:
	default:
		bad("basis", "%q: use list (list-price cost_usd) or allocated (cost_allocation.allocated_cost)", b.Basis)
	}
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	if !(b.Warn > 0) || !finite(b.Warn) {
		bad("warn", "%v: use a positive fraction of the budget, e.g. 0.8 to warn at 80%%", b.Warn)
	}
	if !finite(b.Critical) || !(b.Critical >= b.Warn) {
		bad("critical", "%v is below warn (%v): use a fraction at least warn, e.g. 1.0 for a budget spent", b.Critical, b.Warn)
	}
	amounts := func(key string, a BudgetAmounts) {
		for _, f := range []struct {
			k string
			v float64
		}{{"day", a.Day}, {"month", a.Month}} {
			if f.v < 0 || !finite(f.v) {
				bad(key+"."+f.k, "%v: use an amount in USD, 0 or more (0: no budget)", f.v)
			}
		}
	}
	amounts("default_user", b.DefaultUser)
	seen := map[[2]string]int{}
	for i, l := range b.Limits {
		key := fmt.Sprintf("limits[%d]", i)
		switch l.Scope {
		case ScopeUser, ScopeTeam, ScopeCostCenter:
		default:
			bad(key+".scope", "%q: use user, team or cost_center", l.Scope)
		}
		if strings.TrimSpace(l.Name) == "" {
			bad(key+".name", "empty; name the end user, team or cost center as attribution holds it")
		}
		amounts(key, l.BudgetAmounts)
		if l.Day == 0 && l.Month == 0 {
			bad(key, "neither day nor month is set; give an amount in USD to one, or remove the entry")
		}
		k := [2]string{l.Scope, l.Name}
		if j, dup := seen[k]; dup {
			bad(key, "%s %q already has a budget at limits[%d]; merge the two entries", l.Scope, l.Name, j)
		} else {
			seen[k] = i
		}
	}
	if w := b.Alerts.Webhook; w.URL != "" {
		// The URL may hold a token: the messages never quote it.
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("alerts.webhook.url", "not an http:// or https:// URL with a host")
		}
		if w.Secret == "" {
			bad("alerts.webhook.secret", "empty; every request is signed: set a shared secret, best as OBOLUS_BUDGETS_ALERTS_WEBHOOK_SECRET")
		}
		if w.Timeout <= 0 {
			bad("alerts.webhook.timeout", "%s: use a positive duration, e.g. 10s", w.Timeout)
		}
		if w.Attempts < 1 || w.Attempts > 100 {
			bad("alerts.webhook.attempts", "%d: use 1 to 100", w.Attempts)
		}
		if w.Backoff < 0 {
			bad("alerts.webhook.backoff", "%s: use a duration, 0 or more", w.Backoff)
		}
		if w.Every <= 0 {
			bad("alerts.webhook.every", "%s: use a positive duration, e.g. 30s", w.Every)
		}
	}
	return errs
}
