package kafka

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	kafkaingest "github.com/obolus/obolus/ingest/kafka"
	"github.com/obolus/obolus/internal/devbroker"
)

// alertMsgs are alert messages keyed by ids.
func alertMsgs(ids ...string) []kafka.Message {
	out := make([]kafka.Message, len(ids))
	for i, id := range ids {
		out[i] = kafka.Message{Key: []byte(id), Value: []byte("{}"), Headers: []kafka.Header{{Key: HeaderAlertLevel, Value: []byte("warn")}}}
	}
	return out
}

// TestAlertTopicFencesADeadProcess plays, on a real (in-process) broker,
// the crash that made alerts appear twice: a process dies with its alerts
// produced but not committed, and its requests keep arriving after the
// next process read the topic. The next process's Fence must abort the
// dead one's transaction and make the broker refuse the rest, so that
// producing those alerts again leaves each on the topic once for a
// read_committed reader.
func TestAlertTopicFencesADeadProcess(t *testing.T) {
	b, err := devbroker.Start(devbroker.Options{Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := kafkaingest.Options{Brokers: []string{b.Addr()}, ClientID: "test"}
	if _, err := kafkaingest.EnsureTopics(ctx, o, 3, "alerts", "empty"); err != nil {
		t.Fatal(err)
	}
	const txnID = "obolus.load.alerts"
	// start is what a starting alerter does: take the id, fencing the
	// processes before.
	start := func() *AlertTopic {
		t.Helper()
		at, err := NewAlertTopic(o, "alerts", txnID)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = at.Close() })
		if err := at.Fence(ctx); err != nil {
			t.Fatal(err)
		}
		return at
	}

	first := start()
	if got, err := first.Keys(ctx); err != nil || len(got) != 0 {
		t.Fatalf("first Keys = %v (%v), want no ids", got, err)
	}
	want := map[string]bool{}
	var ids []string
	for i := range 20 {
		id := fmt.Sprintf("alert-%02d", i)
		want[id] = true
		ids = append(ids, id)
	}
	if err := first.WriteMessages(ctx, alertMsgs(ids...)...); err != nil {
		t.Fatal(err)
	}
	if got, err := TopicKeys(ctx, o, "alerts"); err != nil || !maps.Equal(got, want) {
		t.Fatalf("TopicKeys = %v (%v), want the 20 ids", got, err)
	}

	// The dying process: same transactional id, a transaction opened and
	// its records appended, never ended.
	zombie, err := kgo.NewClient(append(o.KgoOpts(), kgo.TransactionalID(txnID), kgo.TransactionTimeout(time.Minute))...)
	if err != nil {
		t.Fatal(err)
	}
	defer zombie.Close()
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := zombie.ProduceSync(ctx, &kgo.Record{Topic: "alerts", Key: []byte("alert-late")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := first.WriteMessages(ctx, alertMsgs("alert-after")...); err == nil || !strings.Contains(err.Error(), "another process took over") {
		t.Errorf("a write after another process claimed the id = %v, want it refused as taken over", err)
	}

	next := start()
	got, err := next.Keys(ctx)
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("next Keys = %v (%v), want the 20 committed ids and not the dead process's", got, err)
	}
	// What the dead process still had in flight lands after the read.
	if err := zombie.ProduceSync(ctx, &kgo.Record{Topic: "alerts", Key: []byte("alert-later")}).FirstErr(); err == nil {
		t.Error("the fenced process produced after the next one claimed the id")
	}
	if err := zombie.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Error("the fenced process committed after the next one claimed the id")
	}
	if err := next.WriteMessages(ctx, alertMsgs("alert-late")...); err != nil {
		t.Fatal(err)
	}
	want["alert-late"] = true
	if got, err := TopicKeys(ctx, o, "alerts"); err != nil || !maps.Equal(got, want) {
		t.Errorf("TopicKeys after the takeover = %v (%v), want the 21 ids", got, err)
	}
	recs, err := b.ReadCommitted(ctx, "alerts")
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, r := range recs {
		n[string(r.Key)]++
	}
	if len(n) != len(want) || n["alert-late"] != 1 || n["alert-00"] != 1 {
		t.Errorf("a read_committed reader finds %v, want each of the 21 ids once", n)
	}
	if got, err := TopicKeys(ctx, o, "empty"); err != nil || len(got) != 0 {
		t.Errorf("TopicKeys of an empty topic = %v (%v)", got, err)
	}
}
