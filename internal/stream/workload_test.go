package stream

import (
	"cmp"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/ingest"
	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/synth"
	"github.com/obolus/obolus/schemas"
)

// workload is a generated workload in the order a stream would deliver it.
type workload struct {
	recs   []Record
	usage  []schemas.UsageEvent
	agents []schemas.AgentRequest
	truth  string // ground truth file
}

// lateDelay is how long after its end a late agent log arrives.
const lateDelay = 15 * time.Minute

// genWorkload generates a synthetic workload and orders it by arrival: a
// usage row when its call finished, an agent log when its request ended
// (late ones lateDelay after that). Everything lands in one partition, as
// if every service principal hashed to it.
func genWorkload(t testing.TB, cfg synth.Config) *workload {
	t.Helper()
	dir := t.TempDir()
	if _, err := synth.Generate(context.Background(), cfg.WithDefaults(), dir); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(config.New(), filepath.Join(dir, synth.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	w := &workload{truth: filepath.Join(dir, synth.TruthFile)}
	type arrival struct {
		at  time.Time
		seq int
		rec Record
	}
	var arr []arrival
	for _, s := range c.Sources {
		if s.IsServed() {
			// A dimension, not a stream input; both sides here price legacy
			// rows without it (cmd/obolus compares stream and batch with it).
			continue
		}
		spec := ingest.Spec{Kind: ingest.Kind(s.Kind), Path: s.Path, AgentEndpoint: s.AgentEndpoint, ServicePrincipal: s.ServicePrincipal}
		late := strings.Contains(s.Path, "agents_late")
		_, err := ingest.ReadFiles(context.Background(), spec, ingest.Window{}, ingest.Emit{
			Usage: func(evs []schemas.UsageEvent) error {
				for _, ev := range evs {
					w.usage = append(w.usage, ev)
					at := ev.EventTime.Add(time.Duration(ev.LatencyMS) * time.Millisecond)
					arr = append(arr, arrival{at, len(arr), Record{Kind: KindUsage, Usage: ev, SourceTime: at}})
				}
				return nil
			},
			Agents: func(rs []schemas.AgentRequest) error {
				for _, r := range rs {
					w.agents = append(w.agents, r)
					at := r.End()
					if late {
						at = at.Add(lateDelay)
					}
					arr = append(arr, arrival{at, len(arr), Record{Kind: KindAgent, Agent: r, SourceTime: at}})
				}
				return nil
			},
			Dead: func(d schemas.DeadLetter) error { t.Fatalf("dead letter in generated workload: %+v", d); return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.SortFunc(arr, func(a, b arrival) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	for i, a := range arr {
		a.rec.Offset = int64(i)
		w.recs = append(w.recs, a.rec)
	}
	return w
}

// batchAnswers attributes the workload the way a batch run does: every agent
// request known up front.
func batchAnswers(t testing.TB, w *workload, cfg Config) map[string][]schemas.Attribution {
	t.Helper()
	idx := enrich.NewIndex()
	idx.Add(w.agents...)
	engine, err := enrich.NewEngine(cfg.Match, idx, cfg.Prices, cfg.Org)
	if err != nil {
		t.Fatal(err)
	}
	events, _ := enrich.Dedup(slices.Clone(w.usage))
	out := make(map[string][]schemas.Attribution, len(events))
	for i := range events {
		out[events[i].InvocationID] = engine.Attribute(nil, &events[i], enrich.Run{})
	}
	return out
}

// latest keeps, per invocation, the rows of the highest version seen.
func latest(into map[string][]schemas.Attribution, outs []Output) {
	for _, o := range outs {
		inv := o.Rows[0].InvocationID
		if prev, ok := into[inv]; !ok || prev[0].Version <= o.Rows[0].Version {
			into[inv] = o.Rows
		}
	}
}

// sameAnswer compares two answers for an invocation without the version and
// run columns.
func sameAnswer(a, b []schemas.Attribution) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.Version, x.RunID, x.ProcessedAt = 0, "", time.Time{}
		y.Version, y.RunID, y.ProcessedAt = 0, "", time.Time{}
		if x != y {
			return false
		}
	}
	return true
}

// sourced lays out a keyed partition as the worker writes it, from records
// in arrival order: usage comes from source 0, agent logs from source 1,
// each stamped with its arrival time (millisecond precision, never
// decreasing along its source). Every progressEvery records each source
// claims its latest stamp, every markerEvery records a marker is written,
// and at the end both sources claim a day ahead, so that everything is
// applied and the idle timers fire. Offsets are renumbered.
func sourced(recs []Record, progressEvery, markerEvery int) []Record {
	var out []Record
	var stamp [2]time.Time
	var next [2]int64
	report := func(ahead time.Duration) {
		for src := range 2 {
			if !stamp[src].IsZero() {
				out = append(out, Record{Kind: KindProgress, Progress: Progress{Source: SourceID(src, 0), Sources: 2, Time: stamp[src].Add(ahead)}})
			}
		}
	}
	for i, r := range recs {
		src := 0
		if r.Kind == KindAgent {
			src = 1
		}
		stamp[src] = later(stamp[src], r.SourceTime.Truncate(time.Millisecond))
		r.Source, r.SourceOffset, r.Stamp = SourceID(src, 0), next[src], stamp[src]
		next[src]++
		out = append(out, r)
		if i%progressEvery == progressEvery-1 {
			report(0)
		}
		if i%markerEvery == markerEvery-1 {
			out = append(out, Record{Kind: KindMarker})
		}
	}
	report(24 * time.Hour)
	for i := range out {
		out[i].Offset = int64(i)
	}
	return out
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
