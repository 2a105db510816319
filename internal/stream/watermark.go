package stream

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Progress is an input source's report, written by the re-keying stage into
// every keyed partition: everything the source has forwarded so far has an
// event time at or before Time.
type Progress struct {
	// Source identifies the input partition (SourceID).
	Source uint32
	// Sources is how many input partitions there are in all.
	Sources uint32
	Time    time.Time
	// Idle says the source has caught up and has nothing more to forward
	// for now; it then holds nobody back.
	Idle bool
}

// SourceID identifies an input partition: topic (0 usage, 1 agents) and partition.
func SourceID(topic, partition int) uint32 { return uint32(topic)<<20 | uint32(partition) }

// SourceProgress is what a partition knows of one source.
type SourceProgress struct {
	Source uint32
	Time   time.Time // millisecond precision
	Idle   bool
}

// Checkpoint is what a partition's consumer commits with its offset.
type Checkpoint struct {
	// Resume is the offset to replay from: a marker at or before the oldest
	// record the state needs.
	Resume int64
	// Next is the first offset whose outputs were not yet durable; a replay
	// suppresses the outputs of records below it.
	Next int64
	// Watermark is the watermark just before Resume (zero: none yet).
	Watermark time.Time
	// NumSources and Sources are the source progress just before Resume.
	NumSources uint32
	Sources    []SourceProgress
}

// ErrNoCheckpoint is returned by ParseCheckpoint for metadata obolus did not write.
var ErrNoCheckpoint = errors.New("not an obolus checkpoint")

const checkpointPrefix = "obolus2:"

// String encodes the checkpoint for Kafka's offset commit metadata
// (brokers keep up to 4096 bytes by default: about 600 input partitions).
func (c Checkpoint) String() string {
	wm := int64(noWM)
	if !c.Watermark.IsZero() {
		wm = c.Watermark.UnixNano()
	}
	base := msOf(wm)
	b := binary.AppendUvarint(nil, uint64(c.NumSources))
	b = binary.AppendUvarint(b, uint64(len(c.Sources)))
	for _, s := range c.Sources {
		b = binary.AppendUvarint(b, uint64(s.Source))
		d := s.Time.UnixMilli() - base
		zz := uint64(d<<1) ^ uint64(d>>63)
		idle := uint64(0)
		if s.Idle {
			idle = 1
		}
		b = binary.AppendUvarint(b, zz<<1|idle)
	}
	return checkpointPrefix + strconv.FormatInt(c.Resume, 10) + ":" + strconv.FormatInt(c.Next, 10) + ":" +
		strconv.FormatInt(wm, 10) + ":" + base64.RawURLEncoding.EncodeToString(b)
}

// msOf is the millisecond a watermark falls in (0 for none).
func msOf(wm int64) int64 {
	if wm == noWM {
		return 0
	}
	return wm / 1e6
}

// ParseCheckpoint decodes Checkpoint.String.
func ParseCheckpoint(s string) (Checkpoint, error) {
	bad := func(why string) (Checkpoint, error) {
		return Checkpoint{}, fmt.Errorf("%w: %q: %s", ErrNoCheckpoint, truncateString(s, 80), why)
	}
	rest, ok := strings.CutPrefix(s, checkpointPrefix)
	if !ok {
		return bad("no " + checkpointPrefix + " prefix")
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 4 {
		return bad("want resume:next:watermark:sources")
	}
	var c Checkpoint
	var wm int64
	var err error
	if c.Resume, err = strconv.ParseInt(parts[0], 10, 64); err != nil || c.Resume < 0 {
		return bad("resume offset")
	}
	if c.Next, err = strconv.ParseInt(parts[1], 10, 64); err != nil || c.Next < c.Resume {
		return bad("next offset")
	}
	if wm, err = strconv.ParseInt(parts[2], 10, 64); err != nil {
		return bad("watermark")
	}
	if wm != noWM {
		c.Watermark = time.Unix(0, wm).UTC()
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[3])
	if err != nil {
		return bad("sources encoding")
	}
	d := decoder{s: string(b)}
	c.NumSources = uint32(d.uvarint("sources"))
	n := d.uvarint("sources")
	if d.err == nil && n > uint64(len(b)) {
		return bad("source count")
	}
	base := msOf(wm)
	for range n {
		id := d.uvarint("source")
		v := d.uvarint("source")
		zz := v >> 1
		delta := int64(zz>>1) ^ -int64(zz&1)
		c.Sources = append(c.Sources, SourceProgress{Source: uint32(id), Time: time.UnixMilli(base + delta).UTC(), Idle: v&1 == 1})
	}
	if d.err != nil || d.i != len(d.s) {
		return bad("sources truncated or trailing bytes")
	}
	return c, nil
}

func truncateString(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// source is what the partition knows of an input source, in unix nanos
// truncated to milliseconds.
type source struct {
	t    int64
	idle bool
}

// sourceWatermark is the watermark the sources allow: the least progress
// among sources still forwarding, or the most among all of them when every
// one is idle. ok is false until every source has reported.
func (p *Partition) sourceWatermark() (int64, bool) {
	if p.nsrc == 0 || uint32(len(p.srcs)) < p.nsrc {
		return 0, false
	}
	lo, hi, active := int64(0), int64(noWM), false
	for _, s := range p.srcs {
		hi = max(hi, s.t)
		if !s.idle {
			if !active || s.t < lo {
				lo = s.t
			}
			active = true
		}
	}
	if active {
		return lo, true
	}
	return hi, true
}

func (p *Partition) progress(pr *Progress) {
	if pr.Time.IsZero() || !p.cfg.FollowSources {
		return
	}
	t := pr.Time.Truncate(time.Millisecond).UnixNano()
	s := p.srcs[pr.Source]
	p.srcs[pr.Source] = source{t: max(s.t, t), idle: pr.Idle}
	p.nsrc = pr.Sources
	if wm, ok := p.sourceWatermark(); ok {
		p.advance(wm)
	}
}

// snapshot is the watermark state just before a marker record: where a
// replay can start.
type snapshot struct {
	off  int64
	wm   int64
	nsrc uint32
	srcs []SourceProgress
}

func (p *Partition) takeSnapshot(off int64) {
	s := snapshot{off: off, wm: p.wm, nsrc: p.nsrc, srcs: make([]SourceProgress, 0, len(p.srcs))}
	for id, src := range p.srcs {
		s.srcs = append(s.srcs, SourceProgress{Source: id, Time: time.Unix(0, src.t).UTC(), Idle: src.idle})
	}
	slices.SortFunc(s.srcs, func(a, b SourceProgress) int { return int(int64(a.Source) - int64(b.Source)) })
	p.snaps = append(p.snaps, s)
}

// Checkpoint says where a replay must start to rebuild this state: the
// latest marker at or before the oldest record the state holds.
func (p *Partition) Checkpoint() Checkpoint {
	need := p.next
	if m, ok := p.live.min(); ok {
		need = m
	}
	i := len(p.snaps) - 1
	for i > 0 && p.snaps[i].off > need {
		i--
	}
	// Older snapshots can never be needed again: what the state needs only
	// moves forward.
	p.snaps = p.snaps[i:]
	s := p.snaps[0]
	cp := Checkpoint{Resume: s.off, Next: max(p.next, p.replayUntil), NumSources: s.nsrc, Sources: s.srcs}
	if s.wm != noWM {
		cp.Watermark = time.Unix(0, s.wm).UTC()
	}
	return cp
}
