// Package stream is the streaming join: per keyed partition, it merges the
// input partitions in an order they fix themselves, lets usage events wait in
// event time for their agent requests, attributes them, and restates them when
// late requests arrive.
//
// It knows nothing of Kafka: a caller feeds it records in keyed-partition
// order and gets attribution outputs and a Checkpoint back.
//
// # The invariant
//
// An answer — (invocation_id, version) and its content — is a pure function
// of the input records and of their order within each input partition. It
// does not depend on wall-clock time, on scheduling, on how fast one input
// was consumed relative to another, nor on where a crash fell. Wall-clock
// time only decides when an answer appears (a claim written sooner or
// later), never what it is. Whatever interleaving of the inputs the keyed
// partition received, the same answers come out under the same versions, and
// a different answer always has a higher version.
//
// # How
//
//   - Stamps. The re-keying stage stamps each record with its input partition,
//     its offset there, and the running maximum of that partition's message
//     timestamps. The stamp never decreases along a partition, and a record
//     forwarded twice (a re-keying restart) carries the same stamp twice, since
//     the running maximum is committed with the input offset.
//   - Claims. After each write, the stage claims to every keyed partition that
//     it will forward nothing stamped below its last stamp (a Progress record);
//     a data record is an implicit claim too. An input partition read to its
//     end claims now minus stream.producer_delay: messages produced from now
//     on carry later timestamps.
//   - Merge. A keyed partition buffers records until every input has claimed
//     past them (the frontier), then applies them in (stamp, arrival, source,
//     source offset) order. That order is the same in every run: whether a
//     record is below the frontier depends on timing, but the frontier only
//     ever lets through records that no input can precede any more.
//   - Watermark. The watermark is the highest usage event_time applied, so it
//     too follows the merged order. A usage event is attributed once the
//     watermark passes event_time + Grace. Agent request times do not move
//     it: agent logs that run ahead of usage (a backfill, a faster input) are
//     held until the usage they were logged for has been answered.
//   - Idle timer. When the merged inputs move Idle past the last record applied
//     without bringing this partition another, the watermark moves to the
//     latest event seen plus Grace, releasing what waits. The timer is a place
//     in the merged order (stamp of the last record + Idle), so every run fires
//     it at the same place, whatever wall time that happens at.
//   - Restatement. An attributed event stays open for Horizon of event time. An
//     agent request that arrives meanwhile re-attributes the open events it
//     could touch (same service principal and overlapping time, or an id in
//     their tags); an answer that changed is emitted again under a higher
//     Version. Events older than Horizon when they arrive are answered at once
//     with their event time as version, below any the normal path gives, so
//     they never overwrite an earlier answer.
//   - Crash safety without a state store. Checkpoint names a marker record
//     (Snapshot) at or before the oldest record the state needs, the scalar
//     state and every source's claim and applied offset at that marker, the
//     offset from which the records then still buffered must be read again
//     (Resume), and the first offset whose outputs were not yet durable (Next).
//     A worker that takes the partition over replays from Resume: below
//     Snapshot it only refills the buffer with what had not been applied, from
//     Snapshot on it is the original run again, and it suppresses outputs
//     caused by records below Next. Records of a source offset already
//     received are dropped, so re-keying restarts add nothing.
//
// # The exception
//
// A producer claim is a promise about timestamps. A message that becomes
// readable more than stream.producer_delay after its timestamp, at a moment
// when every input had already claimed past it, cannot be put in its place:
// it is applied where it arrives, at the current merge position, and counted
// (Stats.Clamped, metric obolus.stream.clamped_records). Its answer may then
// depend on timing; it is still attributed once, and restatement still
// applies. Topics whose timestamps are not produce times (a producer that
// sets historical timestamps) make every record late in this sense: use
// CreateTime from the producing client, or LogAppendTime.
//
// # What it costs
//
//   - Latency: a record waits until the slowest input claims past it. With
//     every input busy that is about one write of the slowest input; an idle
//     input holds the merge stream.producer_delay behind the wall clock, and
//     an input that stops being consumed (its worker died, a rebalance) holds
//     its keyed partitions back until it is consumed again.
//   - State: the merge buffer holds what arrived ahead of the slowest input —
//     small while inputs keep pace, up to the whole skew when one input's
//     backlog is drained faster than another's. Those records also stay in
//     the keyed log until applied, so a replay after a crash may re-read
//     further back.
//   - Bounded state otherwise: pending events live for Grace, open events for
//     Horizon, agent requests until no open event could match them. Agent
//     requests that run ahead of the usage watermark are held until it
//     catches up, so their state grows with how far agent logs lead usage.
package stream
