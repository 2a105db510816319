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
	var pe *csv.ParseError
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		rowNo++
		pe = nil
		if err != nil && !errors.As(err, &pe) {
			return err
		}
		if e := c.begin(); e != nil {
			return e
		}
		switch {
		case pe != nil:
			err = c.dead("row", rowNo, &FieldError{Reason: "invalid CSV: " + pe.Error()}, nil)
		case len(rec) != len(names):
			err = c.dead("row", rowNo, &FieldError{Reason: fmt.Sprintf("row has %d fields, header has %d", len(rec), len(names))}, csvLine(rec))
		default:
			for j, cell := range rec {
				if cell == "" {
					vals[j] = value{}
				} else {
					vals[j] = stringValue(cell)
				}
			}
			err = c.decoded(c.values(names, cols, vals), "row", rowNo, func() []byte { return csvLine(rec) })
		}
		if err != nil {
			return err
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
