// Package retry runs an operation again after transient failures, waiting
// longer each time, until it succeeds, fails for good, or its context ends.
package retry

import (
	"context"
	"time"
)

// Policy says how often and when to try again.
type Policy struct {
	// Attempts is the number of tries in all (at least 1).
	Attempts int
	// Wait is the pause before the second try; the n-th retry waits n×Wait.
	Wait time.Duration
	// Retryable reports whether an error may pass if tried again; nil means
	// every error may.
	Retryable func(error) bool
	// OnRetry, when set, is told of each failure that is retried.
	OnRetry func(attempt int, err error)
}

// Do calls op until it returns nil, returns an error Retryable rejects, or
// Attempts are spent, and returns op's last error. It stops waiting when
// ctx ends and returns op's last error then too.
func Do(ctx context.Context, p Policy, op func(context.Context) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		if err = op(ctx); err == nil {
			return nil
		}
		if attempt >= p.Attempts || ctx.Err() != nil || p.Retryable != nil && !p.Retryable(err) {
			return err
		}
		if p.OnRetry != nil {
			p.OnRetry(attempt, err)
		}
		t := time.NewTimer(time.Duration(attempt) * p.Wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}
