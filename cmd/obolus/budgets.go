package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/obolus/obolus/internal/budget"
	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/sink/report"
)

// exitBudgetCritical is obolus report budgets' exit code when a budget is
// at its critical level: the report was written, and a scheduler can alert.
// Distinct from exitUnreconciled (3), which is batch's.
const exitBudgetCritical = 4

// errBudgetCritical marks a budgets report with a budget at critical.
var errBudgetCritical = errors.New("a budget is at its critical level")

var budgetFormats = map[string]func(*report.BudgetReport, io.Writer) error{
	"markdown": (*report.BudgetReport).WriteMarkdown,
	"csv":      (*report.BudgetReport).WriteCSV,
	"json":     (*report.BudgetReport).WriteJSON,
	"html":     (*report.BudgetReport).WriteHTML,
}

func (a *cli) budgetsCmd() *cobra.Command {
	var (
		period, format, target, asOf, out string
		all, rawCSV                       bool
	)
	cmd := &cobra.Command{
		Use:   "budgets",
		Short: "Who is over or near budget: spend, share, level, trend and forecast; exit 4 when a budget is critical",
		Long: `Evaluates the budgets section of the configuration (per user, team and cost
center, per day or per month) against the spend so far: on the list basis
attribution's cost_usd, on the allocated basis the persisted cost_allocation
(list price, with a note, for a period with no persisted bill). Lists the
budgets at warn or critical, and those whose forecast reaches critical, most
severe first. The forecast is the linear run-rate: spend so far / time
elapsed × the period's length. The trend is the spend per day over the last
7 days against the period's per day.

Exit code 0 when no budget is critical, 4 when one is (the report is written
either way), 2 for bad flags or configuration, 1 for a failure.`,
		Example: `  obolus report budgets --config obolus.yaml                     # this month
  obolus report budgets --config obolus.yaml --period 2026-11-20 --format json
  obolus report budgets --config obolus.yaml --period 2026-11 --target databricks
  obolus report budgets --config obolus.yaml --format html --out budgets.html`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			p, err := report.ParseBudgetPeriod(period)
			if err != nil {
				return usageErrorf("--period: %v", err)
			}
			write, ok := budgetFormats[format]
			if !ok {
				return usageErrorf("--format: %q is not one of markdown, csv, json, html", format)
			}
			now := time.Now().UTC()
			if asOf != "" {
				if now, err = parseTime("--as-of", asOf); err != nil {
					return err
				}
			}
			if !now.After(p.Start) {
				return usageErrorf("--period %s has not started at %s; name a period that has", p.Label, now.Format(time.RFC3339))
			}
			if err := a.load(ctx); err != nil {
				return err
			}
			defer a.close(ctx)
			opt := budgetOptions(a.cfg.Budgets, p, now)
			opt.All, opt.RawCSV = all, rawCSV
			rs, err := a.openReadStore(ctx, target)
			if err != nil {
				return err
			}
			defer rs.Close()
			rep, err := report.BuildBudgets(ctx, rs.Report, opt)
			if err != nil {
				return err
			}
			var b bytes.Buffer
			if err := write(rep, &b); err != nil {
				return fmt.Errorf("budgets %s: %w", format, err)
			}
			if out == "" {
				if _, err := a.out.Write(b.Bytes()); err != nil {
					return err
				}
			} else {
				if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
					return fmt.Errorf("--out: %w", err)
				}
				fmt.Fprintln(a.out, "wrote", out)
			}
			if rep.Critical() {
				return errBudgetCritical
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&period, "period", time.Now().UTC().Format("2006-01"), "YYYY-MM (monthly budgets) or YYYY-MM-DD (daily budgets), UTC")
	f.StringVar(&format, "format", "markdown", "markdown, csv, json or html (one offline page)")
	f.StringVar(&out, "out", "", "write the report to this file instead of standard output")
	f.StringVar(&asOf, "as-of", "", "read spend up to this time, RFC 3339 or date (default now; reproducible reports and tests)")
	f.BoolVar(&all, "all", false, "list every budget, not only those at warn or critical or forecast to reach critical")
	f.BoolVar(&rawCSV, "csv-raw", false, "write CSV text cells as they are (by default a cell starting with =, +, -, @, TAB or CR gets a leading ')")
	addTargetFlag(cmd, &target)
	return cmd
}

// budgetOptions converts the budgets section; report takes no config.
func budgetOptions(b config.Budgets, p report.BudgetPeriod, asOf time.Time) report.BudgetOptions {
	opt := report.BudgetOptions{Period: p, AsOf: asOf, Basis: b.Basis, Thresholds: budget.Thresholds{Warn: b.Warn, Critical: b.Critical},
		DefaultUserDay: b.DefaultUser.Day, DefaultUserMonth: b.DefaultUser.Month}
	for _, l := range b.Limits {
		opt.Limits = append(opt.Limits, report.BudgetLimit{Scope: l.Scope, Name: l.Name, Day: l.Day, Month: l.Month})
	}
	return opt
}
