package ingest

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"strings"
)

// readCSV reads a CSV file with a header row. Cells are strings; map and
// struct columns hold JSON text, and an empty cell is NULL. Rows go through
// the same field rules as JSON.
//
// Every physical line is accounted for: it is part of a row that is used or
// dead-lettered, or is dead-lettered itself with its raw text. A quote that
// never closes would otherwise make encoding/csv read the rest of the file
// as one field, hiding every row after it in a single error.
func readCSV(c *collector, r io.Reader) error {
	p := &csvRows{c: c}
	rest, line, err := p.read(r, 1, true)
	for err == nil && rest != nil {
		rest, line, err = p.read(rest, line, false)
	}
	return err
}

// csvRows decodes the rows of one CSV file.
type csvRows struct {
	c     *collector
	names []string
	cols  []int
	vals  []value
	rec   []string      // the row being decoded
	raw   func() []byte // renders rec; made once, not per row
}

// read reads rows from r, whose first line is line first of the file (the
// header, if header is set). When a parse error swallowed several lines, it
// dead-letters the first of them, the one whose quote never closed, and
// returns the input after that line with its number, to be read again as
// rows; rest is nil at the end of r.
func (p *csvRows) read(r io.Reader, first int, header bool) (rest io.Reader, next int, err error) {
	raw := &rawTail{r: r}
	cr := csv.NewReader(bufio.NewReaderSize(raw, 64<<10))
	cr.FieldsPerRecord = -1 // a short row is that row's problem, not the file's
	cr.ReuseRecord = true
	if header {
		if err := p.header(cr); err != nil {
			return nil, 0, err
		}
	}
	for {
		start := cr.InputOffset()
		raw.forget(start)
		rec, err := cr.Read()
		if err == io.EOF {
			return nil, 0, nil
		}
		// encoding/csv returns a *ParseError unwrapped; a type assertion,
		// unlike errors.As, costs no allocation per row.
		pe, parseErr := err.(*csv.ParseError)
		if err != nil && !parseErr {
			return nil, 0, err
		}
		if e := p.c.begin(); e != nil {
			return nil, 0, e
		}
		if !parseErr {
			line, _ := cr.FieldPos(0)
			if err := p.row(rec, int64(first-1+line)); err != nil {
				return nil, 0, err
			}
			continue
		}
		text := raw.since(start, cr.InputOffset())
		firstLine, after, more := bytes.Cut(text, []byte("\n"))
		at := int64(first - 1 + pe.StartLine)
		why := &FieldError{Reason: fmt.Sprintf("invalid CSV (column %d): %v", pe.Column, pe.Err)}
		if more && len(bytes.TrimSpace(after)) > 0 {
			why.Reason += fmt.Sprintf(" (a quoted field opened on this line is not closed by line %d; the lines after it are read again as rows)", first-1+pe.Line)
			if err := p.c.dead("line", at, why, bytes.TrimSuffix(firstLine, []byte("\r"))); err != nil {
				return nil, 0, err
			}
			// The input after the first line: what cr consumed, what it read
			// ahead (raw keeps both), then what r still holds.
			unread := raw.since(start+int64(len(firstLine))+1, raw.base+int64(len(raw.buf)))
			return io.MultiReader(bytes.NewReader(bytes.Clone(unread)), r), int(at) + 1, nil
		}
		if err := p.c.dead("line", at, why, bytes.TrimRight(text, "\r\n")); err != nil {
			return nil, 0, err
		}
	}
}

// header reads the header row and refuses a file whose header names no
// column the source kind knows: a file without a header would otherwise
// lose its first row silently, taken as column names.
func (p *csvRows) header(cr *csv.Reader) error {
	h, err := cr.Read()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return fmt.Errorf("header: %w", err)
	}
	p.names = make([]string, len(h))
	for i, name := range h {
		if i == 0 {
			name = strings.TrimPrefix(name, "\ufeff")
		}
		p.names[i] = strings.TrimSpace(name)
	}
	p.cols = p.c.c.columnIndex(p.names)
	known := false
	for _, c := range p.cols {
		known = known || c >= 0
	}
	if !known {
		some := p.c.c.kind.Columns()
		return fmt.Errorf("header: line 1 names no column of a %s row (%s …): is the header row missing?",
			p.c.c.kind, strings.Join(some[:min(4, len(some))], ", "))
	}
	p.vals = make([]value, len(p.names))
	p.raw = func() []byte { return csvLine(p.rec) }
	return nil
}

// row decodes one record that starts on line of the file.
func (p *csvRows) row(rec []string, line int64) error {
	if len(rec) != len(p.names) {
		return p.c.dead("line", line, &FieldError{Reason: fmt.Sprintf("row has %d fields, header has %d", len(rec), len(p.names))}, csvLine(rec))
	}
	for j, cell := range rec {
		if cell == "" {
			p.vals[j] = value{}
		} else {
			p.vals[j] = stringValue(cell)
		}
	}
	p.rec = rec
	return p.c.decoded(p.c.values(p.names, p.cols, p.vals), "line", line, p.raw)
}

// rawTail keeps the bytes read through it from a mark on, so that the raw
// text of a record encoding/csv refused can go into its dead letter.
type rawTail struct {
	r    io.Reader
	buf  []byte
	base int64 // input offset of buf[0]
}

func (t *rawTail) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	t.buf = append(t.buf, b[:n]...)
	return n, err
}

// forget drops the bytes before offset off, in bulk: moving the read-ahead
// down after every row would cost more than the parse.
func (t *rawTail) forget(off int64) {
	drop := int(off - t.base)
	if drop < 1<<16 || drop < len(t.buf)/2 {
		return
	}
	t.buf = t.buf[:copy(t.buf, t.buf[drop:])]
	t.base = off
}

// since returns the bytes from offset from to offset to.
func (t *rawTail) since(from, to int64) []byte {
	return t.buf[from-t.base : to-t.base]
}

// csvLine re-encodes a row for a dead letter (encoding/csv keeps no raw text).
func csvLine(rec []string) []byte {
	if rec == nil {
		return nil
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(rec) // writes to memory cannot fail
	w.Flush()
	return bytes.TrimRight(b.Bytes(), "\n")
}
