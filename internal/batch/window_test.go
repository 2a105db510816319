package batch

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

type fixedCheckpoint struct {
	t  time.Time
	ok bool
}

func (c fixedCheckpoint) Checkpoint(context.Context, string) (time.Time, bool, error) {
	return c.t, c.ok, nil
}

// A window never ends after now, so the checkpoint never moves past it: a
// future --to is refused (within clock skew it is clamped), and a
// checkpoint already in the future is an error that says how to reset it.
func TestResolveWindowNeverPassesNow(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		name    string
		cp      fixedCheckpoint
		from    time.Time
		to      time.Time
		wantTo  time.Time
		wantErr string
	}{
		{"no --to", fixedCheckpoint{now.Add(-day), true}, time.Time{}, time.Time{}, now, ""},
		{"past --to", fixedCheckpoint{}, now.Add(-2 * day), now.Add(-day), now.Add(-day), ""},
		{"--to within skew", fixedCheckpoint{}, now.Add(-day), now.Add(time.Minute), now, ""},
		{"--to a year ahead", fixedCheckpoint{}, now.Add(-day), now.Add(365 * day), time.Time{}, "in the future"},
		{"checkpoint ahead", fixedCheckpoint{now.Add(30 * day), true}, time.Time{}, time.Time{}, time.Time{}, "run once with --from"},
		{"explicit --from resets it", fixedCheckpoint{now.Add(30 * day), true}, now.Add(-day), time.Time{}, now, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, _, err := ResolveWindow(context.Background(), tt.cp, "daily", Options{From: tt.from, To: tt.to}, now, time.Hour)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !w.To.Equal(tt.wantTo) {
				t.Errorf("window ends %s, want %s", w.To, tt.wantTo)
			}
		})
	}
	_, _, err := ResolveWindow(context.Background(), fixedCheckpoint{}, "daily", Options{To: now.Add(day)}, now, 0)
	if !errors.Is(err, ErrFutureWindow) {
		t.Errorf("err %v is not ErrFutureWindow", err)
	}
}
