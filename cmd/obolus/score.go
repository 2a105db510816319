package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/obolus/obolus/internal/score"
)

func (a *cli) scoreCmd() *cobra.Command {
	var truthPath, target string
	var minPrecision, minRecall float64
	cmd := &cobra.Command{
		Use:   "score",
		Short: "Score the store's attribution table against a ground-truth file",
		Long: `Compares the attribution table with a ground-truth file (invocation id → true
end user), printing precision and recall overall and per match method.
With --min-precision/--min-recall it exits non-zero when a bar is missed.`,
		Example: `  obolus score --config demo/obolus.yaml --truth demo/ground_truth.jsonl`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := a.load(ctx); err != nil {
				return err
			}
			defer a.close(ctx)
			if truthPath == "" {
				return usageErrorf("--truth: name the ground-truth file (obolus gen writes ground_truth.jsonl)")
			}
			truth, err := score.LoadTruth(truthPath)
			if err != nil {
				return fmt.Errorf("load ground truth: %w", err)
			}
			store, err := a.openReadStore(ctx, target)
			if err != nil {
				return err
			}
			defer store.Close()
			rows, err := score.LoadQuoted(ctx, store.DB, store.Attribution)
			if err != nil {
				return fmt.Errorf("read attribution: %w", err)
			}
			rep := score.Score(truth, rows)
			if err := rep.WriteText(cmd.OutOrStdout()); err != nil {
				return err
			}
			if rep.Precision < minPrecision || rep.Recall < minRecall {
				return fmt.Errorf("score below the bar: precision %.4f (min %.4f), recall %.4f (min %.4f)", rep.Precision, minPrecision, rep.Recall, minRecall)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&truthPath, "truth", "", "ground-truth file (JSON Lines)")
	cmd.Flags().Float64Var(&minPrecision, "min-precision", 0, "fail when overall precision is below this")
	cmd.Flags().Float64Var(&minRecall, "min-recall", 0, "fail when overall recall is below this")
	addTargetFlag(cmd, &target)
	return cmd
}
