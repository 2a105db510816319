// Package batch runs one attribution window end to end: read usage and agent
// logs, deduplicate, match, price, and replace the window in the store.
package batch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/ingest"
	"github.com/obolus/obolus/schemas"
)

// Source reads one input for a window.
type Source interface {
	Name() string
	Read(ctx context.Context, w ingest.Window, emit ingest.Emit) (ingest.Stats, error)
}

// Store is where a run's results go. Every write is idempotent: running the
// same window twice leaves the same rows.
type Store interface {
	// StageAttributions starts a window replace that takes the rows in
	// chunks as they are produced: the run never holds the window.
	StageAttributions(ctx context.Context) (schemas.AttributionStage, error)
	WriteDeadLetters(ctx context.Context, dl []schemas.DeadLetter) error
	RefreshCoverage(ctx context.Context, from, to time.Time) error
	Checkpoint(ctx context.Context, job string) (time.Time, bool, error)
	SetCheckpoint(ctx context.Context, job string, windowEnd time.Time) error
	RecordRun(ctx context.Context, r schemas.Run) error
}

// Job is a configured batch job.
type Job struct {
	Name   string
	Usage  []Source
	Agents []Source
	// Served are served_entities sources: read whole by every run (no
	// window applies), they give legacy usage rows their model.
	Served []Source
	Match  enrich.MatchConfig
	Prices *enrich.PriceList
	Org    *enrich.Directory
	Store  Store
	// Lookback re-processes usage this long before the window start.
	Lookback time.Duration
	// AgentMargin reads agent requests that started this long before the
	// processed usage.
	AgentMargin time.Duration
	Log         *slog.Logger
	// Meter and Tracer record the run's metrics and spans; nil means the
	// global providers (which record nothing unless telemetry is set up).
	Meter  metric.Meter
	Tracer trace.Tracer
	// Progress, when set, is told how far the run got.
	Progress func(stage string, done, total int64)
}

const instrumentation = "github.com/obolus/obolus/internal/batch"

func (j *Job) log() *slog.Logger {
	if j.Log != nil {
		return j.Log
	}
	return slog.Default()
}

func (j *Job) tracer() trace.Tracer {
	if j.Tracer != nil {
		return j.Tracer
	}
	return otel.Tracer(instrumentation)
}

// Options choose the window of one run.
type Options struct {
	// From and To bound the event-time window [From, To). A zero From
	// continues from the job's checkpoint, or takes all data if there is none;
	// a zero To means Now.
	From, To time.Time
	Now      time.Time
}

// Report is what a run did. Its counts reconcile: every usage row read is
// outside the window, dead-lettered, a duplicate of another row, or exactly
// one invocation that is attributed or unattributed.
type Report struct {
	RunID     string
	Job       string
	Window    ingest.Window // what the caller asked for
	Processed ingest.Window // Window widened by the lookback
	StartedAt time.Time
	Finished  time.Time

	UsageRows     int64 // usage rows read from every usage source
	OutsideWindow int64
	Duplicates    int64 // rows whose invocation_id another row already had
	DeadLettered  int64 // usage rows that could not be used
	Invocations   int64 // distinct invocations in the window
	Attributed    int64 // invocations attributed to an end user (split counts once)
	Unattributed  int64
	OutputRows    int64 // attribution rows written (split invocations write several)

	AgentRows         int64 // agent log rows read
	AgentDeadLettered int64
	// AgentSkipped counts agent log rows that stand for no agent request:
	// the inner spans of a trace (otel_spans sources), which name no user.
	AgentSkipped  int64
	AgentRequests int64 // distinct agent requests after merging payload and trace rows
	// AgentTimeDisagreements counts agent requests whose log rows (a payload
	// row and a trace, or two traces) disagree on start or end by more than
	// match.skew; see enrich.Index.Add for whose times are used.
	AgentTimeDisagreements int64
	// ServedEntityRows counts served_entities rows read, of which
	// ServedDeadLettered were dead-lettered; ServedEntities counts the
	// distinct entities.
	ServedEntityRows, ServedDeadLettered, ServedEntities int64
	// TimingCalls counts the calls the likely policy's timing model was
	// learned from (id-linked, or alone in their window); 0 under other
	// policies.
	TimingCalls int64

	InputTokensIn int64 // input_tokens of the window's distinct invocations
	TokensIn      int64 // total_tokens of the window's distinct invocations
	TokensOut     int64 // total_tokens of the rows written
	CostUSD       float64

	// Stale rows were not written: the store holds their invocations
	// (StaleInvocations) at a higher version, from a later run or a stream.
	Stale, StaleInvocations int64

	// Calibration is the run's calibration table (enrich.Calibrate), when
	// match.calibrate is on.
	Calibration []schemas.Calibration

	// ByMethod is the weighted invocation count per match method.
	ByMethod map[string]float64
	Err      string

	// TokenOverflow is set when a token sum would have passed int64; the
	// sum keeps its last value and the run does not reconcile.
	TokenOverflow bool
}

// AddTokens adds n to the token sum at sum, checking for overflow: a wrapped
// sum would print "reconciled" over negative totals.
func (r *Report) AddTokens(sum *int64, n int64) {
	s := *sum + n
	if (n > 0 && s < *sum) || (n < 0 && s > *sum) {
		r.TokenOverflow = true
		return
	}
	*sum = s
}

// Run is the report as a row of the runs table.
func (r *Report) Run() schemas.Run {
	status := schemas.RunOK
	if r.Err != "" {
		status = schemas.RunFailed
	}
	return schemas.Run{
		RunID: r.RunID, Job: r.Job, StartedAt: r.StartedAt, FinishedAt: r.Finished,
		WindowFrom: r.Processed.From, WindowTo: r.Processed.To,
		RowsRead: r.UsageRows, OutsideWindow: r.OutsideWindow, Duplicates: r.Duplicates, DeadLettered: r.DeadLettered,
		Attributed: r.Attributed, Unattributed: r.Unattributed,
		InputTokensIn: r.InputTokensIn, TotalTokensIn: r.TokensIn, TotalTokensOut: r.TokensOut,
		Stale: r.Stale, StaleInvocations: r.StaleInvocations,
		Status: status, Error: r.Err,
	}
}

// Reconciled reports whether every input row and token is accounted for.
func (r *Report) Reconciled() bool {
	return !r.TokenOverflow &&
		r.UsageRows == r.OutsideWindow+r.DeadLettered+r.Duplicates+r.Invocations &&
		r.Invocations == r.Attributed+r.Unattributed &&
		r.TokensIn == r.TokensOut
}

// Summary is the one-line reconciliation printed after every run.
func (r *Report) Summary() string {
	ok := "reconciled"
	if !r.Reconciled() {
		ok = "NOT RECONCILED"
	}
	s := fmt.Sprintf("%s: usage rows %d = invocations %d (attributed %d + unattributed %d) + duplicates %d + dead-lettered %d + outside window %d; tokens in %d = tokens out %d",
		ok, r.UsageRows, r.Invocations, r.Attributed, r.Unattributed, r.Duplicates, r.DeadLettered, r.OutsideWindow, r.TokensIn, r.TokensOut)
	if r.StaleInvocations > 0 {
		s += fmt.Sprintf("; %d invocations kept a newer stored answer (%d rows not written)", r.StaleInvocations, r.Stale)
	}
	if r.TokenOverflow {
		s += "; token sums overflow int64"
	}
	if r.AgentTimeDisagreements > 0 {
		s += fmt.Sprintf("; %d agent requests whose logs disagree on their times beyond match.skew (payload rows' times used over traces')", r.AgentTimeDisagreements)
	}
	if r.AgentSkipped > 0 {
		s += fmt.Sprintf("; %d of %d agent log rows skipped (spans that are not an agent request)", r.AgentSkipped, r.AgentRows)
	}
	if r.TimingCalls > 0 {
		s += fmt.Sprintf("; timing model learned from %d calls", r.TimingCalls)
	}
	return s
}

// Checkpointer reads a job's checkpoint.
type Checkpointer interface {
	Checkpoint(ctx context.Context, job string) (time.Time, bool, error)
}

// CheckpointStore reads and sets jobs' checkpoints.
type CheckpointStore interface {
	Checkpointer
	SetCheckpoint(ctx context.Context, job string, windowEnd time.Time) error
}

// AdvanceCheckpoint moves job's checkpoint to end, never backwards: an
// explicit run over an older window (a backfill) leaves a later checkpoint
// where it is (and says so in log), or the next scheduled run would redo
// everything since. A checkpoint after now (a --to in the future, from
// before such windows were refused) is not kept: any run resets it.
func AdvanceCheckpoint(ctx context.Context, s CheckpointStore, log *slog.Logger, job string, end, now time.Time) error {
	cp, ok, err := s.Checkpoint(ctx, job)
	if err != nil {
		return fmt.Errorf("read checkpoint of job %s: %w", job, err)
	}
	if ok && cp.After(end) && !cp.After(now) {
		log.Info("checkpoint kept: it is later than this window's end", "job", job, "checkpoint", cp, "window_end", end)
		return nil
	}
	if err := s.SetCheckpoint(ctx, job, end); err != nil {
		return fmt.Errorf("advance checkpoint of job %s to %s: %w", job, end.Format(time.RFC3339), err)
	}
	return nil
}

// ErrFutureWindow marks a window asked to end after now.
var ErrFutureWindow = errors.New("window ends in the future")

// MaxClockSkew is how far after now a window end may lie and still be
// taken as now: clocks of the scheduler and of this host differ a little.
const MaxClockSkew = 5 * time.Minute

// ResolveWindow turns a run's options into the window asked for (a zero From
// continues from the job's checkpoint, or takes all data if there is none; a
// zero To is now) and the window processed, widened by lookback.
func ResolveWindow(ctx context.Context, cp Checkpointer, job string, opt Options, now time.Time, lookback time.Duration) (w, processed ingest.Window, err error) {
	w = ingest.Window{From: opt.From.UTC(), To: opt.To.UTC()}
	now = now.UTC()
	switch {
	case w.To.IsZero():
		w.To = now
	case w.To.After(now.Add(MaxClockSkew)):
		// The checkpoint would move past now, and every later run would
		// find nothing to do until then.
		return w, w, fmt.Errorf("window end %s is in the future (now %s): a window ends at most now; leave --to out to stop at now: %w", w.To.Format(time.RFC3339), now.Format(time.RFC3339), ErrFutureWindow)
	case w.To.After(now):
		// Within clock skew of now: stop at now, so the checkpoint never
		// moves past it.
		w.To = now
	}
	if w.From.IsZero() {
		t, ok, err := cp.Checkpoint(ctx, job)
		if err != nil {
			return w, w, fmt.Errorf("read checkpoint of job %s: %w", job, err)
		}
		if ok && t.After(now) {
			return w, w, fmt.Errorf("checkpoint of job %s is %s, after now (%s): an earlier run was given a --to in the future; run once with --from <the date to resume from>, which sets the checkpoint back to now", job, t.Format(time.RFC3339), now.Format(time.RFC3339))
		}
		if ok {
			w.From = t
		}
	}
	if !w.From.IsZero() && !w.From.Before(w.To) {
		return w, w, fmt.Errorf("window %s: nothing to do, from is not before to", FormatWindow(w))
	}
	processed = w
	if !processed.From.IsZero() {
		processed.From = processed.From.Add(-lookback)
	}
	return w, processed, nil
}

// Run processes one window.
func (j *Job) Run(ctx context.Context, opt Options) (rep *Report, err error) {
	log := j.log()
	if len(j.Usage) == 0 {
		return nil, errors.New("no usage source configured: add a source of kind usage or legacy_usage")
	}
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	rep = &Report{RunID: newRunID(now), Job: j.Name, StartedAt: now.UTC(), ByMethod: map[string]float64{}}
	ctx, span := j.tracer().Start(ctx, "batch.run", trace.WithAttributes(attribute.String("obolus.run_id", rep.RunID), attribute.String("obolus.job", j.Name)))
	defer func() {
		if err != nil {
			span.RecordError(err)
			rep.Err = err.Error()
			rep.Finished = time.Now().UTC()
			// Failed runs are recorded too, so the runs table tells the whole
			// story; a failure to record must not hide the original error.
			if rerr := j.Store.RecordRun(context.WithoutCancel(ctx), rep.Run()); rerr != nil {
				log.Warn("record failed run", "run_id", rep.RunID, "err", rerr)
			}
		}
		span.End()
	}()

	w, p, err := ResolveWindow(ctx, j.Store, j.Name, opt, now, j.Lookback)
	if err != nil {
		return rep, err
	}
	rep.Window, rep.Processed = w, p
	log.Info("batch window", "run_id", rep.RunID, "job", j.Name, "window", FormatWindow(w), "processed", FormatWindow(p))

	var dead []schemas.DeadLetter
	collectDead := func(d schemas.DeadLetter) error {
		d.RunID = rep.RunID
		if d.DeadLetteredAt.IsZero() {
			d.DeadLetteredAt = now.UTC()
		}
		dead = append(dead, d)
		return nil
	}

	// Agent requests first: the index must be complete before matching.
	idx := enrich.NewIndex()
	idx.SetMergeTolerance(j.Match.Skew)
	aw := p
	if !aw.From.IsZero() {
		aw.From = aw.From.Add(-j.AgentMargin)
	}
	aw.To = aw.To.Add(j.Match.Skew + time.Minute)
	if err := j.readAll(ctx, "read agent logs", j.Agents, aw, ingest.Emit{
		Agents: func(rs []schemas.AgentRequest) error { idx.Add(rs...); return nil },
		Dead:   collectDead,
	}, func(st ingest.Stats) {
		rep.AgentRows += st.Rows
		rep.AgentDeadLettered += st.Dead
		rep.AgentSkipped += st.Skipped
	}); err != nil {
		return rep, err
	}
	rep.AgentRequests = int64(idx.Len())
	rep.AgentTimeDisagreements = idx.TimeDisagreements()

	engine, err := enrich.NewEngine(j.Match, idx, j.Prices, j.Org)
	if err != nil {
		return rep, fmt.Errorf("configure engine: %w", err)
	}
	if len(j.Served) > 0 {
		se, st, err := ReadServed(ctx, j.Served, collectDead)
		if err != nil {
			return rep, err
		}
		rep.ServedEntityRows, rep.ServedDeadLettered, rep.ServedEntities = st.Rows, st.Dead, int64(se.Len())
		engine.SetServedEntities(se)
	}
	if j.Match.Ambiguity == enrich.PolicyLikely && j.Match.TimeWindow {
		// The likely policy's timing model is learned from the whole window
		// before any call is matched, so that an answer does not depend on
		// the order calls are read in: one more read of the usage, counted
		// and dead-lettered by the pass that matches.
		lctx, lspan := j.tracer().Start(ctx, "batch.learn timing")
		err := j.readAll(lctx, "learn timing", j.Usage, p, ingest.Emit{
			Usage: func(evs []schemas.UsageEvent) error {
				for i := range evs {
					engine.Learn(&evs[i])
				}
				return nil
			},
			Dead: func(schemas.DeadLetter) error { return nil },
		}, func(ingest.Stats) {})
		lspan.End()
		if err != nil {
			return rep, err
		}
		rep.TimingCalls = engine.FitTiming().Known
		log.Info("timing model learned", "run_id", rep.RunID, "calls", rep.TimingCalls)
	}
	// Usage is attributed as it streams in and staged chunk by chunk: the run
	// holds the agent index and one chunk of rows, never the window.
	stage, err := j.Store.StageAttributions(ctx)
	if err != nil {
		return rep, fmt.Errorf("stage attribution for window %s: %w", FormatWindow(p), err)
	}
	defer func() {
		if cerr := stage.Close(); cerr != nil {
			log.Warn("close attribution stage", "run_id", rep.RunID, "err", cerr)
		}
	}()
	att := newAttributor(engine, enrich.Run{ID: rep.RunID, Version: now.UnixMicro(), ProcessedAt: now}, stage)
	if j.Match.Calibrate && j.Match.TimeWindow {
		att.masked, att.fallback = true, j.Match.MinConfidence > 0
		stage.Calibrate(func(s schemas.CalibrationStats) schemas.CalibrationResult {
			rep.Calibration = enrich.Calibrate(rep.RunID, s)
			return schemas.CalibrationResult{RunID: rep.RunID, Rows: rep.Calibration, MinConfidence: j.Match.MinConfidence}
		})
	}
	mctx, mspan := j.tracer().Start(ctx, "batch.read usage and match")
	err = j.readAll(mctx, "read usage", j.Usage, p, ingest.Emit{
		Usage: func(evs []schemas.UsageEvent) error { return att.add(mctx, evs) },
		Dead:  collectDead,
	}, func(st ingest.Stats) {
		rep.UsageRows += st.Rows
		rep.OutsideWindow += st.OutsideWindow
		rep.DeadLettered += st.Dead
	})
	if err == nil {
		err = att.flush(mctx)
	}
	mspan.End()
	if err != nil {
		return rep, err
	}
	// The engine, and with it the agent index, is done with: hand its memory
	// back before the store's commit, the other half of the run's peak, takes
	// its own.
	att.engine = nil
	debug.FreeOSMemory()

	wctx, wspan := j.tracer().Start(ctx, "batch.write")
	defer wspan.End()
	// An open-ended first run replaces from its earliest event on.
	// With no events at all there is nothing to bound it by: replace nothing.
	replace := p
	if replace.From.IsZero() {
		switch {
		case att.earliest.IsZero():
			replace.To = time.Time{}
		case att.earliest.Before(replace.To):
			replace.From = att.earliest
		default:
			replace.From, replace.To = time.Time{}, time.Time{}
		}
	}
	ws, totals, err := stage.Commit(wctx, replace.From, replace.To)
	rep.Stale, rep.StaleInvocations = ws.Stale, ws.StaleInvocations
	if err != nil {
		return rep, fmt.Errorf("write attribution for window %s: %w", FormatWindow(p), err)
	}
	att.finish(rep, totals)
	wspan.SetAttributes(attribute.Int64("obolus.invocations", rep.Invocations), attribute.Int64("obolus.rows", rep.OutputRows))
	if len(dead) > 0 {
		if err := j.Store.WriteDeadLetters(wctx, dead); err != nil {
			return rep, fmt.Errorf("write %d dead letters: %w", len(dead), err)
		}
	}
	if err := j.Store.RefreshCoverage(wctx, replace.From, replace.To); err != nil {
		return rep, fmt.Errorf("refresh coverage for window %s: %w", FormatWindow(p), err)
	}
	if !rep.Reconciled() {
		// A run that cannot account for its input must not move the
		// checkpoint: the next run retries the same window.
		return rep, fmt.Errorf("run %s does not reconcile: %s", rep.RunID, rep.Summary())
	}
	if err := AdvanceCheckpoint(wctx, j.Store, log, j.Name, w.To, now); err != nil {
		return rep, err
	}
	rep.Finished = time.Now().UTC()
	j.recordMetrics(ctx, rep)
	if err := j.Store.RecordRun(wctx, rep.Run()); err != nil {
		log.Warn("record run", "run_id", rep.RunID, "err", err)
	}
	return rep, nil
}

func (j *Job) readAll(ctx context.Context, stage string, srcs []Source, w ingest.Window, emit ingest.Emit, add func(ingest.Stats)) error {
	ctx, span := j.tracer().Start(ctx, "batch.source "+stage)
	defer span.End()
	for i, s := range srcs {
		if err := ctx.Err(); err != nil {
			return err
		}
		st, err := s.Read(ctx, w, emit)
		if err != nil {
			return fmt.Errorf("%s: source %s: %w", stage, s.Name(), err)
		}
		if !st.Balanced() {
			// A reader lost track of a row: its counts cannot be trusted.
			return fmt.Errorf("%s: source %s: %d rows read, but %d emitted + %d outside the window + %d dead-lettered + %d skipped",
				stage, s.Name(), st.Rows, st.Emitted, st.OutsideWindow, st.Dead, st.Skipped)
		}
		add(st)
		if j.Progress != nil {
			j.Progress(stage, int64(i+1), int64(len(srcs)))
		}
	}
	return nil
}

// recordMetrics records a finished run. The instruments are made per run
// from the job's meter; the SDK returns the same ones each time.
func (j *Job) recordMetrics(ctx context.Context, r *Report) {
	meter := j.Meter
	if meter == nil {
		meter = otel.Meter(instrumentation)
	}
	rowsCounter, err1 := meter.Int64Counter("obolus.batch.rows", metric.WithDescription("Usage rows by outcome: attributed, unattributed, duplicate, dead_lettered, outside_window"))
	tokensCounter, err2 := meter.Int64Counter("obolus.batch.tokens", metric.WithDescription("total_tokens of attributed and unattributed invocations"))
	costCounter, err3 := meter.Float64Counter("obolus.batch.cost", metric.WithUnit("USD"), metric.WithDescription("List-price cost of processed invocations"))
	methodCounter, err4 := meter.Float64Counter("obolus.batch.invocations", metric.WithDescription("Invocations by match method; split invocations count by weight"))
	runDuration, err5 := meter.Float64Histogram("obolus.batch.duration", metric.WithUnit("s"), metric.WithDescription("Wall time of a batch run"))
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		j.log().Warn("batch metrics not recorded", "err", err)
		return
	}
	// Not "job": Prometheus and the Pushgateway keep that label for the
	// scrape target and the push group.
	job := attribute.String("obolus.job", r.Job)
	for outcome, n := range map[string]int64{
		"attributed": r.Attributed, "unattributed": r.Unattributed, "duplicate": r.Duplicates,
		"dead_lettered": r.DeadLettered, "outside_window": r.OutsideWindow,
	} {
		rowsCounter.Add(ctx, n, metric.WithAttributes(job, attribute.String("outcome", outcome)))
	}
	for _, m := range slices.Sorted(maps.Keys(r.ByMethod)) {
		methodCounter.Add(ctx, r.ByMethod[m], metric.WithAttributes(job, attribute.String("match_method", m)))
	}
	tokensCounter.Add(ctx, r.TokensOut, metric.WithAttributes(job))
	costCounter.Add(ctx, r.CostUSD, metric.WithAttributes(job))
	runDuration.Record(ctx, r.Finished.Sub(r.StartedAt).Seconds(), metric.WithAttributes(job))
}

// FormatWindow renders a window for logs and errors, with ±∞ for open bounds.
func FormatWindow(w ingest.Window) string {
	f := func(t time.Time, open string) string {
		if t.IsZero() {
			return open
		}
		return t.UTC().Format(time.RFC3339)
	}
	return "[" + f(w.From, "-∞") + ", " + f(w.To, "+∞") + ")"
}

func newRunID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
