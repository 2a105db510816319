package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDo(t *testing.T) {
	transient, fatal := errors.New("transient"), errors.New("fatal")
	tests := []struct {
		name     string
		errs     []error // what the tries return, in order; then nil
		attempts int
		want     error
		tries    int
	}{
		{"first try", nil, 3, nil, 1},
		{"passes on the third", []error{transient, transient}, 3, nil, 3},
		{"spent", []error{transient, transient, transient}, 3, transient, 3},
		{"not retryable", []error{fatal}, 3, fatal, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tries, retried := 0, 0
			p := Policy{Attempts: tt.attempts, Wait: time.Microsecond,
				Retryable: func(err error) bool { return err != fatal },
				OnRetry:   func(int, error) { retried++ }}
			err := Do(context.Background(), p, func(context.Context) error {
				tries++
				if tries <= len(tt.errs) {
					return tt.errs[tries-1]
				}
				return nil
			})
			if !errors.Is(err, tt.want) || tries != tt.tries || retried != tries-1 && err == nil {
				t.Errorf("err %v after %d tries (%d retried), want %v after %d", err, tries, retried, tt.want, tt.tries)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tries := 0
	err := Do(ctx, Policy{Attempts: 5, Wait: time.Hour}, func(context.Context) error { tries++; return transient })
	if !errors.Is(err, transient) || tries != 1 {
		t.Errorf("cancelled: err %v after %d tries, want the first error at once", err, tries)
	}
}
