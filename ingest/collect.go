package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/obolus/obolus/schemas"
)

// codec decodes the rows of one kind, from JSON or from named column values,
// straight into the slot the record will occupy in its batch.
type codec struct {
	kind     Kind
	out      output
	deadKind string
	lookup   func(name []byte) int

	usageJSON    func(d *decoder, b []byte, dst *schemas.UsageEvent) error
	usageValues  func(d *decoder, names []string, cols []int, vals []value, dst *schemas.UsageEvent) error
	agentJSON    func(d *decoder, b []byte, dst *schemas.AgentRequest) error
	agentValues  func(d *decoder, names []string, cols []int, vals []value, dst *schemas.AgentRequest) error
	servedJSON   func(d *decoder, b []byte, dst *schemas.ServedEntity) error
	servedValues func(d *decoder, names []string, cols []int, vals []value, dst *schemas.ServedEntity) error
}

// output is the record type a codec produces.
type output uint8

const (
	outAgents output = iota
	outUsage
	outServed
)

func newCodec(spec Spec) (*codec, error) {
	c, err := kindCodec(spec)
	if err != nil {
		return nil, err
	}
	c.kind = spec.Kind
	return c, nil
}

func kindCodec(spec Spec) (*codec, error) {
	ep, sp := spec.AgentEndpoint, spec.ServicePrincipal
	switch spec.Kind {
	case KindUsage:
		return &codec{
			out: outUsage, deadKind: schemas.KindUsage, lookup: usageFields.lookup,
			usageJSON: func(d *decoder, b []byte, dst *schemas.UsageEvent) error {
				if err := decodeJSON(d, usageFields, b, dst); err != nil {
					return err
				}
				dst.Source = schemas.SourceAIGateway
				return nil
			},
			usageValues: func(d *decoder, names []string, cols []int, vals []value, dst *schemas.UsageEvent) error {
				if err := decodeValues(d, usageFields, names, cols, vals, dst); err != nil {
					return err
				}
				dst.Source = schemas.SourceAIGateway
				return nil
			},
		}, nil
	case KindLegacyUsage:
		return &codec{
			out: outUsage, deadKind: schemas.KindUsage, lookup: legacyFields.lookup,
			usageJSON: func(d *decoder, b []byte, dst *schemas.UsageEvent) error {
				d.legacy = schemas.LegacyUsage{}
				if err := decodeJSON(d, legacyFields, b, &d.legacy); err != nil {
					return err
				}
				*dst = d.legacy.UsageEvent()
				return nil
			},
			usageValues: func(d *decoder, names []string, cols []int, vals []value, dst *schemas.UsageEvent) error {
				d.legacy = schemas.LegacyUsage{}
				if err := decodeValues(d, legacyFields, names, cols, vals, &d.legacy); err != nil {
					return err
				}
				*dst = d.legacy.UsageEvent()
				return nil
			},
		}, nil
	case KindPayload:
		return agentCodec(payloadFields, func(d *decoder) *schemas.PayloadRow { d.payload = schemas.PayloadRow{}; return &d.payload },
			func(d *decoder, p *schemas.PayloadRow, dst *schemas.AgentRequest) error {
				*dst = p.AgentRequest(ep, sp)
				return nil
			}), nil
	case KindTrace:
		return agentCodec(traceFields, func(d *decoder) *schemas.TraceRow { d.trace = schemas.TraceRow{}; return &d.trace },
			func(d *decoder, t *schemas.TraceRow, dst *schemas.AgentRequest) error {
				*dst = t.AgentRequest(ep, sp)
				return nil
			}), nil
	case KindOTelSpans:
		keys := spec.SpanKeys.OrDefault()
		return agentCodec(spanFields, func(d *decoder) *schemas.SpanRow {
			d.span, d.spanKeys = schemas.SpanRow{}, &keys
			return &d.span
		}, func(d *decoder, _ *schemas.SpanRow, dst *schemas.AgentRequest) error {
			return d.spanRequest(ep, sp, dst)
		}), nil
	case KindServedEntities:
		return &codec{
			out: outServed, deadKind: schemas.KindServedEntity, lookup: servedFields.lookup,
			servedJSON: func(d *decoder, b []byte, dst *schemas.ServedEntity) error {
				return decodeJSON(d, servedFields, b, dst)
			},
			servedValues: func(d *decoder, names []string, cols []int, vals []value, dst *schemas.ServedEntity) error {
				return decodeValues(d, servedFields, names, cols, vals, dst)
			},
		}, nil
	case "":
		return nil, errors.New("spec.Kind is empty")
	}
	return nil, fmt.Errorf("spec.Kind %q is not one of usage, legacy_usage, payload, trace, otel_spans, served_entities", spec.Kind)
}

// agentCodec decodes agent log rows of type T (read into the decoder's
// scratch row that reset clears) and converts them with conv.
func agentCodec[T any](fs *fieldSet[T], reset func(d *decoder) *T, conv func(d *decoder, row *T, dst *schemas.AgentRequest) error) *codec {
	return &codec{
		deadKind: schemas.KindAgentRequest, lookup: fs.lookup,
		agentJSON: func(d *decoder, b []byte, dst *schemas.AgentRequest) error {
			row := reset(d)
			if err := decodeJSON(d, fs, b, row); err != nil {
				return err
			}
			return conv(d, row, dst)
		},
		agentValues: func(d *decoder, names []string, cols []int, vals []value, dst *schemas.AgentRequest) error {
			row := reset(d)
			if err := decodeValues(d, fs, names, cols, vals, row); err != nil {
				return err
			}
			return conv(d, row, dst)
		},
	}
}

// columnIndex maps column names to field indexes (-1 for columns the kind does not read).
func (c *codec) columnIndex(names []string) []int {
	cols := make([]int, len(names))
	for i, n := range names {
		cols[i] = c.lookup([]byte(n))
	}
	return cols
}

// collector applies the window, batches emits, writes dead letters and
// counts, the same way for every format. Rows are decoded in place into the
// next slot of the current batch, which is dropped again if the row is dead
// or outside the window: no per-row copy or allocation of the record.
type collector struct {
	ctx    context.Context
	out    chan delivery // to the goroutine that calls emit (see run)
	emit   Emit
	win    Window
	limits Limits
	c      *codec
	d      decoder
	source string
	usage  []schemas.UsageEvent
	agents []schemas.AgentRequest
	served []schemas.ServedEntity
	stats  Stats
}

func newCollector(ctx context.Context, spec Spec, w Window, emit Emit) (*collector, error) {
	c, err := newCodec(spec)
	if err != nil {
		return nil, err
	}
	switch {
	case c.out == outUsage && emit.Usage == nil:
		return nil, fmt.Errorf("emit.Usage is nil but spec.Kind %q produces usage events", spec.Kind)
	case c.out == outAgents && emit.Agents == nil:
		return nil, fmt.Errorf("emit.Agents is nil but spec.Kind %q produces agent requests", spec.Kind)
	case c.out == outServed && emit.Served == nil:
		return nil, fmt.Errorf("emit.Served is nil but spec.Kind %q produces served entities", spec.Kind)
	case emit.Dead == nil:
		return nil, errors.New("emit.Dead is nil")
	}
	if !w.From.IsZero() && !w.To.IsZero() && !w.From.Before(w.To) {
		return nil, fmt.Errorf("window from %s is not before to %s", w.From.Format(time.RFC3339Nano), w.To.Format(time.RFC3339Nano))
	}
	col := &collector{ctx: ctx, emit: emit, win: w, c: c, limits: spec.Limits.OrDefault()}
	col.d.intern = new(internCache)
	return col, nil
}

// json decodes one JSON row into a new slot; decoded must follow.
func (c *collector) json(b []byte) error {
	switch c.c.out {
	case outUsage:
		return c.c.usageJSON(&c.d, b, slot(&c.usage))
	case outServed:
		return c.c.servedJSON(&c.d, b, slot(&c.served))
	}
	return c.c.agentJSON(&c.d, b, slot(&c.agents))
}

// values decodes one row of column values into a new slot; decoded must follow.
func (c *collector) values(names []string, cols []int, vals []value) error {
	switch c.c.out {
	case outUsage:
		return c.c.usageValues(&c.d, names, cols, vals, slot(&c.usage))
	case outServed:
		return c.c.servedValues(&c.d, names, cols, vals, slot(&c.served))
	}
	return c.c.agentValues(&c.d, names, cols, vals, slot(&c.agents))
}

// slot appends a zero record to the batch and returns it.
func slot[T any](batch *[]T) *T {
	if *batch == nil {
		*batch = make([]T, 0, BatchSize)
	}
	var zero T
	*batch = append(*batch, zero)
	return &(*batch)[len(*batch)-1]
}

// unslot removes the last record of the batch, releasing its strings.
func unslot[T any](batch *[]T) {
	var zero T
	(*batch)[len(*batch)-1] = zero
	*batch = (*batch)[:len(*batch)-1]
}

// drop removes the last slot.
func (c *collector) drop() {
	switch c.c.out {
	case outUsage:
		unslot(&c.usage)
	case outServed:
		unslot(&c.served)
	default:
		unslot(&c.agents)
	}
}

// decoded files the row just decoded into the last slot: skipped if it
// stands for no record (a child span), a dead letter if derr is set (raw
// renders the record, called only then), dropped if outside the window, kept
// otherwise.
func (c *collector) decoded(derr error, unit string, n int64, raw func() []byte) error {
	if derr == errSkipped {
		c.drop()
		c.stats.Skipped++
		return nil
	}
	if derr != nil {
		c.drop()
		return c.dead(unit, n, derr, raw())
	}
	var t time.Time
	var lerr error
	switch c.c.out {
	case outUsage:
		u := &c.usage[len(c.usage)-1]
		t, lerr = u.EventTime, c.limits.CheckUsage(u)
	case outServed:
		// A served entity stays in force after its change time, so no
		// window applies to it.
		t = c.win.From
	default:
		a := &c.agents[len(c.agents)-1]
		t, lerr = a.StartTime, c.limits.CheckAgent(a)
	}
	if lerr != nil {
		// Go's zero time, unit mistakes, counts near 2^63: no store can keep
		// or sum them, and one must not fail a whole write.
		c.drop()
		return c.dead(unit, n, lerr, raw())
	}
	if c.c.out != outServed && !c.win.Contains(t) {
		c.drop()
		c.stats.OutsideWindow++
		return nil
	}
	c.stats.Emitted++
	if len(c.usage) == BatchSize || len(c.agents) == BatchSize || len(c.served) == BatchSize {
		return c.flush()
	}
	return nil
}

// begin counts a row and checks for cancellation now and then.
func (c *collector) begin() error {
	c.stats.Rows++
	if c.stats.Rows&1023 == 0 {
		return c.ctx.Err()
	}
	return nil
}

// delivery is one call to make to Emit.
type delivery struct {
	usage  []schemas.UsageEvent
	agents []schemas.AgentRequest
	served []schemas.ServedEntity
	dead   *schemas.DeadLetter
}

// run calls produce — the reading and decoding — on a new goroutine and
// makes every Emit call on the calling goroutine, in the order produced.
// Decoding the next batch thus overlaps with the callee's work on this one
// (the attribution engine, a sink), while the callee still sees one
// goroutine, as with a plain loop. An Emit error stops production; the first
// error, from either side, is returned.
func (c *collector) run(produce func() error) (Stats, error) {
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	c.ctx = ctx
	c.out = make(chan delivery, 2)
	var perr error
	go func() {
		defer close(c.out)
		perr = produce()
		if perr == nil {
			perr = c.flush()
		}
	}()
	var eerr error
	for d := range c.out {
		if eerr != nil {
			continue // drain until the producer sees the cancellation
		}
		if eerr = c.deliver(d); eerr != nil {
			cancel()
		}
	}
	// The channel is closed: the producer is done, and c.stats and perr are settled.
	if eerr != nil {
		return c.stats, eerr
	}
	return c.stats, perr
}

func (c *collector) deliver(d delivery) error {
	switch {
	case d.dead != nil:
		if err := c.emit.Dead(*d.dead); err != nil {
			return fmt.Errorf("emit dead letter for %s %s: %w", d.dead.Source, d.dead.Location, err)
		}
	case d.usage != nil:
		if err := c.emit.Usage(d.usage); err != nil {
			return fmt.Errorf("emit usage: %w", err)
		}
	case d.agents != nil:
		if err := c.emit.Agents(d.agents); err != nil {
			return fmt.Errorf("emit agent requests: %w", err)
		}
	case d.served != nil:
		if err := c.emit.Served(d.served); err != nil {
			return fmt.Errorf("emit served entities: %w", err)
		}
	}
	return nil
}

func (c *collector) send(d delivery) error {
	select {
	case c.out <- d:
		return nil
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
}

// flush hands the current batch over; the callee owns it from then on.
func (c *collector) flush() error {
	if len(c.usage) > 0 {
		batch := c.usage
		c.usage = nil
		if err := c.send(delivery{usage: batch}); err != nil {
			return err
		}
	}
	if len(c.agents) > 0 {
		batch := c.agents
		c.agents = nil
		if err := c.send(delivery{agents: batch}); err != nil {
			return err
		}
	}
	if len(c.served) > 0 {
		batch := c.served
		c.served = nil
		if err := c.send(delivery{served: batch}); err != nil {
			return err
		}
	}
	return nil
}

// dead writes a dead letter for the row at unit n ("line", 12).
func (c *collector) dead(unit string, n int64, err error, raw []byte) error {
	c.stats.Dead++
	dl := &schemas.DeadLetter{
		Source:   c.source,
		Location: unit + " " + strconv.FormatInt(n, 10),
		Kind:     c.c.deadKind,
		Record:   cutRecord(raw),
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		dl.Field, dl.Reason = fe.Field, fe.Reason
	} else {
		dl.Reason = err.Error()
	}
	return c.send(delivery{dead: dl})
}

// cutRecord keeps at most MaxDeadLetterRecord bytes of raw input as valid
// UTF-8 (the record may be dead because it is not), cut on a rune boundary.
func cutRecord(raw []byte) string {
	const max = schemas.MaxDeadLetterRecord
	if len(raw) > max {
		cut := max
		for back := 0; back < utf8.UTFMax && cut > 0 && !utf8.RuneStart(raw[cut]); back++ {
			cut--
		}
		raw = raw[:cut]
	}
	s := string(raw)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}
