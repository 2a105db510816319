package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/sink/report"
)

// TestReportBudgets runs gen and batch, then report budgets with a default
// user budget set at the median user's spend, so that about half the users
// are over: exit code 4 and those users listed; with a budget nobody
// reaches, exit code 0.
func TestReportBudgets(t *testing.T) {
	dir := t.TempDir()
	mustObolus(t, "gen", "--out", dir, "--agent-requests", "800", "--users", "30")
	cfg := filepath.Join(dir, "obolus.yaml")
	mustObolus(t, "batch", "--config", cfg, "--log-level", "warn")
	base, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	withBudgets := func(section string) string {
		p := filepath.Join(dir, "budgets.yaml")
		if err := os.WriteFile(p, append(append([]byte{}, base...), "\n"+section+"\n"...), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	type doc struct {
		Basis       string   `json:"basis"`
		Notes       []string `json:"notes"`
		AnyCritical bool     `json:"any_critical"`
		Budgets     []struct {
			Level, Scope, Name string
			Spend              float64 `json:"spend_usd"`
			Forecast           float64 `json:"forecast_usd"`
		} `json:"budgets"`
	}
	run := func(cfg string, args ...string) (string, int) {
		t.Helper()
		out, err := obolus(t, append([]string{"report", "budgets", "--config", cfg, "--period", "2026-11", "--as-of", "2026-12-01", "--log-level", "warn"}, args...)...)
		return out, exitCode(context.Background(), err)
	}
	parse := func(out string) doc {
		t.Helper()
		var d doc
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		return d
	}

	// Every user's spend, from a budget nobody reaches.
	out, code := run(withBudgets("budgets: {default_user: {month: 1000000}}"), "--format", "json", "--all")
	all := parse(out)
	if code != exitOK || len(all.Budgets) < 10 || all.AnyCritical {
		t.Fatalf("exit %d, %d budgets:\n%.600s", code, len(all.Budgets), out)
	}
	spends := make([]float64, len(all.Budgets))
	for i, b := range all.Budgets {
		spends[i] = b.Spend
	}
	slices.Sort(spends)
	median := spends[len(spends)/2]

	// Not listed without --all, exit 0.
	out, code = run(withBudgets("budgets: {default_user: {month: 1000000}}"))
	if code != exitOK || !strings.Contains(out, "Nobody is at or near a budget") {
		t.Errorf("exit %d:\n%s", code, out)
	}

	// The median as everyone's budget: the upper half is critical, exit 4.
	over := withBudgets("budgets: {warn: 0.8, critical: 1.0, default_user: {month: " + strconv.FormatFloat(median, 'f', -1, 64) + "}}")
	out, code = run(over, "--format", "json")
	d := parse(out)
	var critical int
	for i, b := range d.Budgets {
		if b.Level == "critical" {
			critical++
			if b.Spend < median-1e-6 {
				t.Errorf("%s is critical with %v below the budget %v", b.Name, b.Spend, median)
			}
		}
		if i > 0 && b.Level == "critical" && d.Budgets[i-1].Level != "critical" {
			t.Errorf("not sorted by severity: %s after %s", b.Level, d.Budgets[i-1].Level)
		}
		// A closed period: the forecast is the spend.
		if b.Forecast != b.Spend {
			t.Errorf("%s: forecast %v, spend %v", b.Name, b.Forecast, b.Spend)
		}
	}
	if code != exitBudgetCritical || !d.AnyCritical || critical < len(spends)/3 || critical > len(spends)/2+1 {
		t.Errorf("exit %d, %d critical of %d users (budget %v)", code, critical, len(spends), median)
	}

	// Markdown and CSV name the same users; the allocated basis, with no
	// persisted bill, falls back to list with a note.
	md, _ := run(over)
	csv, _ := run(over, "--format", "csv")
	if !strings.Contains(md, "| critical | User | ") || !strings.HasPrefix(csv, "period,kind,as_of,basis,level,") || strings.Count(csv, ",critical,user,") != critical {
		t.Errorf("markdown:\n%.800s\ncsv:\n%.800s", md, csv)
	}
	// HTML to a file: the same critical rows, and the exit code still says critical.
	page := filepath.Join(dir, "budgets.html")
	out, code = run(over, "--format", "html", "--out", page)
	html, err := os.ReadFile(page)
	if err != nil || code != exitBudgetCritical || strings.TrimSpace(out) != "wrote "+page ||
		strings.Count(string(html), `<tr class="critical">`) != critical || !strings.HasPrefix(string(html), "<!DOCTYPE html>") {
		t.Errorf("html --out: exit %d, stdout %q, %d critical rows (want %d), %v", code, out, strings.Count(string(html), `<tr class="critical">`), critical, err)
	}
	out, code = run(withBudgets("budgets: {basis: allocated, default_user: {month: 0.000001}}"), "--format", "json")
	if d := parse(out); code != exitBudgetCritical || d.Basis != "list" || len(d.Notes) != 1 || !strings.Contains(d.Notes[0], "No allocation is persisted") {
		t.Errorf("allocated fallback: exit %d, basis %s, notes %q", code, d.Basis, d.Notes)
	}

	// A daily budget at noon: monthly amounts do not apply, and the forecast
	// is twice the morning's spend.
	out, err = obolus(t, "report", "budgets", "--config", withBudgets("budgets: {default_user: {day: 0.000001, month: 1000000}}"),
		"--period", "2026-11-01", "--as-of", "2026-11-01T12:00:00Z", "--format", "json", "--log-level", "warn")
	daily := parse(out)
	if code := exitCode(context.Background(), err); code != exitBudgetCritical || len(daily.Budgets) == 0 {
		t.Errorf("daily: exit %d, %d budgets", code, len(daily.Budgets))
	}
	for _, b := range daily.Budgets {
		if math.Abs(b.Forecast-2*b.Spend) > 1e-5 {
			t.Errorf("daily %s: forecast %v, spend %v by noon", b.Name, b.Forecast, b.Spend)
		}
	}

	// Bad configuration and flags: exit 2, naming the key.
	_, err = obolus(t, "report", "budgets", "--config", withBudgets("budgets: {warn: 0.9, critical: 0.5}"), "--period", "2026-11")
	if code := exitCode(context.Background(), err); code != exitUsage || !strings.Contains(err.Error(), "budgets.critical: 0.5 is below warn") {
		t.Errorf("critical below warn: exit %d, %v", code, err)
	}
	if _, code = run(over, "--period", "2026-11-01..2026-11-05"); code != exitUsage {
		t.Errorf("a range period: exit %d", code)
	}
}

// TestBudgetNamesAgree: config and report spell scopes and bases alike
// (report takes no config, so each has its constants).
func TestBudgetNamesAgree(t *testing.T) {
	for _, p := range [][2]string{
		{config.ScopeUser, report.ScopeUser}, {config.ScopeTeam, report.ScopeTeam}, {config.ScopeCostCenter, report.ScopeCostCenter},
		{config.BasisList, report.BasisList}, {config.BasisAllocated, report.BasisAllocated},
	} {
		if p[0] != p[1] {
			t.Errorf("config %q, report %q", p[0], p[1])
		}
	}
}
