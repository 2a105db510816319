package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/obolus/obolus/internal/safetext"
)

// kind is a column's type in the CSV and Parquet outputs.
type kind uint8

const (
	kString  kind = iota // string value (also JSON text)
	kDecimal             // plain decimal text, written to Parquet as DECIMAL(38, scale)
	kInt                 // int64
	kTime                // time.Time, UTC; CSV as 2006-01-02T15:04:05Z
)

type column struct {
	name  string
	kind  kind
	scale int32 // decimal places of a kDecimal column
}

// table is an output table: values are string, int64, time.Time or nil (NULL).
type table struct {
	cols []column
	rows [][]any
}

const csvTime = "2006-01-02T15:04:05Z"

// neutralize defuses a text cell a spreadsheet would evaluate as a formula
// (OWASP CSV injection): a leading =, +, -, @, TAB or CR gets a ' before it.
func neutralize(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// writeCSV writes the table as CSV; raw leaves text cells as they are.
func (t *table) writeCSV(w io.Writer, raw bool) error {
	cw := csv.NewWriter(w)
	rec := make([]string, len(t.cols))
	for i, c := range t.cols {
		rec[i] = c.name
	}
	if err := cw.Write(rec); err != nil {
		return err
	}
	for _, row := range t.rows {
		for i, v := range row {
			switch v := v.(type) {
			case nil:
				rec[i] = ""
			case string:
				rec[i] = v
				if !raw && t.cols[i].kind == kString {
					rec[i] = neutralize(safetext.Visible(v))
				}
			case int64:
				rec[i] = strconv.FormatInt(v, 10)
			case time.Time:
				rec[i] = v.UTC().Format(csvTime)
			default:
				return fmt.Errorf("report: column %s: unexpected value %T", t.cols[i].name, v)
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func (t *table) arrowSchema() *arrow.Schema {
	fields := make([]arrow.Field, len(t.cols))
	for i, c := range t.cols {
		var dt arrow.DataType
		switch c.kind {
		case kDecimal:
			dt = &arrow.Decimal128Type{Precision: 38, Scale: c.scale}
		case kInt:
			dt = arrow.PrimitiveTypes.Int64
		case kTime:
			dt = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
		default:
			dt = arrow.BinaryTypes.String
		}
		fields[i] = arrow.Field{Name: c.name, Type: dt, Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}

// writeParquet writes the table as one Parquet file, zstd-compressed.
func (t *table) writeParquet(w io.Writer) error {
	schema := t.arrowSchema()
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for r, row := range t.rows {
		for i, v := range row {
			c := t.cols[i]
			if v == nil {
				b.Field(i).AppendNull()
				continue
			}
			var bad bool
			switch c.kind {
			case kDecimal:
				s, ok := v.(string)
				if !ok {
					bad = true
					break
				}
				n, err := decimal128.FromString(s, 38, c.scale)
				if err != nil {
					return fmt.Errorf("report: row %d column %s: %q: %w", r+1, c.name, s, err)
				}
				b.Field(i).(*array.Decimal128Builder).Append(n)
			case kInt:
				n, ok := v.(int64)
				bad = !ok
				if ok {
					b.Field(i).(*array.Int64Builder).Append(n)
				}
			case kTime:
				tm, ok := v.(time.Time)
				bad = !ok
				if ok {
					b.Field(i).(*array.TimestampBuilder).Append(arrow.Timestamp(tm.UnixMicro()))
				}
			default:
				s, ok := v.(string)
				bad = !ok
				if ok {
					b.Field(i).(*array.StringBuilder).Append(s)
				}
			}
			if bad {
				return fmt.Errorf("report: row %d column %s: unexpected value %T", r+1, c.name, v)
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd))
	fw, err := pqarrow.NewFileWriter(schema, w, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return fmt.Errorf("report: parquet writer: %w", err)
	}
	if err := fw.Write(rec); err != nil {
		fw.Close()
		return fmt.Errorf("report: write parquet: %w", err)
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("report: close parquet: %w", err)
	}
	return nil
}
