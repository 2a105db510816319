// Package progress draws a one-line progress indicator for long interactive
// runs, and stays silent when its output is not a terminal (CI, pipes, logs).
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Bar reports progress of named stages on one terminal line.
type Bar struct {
	mu    sync.Mutex
	w     io.Writer
	on    bool
	last  time.Time
	stage string
}

// New returns a bar writing to w, enabled only if w is a terminal.
func New(w io.Writer) *Bar {
	on := false
	if f, ok := w.(*os.File); ok {
		on = term.IsTerminal(int(f.Fd()))
	}
	return &Bar{w: w, on: on}
}

// Enabled reports whether the bar draws anything.
func (b *Bar) Enabled() bool { return b.on }

// Update draws stage at done of total, at most ten times a second; the final
// update of a stage ends its line.
func (b *Bar) Update(stage string, done, total int64) {
	if !b.on {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	final := done >= total
	if !final && stage == b.stage && time.Since(b.last) < 100*time.Millisecond {
		return
	}
	b.stage, b.last = stage, time.Now()
	const width = 30
	filled := 0
	if total > 0 {
		filled = int(float64(width) * float64(done) / float64(total))
	}
	if filled > width {
		filled = width
	}
	fmt.Fprintf(b.w, "\r%-18s [%s%s] %d/%d", stage, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done, total)
	if final {
		fmt.Fprintln(b.w)
		b.stage = ""
	}
}
