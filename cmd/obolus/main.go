// Command obolus attributes Databricks AI Gateway usage made by agents'
// service principals back to the end users who caused it.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/obolus/obolus/internal/app"
	"github.com/obolus/obolus/internal/batch"
)

// Exit codes.
const (
	exitOK           = 0
	exitFailure      = 1 // the job ran and failed (I/O, store, a source)
	exitUsage        = 2 // bad flags or configuration: fix and rerun
	exitUnreconciled = 3 // the run could not account for every input row
	// exitBudgetCritical (4, budgets.go): report budgets found a budget at critical.
	exitInterrupted = 130
)

// usageError marks errors the user fixes by changing flags or configuration:
// the composition root's UsageError, the one such type.
type usageError = app.UsageError

func usageErrorf(format string, a ...any) error { return usageError{Err: fmt.Errorf(format, a...)} }

// errUnreconciled marks a run whose counts do not add up.
var errUnreconciled = errors.New("counts do not reconcile")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRoot().ExecuteContext(ctx)
	os.Exit(exitCode(ctx, err))
}

func exitCode(ctx context.Context, err error) int {
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "obolus: interrupted:", err)
		return exitInterrupted
	case errors.As(err, &ue), errors.Is(err, batch.ErrFutureWindow):
		fmt.Fprintln(os.Stderr, "obolus:", err)
		return exitUsage
	case errors.Is(err, errBudgetCritical):
		fmt.Fprintln(os.Stderr, "obolus:", err)
		return exitBudgetCritical
	case errors.Is(err, errUnreconciled):
		fmt.Fprintln(os.Stderr, "obolus:", err)
		return exitUnreconciled
	default:
		fmt.Fprintln(os.Stderr, "obolus:", err)
		return exitFailure
	}
}
