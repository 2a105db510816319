package warehouse

import (
	"bytes"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/obolus/obolus/internal/warehouse/tcli"
)

// page is a slice of result rows held column by column.
type page struct {
	offset int64   // row number of the first row within the result
	n      int     // number of rows
	cols   [][]any // cols[c][r]
}

// cursor reads a result page by page, one row ahead so it can tell the
// client whether more rows follow.
type cursor struct {
	width  int
	rows   driver.Rows // open DuckDB result; nil once drained
	closer func()      // releases the statement behind rows
	static [][]any     // synthesized rows (DML counts, staging)
	dest   []driver.Value
	peeked bool
	offset int64
	hint   int // rows in the previous page, to size the next one
}

func newRowsCursor(rows driver.Rows, width int, closer func()) *cursor {
	return &cursor{width: width, rows: rows, closer: closer, dest: make([]driver.Value, width)}
}

func newStaticCursor(width int, rows [][]any) *cursor {
	return &cursor{width: width, static: rows, dest: make([]driver.Value, width)}
}

// advance loads the next row into c.dest; false at the end.
func (c *cursor) advance() (bool, error) {
	if c.peeked {
		c.peeked = false
		return true, nil
	}
	if c.rows == nil {
		if len(c.static) == 0 {
			return false, nil
		}
		for i, v := range c.static[0] {
			c.dest[i] = v
		}
		c.static = c.static[1:]
		return true, nil
	}
	if err := c.rows.Next(c.dest); err != nil {
		c.close()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		return false, fmt.Errorf("reading result row %d: %w", c.offset, err)
	}
	return true, nil
}

// next returns up to n rows and whether more rows follow.
func (c *cursor) next(n int) (*page, bool, error) {
	if n <= 0 {
		n = 1
	}
	p := &page{offset: c.offset, cols: make([][]any, c.width)}
	// Pages after the first are as large as the one before; the first one
	// starts small so that short results stay cheap.
	capacity := min(n, max(c.hint, 1024))
	for i := range p.cols {
		p.cols[i] = make([]any, 0, capacity)
	}
	for p.n < n {
		ok, err := c.advance()
		if err != nil {
			return nil, false, err
		}
		if !ok {
			break
		}
		for i := range p.cols {
			p.cols[i] = append(p.cols[i], c.dest[i])
		}
		p.n++
	}
	c.offset += int64(p.n)
	c.hint = p.n
	more, err := c.advance()
	if err != nil {
		return nil, false, err
	}
	c.peeked = more
	return p, more, nil
}

// split cuts a page into pages of at most n rows (at least one page).
func (p *page) split(n int) []*page {
	if n <= 0 || p.n <= n {
		return []*page{p}
	}
	var out []*page
	for from := 0; from < p.n; from += n {
		to := min(from+n, p.n)
		q := &page{offset: p.offset + int64(from), n: to - from, cols: make([][]any, len(p.cols))}
		for i, c := range p.cols {
			q.cols[i] = c[from:to]
		}
		out = append(out, q)
	}
	return out
}

func (c *cursor) close() {
	if c.rows != nil {
		_ = c.rows.Close()
		c.rows = nil
	}
	if c.closer != nil {
		c.closer()
		c.closer = nil
	}
	c.static = nil
	c.peeked = false
}

// encoding turns pages into HiveServer2 row sets, either column based or as
// Arrow IPC record batches, following what the client asked for.
type encoding struct {
	columns     []column
	arrow       bool
	lz4         bool // inline Arrow batches are LZ4 frames
	tsArrow     bool
	decArrow    bool
	loc         *time.Location
	schema      *arrow.Schema
	schemaBytes []byte
	mem         memory.Allocator
}

func newEncoding(cols []column, useArrow bool, types *tcli.TSparkArrowTypes, loc *time.Location) (*encoding, error) {
	if loc == nil {
		loc = time.UTC
	}
	e := &encoding{columns: cols, arrow: useArrow, loc: loc, mem: memory.DefaultAllocator}
	if !useArrow {
		return e, nil
	}
	if types != nil { // optional in the request; absent means "as strings"
		e.tsArrow = types.GetTimestampAsArrow()
		e.decArrow = types.GetDecimalAsArrow()
	}
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.name, Type: e.arrowType(c), Nullable: true}
	}
	e.schema = arrow.NewSchema(fields, nil)
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(e.schema), ipc.WithAllocator(e.mem))
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("serializing arrow schema: %w", err)
	}
	// The driver wants the bare schema message: drop the 8-byte end-of-stream marker.
	e.schemaBytes = bytes.Clone(buf.Bytes()[:buf.Len()-8])
	return e, nil
}

func (e *encoding) arrowType(c column) arrow.DataType {
	switch c.kind {
	case kindBool:
		return arrow.FixedWidthTypes.Boolean
	case kindInt8:
		return arrow.PrimitiveTypes.Int8
	case kindInt16:
		return arrow.PrimitiveTypes.Int16
	case kindInt32:
		return arrow.PrimitiveTypes.Int32
	case kindInt64, kindWide:
		return arrow.PrimitiveTypes.Int64
	case kindFloat32:
		return arrow.PrimitiveTypes.Float32
	case kindFloat64:
		return arrow.PrimitiveTypes.Float64
	case kindBinary:
		return arrow.BinaryTypes.Binary
	case kindDate:
		return arrow.FixedWidthTypes.Date32
	case kindTime:
		if e.tsArrow {
			return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
		}
	case kindDecimal:
		if e.decArrow {
			return &arrow.Decimal128Type{Precision: c.typ.precision, Scale: c.typ.scale}
		}
	}
	return arrow.BinaryTypes.String
}

func (e *encoding) tableSchema() *tcli.TTableSchema {
	ts := &tcli.TTableSchema{Columns: make([]*tcli.TColumnDesc, len(e.columns))}
	for i, c := range e.columns {
		ts.Columns[i] = c.desc(i)
	}
	return ts
}

func (e *encoding) metadata() *tcli.TGetResultSetMetadataResp {
	md := &tcli.TGetResultSetMetadataResp{Status: ok(), Schema: e.tableSchema()}
	f := tcli.TSparkRowSetType_COLUMN_BASED_SET
	if e.arrow {
		f = tcli.TSparkRowSetType_ARROW_BASED_SET
		md.ArrowSchema = e.schemaBytes
		lz4 := e.lz4
		md.Lz4Compressed = &lz4
	}
	md.ResultFormat = &f
	return md
}

// rowSet encodes one page.
func (e *encoding) rowSet(p *page) (*tcli.TRowSet, error) {
	rs := &tcli.TRowSet{StartRowOffset: p.offset, Rows: []*tcli.TRow{}}
	if e.arrow {
		batches := []*tcli.TSparkArrowBatch{}
		if p.n > 0 {
			b, err := e.arrowBatch(p)
			if err != nil {
				return nil, err
			}
			if e.lz4 {
				if b, err = lz4Frame(b); err != nil {
					return nil, err
				}
			}
			batches = append(batches, &tcli.TSparkArrowBatch{Batch: b, RowCount: int64(p.n)})
		}
		rs.ArrowBatches = batches
		return rs, nil
	}
	rs.Columns = make([]*tcli.TColumn, len(e.columns))
	for i, c := range e.columns {
		col, err := e.tColumn(c, p.cols[i])
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", c.name, err)
		}
		rs.Columns[i] = col
	}
	return rs, nil
}

func nullBitmap(vals []any) []byte {
	nulls := make([]byte, (len(vals)+7)/8)
	for i, v := range vals {
		if v == nil {
			nulls[i/8] |= 1 << (uint(i) % 8)
		}
	}
	return nulls
}

func (e *encoding) tColumn(c column, vals []any) (*tcli.TColumn, error) {
	nulls := nullBitmap(vals)
	switch c.kind {
	case kindBool:
		out := make([]bool, len(vals))
		for i, v := range vals {
			if v != nil {
				b, isBool := v.(bool)
				if !isBool {
					return nil, fmt.Errorf("row %d: unexpected %T for BOOLEAN", i, v)
				}
				out[i] = b
			}
		}
		return &tcli.TColumn{BoolVal: &tcli.TBoolColumn{Values: out, Nulls: nulls}}, nil
	case kindInt8, kindInt16, kindInt32, kindInt64, kindWide:
		ints := make([]int64, len(vals))
		for i, v := range vals {
			if v == nil {
				continue
			}
			x, err := toInt64(v)
			if err != nil {
				return nil, fmt.Errorf("row %d: %w", i, err)
			}
			ints[i] = x
		}
		switch c.kind {
		case kindInt8:
			out := make([]int8, len(ints))
			for i, x := range ints {
				out[i] = int8(x)
			}
			return &tcli.TColumn{ByteVal: &tcli.TByteColumn{Values: out, Nulls: nulls}}, nil
		case kindInt16:
			out := make([]int16, len(ints))
			for i, x := range ints {
				out[i] = int16(x)
			}
			return &tcli.TColumn{I16Val: &tcli.TI16Column{Values: out, Nulls: nulls}}, nil
		case kindInt32:
			out := make([]int32, len(ints))
			for i, x := range ints {
				out[i] = int32(x)
			}
			return &tcli.TColumn{I32Val: &tcli.TI32Column{Values: out, Nulls: nulls}}, nil
		}
		return &tcli.TColumn{I64Val: &tcli.TI64Column{Values: ints, Nulls: nulls}}, nil
	case kindFloat32, kindFloat64:
		out := make([]float64, len(vals))
		for i, v := range vals {
			if v == nil {
				continue
			}
			f, err := toFloat64(v)
			if err != nil {
				return nil, fmt.Errorf("row %d: %w", i, err)
			}
			out[i] = f
		}
		return &tcli.TColumn{DoubleVal: &tcli.TDoubleColumn{Values: out, Nulls: nulls}}, nil
	case kindBinary:
		out := make([][]byte, len(vals))
		for i, v := range vals {
			if v == nil {
				out[i] = []byte{}
				continue
			}
			b, isBytes := v.([]byte)
			if !isBytes {
				return nil, fmt.Errorf("row %d: unexpected %T for BINARY", i, v)
			}
			out[i] = b
		}
		return &tcli.TColumn{BinaryVal: &tcli.TBinaryColumn{Values: out, Nulls: nulls}}, nil
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		if v == nil {
			continue
		}
		s, err := e.text(c, v)
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
		out[i] = s
	}
	return &tcli.TColumn{StringVal: &tcli.TStringColumn{Values: out, Nulls: nulls}}, nil
}

// text renders a non-null value of a column that travels as a string.
func (e *encoding) text(c column, v any) (string, error) {
	switch c.kind {
	case kindString:
		if s, isString := v.(string); isString {
			return s, nil
		}
		return textValue(c.typ, v), nil
	case kindDate:
		t, isTime := v.(time.Time)
		if !isTime {
			return "", fmt.Errorf("unexpected %T for DATE", v)
		}
		return t.Format("2006-01-02"), nil
	case kindTime:
		t, isTime := v.(time.Time)
		if !isTime {
			return "", fmt.Errorf("unexpected %T for TIMESTAMP", v)
		}
		return t.In(e.loc).Format(timestampLayout), nil
	case kindDecimal:
		return decimalString(v)
	case kindNested:
		b, err := appendJSON(nil, c.typ, v)
		if err != nil {
			return "", err
		}
		return string(b), nil
	}
	return textValue(c.typ, v), nil
}

func daysSinceEpoch(t time.Time) int32 {
	secs := t.Unix()
	d := secs / 86400
	if secs%86400 < 0 {
		d--
	}
	return int32(d)
}

func (e *encoding) arrowBatch(p *page) ([]byte, error) {
	arrs := make([]arrow.Array, len(e.columns))
	defer func() {
		for _, a := range arrs {
			if a != nil {
				a.Release()
			}
		}
	}()
	for i, c := range e.columns {
		a, err := e.arrowArray(c, e.schema.Field(i).Type, p.cols[i])
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", c.name, err)
		}
		arrs[i] = a
	}
	rec := array.NewRecordBatch(e.schema, arrs, int64(p.n))
	defer rec.Release()

	var buf bytes.Buffer
	buf.Grow(len(e.schemaBytes) + 64*p.n)
	w := ipc.NewWriter(&buf, ipc.WithSchema(e.schema), ipc.WithAllocator(e.mem))
	if err := w.Write(rec); err != nil {
		return nil, fmt.Errorf("writing arrow batch: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("closing arrow batch: %w", err)
	}
	b := buf.Bytes()
	// The stream starts with the schema message the client already has from
	// the metadata; the driver prepends it again, so send only the batch.
	if !bytes.HasPrefix(b, e.schemaBytes) {
		return nil, errors.New("arrow stream does not start with the advertised schema")
	}
	return b[len(e.schemaBytes) : len(b)-8], nil
}

func (e *encoding) arrowArray(c column, dt arrow.DataType, vals []any) (arrow.Array, error) {
	b := array.NewBuilder(e.mem, dt)
	defer b.Release()
	b.Reserve(len(vals))
	var err error
	// Typed loops for the common fixed-width columns; everything else goes
	// value by value through appendArrow.
	switch bb := b.(type) {
	case *array.Int8Builder:
		err = appendInts(bb, vals)
	case *array.Int16Builder:
		err = appendInts(bb, vals)
	case *array.Int32Builder:
		err = appendInts(bb, vals)
	case *array.Int64Builder:
		err = appendInts(bb, vals)
	case *array.Float64Builder:
		for i, v := range vals {
			if v == nil {
				bb.AppendNull()
				continue
			}
			f, ferr := toFloat64(v)
			if ferr != nil {
				return nil, fmt.Errorf("row %d: %w", i, ferr)
			}
			bb.UnsafeAppend(f)
		}
	case *array.TimestampBuilder:
		for i, v := range vals {
			if v == nil {
				bb.AppendNull()
				continue
			}
			t, isTime := v.(time.Time)
			if !isTime {
				return nil, fmt.Errorf("row %d: unexpected %T for TIMESTAMP", i, v)
			}
			bb.UnsafeAppend(arrow.Timestamp(t.UnixMicro()))
		}
	default:
		for i, v := range vals {
			if v == nil {
				b.AppendNull()
				continue
			}
			if aerr := e.appendArrow(b, c, v); aerr != nil {
				return nil, fmt.Errorf("row %d: %w", i, aerr)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return b.NewArray(), nil
}

type intBuilder[T int8 | int16 | int32 | int64] interface {
	UnsafeAppend(T)
	AppendNull()
}

func appendInts[T int8 | int16 | int32 | int64](b intBuilder[T], vals []any) error {
	for i, v := range vals {
		if v == nil {
			b.AppendNull()
			continue
		}
		x, err := toInt64(v)
		if err != nil {
			return fmt.Errorf("row %d: %w", i, err)
		}
		b.UnsafeAppend(T(x))
	}
	return nil
}

func (e *encoding) appendArrow(b array.Builder, c column, v any) error {
	switch bb := b.(type) {
	case *array.BooleanBuilder:
		x, isBool := v.(bool)
		if !isBool {
			return fmt.Errorf("unexpected %T for BOOLEAN", v)
		}
		bb.Append(x)
	case *array.Int8Builder:
		x, err := toInt64(v)
		if err != nil {
			return err
		}
		bb.Append(int8(x))
	case *array.Int16Builder:
		x, err := toInt64(v)
		if err != nil {
			return err
		}
		bb.Append(int16(x))
	case *array.Int32Builder:
		x, err := toInt64(v)
		if err != nil {
			return err
		}
		bb.Append(int32(x))
	case *array.Int64Builder:
		x, err := toInt64(v)
		if err != nil {
			return err
		}
		bb.Append(x)
	case *array.Float32Builder:
		x, err := toFloat64(v)
		if err != nil {
			return err
		}
		bb.Append(float32(x))
	case *array.Float64Builder:
		x, err := toFloat64(v)
		if err != nil {
			return err
		}
		bb.Append(x)
	case *array.BinaryBuilder:
		x, isBytes := v.([]byte)
		if !isBytes {
			return fmt.Errorf("unexpected %T for BINARY", v)
		}
		bb.Append(x)
	case *array.Date32Builder:
		t, isTime := v.(time.Time)
		if !isTime {
			return fmt.Errorf("unexpected %T for DATE", v)
		}
		bb.Append(arrow.Date32(daysSinceEpoch(t)))
	case *array.TimestampBuilder:
		t, isTime := v.(time.Time)
		if !isTime {
			return fmt.Errorf("unexpected %T for TIMESTAMP", v)
		}
		bb.Append(arrow.Timestamp(t.UnixMicro()))
	case *array.Decimal128Builder:
		d, isDec := v.(duckdb.Decimal)
		if !isDec {
			return fmt.Errorf("unexpected %T for DECIMAL", v)
		}
		if d.Value.BitLen() > 127 {
			return fmt.Errorf("decimal %s does not fit 128 bits", d.Value)
		}
		bb.Append(decimal128.FromBigInt(new(big.Int).Set(d.Value)))
	case *array.StringBuilder:
		if s, isString := v.(string); isString && c.kind == kindString {
			bb.Append(s)
			return nil
		}
		s, err := e.text(c, v)
		if err != nil {
			return err
		}
		bb.Append(s)
	default:
		return fmt.Errorf("no arrow builder for %T", b)
	}
	return nil
}
