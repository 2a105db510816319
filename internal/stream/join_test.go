package stream

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/internal/synth"
	"github.com/obolus/obolus/schemas"
)

func smallWorkload(t testing.TB) *workload {
	return genWorkload(t, synth.Config{Seed: 7, AgentRequests: 1500, Duration: 3 * time.Hour, Users: 80, LateShare: 0.05})
}

// streamConfig is the configuration the workload tests run with: a grace
// period longer than any generated request, a horizon longer than the
// late logs' delay.
func streamConfig() Config {
	c := testConfig()
	c.Grace = 5 * time.Minute
	c.Horizon = time.Hour
	c.Idle = 10 * time.Second
	return c
}

// runAll feeds every record and returns the outputs of each.
func runAll(t testing.TB, p *Partition, recs []Record) [][]Output {
	t.Helper()
	per := make([][]Output, len(recs))
	for i := range recs {
		per[i] = p.Process(nil, &recs[i])
	}
	return per
}

// TestStreamEqualsBatch: once restatements are applied, the stream's answer
// for every invocation is the batch answer, under every ambiguity policy.
func TestStreamEqualsBatch(t *testing.T) {
	w := smallWorkload(t)
	for _, policy := range []string{enrich.PolicyUnattributed, enrich.PolicySplit, enrich.PolicyNearest} {
		t.Run(policy, func(t *testing.T) {
			cfg := streamConfig()
			cfg.Match.Ambiguity = policy
			p, err := NewPartition(cfg, Checkpoint{})
			if err != nil {
				t.Fatal(err)
			}
			final := map[string][]schemas.Attribution{}
			for _, outs := range runAll(t, p, sourced(w.recs, 50, 500)) {
				latest(final, outs)
			}
			want := batchAnswers(t, w, cfg)
			st := p.Stats()
			t.Logf("%d records, %d invocations: emitted %d, restated %d, duplicates %d, too late %d",
				len(w.recs), len(want), st.Emitted, st.Restated, st.Duplicates, st.TooLate)
			if st.Restated == 0 {
				t.Error("no restatements: the late agent logs should have caused some")
			}
			if len(final) != len(want) {
				t.Errorf("stream answered %d invocations, batch %d", len(final), len(want))
			}
			diff := 0
			for inv, rows := range want {
				if !sameAnswer(final[inv], rows) {
					if diff++; diff <= 5 {
						t.Errorf("invocation %s:\nstream %+v\n batch %+v", inv, final[inv], rows)
					}
				}
			}
			if diff > 0 {
				t.Errorf("%d of %d invocations differ from batch", diff, len(want))
			}
		})
	}
}

// TestReplayFromCheckpoint crashes a partition at random points, restarts it
// from its last committed checkpoint, and checks that what the sinks see is
// exactly what one uninterrupted run produces: every (invocation, version)
// has one answer, and each invocation's final answer is the same.
func TestReplayFromCheckpoint(t *testing.T) {
	w := smallWorkload(t)
	cfg := streamConfig()
	ref, _ := NewPartition(cfg, Checkpoint{})
	want := map[string][]schemas.Attribution{}
	byVersion := map[string]uint64{} // "inv/version" → answer hash
	recs := sourced(w.recs, 50, 300)
	for _, outs := range runAll(t, ref, recs) {
		latest(want, outs)
		for _, o := range outs {
			byVersion[fmt.Sprintf("%s/%d", o.Rows[0].InvocationID, o.Rows[0].Version)] = ref.hash(o.Rows)
		}
	}

	rng := rand.New(rand.NewPCG(1, 2))
	got := map[string][]schemas.Attribution{}
	var cp Checkpoint
	crashes, replayed := 0, 0
	for {
		p, err := NewPartition(cfg, cp)
		if err != nil {
			t.Fatal(err)
		}
		crashAt := len(recs)
		if crashes < 6 {
			crashAt = int(cp.Next) + 1 + rng.IntN(len(recs)/4)
		}
		replayed += int(cp.Next - cp.Resume)
		var committed Checkpoint = cp
		for i := int(cp.Resume); i < min(crashAt, len(recs)); i++ {
			outs := p.Process(nil, &recs[i])
			for _, o := range outs {
				key := fmt.Sprintf("%s/%d", o.Rows[0].InvocationID, o.Rows[0].Version)
				h, ok := byVersion[key]
				if !ok || h != ref.hash(o.Rows) {
					t.Fatalf("record %d after %d crashes: output %s differs from the uninterrupted run's", i, crashes, key)
				}
			}
			latest(got, outs)
			// Outputs are durable before each commit, which happens every so often.
			if rng.IntN(200) == 0 {
				committed = p.Checkpoint()
			}
		}
		if crashAt >= len(recs) {
			break
		}
		cp = committed
		crashes++
	}
	t.Logf("%d crashes, %d records replayed", crashes, replayed)
	if len(got) != len(want) {
		t.Fatalf("%d invocations answered, want %d", len(got), len(want))
	}
	for inv, rows := range want {
		if !sameAnswer(got[inv], rows) || got[inv][0].Version != rows[0].Version {
			t.Fatalf("invocation %s: final answer after crashes differs", inv)
		}
	}
}

// TestStateIsBounded streams a day of usage and checks that what the
// partition holds follows the watermark, not the length of the stream.
func TestStateIsBounded(t *testing.T) {
	w := genWorkload(t, synth.Config{Seed: 3, AgentRequests: 4000, Duration: 24 * time.Hour, Users: 80})
	cfg := streamConfig()
	p, _ := NewPartition(cfg, Checkpoint{})
	peak := Stats{}
	recs := sourced(w.recs, 50, 500)
	for i := range recs {
		p.Process(nil, &recs[i])
		s := p.Stats()
		peak.Pending = max(peak.Pending, s.Pending)
		peak.Open = max(peak.Open, s.Open)
		peak.AgentRequests = max(peak.AgentRequests, s.AgentRequests)
		peak.LiveOffsets = max(peak.LiveOffsets, s.LiveOffsets)
	}
	total := len(recs)
	t.Logf("%d records; peak pending %d, open %d, agent requests %d, live offsets %d",
		total, peak.Pending, peak.Open, peak.AgentRequests, peak.LiveOffsets)
	// One hour of horizon out of 24: even at the diurnal peak the state is a
	// small fraction of the stream.
	if held := peak.Open + peak.Pending + peak.AgentRequests; held > total/5 {
		t.Errorf("peak state %d records of %d: not bounded by the horizon", held, total)
	}
	cp := p.Checkpoint()
	if lag := int64(total) - cp.Resume; lag > int64(total/5) {
		t.Errorf("checkpoint resumes %d records back of %d: replay after a crash would not be bounded", lag, total)
	}
}

// TestSkewedSourcesMatchBatch delivers every usage event before any agent
// log, as a catch-up after an outage can when one input is consumed faster
// than the other: the merge waits for the slower source, so usage waits
// for the agent logs instead of being answered without them.
func TestSkewedSourcesMatchBatch(t *testing.T) {
	w := smallWorkload(t)
	var usage, agents []Record
	for _, r := range w.recs {
		if r.Kind == KindUsage {
			usage = append(usage, r)
		} else {
			agents = append(agents, r)
		}
	}
	cfg := streamConfig()
	p, _ := NewPartition(cfg, Checkpoint{})
	final := map[string][]schemas.Attribution{}
	for _, outs := range runAll(t, p, sourced(append(usage, agents...), 50, 500)) {
		latest(final, outs)
	}
	want := batchAnswers(t, w, cfg)
	st := p.Stats()
	t.Logf("emitted %d, restated %d", st.Emitted, st.Restated)
	diff := 0
	for inv, rows := range want {
		if !sameAnswer(final[inv], rows) {
			diff++
		}
	}
	if diff > 0 || len(final) != len(want) {
		t.Errorf("%d of %d invocations differ from batch (%d answered)", diff, len(want), len(final))
	}
}
