package stream

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/schemas"
)

var t0 = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

func testConfig() Config {
	return Config{Match: enrich.DefaultMatchConfig(), Grace: time.Minute, Horizon: 30 * time.Minute, Idle: time.Second,
		RunID: "test", Clock: func() time.Time { return t0 }}
}

func usageRec(inv string, at time.Duration, tags map[string]string) Record {
	return Record{Kind: KindUsage, Usage: schemas.UsageEvent{InvocationID: inv, EventTime: t0.Add(at), Requester: "sp-1",
		RequestTags: tags, InputTokens: 10, OutputTokens: 5, TotalTokens: 15, DestinationModel: "gpt-5"}}
}

func agentRec(id, user string, start, dur time.Duration) Record {
	return Record{Kind: KindAgent, Agent: schemas.AgentRequest{AgentRequestID: id, EndUser: user, AgentEndpoint: "bot",
		ServicePrincipal: "sp-1", StartTime: t0.Add(start), DurationMS: dur.Milliseconds(), Source: schemas.SourcePayload}}
}

// idleRec is the single source claiming an hour ahead with nothing to
// forward: the partition's idle timer fires.
func idleRec() Record {
	return Record{Kind: KindProgress, Progress: Progress{Sources: 1, Time: t0.Add(time.Hour)}}
}

// inOrder numbers records as one source delivers them, a millisecond apart
// from t0 on, and ends with the source's claim past the last, so that every
// record is applied.
func inOrder(recs []Record) []Record {
	out := make([]Record, 0, len(recs)+1)
	stamp := t0
	for _, r := range recs {
		if r.Kind == KindUsage || r.Kind == KindAgent {
			stamp = stamp.Add(time.Millisecond)
			r.SourceOffset, r.Stamp = int64(len(out)), stamp
		}
		out = append(out, r)
	}
	out = append(out, Record{Kind: KindProgress, Progress: Progress{Sources: 1, Time: stamp.Add(time.Millisecond)}})
	for i := range out {
		out[i].Offset = int64(i)
	}
	return out
}

func micros(d time.Duration) int64 { return t0.Add(d).UnixMicro() }

// got summarises an output as "inv user method version [R]".
func got(o Output) string {
	r := o.Rows[0]
	s := fmt.Sprintf("%s %s %s %d", r.InvocationID, r.EndUser, r.MatchMethod, r.Version)
	if o.Restatement {
		s += " R"
	}
	return s
}

func TestPartitionScenarios(t *testing.T) {
	tagged := map[string]string{"agent_request_id": "ar-1"}
	tests := []struct {
		name string
		recs []Record
		want []string
	}{
		{
			name: "agent request within grace: id and time-window matches",
			recs: []Record{usageRec("u1", 5*time.Second, tagged), usageRec("u2", 6*time.Second, nil),
				agentRec("ar-1", "ana", 0, 20*time.Second), usageRec("u3", 2*time.Minute, nil)},
			want: []string{
				fmt.Sprintf("u1 ana request_id %d", micros(2*time.Minute)),
				fmt.Sprintf("u2 ana time_window %d", micros(2*time.Minute)),
			},
		},
		{
			name: "agent request after release: restated under a higher version",
			recs: []Record{usageRec("u1", 5*time.Second, tagged), usageRec("u2", 6*time.Second, nil),
				usageRec("u3", 2*time.Minute, nil), agentRec("ar-1", "ana", 0, 20*time.Second)},
			want: []string{
				fmt.Sprintf("u1 sp-1 unattributed %d", micros(2*time.Minute)),
				fmt.Sprintf("u2 sp-1 unattributed %d", micros(2*time.Minute)),
				fmt.Sprintf("u2 ana time_window %d R", micros(2*time.Minute)+1),
				fmt.Sprintf("u1 ana request_id %d R", micros(2*time.Minute)+1),
			},
		},
		{
			name: "an unrelated request restates nothing",
			recs: []Record{usageRec("u1", 5*time.Second, tagged), usageRec("u3", 2*time.Minute, nil),
				agentRec("ar-9", "bo", 10*time.Minute, time.Second), idleRec()},
			// Its end does not move the watermark; the idle timer releases u3.
			want: []string{fmt.Sprintf("u1 sp-1 unattributed %d", micros(2*time.Minute)),
				fmt.Sprintf("u3 sp-1 unattributed %d", micros(3*time.Minute))},
		},
		{
			name: "agent logs far ahead of usage are still matched",
			// A backfill sends three hours of agent logs before any usage:
			// the first request must still be held when its usage arrives.
			recs: []Record{agentRec("ar-1", "ana", 0, 10*time.Second), agentRec("ar-8", "bo", 3*time.Hour, time.Second),
				usageRec("u1", 5*time.Second, tagged), idleRec()},
			want: []string{fmt.Sprintf("u1 ana request_id %d", micros(65*time.Second))},
		},
		{
			name: "duplicate invocation answered once",
			recs: []Record{usageRec("u1", 5*time.Second, tagged), usageRec("u1", 5*time.Second, tagged), idleRec()},
			want: []string{fmt.Sprintf("u1 sp-1 unattributed %d", micros(65*time.Second))},
		},
		{
			name: "idle timer releases pending events",
			recs: []Record{usageRec("u1", 5*time.Second, nil), idleRec()},
			want: []string{fmt.Sprintf("u1 sp-1 unattributed %d", micros(65*time.Second))},
		},
		{
			name: "late event within the horizon is answered at once",
			recs: []Record{usageRec("u9", 10*time.Minute, nil), usageRec("u1", 5*time.Second, nil)},
			want: []string{fmt.Sprintf("u1 sp-1 unattributed %d", micros(10*time.Minute))},
		},
		{
			name: "event older than the horizon gets its event time as version",
			recs: []Record{usageRec("u9", 2*time.Hour, nil), usageRec("u1", 5*time.Second, nil)},
			want: []string{fmt.Sprintf("u1 sp-1 unattributed %d", micros(5*time.Second))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPartition(testConfig(), Checkpoint{})
			if err != nil {
				t.Fatal(err)
			}
			var outs []Output
			recs := inOrder(tt.recs)
			for i := range recs {
				outs = p.Process(outs, &recs[i])
			}
			var lines []string
			for _, o := range outs {
				lines = append(lines, got(o))
			}
			if !slices.Equal(lines, tt.want) {
				t.Errorf("outputs:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestPartitionIgnoresRedelivery(t *testing.T) {
	p, _ := NewPartition(testConfig(), Checkpoint{})
	recs := inOrder([]Record{usageRec("u1", 0, nil), usageRec("u2", 0, nil), usageRec("u3", 0, nil), idleRec()})
	// u2 again at the same keyed offset (a redelivery), u3 again at a new
	// keyed offset but the same source offset (a re-keying stage that
	// forwarded it twice).
	redelivered := recs[1]
	redelivered.Usage.InvocationID = "u2-redelivered"
	again := recs[2]
	again.Usage.InvocationID = "u3-again"
	log := []Record{recs[0], recs[1], redelivered, recs[2], again, recs[3], recs[4]}
	var outs []Output
	for i := range log {
		if i >= 4 {
			log[i].Offset = int64(i - 1)
		}
		outs = p.Process(outs, &log[i])
	}
	var ids []string
	for _, o := range outs {
		ids = append(ids, o.Rows[0].InvocationID)
	}
	if !slices.Equal(ids, []string{"u1", "u2", "u3"}) {
		t.Fatalf("answered %v, want u1 u2 u3", ids)
	}
	if st := p.Stats(); st.Redelivered != 1 {
		t.Errorf("%d redelivered, want 1", st.Redelivered)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"zero grace", func(c *Config) { c.Grace = 0 }, "grace"},
		{"horizon below grace", func(c *Config) { c.Horizon = time.Second }, "horizon"},
		{"no idle", func(c *Config) { c.Idle = 0 }, "idle"},
		{"bad match", func(c *Config) { c.Match.Ambiguity = "coin" }, "match.ambiguity"},
		{"likely policy", func(c *Config) { c.Match.Ambiguity = enrich.PolicyLikely }, "batch run"},
	}
	for _, tt := range tests {
		c := testConfig()
		tt.mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v, want an error naming %s", tt.name, err, tt.want)
		}
	}
}

// A payload row and a trace of one request disagree on its interval; the
// final answers do not depend on which arrives first, even when the trace's
// wider interval had already claimed a call that the payload row's
// interval, which wins, does not cover.
func TestPartitionMergeIsOrderIndependent(t *testing.T) {
	payload := agentRec("ar-1", "ana", 0, 10*time.Second)
	trace := agentRec("ar-1", "trace-ana", 0, 30*time.Second)
	trace.Agent.Source, trace.Agent.TraceID = schemas.SourceTrace, "tr-4bf92f3577b34da6a3ce929d0e0e4736"
	calls := []Record{usageRec("u1", 5*time.Second, nil), usageRec("u2", 25*time.Second, nil)}
	final := func(agents ...Record) map[string]string {
		p, err := NewPartition(testConfig(), Checkpoint{})
		if err != nil {
			t.Fatal(err)
		}
		// The first agent log, the calls, a call that releases them, then
		// the second agent log: it lands after the first answers.
		recs := inOrder(append(append([]Record{agents[0]}, calls...), usageRec("u9", 5*time.Minute, nil), agents[1], idleRec()))
		var outs []Output
		for i := range recs {
			outs = p.Process(outs, &recs[i])
		}
		answers := map[string]string{}
		for _, o := range outs {
			r := o.Rows[0]
			answers[r.InvocationID] = r.EndUser + " " + r.MatchMethod
		}
		return answers
	}
	traceFirst, payloadFirst := final(trace, payload), final(payload, trace)
	want := map[string]string{"u1": "ana time_window", "u2": "sp-1 unattributed", "u9": "sp-1 unattributed"}
	for name, got := range map[string]map[string]string{"trace first": traceFirst, "payload first": payloadFirst} {
		for inv, w := range want {
			if got[inv] != w {
				t.Errorf("%s: %s answered %q, want %q", name, inv, got[inv], w)
			}
		}
	}
}
