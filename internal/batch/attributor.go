package batch

import (
	"context"
	"time"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/schemas"
)

// attributor attributes usage events as they arrive and stages the rows in
// chunks, so a run holds one chunk of output, never the window.
//
// Repeated invocations are staged as they come, each usage row a copy of its
// own: the store keeps one copy per invocation by the rule of
// enrich.CompareCopies (ties to the copy read first) when the window is
// committed, and counts what it kept. Which copy wins therefore does not
// depend on the order the files were read in, and the run needs no set of
// every invocation id.
type attributor struct {
	engine   *enrich.Engine
	run      enrich.Run
	masked   bool // record each id-linked call's masked outcome (calibration)
	fallback bool // stage a fallback row for each time-window pick (min confidence)
	stage    schemas.AttributionStage
	chunk    []schemas.Staged
	scratch  []schemas.Attribution
	copies   int64 // usage rows staged
	earliest time.Time
}

// stageChunk is how many rows are staged at a time: large enough that the
// per-chunk cost of a store's append is small, small enough that a chunk is
// a few megabytes.
const stageChunk = 1 << 15

func newAttributor(e *enrich.Engine, run enrich.Run, stage schemas.AttributionStage) *attributor {
	return &attributor{engine: e, run: run, stage: stage, chunk: make([]schemas.Staged, 0, stageChunk)}
}

func (a *attributor) add(ctx context.Context, evs []schemas.UsageEvent) error {
	for i := range evs {
		ev := &evs[i]
		a.scratch = a.engine.Attribute(a.scratch[:0], ev, a.run)
		c := schemas.Copy{Seq: a.copies, EventNanos: ev.EventTime.UnixNano(), TotalTokens: ev.TotalTokens, InputTokens: ev.InputTokens}
		if a.masked {
			c.Masked = a.engine.Masked(ev, a.scratch)
		}
		a.copies++
		for k := range a.scratch {
			a.chunk = append(a.chunk, schemas.Staged{Attribution: a.scratch[k], Copy: c})
		}
		if a.fallback {
			if f, ok := a.engine.Fallback(ev, a.scratch); ok {
				fc := c
				fc.Masked = schemas.MaskedFallback
				a.chunk = append(a.chunk, schemas.Staged{Attribution: f, Copy: fc})
			}
		}
		if a.earliest.IsZero() || ev.EventTime.Before(a.earliest) {
			a.earliest = ev.EventTime
		}
		if len(a.chunk) >= stageChunk {
			if err := a.flush(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush stages the rows held.
func (a *attributor) flush(ctx context.Context) error {
	err := a.stage.Append(ctx, a.chunk)
	clear(a.chunk) // drop the strings the rows point to
	a.chunk = a.chunk[:0]
	return err
}

// finish fills the report's counts from what the store kept.
func (a *attributor) finish(rep *Report, t schemas.StagedTotals) {
	rep.Invocations = t.Invocations
	rep.Duplicates = a.copies - t.Invocations
	rep.Attributed = t.Attributed
	rep.Unattributed = t.Invocations - t.Attributed
	rep.OutputRows = t.Rows
	rep.TokensIn, rep.InputTokensIn, rep.TokensOut = t.TokensIn, t.InputTokensIn, t.TokensOut
	rep.TokenOverflow = rep.TokenOverflow || t.TokenOverflow
	rep.CostUSD = t.CostUSD
	for m, w := range t.ByMethod {
		rep.ByMethod[m] += w
	}
}
