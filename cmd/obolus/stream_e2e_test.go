package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/synth"
)

// TestStreamMatchesBatch runs `obolus dev` on a generated workload — broker,
// replay and worker in one process, over TCP — and checks the loaded store:
// the batch path's precision and recall bars, and, once restatements are
// applied, exactly the batch answer for every invocation.
func TestStreamMatchesBatch(t *testing.T) {
	f := newStreamFixture(t, synth.Config{Seed: 5, AgentRequests: 6000, Duration: 12 * time.Hour})
	f.setenv()
	out := mustObolus(t, "dev", "--workload", f.dir, "--exit-when-done", "--port", "0", "--http", "127.0.0.1:0")
	t.Log(out)
	got := storeAnswers(t, filepath.Join(f.dir, synth.StoreFile))
	compareAnswers(t, "stream store", got, f.batchAnswers())
	reconcile(t, f.dir, got)
	scoreAnswers(t, f.dir, got)
}

// replayWithCrashes replays the workload's input at 8,000 messages/s into
// an `obolus stream --duckdb` worker of group while killing it four times
// (SIGKILL: no flush, no commit) at random points, each time starting the
// next one, and returns the last worker once the replay is done and the
// stream has drained. Any point: while the worker starts, joins its groups,
// replays its checkpoints, or runs; half the kills land in the first
// second, where the groups are still settling. Each killed worker's members
// of group's stages are then expired as a broker would (see
// expireMembers). salt varies the kill points between tests; the seed is
// logged so that a failure can be replayed.
func replayWithCrashes(t *testing.T, f *streamFixture, group string, salt uint64) *child {
	t.Helper()
	replayed := make(chan error, 1)
	go func() { replayed <- f.replay(context.Background(), 8000) }()
	args := []string{"stream", "--config", f.config, "--group", group, "--duckdb"}
	start := func(i int) *child {
		t.Setenv("OBOLUS_STREAM_CLIENT_ID", fmt.Sprintf("worker-%d", i))
		return f.startChild("worker", args...)
	}
	w := start(0)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, salt))
	var expiring sync.WaitGroup
	defer expiring.Wait() // a Fatal in the caller must not leave them reporting to a finished test
	for i := range 4 {
		d := time.Duration(rng.IntN(1000)) * time.Millisecond
		if rng.IntN(2) == 0 {
			d += time.Duration(rng.IntN(2500)) * time.Millisecond
		}
		time.Sleep(d)
		t.Logf("kill %d, %s after the worker started (seed %d)", i+1, d, seed)
		w.kill(t)
		expiring.Go(func() { f.expireMembers(t, fmt.Sprintf("worker-%d", i), group+".rekey", group+".join", group+".load") })
		w = start(i + 1)
	}
	expiring.Wait()
	if err := <-replayed; err != nil {
		t.Fatal(err)
	}
	waitDrainedProcs(t, 90*time.Second, 2*time.Second, w)
	return w
}

// TestStreamCrashSafety kills the worker (SIGKILL: no flush, no commit) at
// random points while input is still arriving, restarts it each time, then
// stops it politely. Every invocation must be attributed exactly once in the
// store, tokens must reconcile with the input, and the output topic and the
// store must both hold the batch answer.
func TestStreamCrashSafety(t *testing.T) {
	f := newStreamFixture(t, synth.Config{Seed: 9, AgentRequests: 2500, Duration: 6 * time.Hour})
	w := replayWithCrashes(t, f, "crash", 3)
	w.stop(t)

	want := f.batchAnswers()
	outs := outputAnswers(t, topicMessages(t, f.broker.Addr(), topicOutput))
	compareAnswers(t, "output topic", outs, want)
	stored := storeAnswers(t, filepath.Join(f.dir, synth.StoreFile))
	compareAnswers(t, "store", stored, want)
	for inv, rows := range stored {
		for _, r := range rows[1:] {
			if r.Version != rows[0].Version {
				t.Fatalf("invocation %s holds rows of versions %d and %d", inv, rows[0].Version, r.Version)
			}
		}
	}
	reconcile(t, f.dir, stored)
}

// TestStreamTwoWorkers runs two workers in one consumer group and kills one
// mid-run: the survivor takes its partitions over and the output is the
// same as one worker's — the batch answer.
func TestStreamTwoWorkers(t *testing.T) {
	f := newStreamFixture(t, synth.Config{Seed: 13, AgentRequests: 2500, Duration: 6 * time.Hour})
	ctx := context.Background()
	replayed := make(chan error, 1)
	go func() { replayed <- f.replay(ctx, 8000) }()
	args := []string{"stream", "--config", f.config, "--group", "pair"}
	a := f.startChild("worker-a", args...)
	b := f.startChild("worker-b", args...)
	waitReady(t, 60*time.Second, a, b)
	time.Sleep(500 * time.Millisecond)
	ra, _ := a.status()
	t.Logf("worker a held %d partitions when killed", len(ra.Partitions))
	a.kill(t)
	if err := <-replayed; err != nil {
		t.Fatal(err)
	}
	waitDrainedProcs(t, 90*time.Second, 2*time.Second, b)
	rb, _ := b.status()
	t.Logf("worker b holds %d partitions", len(rb.Partitions))
	compareAnswers(t, "output topic", outputAnswers(t, topicMessages(t, f.broker.Addr(), topicOutput)), f.batchAnswers())
}
