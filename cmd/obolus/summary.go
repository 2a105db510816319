package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/obolus/obolus/internal/safetext"
)

func (a *cli) summaryCmd() *cobra.Command {
	var (
		top    int
		target string
	)
	cmd := &cobra.Command{
		Use:   "summary",
		Short: "Print per-user spend and attribution coverage from the store",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := a.load(ctx); err != nil {
				return err
			}
			defer a.close(ctx)
			store, err := a.openReadStore(ctx, target)
			if err != nil {
				return err
			}
			defer store.Close()
			return printSummary(ctx, cmd.OutOrStdout(), store.DB, store.Attribution, top)
		},
	}
	cmd.Flags().IntVar(&top, "top", 15, "how many end users to list")
	addTargetFlag(cmd, &target)
	return cmd
}

// printSummary prints the summary of the attribution table, whose quoted
// name is table.
func printSummary(ctx context.Context, w io.Writer, db *sql.DB, table string, top int) error {
	sections := []struct {
		title, query string
		args         []any
	}{
		{"Top end users by cost", `
SELECT end_user, team, round(sum(weight), 2) AS invocations, sum(total_tokens) AS tokens, round(sum(cost_usd), 2) AS cost_usd
FROM ` + table + ` GROUP BY end_user, team ORDER BY sum(cost_usd) DESC, end_user LIMIT ?`, []any{top}},
		{"Spend by team", `
SELECT team, count(DISTINCT end_user) AS users, round(sum(weight), 2) AS invocations, sum(total_tokens) AS tokens, round(sum(cost_usd), 2) AS cost_usd
FROM ` + table + ` GROUP BY team ORDER BY sum(cost_usd) DESC, team`, nil},
		{"Coverage by match method", `
SELECT match_method, round(sum(weight), 2) AS invocations, round(100 * sum(weight) / sum(sum(weight)) OVER (), 2) AS pct_invocations,
       round(100 * sum(cost_usd) / nullif(sum(sum(cost_usd)) OVER (), 0), 2) AS pct_cost, round(avg(match_confidence), 3) AS avg_confidence
FROM ` + table + ` GROUP BY match_method ORDER BY sum(weight) DESC`, nil},
		// How much of the attributed cost rests on what: ids and well-
		// calibrated time windows, or weaker matches.
		{"Attributed cost by confidence", `
SELECT CASE WHEN match_confidence >= 0.9 THEN 'at least 0.9' WHEN match_confidence >= 0.5 THEN '0.5 to 0.9' ELSE 'below 0.5' END AS confidence,
       round(sum(weight), 2) AS invocations, round(sum(cost_usd), 2) AS cost_usd,
       round(100 * sum(cost_usd) / nullif(sum(sum(cost_usd)) OVER (), 0), 2) AS pct_cost
FROM ` + table + ` WHERE match_method <> 'unattributed'
GROUP BY CASE WHEN match_confidence >= 0.9 THEN 'at least 0.9' WHEN match_confidence >= 0.5 THEN '0.5 to 0.9' ELSE 'below 0.5' END
ORDER BY min(match_confidence) DESC`, nil},
	}
	for _, s := range sections {
		if err := printQuery(ctx, w, db, s.title, s.query, s.args...); err != nil {
			return fmt.Errorf("%s: %w", s.title, err)
		}
	}
	return nil
}

func printQuery(ctx context.Context, w io.Writer, db *sql.DB, title, query string, args ...any) error {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s\n", title)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	for i, c := range cols {
		fmt.Fprint(tw, c)
		if i < len(cols)-1 {
			fmt.Fprint(tw, "\t")
		}
	}
	fmt.Fprintln(tw, "\t")
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for i, v := range vals {
			if s, ok := v.(string); ok {
				// Names come from request tags: show controls and bidi
				// overrides, never let them drive the terminal.
				v = safetext.Visible(s)
			}
			fmt.Fprint(tw, v)
			if i < len(vals)-1 {
				fmt.Fprint(tw, "\t")
			}
		}
		fmt.Fprintln(tw, "\t")
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return tw.Flush()
}
