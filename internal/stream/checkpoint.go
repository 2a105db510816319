package stream

import (
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Progress is an input source's claim, written by the re-keying stage into
// every keyed partition: every record the source forwards from now on has a
// Stamp at or after Time.
type Progress struct {
	// Source identifies the input partition (SourceID).
	Source uint32
	// Sources is how many input partitions there are in all.
	Sources uint32
	// Time is the claim, in message-timestamp time, millisecond precision.
	Time time.Time
}

// SourceID identifies an input partition: topic (0 usage, 1 agents) and partition.
func SourceID(topic, partition int) uint32 { return uint32(topic)<<20 | uint32(partition) }

// SourceState is what a partition knows of one source at a snapshot.
type SourceState struct {
	Source uint32
	// Claim is the source's latest claim (unix milliseconds).
	Claim int64
	// Applied is the source offset after the last of its records the join
	// applied; a replay skips the source's records below it.
	Applied int64
}

// Checkpoint is what a partition's consumer commits with its offset: where a
// replay starts and the state it starts from.
type Checkpoint struct {
	// Resume is the offset to replay from. Records from Resume up to
	// Snapshot only refill the merge buffer; from Snapshot on, the replay
	// is the original run again.
	Resume int64
	// Snapshot is the offset of the marker the state below was taken at.
	Snapshot int64
	// Next is the first offset whose outputs were not yet durable; a replay
	// suppresses outputs caused by records below it.
	Next int64
	// Watermark (event time), MaxSeen (latest usage event time),
	// Position (stamp of the last record or timer applied), LastData (stamp
	// of the last record applied) and Armed (whether the idle timer is set)
	// are the join's scalar state at Snapshot, unix nanoseconds for event
	// times, milliseconds for stamps.
	Watermark, MaxSeen int64
	Position, LastData int64
	Armed              bool
	NumSources         uint32
	Sources            []SourceState
}

// fresh reports whether c carries no state: the zero Checkpoint, or one
// that only names where to start.
func (c Checkpoint) fresh() bool {
	return c.Watermark == 0 && c.MaxSeen == 0 && c.Position == 0 && c.LastData == 0 && !c.Armed && len(c.Sources) == 0
}

// ErrNoCheckpoint is returned by ParseCheckpoint for metadata obolus did not write.
var ErrNoCheckpoint = errors.New("not an obolus checkpoint")

const checkpointPrefix = "obolus3:"

// String encodes the checkpoint for Kafka's offset commit metadata. Brokers
// keep up to 4096 bytes by default (offset.metadata.max.bytes): about 250
// input partitions, since each source takes up to 15 bytes.
func (c Checkpoint) String() string {
	b := binary.AppendVarint(nil, c.Resume)
	for _, v := range [...]int64{c.Snapshot - c.Resume, c.Next - c.Snapshot, c.Watermark, c.MaxSeen, c.Position, c.LastData - c.Position} {
		b = binary.AppendVarint(b, v)
	}
	armed := uint64(0)
	if c.Armed {
		armed = 1
	}
	b = binary.AppendUvarint(b, armed)
	b = binary.AppendUvarint(b, uint64(c.NumSources))
	b = binary.AppendUvarint(b, uint64(len(c.Sources)))
	for _, s := range c.Sources {
		b = binary.AppendUvarint(b, uint64(s.Source))
		b = binary.AppendVarint(b, s.Claim-c.Position)
		b = binary.AppendVarint(b, s.Applied)
	}
	return checkpointPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ParseCheckpoint decodes Checkpoint.String.
func ParseCheckpoint(s string) (Checkpoint, error) {
	bad := func(why string) (Checkpoint, error) {
		return Checkpoint{}, fmt.Errorf("%w: %q: %s", ErrNoCheckpoint, truncateString(s, 80), why)
	}
	rest, ok := strings.CutPrefix(s, checkpointPrefix)
	if !ok {
		return bad("no " + checkpointPrefix + " prefix (written by another obolus version?)")
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return bad("encoding")
	}
	d := decoder{s: string(b)}
	var c Checkpoint
	c.Resume = d.varint("resume")
	c.Snapshot = c.Resume + d.varint("snapshot")
	c.Next = c.Snapshot + d.varint("next")
	c.Watermark = d.varint("watermark")
	c.MaxSeen = d.varint("max_seen")
	c.Position = d.varint("position")
	c.LastData = c.Position + d.varint("last_data")
	c.Armed = d.uvarint("armed") == 1
	c.NumSources = uint32(d.uvarint("sources"))
	n := d.uvarint("sources")
	if d.err == nil && n > uint64(len(b)) {
		return bad("source count")
	}
	for range n {
		var st SourceState
		st.Source = uint32(d.uvarint("source"))
		st.Claim = c.Position + d.varint("claim")
		st.Applied = d.varint("applied")
		c.Sources = append(c.Sources, st)
	}
	if d.err != nil || d.i != len(d.s) {
		return bad("truncated or trailing bytes")
	}
	if c.Resume < 0 || c.Snapshot < c.Resume || c.Next < c.Resume {
		return bad("offsets out of order")
	}
	return c, nil
}

func truncateString(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// snapshot is the state just before a marker record: where a replay can
// start. minBuf is the lowest offset of the records then waiting in the
// merge buffer, which a replay must read again.
type snapshot struct {
	off, minBuf int64
	cp          Checkpoint // offsets unset
}

func (p *Partition) takeSnapshot(off int64) {
	if n := len(p.snaps); n > 0 && p.snaps[n-1].off == off {
		return
	}
	minBuf := off
	if m, ok := p.bufLive.min(); ok {
		minBuf = min(m, off)
	}
	p.snaps = append(p.snaps, snapshot{off: off, minBuf: minBuf, cp: p.state()})
}

// state is the partition's state as a Checkpoint, offsets unset.
func (p *Partition) state() Checkpoint {
	c := Checkpoint{Watermark: p.wm, MaxSeen: p.maxSeen, Position: p.pos, LastData: p.lastData, Armed: p.armed,
		NumSources: p.nsrc, Sources: make([]SourceState, 0, len(p.srcs))}
	for id, s := range p.srcs {
		c.Sources = append(c.Sources, SourceState{Source: id, Claim: s.claim, Applied: s.applied})
	}
	slices.SortFunc(c.Sources, func(a, b SourceState) int { return cmp.Compare(a.Source, b.Source) })
	return c
}

// Checkpoint says where a replay must start to rebuild this state: the
// latest marker at or before the oldest record the state holds, or earlier
// if records then waiting to be merged lie further back.
func (p *Partition) Checkpoint() Checkpoint {
	need := p.next
	if m, ok := p.live.min(); ok {
		need = min(need, m)
	}
	if m, ok := p.bufLive.min(); ok {
		need = min(need, m)
	}
	i := len(p.snaps) - 1
	for i > 0 && p.snaps[i].off > need {
		i--
	}
	// Older snapshots can never be needed again: what the state needs only
	// moves forward.
	p.snaps = p.snaps[i:]
	s := p.snaps[0]
	cp := s.cp
	cp.Resume, cp.Snapshot, cp.Next = min(s.off, s.minBuf), s.off, max(p.next, p.replayUntil)
	return cp
}
