package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/obolus/obolus/internal/chargeback"
	"github.com/obolus/obolus/sink/report"
)

// reportFormat is one output of obolus report chargeback.
type reportFormat struct {
	name, file string // file name pattern: %s is the period label
	text       bool   // may go to standard output
	write      func(*report.Report, io.Writer) error
}

var reportFormats = []reportFormat{
	{"markdown", "chargeback-%s.md", true, (*report.Report).WriteMarkdown},
	{"csv", "chargeback-%s.csv", true, (*report.Report).WriteCSV},
	{"parquet", "chargeback-%s.parquet", false, (*report.Report).WriteParquet},
	{"focus", "focus-%s.csv", true, (*report.Report).WriteFocusCSV},
	{"focus-parquet", "focus-%s.parquet", false, (*report.Report).WriteFocusParquet},
	{"html", "chargeback-%s.html", false, (*report.Report).WriteHTML},
	// distribution: each agent's cost per turn and per conversation.
	{"distribution", "distribution-%s.csv", true, (*report.Report).WriteDistributionCSV},
}

func (a *cli) reportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "FinOps reports from the store: chargeback reconciled to the Databricks bill",
	}
	cmd.AddCommand(a.chargebackCmd(), a.genBillingCmd(), a.budgetsCmd())
	return cmd
}

func (a *cli) chargebackCmd() *cobra.Command {
	var (
		period, by, formats, out, usagePath, pricesPath, target string
		focusVersion                                            string
		pseudonymize, rawCSV, persist                           bool
		top                                                     int
	)
	names := formatNames()
	cmd := &cobra.Command{
		Use:   "chargeback",
		Short: "Who spent what in a period, on which agent and model, reconciled to the bill",
		Long: `Groups the period's attributed usage by the dimensions of --by, with tokens,
requests (sum of weight), list-price cost and the bill allocated to each line:
each hour's billed cost per gateway endpoint and model (system.billing.usage ×
list_prices) is spread over that hour's invocations in proportion to their
list-price cost, in integer micro-dollars, so the lines add up to the bill
exactly. What no rule tied to an end user, and billed hours with no gateway
usage, form the unattributed line. A reconciliation section closes every report.

--billing-usage and --list-prices load exports of the two system tables
(JSON lines, CSV or Parquet) into the store first; without them the report uses
what the store already holds, and shows list-price estimates when that is nothing.`,
		Example: `  obolus report chargeback --config obolus.yaml --period 2026-11 --by team,user
  obolus report chargeback --store obolus.duckdb --period 2026-11 --by team,model \
      --billing-usage usage.jsonl --list-prices list_prices.jsonl --format markdown,html,focus --out reports/
  OBOLUS_PSEUDONYM_KEY=... obolus report chargeback --store obolus.duckdb --period 2026-11 --by user --pseudonymize --format csv`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			p, err := report.ParsePeriod(period)
			if err != nil {
				return usageErrorf("--period: %v", err)
			}
			dims, err := report.ParseDimensions(by)
			if err != nil {
				return usageError{Err: err}
			}
			chosen, err := chooseFormats(formats, out)
			if err != nil {
				return err
			}
			if (usagePath == "") != (pricesPath == "") {
				return usageErrorf("--billing-usage and --list-prices go together: the bill cannot be priced without its list prices")
			}
			fv, err := report.ParseFocusVersion(focusVersion)
			if err != nil {
				return usageErrorf("--focus-version: %v", err)
			}
			opt := report.Options{Period: p, By: dims, Top: top, RawCSV: rawCSV, FocusVersion: fv}
			if pseudonymize {
				// Before anything is read: a missing key must not cost a run.
				if opt.Pseudonymizer, err = report.PseudonymizerFromEnv(); err != nil {
					return usageError{Err: err}
				}
			}
			if err := a.load(ctx); err != nil {
				return err
			}
			defer a.close(ctx)
			if usagePath != "" && target != targetDuckDB {
				return usageErrorf("--billing-usage loads a bill export into the embedded store; with --target %s the report reads system.billing.usage itself", target)
			}
			if persist && pseudonymize {
				return usageErrorf("--persist with --pseudonymize: cost_allocation holds the store's end users, not pseudonyms")
			}
			var (
				src   report.Source
				alloc report.AllocationTable // where --persist writes
			)
			if usagePath == "" && !(persist && target == targetDuckDB) {
				rs, err := a.openReadStore(ctx, target)
				if err != nil {
					return err
				}
				defer rs.Close()
				src = rs.Report
				if persist { // --target databricks: the Delta table beside attribution
					d := a.cfg.Databricks
					alloc = report.AllocationTable{DB: rs.DB, Dialect: report.Databricks, Table: d.Catalog + "." + d.Schema + ".cost_allocation"}
				}
			} else {
				// Loading billing files, or persisting, writes to the store.
				store, err := a.openStore(ctx)
				if err != nil {
					return err
				}
				defer store.Close()
				src = report.NewDuckDBSource(store.DB())
				alloc = report.AllocationTable{DB: store.DB(), Dialect: report.DuckDB, Table: "cost_allocation"}
				if usagePath != "" {
					n, err := report.LoadListPrices(ctx, store.DB(), pricesPath)
					if err != nil {
						return err
					}
					m, err := report.LoadBillingUsage(ctx, store.DB(), usagePath)
					if err != nil {
						return err
					}
					a.log.Info("billing loaded", "list_prices", n, "usage_records", m)
				}
			}
			rep, err := report.Build(ctx, src, opt)
			if err != nil {
				return err
			}
			if rep.Billing {
				a.log.Info("chargeback", "period", p.Label, "billed", chargeback.FormatFixed(rep.Rec.BilledMicros, 6),
					"attributed", chargeback.FormatFixed(rep.Rec.AttributedMicros, 6), "unattributed", chargeback.FormatFixed(rep.Rec.UnattributedMicros+rep.Rec.NoUsageMicros, 6))
			} else {
				a.log.Warn("no billing records for the period: costs are list-price estimates", "period", p.Label)
			}
			if persist {
				if err := a.persistAllocation(ctx, rep, alloc); err != nil {
					return err
				}
			}
			return writeReports(rep, chosen, out, a.out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&period, "period", time.Now().UTC().AddDate(0, -1, 0).Format("2006-01"), "calendar month YYYY-MM, or YYYY-MM-DD..YYYY-MM-DD (end exclusive), UTC")
	f.StringVar(&by, "by", "team", "group by, comma-separated: team, cost_center, user, agent, model, session (one line per conversation), agent_request (one line per user turn)")
	f.StringVar(&formats, "format", "markdown", "outputs, comma-separated: "+strings.Join(names, ", "))
	f.StringVar(&out, "out", "", "directory to write the outputs to (default: the one text output to standard output)")
	f.StringVar(&usagePath, "billing-usage", "", "export of system.billing.usage to load first (.jsonl, .csv or .parquet)")
	f.StringVar(&pricesPath, "list-prices", "", "export of system.billing.list_prices to load first")
	addTargetFlag(cmd, &target)
	f.BoolVar(&rawCSV, "csv-raw", false, "write CSV text cells as they are; by default a cell starting with =, +, -, @, TAB or CR gets a leading ' so spreadsheets do not run it as a formula")
	f.BoolVar(&pseudonymize, "pseudonymize", false, "replace end users by HMAC-SHA256 pseudonyms keyed by $"+report.PseudonymKeyEnv)
	f.IntVar(&top, "top", 15, "users listed in the summaries")
	f.BoolVar(&persist, "persist", false, "also write the allocation per invocation × end user into the store's cost_allocation table, replacing the period's rows (versioned by bill snapshot)")
	f.StringVar(&focusVersion, "focus-version", report.DefaultFocusVersion, "FOCUS version of the focus and focus-parquet outputs: 1.3 (split cost allocation columns) or 1.2")
	return cmd
}

// persistAllocation writes the report's allocation into cost_allocation.
// Without billing records there is no bill to version the rows by, so
// nothing is written: list-price estimates would read as allocated cost.
func (a *cli) persistAllocation(ctx context.Context, rep *report.Report, t report.AllocationTable) error {
	if !rep.Billing {
		a.log.Warn("--persist: no billing records for the period, nothing persisted", "period", rep.Period.Label)
		return nil
	}
	res, err := rep.Persist(ctx, t, time.Now())
	if err != nil {
		return err
	}
	a.log.Info("allocation persisted", "table", t.Table, "period", rep.Period.Label, "snapshot_id", res.SnapshotID,
		"computed_at", res.ComputedAt.Format(time.RFC3339), "rows", res.Rows, "replaced", res.Replaced, "same_bill", res.SameBill)
	return nil
}

func formatNames() []string {
	names := make([]string, len(reportFormats))
	for i, f := range reportFormats {
		names[i] = f.name
	}
	return names
}

func chooseFormats(list, out string) ([]reportFormat, error) {
	var chosen []reportFormat
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(reportFormats, func(f reportFormat) bool { return f.name == name })
		if i < 0 {
			return nil, usageErrorf("--format: %q is not one of %s", name, strings.Join(formatNames(), ", "))
		}
		if !slices.ContainsFunc(chosen, func(f reportFormat) bool { return f.name == name }) {
			chosen = append(chosen, reportFormats[i])
		}
	}
	if out == "" && (len(chosen) != 1 || !chosen[0].text) {
		return nil, usageErrorf("--out: name a directory for %s; only one of markdown, csv or focus can go to standard output", list)
	}
	return chosen, nil
}

// writeReports renders every output before writing any, so a failing format
// leaves no half-written set behind.
func writeReports(rep *report.Report, formats []reportFormat, dir string, stdout io.Writer) error {
	rendered := make([]bytes.Buffer, len(formats))
	for i, f := range formats {
		if err := f.write(rep, &rendered[i]); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if dir == "" {
		_, err := stdout.Write(rendered[0].Bytes())
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	label := strings.ReplaceAll(rep.Period.Label, "..", "_to_")
	for i, f := range formats {
		path := filepath.Join(dir, fmt.Sprintf(f.file, label))
		if err := os.WriteFile(path, rendered[i].Bytes(), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		fmt.Fprintln(stdout, "wrote", path)
	}
	return nil
}

func (a *cli) genBillingCmd() *cobra.Command {
	var (
		period, out string
		cfg         report.BillingGenConfig
		change      string
	)
	cmd := &cobra.Command{
		Use:   "gen-billing",
		Short: "Write a demo bill (system.billing.usage and list_prices as JSON lines) for the store's usage",
		Long: `Derives hourly AI Gateway billing records from the attribution rows of the
period, as Databricks would bill them: each hour × gateway endpoint × model at
its list-price cost give or take --noise, a list price that changes mid-period,
billed hours with no usage, a retraction and restatement, endpoint-wide fees.
For demos and tests; real reports load the real system tables.`,
		Example: `  obolus report gen-billing --store obolus.duckdb --period 2026-11 --out demo/
  obolus report chargeback --store obolus.duckdb --period 2026-11 \
      --billing-usage demo/billing_usage.jsonl --list-prices demo/billing_list_prices.jsonl`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			p, err := report.ParsePeriod(period)
			if err != nil {
				return usageErrorf("--period: %v", err)
			}
			cfg.Period = p
			if change != "" {
				if cfg.PriceChange, err = parseTime("--price-change", change); err != nil {
					return err
				}
			}
			if out == "" {
				return usageErrorf("--out: name the directory to write the billing files into")
			}
			if err := a.load(ctx); err != nil {
				return err
			}
			defer a.close(ctx)
			return a.genBilling(ctx, cfg, out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&period, "period", "", "calendar month YYYY-MM, or YYYY-MM-DD..YYYY-MM-DD (end exclusive), UTC")
	f.StringVar(&out, "out", "", "directory to write billing_usage.jsonl and billing_list_prices.jsonl into")
	f.Int64Var(&cfg.Seed, "seed", 1, "random seed")
	f.StringVar(&cfg.Price, "price", "0.07", "list price per DBU before the change")
	f.StringVar(&cfg.NewPrice, "new-price", "0.065", "list price per DBU after the change")
	f.StringVar(&change, "price-change", "", "when the price changes, RFC 3339 or date (default: the first midnight after mid-period)")
	f.Float64Var(&cfg.Noise, "noise", 0.03, "relative difference between a bucket's bill and its list-price estimate")
	f.Float64Var(&cfg.IdleShare, "idle-share", 0.02, "billed hours with no usage, as a share of the hours with usage")
	f.BoolVar(&cfg.IdleDays, "idle-days", false, "also bill one hour with no usage on every day of the period without gateway usage (demos: such days show in the report)")
	return cmd
}

func (a *cli) genBilling(ctx context.Context, cfg report.BillingGenConfig, out string) error {
	store, err := a.openStoreReadOnly(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	bill, err := report.GenerateBilling(ctx, report.NewDuckDBSource(store.DB()), cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", out, err)
	}
	usage, prices := filepath.Join(out, "billing_usage.jsonl"), filepath.Join(out, "billing_list_prices.jsonl")
	if err := bill.WriteJSONL(usage, prices); err != nil {
		return err
	}
	fmt.Fprintf(a.out, "wrote %s (%d records) and %s (%d prices)\n", usage, len(bill.Usage), prices, len(bill.Prices))
	return nil
}
