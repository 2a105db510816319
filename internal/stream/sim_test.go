package stream

import (
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/internal/synth"
	"github.com/obolus/obolus/schemas"
)

var (
	simSeeds = flag.Int("sim.seeds", 1000, "seeds TestSimulation runs")
	simSeed  = flag.Int64("sim.seed", -1, "run TestSimulation for this seed only")
)

var (
	simOnce      sync.Once
	simWorkloads []*workload
)

// simWorkload is one of a few small generated workloads: late agent logs,
// duplicates, retries, untagged calls matched by time and a busy agent.
func simWorkload(t *testing.T, seed int64) *workload {
	simOnce.Do(func() {
		for i := range 3 {
			simWorkloads = append(simWorkloads, genWorkload(t, synth.Config{Seed: 100 + int64(i), AgentRequests: 120,
				Duration: 40 * time.Minute, Users: 25, Agents: 3, LateShare: 0.15, DuplicateShare: 0.05, TaggedShare: 0.6}))
		}
	})
	return simWorkloads[seed%int64(len(simWorkloads))]
}

// simSource is one input partition: its records in offset order, each
// carrying Source, SourceOffset and Stamp as the re-keying stage sets them.
type simSource struct {
	id   uint32
	recs []Record
}

// simSources spreads a workload over input partitions, as producers keyed
// by invocation id and request id would, with message timestamps that
// jitter around the arrival time (so stamps, running maxima, plateau), and
// gaps in the offsets where records went to other keyed partitions.
func simSources(w *workload, rng *rand.Rand) []simSource {
	nu, na := 1+rng.IntN(3), 1+rng.IntN(2)
	srcs := make([]simSource, nu+na)
	for i := range nu {
		srcs[i].id = SourceID(0, i)
	}
	for i := range na {
		srcs[nu+i].id = SourceID(1, i)
	}
	stamps := make([]time.Time, len(srcs))
	offs := make([]int64, len(srcs))
	jitter := time.Duration(rng.IntN(3000)) * time.Millisecond
	for _, r := range w.recs {
		h := fnv.New32a()
		var i int
		if r.Kind == KindUsage {
			h.Write([]byte(r.Usage.InvocationID))
			i = int(h.Sum32() % uint32(nu))
		} else {
			h.Write([]byte(r.Agent.Key()))
			i = nu + int(h.Sum32()%uint32(na))
		}
		ts := r.SourceTime.Add(-time.Duration(rng.Int64N(int64(jitter) + 1))).Truncate(time.Millisecond)
		stamps[i] = later(stamps[i], ts)
		offs[i] += 1 + int64(rng.IntN(3))
		r.Source, r.SourceOffset, r.Stamp = srcs[i].id, offs[i], stamps[i]
		srcs[i].recs = append(srcs[i].recs, r)
	}
	return srcs
}

// canonicalLog is the keyed partition of a worker that forwards the sources
// in lockstep: every record followed by its source's claim.
func canonicalLog(srcs []simSource) []Record {
	type item struct {
		r   Record
		src int
	}
	var all []item
	for i, s := range srcs {
		for _, r := range s.recs {
			all = append(all, item{r, i})
		}
	}
	slices.SortStableFunc(all, func(a, b item) int { return a.r.Stamp.Compare(b.r.Stamp) })
	var log []Record
	claim := func(i int, at time.Time) {
		log = append(log, Record{Kind: KindProgress, Progress: Progress{Source: srcs[i].id, Sources: uint32(len(srcs)), Time: at}})
	}
	for i, s := range srcs {
		if len(s.recs) > 0 {
			claim(i, s.recs[0].Stamp)
		}
	}
	for _, it := range all {
		log = append(log, it.r)
		claim(it.src, it.r.Stamp)
	}
	return finishLog(log, srcs)
}

// finishLog has every source claim a day ahead (inputs gone idle), then
// numbers the offsets.
func finishLog(log []Record, srcs []simSource) []Record {
	var last time.Time
	for _, s := range srcs {
		if n := len(s.recs); n > 0 {
			last = later(last, s.recs[n-1].Stamp)
		}
	}
	for _, s := range srcs {
		log = append(log, Record{Kind: KindProgress, Progress: Progress{Source: s.id, Sources: uint32(len(srcs)), Time: last.Add(24 * time.Hour)}})
	}
	log = append(log, Record{Kind: KindMarker})
	for i := range log {
		log[i].Offset = int64(i)
	}
	return log
}

// randomLog is a keyed partition as a busy machine may write it: the
// sources forwarded at random relative speeds (one may stall for long
// stretches), claims written at random points, some of them idle claims
// ahead of the last record, re-keying restarts that forward a stretch of a
// source again, and markers.
func randomLog(srcs []simSource, rng *rand.Rand) []Record {
	var log []Record
	pos := make([]int, len(srcs))
	weight := make([]float64, len(srcs))
	for i := range weight {
		weight[i] = rng.Float64()
		if rng.IntN(4) == 0 {
			weight[i] *= 0.01 // a stalled input
		}
	}
	claimP, restartP, markerP := rng.Float64()*0.3, rng.Float64()*0.02, 0.01+rng.Float64()*0.05
	n := len(srcs)
	claim := func(i int) {
		s := srcs[i]
		var at time.Time
		switch {
		case pos[i] == 0 && len(s.recs) > 0:
			at = s.recs[0].Stamp
		case pos[i] > 0:
			at = s.recs[pos[i]-1].Stamp
		}
		if rng.IntN(3) == 0 {
			// Idle: anything up to the next record's stamp is true.
			next := at.Add(time.Hour)
			if pos[i] < len(s.recs) {
				next = s.recs[pos[i]].Stamp
			}
			if next.After(at) {
				at = at.Add(time.Duration(rng.Int64N(int64(next.Sub(at)) + 1)))
			}
		}
		if !at.IsZero() {
			log = append(log, Record{Kind: KindProgress, Progress: Progress{Source: s.id, Sources: uint32(n), Time: at}})
		}
	}
	for {
		var total float64
		for i := range srcs {
			if pos[i] < len(srcs[i].recs) {
				total += weight[i] + 1e-9
			}
		}
		if total == 0 {
			break
		}
		x := rng.Float64() * total
		i := 0
		for ; i < n; i++ {
			if pos[i] < len(srcs[i].recs) {
				if x -= weight[i] + 1e-9; x <= 0 {
					break
				}
			}
		}
		i = min(i, n-1)
		for pos[i] >= len(srcs[i].recs) {
			i = (i + 1) % n
		}
		batch := 1 + rng.IntN(20)
		for range batch {
			if pos[i] >= len(srcs[i].recs) {
				break
			}
			log = append(log, srcs[i].recs[pos[i]])
			pos[i]++
		}
		if rng.Float64() < restartP {
			// The re-keying stage restarted from an older commit.
			pos[i] = max(0, pos[i]-1-rng.IntN(30))
		}
		if rng.Float64() < claimP {
			claim(i)
		}
		if rng.Float64() < claimP/float64(n) {
			claim(rng.IntN(n))
		}
		if rng.Float64() < markerP {
			log = append(log, Record{Kind: KindMarker})
		}
	}
	return finishLog(log, srcs)
}

// simRun feeds a keyed log to a partition, crashing at random points and
// restarting from the last committed checkpoint, as a worker does. It
// returns every output produced, repeats included.
func simRun(t *testing.T, cfg Config, log []Record, rng *rand.Rand, crashes int) ([]Output, Stats) {
	t.Helper()
	var all []Output
	var cp Checkpoint
	for {
		p, err := NewPartition(cfg, cp)
		if err != nil {
			t.Fatal(err)
		}
		end := len(log)
		if crashes > 0 {
			end = min(len(log), int(cp.Next)+1+rng.IntN(len(log)/3+1))
		}
		committed := cp
		for i := int(cp.Resume); i < end; i++ {
			all = p.Process(all, &log[i])
			if rng.IntN(40) == 0 {
				// Every output so far is durable: commit.
				committed = p.Checkpoint()
			}
		}
		if end == len(log) {
			return all, p.Stats()
		}
		cp = committed
		crashes--
	}
}

// answerID identifies an answer: invocation and version.
func answerID(o Output) string {
	return fmt.Sprintf("%s/%d", o.Rows[0].InvocationID, o.Rows[0].Version)
}

// TestSimulation checks the join's determinism without Kafka or goroutines:
// for each seed, a workload spread over random input partitions is written
// into a keyed partition in a random interleaving, with crashes and replays
// from committed checkpoints. Every (invocation, version) must have one
// content, the same as when the sources are forwarded in lockstep; the
// final answers must be the batch engine's; tokens must reconcile.
//
// Replay a failure with -run TestSimulation -sim.seed N.
func TestSimulation(t *testing.T) {
	first, last := int64(0), int64(*simSeeds)
	if testing.Short() {
		last = 100
	}
	if *simSeed >= 0 {
		first, last = *simSeed, *simSeed+1
	}
	policies := []string{enrich.PolicyUnattributed, enrich.PolicySplit, enrich.PolicyNearest}
	type ref struct {
		answers map[string][]schemas.Attribution // by answerID
		batch   map[string][]schemas.Attribution
	}
	refs := map[string]ref{}
	var clamped, replays, restated int64
	for seed := first; seed < last; seed++ {
		w := simWorkload(t, seed)
		rng := rand.New(rand.NewPCG(uint64(seed), 0x0b0105))
		cfg := streamConfig()
		cfg.Match.Ambiguity = policies[seed%int64(len(policies))]
		cfg.Grace = time.Duration(1+rng.IntN(5)) * time.Minute
		cfg.Idle = time.Duration(100+rng.IntN(5000)) * time.Millisecond
		srcs := simSources(w, rng)

		// The reference: the same sources forwarded in lockstep, no crash.
		refOuts, _ := simRun(t, cfg, canonicalLog(srcs), rng, 0)
		r := ref{answers: map[string][]schemas.Attribution{}}
		for _, o := range refOuts {
			id := answerID(o)
			if prev, ok := r.answers[id]; ok && !sameAnswer(prev, o.Rows) {
				t.Fatalf("seed %d: reference run gave %s two contents", seed, id)
			}
			r.answers[id] = o.Rows
		}
		key := fmt.Sprintf("%p/%s", w, cfg.Match.Ambiguity)
		if _, ok := refs[key]; !ok {
			refs[key] = ref{batch: batchAnswers(t, w, cfg)}
		}
		r.batch = refs[key].batch

		outs, st := simRun(t, cfg, randomLog(srcs, rng), rng, rng.IntN(6))
		clamped += st.Clamped
		restated += st.Restated
		replays += int64(len(outs) - len(refOuts))
		final := map[string][]schemas.Attribution{}
		seen := map[string][]schemas.Attribution{}
		for _, o := range outs {
			id := answerID(o)
			if prev, ok := seen[id]; ok && !sameAnswer(prev, o.Rows) {
				t.Fatalf("seed %d: %s emitted with two contents:\n%+v\n%+v", seed, id, prev, o.Rows)
			}
			seen[id] = o.Rows
			want, ok := r.answers[id]
			if !ok {
				t.Fatalf("seed %d: %s emitted, but never by the lockstep run: the answer depends on the interleaving", seed, id)
			}
			if !sameAnswer(want, o.Rows) {
				t.Fatalf("seed %d: %s differs from the lockstep run's:\n got %+v\nwant %+v", seed, id, o.Rows, want)
			}
			latest(final, []Output{o})
		}
		if len(seen) != len(r.answers) {
			t.Fatalf("seed %d: %d distinct answers, the lockstep run gave %d", seed, len(seen), len(r.answers))
		}
		if len(final) != len(r.batch) {
			t.Fatalf("seed %d: %d invocations answered, batch %d", seed, len(final), len(r.batch))
		}
		var gotTokens, wantTokens int64
		for inv, rows := range r.batch {
			if !sameAnswer(final[inv], rows) {
				t.Fatalf("seed %d: invocation %s final answer differs from batch:\nstream %+v\n batch %+v", seed, inv, final[inv], rows)
			}
			for _, x := range final[inv] {
				gotTokens += x.TotalTokens
			}
		}
		events, _ := enrich.Dedup(slices.Clone(w.usage))
		for _, ev := range events {
			wantTokens += ev.TotalTokens
		}
		if gotTokens != wantTokens {
			t.Fatalf("seed %d: %d tokens attributed, %d in the input", seed, gotTokens, wantTokens)
		}
	}
	t.Logf("%d seeds: %d outputs repeated by replays, %d restatements, %d clamped records", last-first, replays, restated, clamped)
	if clamped != 0 {
		t.Errorf("%d records clamped: the simulated claims are all true, so none should be", clamped)
	}
}
