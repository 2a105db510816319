package ingest

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// readCSV reads a CSV file with a header row. Cells are strings; map and
// struct columns hold JSON text, and an empty cell is NULL. Rows go through
// the same field rules as JSON.
func readCSV(c *collector, r io.Reader) error {
	cr := csv.NewReader(bufio.NewReaderSize(r, 256<<10))
	cr.FieldsPerRecord = -1 // a short row is that row's problem, not the file's
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return fmt.Errorf("header: %w", err)
	}
	names := make([]string, len(header))
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		names[i] = strings.TrimSpace(h)
	}
	cols := c.c.columnIndex(names)
	vals := make([]value, len(names))
	var rowNo int64
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		rowNo++
		var pe *csv.ParseError
		if err != nil && !errors.As(err, &pe) {
			return err
		}
		if e := c.begin(); e != nil {
			return e
		}
		var derr error
		switch {
		case pe != nil:
			derr = &FieldError{Reason: "invalid CSV: " + pe.Err.Error()}
			rec = nil
		case len(rec) != len(names):
			derr = &FieldError{Reason: fmt.Sprintf("row has %d fields, header has %d", len(rec), len(names))}
		default:
			for j, cell := range rec {
				if cell == "" {
					vals[j] = value{}
				} else {
					vals[j] = stringValue(cell)
				}
			}
			derr = c.c.values(&c.d, names, cols, vals, &c.rec)
		}
		if derr != nil {
			if e := c.dead("row", rowNo, derr, csvLine(rec)); e != nil {
				return e
			}
			continue
		}
		if e := c.keep(); e != nil {
			return e
		}
	}
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
