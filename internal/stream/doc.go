// Package stream is the streaming join: per keyed partition, usage events wait
// in event time for their agent requests, are attributed, and are restated when late requests arrive.
//
// It knows nothing of Kafka: a caller feeds it records in partition order and
// gets attribution outputs and a Checkpoint back. The design, in short:
//
//   - Watermark: per partition, the highest event time seen (usage
//     event_time, agent request end) or carried by a tick record. A usage
//     event is attributed once the watermark passes event_time + Grace; an
//     idle partition writes a tick into its own log so that its last events
//     are released, and because the tick is in the log a replay sees it too.
//   - Restatement: an attributed event stays open for Horizon of event time.
//     An agent request that arrives meanwhile re-attributes the open events
//     it could touch (same service principal and overlapping time, or an id in
//     their tags); an answer that changed is emitted again under a higher
//     Version. Events older than Horizon when they arrive are attributed at
//     once with a version below any the normal path would give them, so
//     they never overwrite an earlier answer.
//   - Bounded state: pending events live for Grace, open events for Horizon,
//     agent requests until no open event could match them.
//   - Crash safety without a state store: the answer for a record depends only
//     on the records of the partition since the oldest one still held in state,
//     and on the watermark before it. Checkpoint names that offset (Resume),
//     the watermark before it, and the first offset whose outputs were not yet
//     durable (Next). A worker that takes the partition over replays from
//     Resume, rebuilds the same state, and suppresses outputs below Next, which
//     were already written; from Next on it emits exactly what the first
//     worker would have, under the same versions, so idempotent sinks keyed by
//     invocation id see one answer per invocation and version.
package stream
