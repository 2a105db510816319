// Package storetest is the conformance suite of obolus's stores: every
// implementation of the store contract runs it, so they cannot drift apart.
package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obolus/obolus/schemas"
)

// Store is the contract: attribution rows replaced by window and by
// invocation under a version guard, checkpoints, runs and dead letters.
type Store interface {
	// ReplaceAttributionChunks makes the table hold, for the invocations
	// the rows name, exactly these rows, and for the event-time window
	// [from,to) nothing else (both zero: no window), unless the store holds
	// an invocation at a higher version: then its stored rows stay and the
	// incoming ones are counted stale.
	ReplaceAttributionChunks(ctx context.Context, from, to time.Time, chunks [][]schemas.Attribution) (schemas.WriteStats, error)
	// StageAttributions starts a replace written in chunks, several usage
	// rows (copies) of one invocation among them: see
	// schemas.AttributionStage.
	StageAttributions(ctx context.Context) (schemas.AttributionStage, error)
	Attributions(ctx context.Context, from, to time.Time) ([]schemas.Attribution, error)
	WriteDeadLetters(ctx context.Context, dl []schemas.DeadLetter) error
	DeadLetters(ctx context.Context) ([]schemas.DeadLetter, error)
	Checkpoint(ctx context.Context, job string) (time.Time, bool, error)
	SetCheckpoint(ctx context.Context, job string, windowEnd time.Time) error
	RecordRun(ctx context.Context, r schemas.Run) error
	Runs(ctx context.Context, job string) ([]schemas.Run, error)
	// Calibration reads a run's calibration rows ("" for the latest run).
	Calibration(ctx context.Context, runID string) ([]schemas.Calibration, error)
}

// Options says what a store under test can do.
type Options struct {
	// Writers is how many concurrent writers the concurrency case runs
	// (0: 4).
	Writers int
	// ExactCounts: the store reports Inserted and Deleted (not just Affected).
	ExactCounts bool
}

// Day is the UTC day the suite's rows fall on.
var Day = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// Row is an attribution row of the suite: invocation inv, for user, at
// Day plus at, with version v.
func Row(inv, user string, at time.Duration, v int64) schemas.Attribution {
	t := Day.Add(at)
	return schemas.Attribution{
		InvocationID: inv, RequestID: "r-" + inv, EventTime: t, EventDate: t.Format(time.DateOnly),
		AccountID: "acc", WorkspaceID: "ws", EndpointID: "ep", EndpointName: "databricks-gpt-5", DestinationModel: "gpt-5",
		Requester: "sp-1", StatusCode: 200, UsageSource: schemas.SourceAIGateway, EndUser: user, Team: "t", CostCenter: "cc",
		MatchMethod: schemas.MethodTagUser, MatchConfidence: 1, Candidates: 1, Weight: 1,
		InputTokens: 10, OutputTokens: 5, TotalTokens: 15, CostUSD: 0.000125, PriceListVersion: "v1",
		Version: v, RunID: fmt.Sprintf("run-%d", v), ProcessedAt: t.Add(time.Hour),
	}
}

// Run runs the suite; open returns a fresh, empty store for each case.
func Run(t *testing.T, open func(t *testing.T) Store, opt Options) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s Store, opt Options)
	}{
		{"RoundTrip", roundTrip},
		{"WindowReplace", windowReplace},
		{"VersionGuard", versionGuard},
		{"IdempotentRerun", idempotentRerun},
		{"RefusesBadRows", refusesBadRows},
		{"ConcurrentWriters", concurrentWriters},
		{"Checkpoints", checkpoints},
		{"Runs", runs},
		{"DeadLetters", deadLetters},
		{"StagedCopies", stagedCopies},
		{"AbandonedStage", abandonedStage},
		{"Calibration", calibration},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t), opt) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func replace(t *testing.T, s Store, from, to time.Time, rows ...schemas.Attribution) schemas.WriteStats {
	t.Helper()
	st, err := s.ReplaceAttributionChunks(ctx(t), from, to, [][]schemas.Attribution{rows})
	if err != nil {
		t.Fatalf("replace: %v", err)
	}
	return st
}

// stored summarises the table as "inv/user@version" in read order.
func stored(t *testing.T, s Store) []string {
	t.Helper()
	rows, err := s.Attributions(ctx(t), time.Time{}, time.Time{})
	if err != nil {
		t.Fatalf("read attributions: %v", err)
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = fmt.Sprintf("%s/%s@%d", r.InvocationID, r.EndUser, r.Version)
	}
	return out
}

func expect(t *testing.T, s Store, want ...string) {
	t.Helper()
	if got := stored(t, s); !slices.Equal(got, want) {
		t.Errorf("stored rows\n got %v\nwant %v", got, want)
	}
}

func roundTrip(t *testing.T, s Store, _ Options) {
	in := Row("a", "ana@example.com", time.Hour, 1)
	in.Reason, in.Session, in.TraceID = "", "sess-1", "tr-1"
	in.ProcessedAt = time.Time{} // NULL survives
	st := replace(t, s, time.Time{}, time.Time{}, in)
	if st.Rows != 1 || st.Invocations != 1 || st.Stale != 0 {
		t.Errorf("stats %+v", st)
	}
	got, err := s.Attributions(ctx(t), Day, Day.Add(24*time.Hour))
	if err != nil || len(got) != 1 {
		t.Fatalf("read back %d rows, err %v", len(got), err)
	}
	if got[0] != in {
		t.Errorf("read back\n got %+v\nwant %+v", got[0], in)
	}
	if _, err := s.Attributions(ctx(t), Day, time.Time{}); err == nil {
		t.Error("a half-open read window was accepted")
	}
}

func windowReplace(t *testing.T, s Store, opt Options) {
	from, to := Day, Day.Add(time.Hour)
	replace(t, s, time.Time{}, time.Time{},
		Row("old-in", "u1", 10*time.Minute, 1), Row("old-out", "u1", 2*time.Hour, 1), Row("kept", "u1", 20*time.Minute, 1))
	// The window's answer no longer has old-in; kept is answered again and
	// an invocation outside the window is replaced by id.
	st := replace(t, s, from, to, Row("kept", "u2", 20*time.Minute, 1), Row("new", "u1", 30*time.Minute, 1), Row("old-out", "u3", 2*time.Hour, 1))
	expect(t, s, "kept/u2@1", "new/u1@1", "old-out/u3@1")
	if st.Rows != 3 || st.Invocations != 3 || st.Stale != 0 {
		t.Errorf("stats %+v", st)
	}
	if opt.ExactCounts && (st.Inserted != 3 || st.Deleted != 3) {
		t.Errorf("stats %+v: want 3 inserted, 3 deleted", st)
	}
	// An empty answer for a window clears it.
	replace(t, s, from, to)
	expect(t, s, "old-out/u3@1")
	// Half a window is refused.
	if _, err := s.ReplaceAttributionChunks(ctx(t), from, time.Time{}, nil); err == nil {
		t.Error("a half-open window was accepted")
	}
}

func versionGuard(t *testing.T, s Store, _ Options) {
	from, to := Day, Day.Add(time.Hour)
	replace(t, s, time.Time{}, time.Time{}, Row("a", "u1", time.Minute, 5), Row("b", "u1", 2*time.Minute, 5))
	// A lower version changes nothing, even inside its window; an equal
	// version (a rerun) and a higher one overwrite.
	st := replace(t, s, from, to, Row("a", "u2", time.Minute, 4), Row("a", "u3", time.Minute, 4), Row("b", "u2", 2*time.Minute, 5))
	expect(t, s, "a/u1@5", "b/u2@5")
	if st.Stale != 2 || st.StaleInvocations != 1 {
		t.Errorf("stats %+v: want 2 stale rows of 1 invocation", st)
	}
	replace(t, s, time.Time{}, time.Time{}, Row("a", "u4", time.Minute, 6))
	expect(t, s, "a/u4@6", "b/u2@5")
}

func idempotentRerun(t *testing.T, s Store, _ Options) {
	rows := []schemas.Attribution{Row("a", "u1", time.Minute, 1), Row("a", "u2", time.Minute, 1), Row("b", "u1", 3*time.Minute, 1)}
	for range 2 {
		// Split rows arrive in chunks; the second run is the same input.
		if _, err := s.ReplaceAttributionChunks(ctx(t), Day, Day.Add(time.Hour), [][]schemas.Attribution{rows[:1], rows[1:]}); err != nil {
			t.Fatal(err)
		}
		expect(t, s, "a/u1@1", "a/u2@1", "b/u1@1")
	}
}

func refusesBadRows(t *testing.T, s Store, _ Options) {
	replace(t, s, time.Time{}, time.Time{}, Row("keep", "u1", time.Minute, 1))
	bad := func(mut func(r *schemas.Attribution)) schemas.Attribution {
		r := Row("x", "u1", 2*time.Minute, 1)
		mut(&r)
		return r
	}
	for name, rows := range map[string][]schemas.Attribution{
		"repeated key":   {Row("x", "u1", time.Minute, 1), Row("x", "u1", time.Minute, 1)},
		"mixed versions": {Row("x", "u1", time.Minute, 1), Row("x", "u2", time.Minute, 2)},
		"bad utf-8":      {bad(func(r *schemas.Attribution) { r.CostCenter = "\xff" })},
		"wrong date":     {bad(func(r *schemas.Attribution) { r.EventDate = "2026-11-03" })},
		"weight":         {bad(func(r *schemas.Attribution) { r.Weight = 2 })},
	} {
		if _, err := s.ReplaceAttributionChunks(ctx(t), Day, Day.Add(time.Hour), [][]schemas.Attribution{rows}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Nothing was written, and the window was not cleared.
	expect(t, s, "keep/u1@1")
}

func concurrentWriters(t *testing.T, s Store, opt Options) {
	n := opt.Writers
	if n == 0 {
		n = 4
	}
	// Each writer owns an hour; every writer also answers invocation
	// "shared" with its own version: the highest must win.
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range n {
		wg.Go(func() {
			at := time.Duration(w) * time.Hour
			rows := []schemas.Attribution{Row(fmt.Sprintf("w%d", w), "u", at+time.Minute, 1), Row("shared", fmt.Sprintf("u%d", w), 23*time.Hour, int64(10+w))}
			_, err := s.ReplaceAttributionChunks(ctx(t), Day.Add(at), Day.Add(at+time.Hour), [][]schemas.Attribution{rows})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent write: %v", err)
		}
	}
	var want []string
	for w := range n {
		want = append(want, fmt.Sprintf("w%d/u@1", w))
	}
	want = append(want, fmt.Sprintf("shared/u%d@%d", n-1, 10+n-1))
	expect(t, s, want...)
}

func checkpoints(t *testing.T, s Store, _ Options) {
	if _, ok, err := s.Checkpoint(ctx(t), "daily"); err != nil || ok {
		t.Fatalf("fresh store: checkpoint ok=%v err=%v", ok, err)
	}
	for _, end := range []time.Time{Day.Add(24 * time.Hour), Day.Add(48 * time.Hour)} {
		if err := s.SetCheckpoint(ctx(t), "daily", end); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.Checkpoint(ctx(t), "daily")
		if err != nil || !ok || !got.Equal(end) {
			t.Errorf("checkpoint %v ok=%v err=%v, want %v", got, ok, err, end)
		}
	}
	if _, ok, _ := s.Checkpoint(ctx(t), "hourly"); ok {
		t.Error("another job shares the checkpoint")
	}
}

func runs(t *testing.T, s Store, _ Options) {
	r := schemas.Run{RunID: "run-1", Job: "daily", StartedAt: Day, WindowFrom: Day, WindowTo: Day.Add(24 * time.Hour), Status: schemas.RunRunning}
	if err := s.RecordRun(ctx(t), r); err != nil {
		t.Fatal(err)
	}
	r.FinishedAt, r.Status, r.RowsRead, r.Attributed, r.TotalTokensIn, r.TotalTokensOut = Day.Add(time.Minute), schemas.RunOK, 10, 9, 150, 150
	if err := s.RecordRun(ctx(t), r); err != nil {
		t.Fatal(err)
	}
	other := schemas.Run{RunID: "run-2", Job: "hourly", StartedAt: Day.Add(time.Hour), Status: schemas.RunFailed, Error: "boom"}
	if err := s.RecordRun(ctx(t), other); err != nil {
		t.Fatal(err)
	}
	got, err := s.Runs(ctx(t), "daily")
	if err != nil || len(got) != 1 || got[0] != r {
		t.Errorf("runs of daily: %+v, err %v; want [%+v]", got, err, r)
	}
	if all, err := s.Runs(ctx(t), ""); err != nil || len(all) != 2 {
		t.Errorf("all runs: %d, err %v", len(all), err)
	}
}

func deadLetters(t *testing.T, s Store, _ Options) {
	at := Day.Add(time.Hour)
	dl := []schemas.DeadLetter{
		{Source: "usage.jsonl", Location: "line 3", Kind: "usage", Field: "event_time", Reason: "not a time", Record: `{"event_time":"x"}`, RunID: "run-1", DeadLetteredAt: at},
		{Source: "usage.jsonl", Location: "line 9", Kind: "usage", Reason: "not JSON", Record: "\xff{", RunID: "run-1", DeadLetteredAt: at},
	}
	if err := s.WriteDeadLetters(ctx(t), dl); err != nil {
		t.Fatal(err)
	}
	// The same record read again overwrites its row.
	again := dl[0]
	again.RunID, again.Reason = "run-2", "still not a time"
	if err := s.WriteDeadLetters(ctx(t), []schemas.DeadLetter{again}); err != nil {
		t.Fatal(err)
	}
	got, err := s.DeadLetters(ctx(t))
	if err != nil || len(got) != 2 {
		t.Fatalf("dead letters %+v, err %v", got, err)
	}
	if got[0] != again {
		t.Errorf("rewritten letter\n got %+v\nwant %+v", got[0], again)
	}
	if got[1].Record != "\uFFFD{" {
		t.Errorf("invalid UTF-8 record stored as %q, want it replaced", got[1].Record)
	}
}

// staged is a staged row of invocation inv for user from copy seq of a
// usage row at Day plus at with total tokens.
func staged(inv, user string, at time.Duration, total, seq int64) schemas.Staged {
	r := Row(inv, user, at, 1)
	r.TotalTokens, r.InputTokens, r.OutputTokens = total, total, 0
	return schemas.Staged{Attribution: r, Copy: schemas.Copy{Seq: seq, EventNanos: r.EventTime.UnixNano(), TotalTokens: total, InputTokens: total}}
}

// A staged write keeps, per invocation, the rows of the copy with the
// earliest event time, then the most tokens, then the lowest seq, whatever
// the chunk each copy came in, and counts what it kept.
func stagedCopies(t *testing.T, s Store, _ Options) {
	c := ctx(t)
	stage, err := s.StageAttributions(c)
	if err != nil {
		t.Fatal(err)
	}
	defer stage.Close()
	split := func(inv string, at time.Duration, total, seq int64, users ...string) []schemas.Staged {
		var out []schemas.Staged
		for _, u := range users {
			r := staged(inv, u, at, total, seq)
			r.TotalTokens, r.InputTokens, r.Weight = total/int64(len(users)), total/int64(len(users)), 1/float64(len(users))
			r.MatchMethod = schemas.MethodTimeWindowSplit
			out = append(out, r)
		}
		return out
	}
	chunks := [][]schemas.Staged{
		{staged("late", "bob", 2*time.Hour, 10, 0), staged("rich", "bob", time.Hour, 10, 1), staged("tie", "bob", time.Hour, 10, 2)},
		split("split", time.Hour, 40, 3, "ann", "bob"),
		{staged("late", "ann", time.Hour, 10, 4), staged("rich", "ann", time.Hour, 30, 5), staged("tie", "ann", time.Hour, 10, 6)},
		{staged("once", "cy", time.Hour, 7, 7)},
		split("split", time.Hour, 40, 8, "cy", "dee", "eve", "fay"),
	}
	unattributed := staged("none", "sp-1", time.Hour, 5, 9)
	unattributed.MatchMethod, unattributed.Reason = schemas.MethodUnattributed, "no_candidate"
	chunks = append(chunks, []schemas.Staged{unattributed})
	for _, ch := range chunks {
		if err := stage.Append(c, ch); err != nil {
			t.Fatal(err)
		}
	}
	st, tot, err := stage.Commit(c, Day, Day.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// late: the copy an hour earlier (ann); rich: the copy with more tokens
	// (ann); tie: the lower seq (bob); split: seq 3's two rows.
	expect(t, s, "late/ann@1", "none/sp-1@1", "once/cy@1", "rich/ann@1", "split/ann@1", "split/bob@1", "tie/bob@1")
	want := schemas.StagedTotals{Rows: 7, Invocations: 6, Attributed: 5, TokensIn: 10 + 30 + 10 + 40 + 7 + 5, InputTokensIn: 10 + 30 + 10 + 40 + 7 + 5, TokensOut: 10 + 30 + 10 + 40 + 7 + 5}
	if tot.Rows != want.Rows || tot.Invocations != want.Invocations || tot.Attributed != want.Attributed ||
		tot.TokensIn != want.TokensIn || tot.InputTokensIn != want.InputTokensIn || tot.TokensOut != want.TokensOut || tot.TokenOverflow {
		t.Errorf("totals %+v\nwant %+v", tot, want)
	}
	if w := tot.ByMethod[schemas.MethodTimeWindowSplit]; w != 1 {
		t.Errorf("split weight %v, want 1 (one invocation)", w)
	}
	if st.Rows != 7 || st.Invocations != 6 {
		t.Errorf("write stats %+v, want 7 rows of 6 invocations", st)
	}
}

// A stage closed without Commit leaves the store as it was: a failed run
// leaves no part of its window visible.
func abandonedStage(t *testing.T, s Store, _ Options) {
	c := ctx(t)
	replace(t, s, time.Time{}, time.Time{}, Row("kept", "ann", time.Hour, 1))
	stage, err := s.StageAttributions(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := stage.Append(c, []schemas.Staged{staged("new", "bob", time.Hour, 10, 0)}); err != nil {
		t.Fatal(err)
	}
	bad := staged("bad", "bob", time.Hour, 10, 1)
	bad.EventTime = time.Time{}
	if err := stage.Append(c, []schemas.Staged{bad}); err == nil {
		t.Error("a row without event_time was staged")
	}
	if err := stage.Close(); err != nil {
		t.Fatal(err)
	}
	expect(t, s, "kept/ann@1")
	// A new stage starts empty.
	stage, err = s.StageAttributions(c)
	if err != nil {
		t.Fatal(err)
	}
	defer stage.Close()
	if _, _, err := stage.Commit(c, Day, Day.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	expect(t, s)
}

// A calibrated commit counts the masked outcomes of the copies it keeps and
// the presence of each service principal, records the calibration rows it
// is given for them, and writes time-window rows with the confidence of
// their bucket: the service principal's row, else the pooled row times the
// service principal's presence, else the rule's confidence times it.
func calibration(t *testing.T, s Store, _ Options) {
	c := ctx(t)
	stage, err := s.StageAttributions(c)
	if err != nil {
		t.Fatal(err)
	}
	defer stage.Close()
	linked := func(inv, sp string, seq, masked int64) schemas.Staged {
		r := staged(inv, "ann", time.Hour, 10, seq)
		r.Requester, r.MatchMethod, r.Copy.Masked = sp, schemas.MethodTraceID, masked
		return r
	}
	window := func(inv, sp, method string, candidates int32, rule float64, seq int64) schemas.Staged {
		r := staged(inv, "bob", time.Hour, 10, seq)
		r.Requester, r.MatchMethod, r.Candidates, r.MatchConfidence = sp, method, candidates, rule
		return r
	}
	twOne := schemas.MaskedCode(schemas.MaskedTimeWindow, 1, false, false) // 0.95 / 1
	notFound := staged("nf", "sp-a", time.Hour, 10, 9)
	notFound.Requester, notFound.MatchMethod, notFound.Reason = "sp-a", schemas.MethodUnattributed, "id_not_found"
	rows := []schemas.Staged{
		linked("l1", "sp-a", 0, twOne+1), linked("l2", "sp-a", 1, twOne), linked("l3", "sp-b", 2, twOne+1),
		// A losing copy of l1 (a later event time): not counted.
		func() schemas.Staged { r := linked("l1", "sp-a", 3, twOne); r.Copy.EventNanos++; return r }(),
		linked("l4", "sp-a", 4, 0), notFound,
		window("w1", "sp-a", schemas.MethodTimeWindow, 1, 0.95, 5),
		window("w2", "sp-c", schemas.MethodTimeWindow, 1, 0.95, 6),
		window("w3", "sp-a", schemas.MethodTimeWindowNearest, 3, 0.95/3, 7),
		window("w4", "sp-a", schemas.MethodTimeWindowSplit, 2, 0.475, 8),
	}
	// Fallbacks of w1 and w3: the call left with its requester, kept only
	// where the pick falls below the minimum confidence.
	fallback := func(pick schemas.Staged) schemas.Staged {
		f := pick
		f.EndUser, f.MatchMethod, f.Reason, f.MatchConfidence, f.Copy.Masked = pick.Requester, schemas.MethodUnattributed, "low_confidence", 0, schemas.MaskedFallback
		return f
	}
	rows = append(rows, fallback(rows[6]), fallback(rows[8]))
	if err := stage.Append(c, rows); err != nil {
		t.Fatal(err)
	}
	var got schemas.CalibrationStats
	stage.Calibrate(func(st schemas.CalibrationStats) schemas.CalibrationResult {
		got = st
		return schemas.CalibrationResult{RunID: "run-cal", MinConfidence: 0.2, Rows: []schemas.Calibration{
			{RunID: "run-cal", ServicePrincipal: "", Method: schemas.MethodTimeWindow, Candidates: 1, Rule: 0.95, Calls: 3, Correct: 2, Present: 1, Confidence: 0.6},
			{RunID: "run-cal", ServicePrincipal: "sp-a", Method: "", Calls: 4, Correct: 3, Present: 0.5, Confidence: 0.5},
			{RunID: "run-cal", ServicePrincipal: "sp-a", Method: schemas.MethodTimeWindow, Candidates: 1, Rule: 0.95, Calls: 2, Correct: 1, Present: 0.5, Confidence: 0.25},
		}}
	})
	_, tot, err := stage.Commit(c, Day, Day.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// w3 (0.158 < 0.2) gave way to its fallback, counted unattributed; w1
	// (0.25) stands and its fallback went.
	if tot.Invocations != 9 || tot.Rows != 9 || tot.Attributed != 7 {
		t.Errorf("totals %+v, want 9 invocations in 9 rows, 7 attributed (w3 gated, nf unattributed)", tot)
	}
	slices.SortFunc(got.Masked, func(a, b schemas.MaskedStat) int { return strings.Compare(a.ServicePrincipal, b.ServicePrincipal) })
	slices.SortFunc(got.Presence, func(a, b schemas.PresenceStat) int { return strings.Compare(a.ServicePrincipal, b.ServicePrincipal) })
	wantMasked := []schemas.MaskedStat{{ServicePrincipal: "sp-a", Code: twOne, Calls: 2, Correct: 1}, {ServicePrincipal: "sp-b", Code: twOne, Calls: 1, Correct: 1}}
	wantPresence := []schemas.PresenceStat{{ServicePrincipal: "sp-a", Linked: 3, NotFound: 1}, {ServicePrincipal: "sp-b", Linked: 1}}
	if !slices.Equal(got.Masked, wantMasked) || !slices.Equal(got.Presence, wantPresence) {
		t.Errorf("calibration counts %+v\nwant %+v and %+v", got, wantMasked, wantPresence)
	}
	stored, err := s.Attributions(c, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"w1": 0.25,  // sp-a's own bucket
		"w2": 0.6,   // pooled, sp-c has no presence row: times 1
		"w3": 0,     // no bucket: the rule's times sp-a's presence, 0.158, below the minimum
		"w4": 0.475, // split rows keep the rule's
		"l1": 1,
	}
	for _, r := range stored {
		if w, ok := want[r.InvocationID]; ok && r.MatchConfidence != w {
			t.Errorf("%s (%s): confidence %v, want %v", r.InvocationID, r.MatchMethod, r.MatchConfidence, w)
		}
		if r.InvocationID == "w3" && (r.MatchMethod != schemas.MethodUnattributed || r.Reason != "low_confidence" || r.EndUser != "sp-a") {
			t.Errorf("w3: %s %s %s, want the fallback: unattributed, low_confidence, sp-a", r.EndUser, r.MatchMethod, r.Reason)
		}
		if r.InvocationID == "w1" && r.MatchMethod != schemas.MethodTimeWindow {
			t.Errorf("w1: %s, want its pick to stand", r.MatchMethod)
		}
	}
	if len(stored) != 9 {
		t.Errorf("%d rows stored, want 9: one per invocation", len(stored))
	}
	cal, err := s.Calibration(c, "")
	if err != nil || len(cal) != 3 || cal[0].ServicePrincipal != "" || cal[2].Confidence != 0.25 {
		t.Errorf("calibration table %+v, err %v", cal, err)
	}
}
