package ingest

import (
	"fmt"
	"strconv"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// readParquet reads the columns the kind knows, in Arrow record batches, and
// turns each cell into a value for the shared field rules.
func readParquet(c *collector, path string) (err error) {
	// arrow-go panics on some corrupt pages (snappy: corrupt input); no
	// input may crash a run, so the panic becomes this file's error.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: corrupt Parquet file: %v", path, r)
		}
	}()
	pf, err := file.OpenParquetFile(path, false, file.WithReadProps(parquet.NewReaderProperties(arrowMem)))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: BatchSize}, arrowMem)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var leaves, nested []int
	for _, f := range fr.Manifest.Fields {
		if c.c.lookup([]byte(f.Field.Name)) >= 0 {
			leaves = appendLeaves(leaves, f)
			if !f.IsLeaf() {
				nested = appendLeaves(nested, f)
			}
		}
	}
	if err := checkPages(pf, nested); err != nil {
		return fmt.Errorf("%s: corrupt Parquet file: %w", path, err)
	}
	var rowNo int64
	if len(leaves) == 0 {
		// No column this kind reads: each row is dead for its first required column.
		for rowNo < pf.NumRows() {
			rowNo++
			if err := c.begin(); err != nil {
				return err
			}
			if err := c.decoded(c.values(nil, nil, nil), "row", rowNo, func() []byte { return nil }); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		}
		return nil
	}
	rr, err := fr.GetRecordReader(c.ctx, leaves, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer rr.Release()
	for rr.Next() {
		rec := rr.RecordBatch()
		n := int(rec.NumCols())
		names := make([]string, n)
		cells := make([]cellFunc, n)
		for j := range n {
			names[j] = rec.ColumnName(j)
			cells[j] = cellReader(rec.Column(j))
		}
		cols := c.c.columnIndex(names)
		vals := make([]value, n)
		for i := range int(rec.NumRows()) {
			rowNo++
			if err := c.begin(); err != nil {
				return err
			}
			for j, cell := range cells {
				cell(i, &vals[j])
			}
			err := c.decoded(c.values(names, cols, vals), "row", rowNo, func() []byte { return renderRow(names, vals) })
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		}
	}
	if err := rr.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// checkPages reads every page of the given columns once, here, where a
// panic is recovered. pqarrow reads the children of struct and map columns
// on goroutines of its own, where a panic on a corrupt page (a page header
// without its dictionary header, a bad compressed block) would end the
// process; reading the pages first finds those pages on this goroutine.
func checkPages(pf *file.Reader, cols []int) error {
	for rg := range pf.NumRowGroups() {
		r := pf.RowGroup(rg)
		for _, col := range cols {
			// The dictionary page, at the offset the column metadata names,
			// on a reader of its own: finding it repositions the reader.
			pr, err := r.GetColumnPageReader(col)
			if err != nil {
				return fmt.Errorf("row group %d column %d: %w", rg, col, err)
			}
			_, err = pr.GetDictionaryPage()
			pr.Close()
			if err != nil {
				return fmt.Errorf("row group %d column %d dictionary: %w", rg, col, err)
			}
			if pr, err = r.GetColumnPageReader(col); err != nil {
				return fmt.Errorf("row group %d column %d: %w", rg, col, err)
			}
			for pr.Next() {
				if dp, ok := pr.Page().(file.DataPage); ok {
					_ = dp.NumValues()
				}
			}
			err = pr.Err()
			pr.Close()
			if err != nil {
				return fmt.Errorf("row group %d column %d: %w", rg, col, err)
			}
		}
	}
	return nil
}

func appendLeaves(dst []int, f pqarrow.SchemaField) []int {
	if f.IsLeaf() {
		return append(dst, f.ColIndex)
	}
	for _, ch := range f.Children {
		dst = appendLeaves(dst, ch)
	}
	return dst
}

// cellFunc puts row i of one Arrow column into v.
type cellFunc func(i int, v *value)

// cellReader picks the conversion for an Arrow column once per batch. Strings
// are not copied; timestamps of any unit are instants (a zone-less timestamp
// is taken as UTC, as Databricks and DuckDB write them).
func cellReader(arr arrow.Array) cellFunc {
	nullable := func(f cellFunc) cellFunc {
		if arr.NullN() == 0 {
			return f
		}
		return func(i int, v *value) {
			if arr.IsNull(i) {
				*v = value{}
				return
			}
			f(i, v)
		}
	}
	switch a := arr.(type) {
	case *array.Null:
		return func(_ int, v *value) { *v = value{} }
	case *array.String:
		return nullable(func(i int, v *value) { *v = stringValue(a.Value(i)) })
	case *array.LargeString:
		return nullable(func(i int, v *value) { *v = stringValue(a.Value(i)) })
	case *array.StringView:
		return nullable(func(i int, v *value) { *v = stringValue(a.Value(i)) })
	case *array.Binary:
		return nullable(func(i int, v *value) { *v = stringValue(a.ValueString(i)) })
	case *array.Int8:
		return nullable(func(i int, v *value) { *v = value{k: vInt, i: int64(a.Value(i))} })
	case *array.Int16:
		return nullable(func(i int, v *value) { *v = value{k: vInt, i: int64(a.Value(i))} })
	case *array.Int32:
		return nullable(func(i int, v *value) { *v = value{k: vInt, i: int64(a.Value(i))} })
	case *array.Int64:
		return nullable(func(i int, v *value) { *v = value{k: vInt, i: a.Value(i)} })
	case *array.Uint8:
		return nullable(func(i int, v *value) { *v = value{k: vInt, i: int64(a.Value(i))} })
	case *array.Uint16:
		return nullable(func(i int, v *value) { *v = value{k: vInt, i: int64(a.Value(i))} })
	case *array.Uint32:
		return nullable(func(i int, v *value) { *v = value{k: vInt, i: int64(a.Value(i))} })
	case *array.Uint64:
		return nullable(func(i int, v *value) { *v = uintValue(a.Value(i)) })
	case *array.Float32:
		return nullable(func(i int, v *value) { *v = value{k: vFloat, f: float64(a.Value(i))} })
	case *array.Float64:
		return nullable(func(i int, v *value) { *v = value{k: vFloat, f: a.Value(i)} })
	case *array.Boolean:
		return nullable(func(i int, v *value) { *v = value{k: vBool, b: a.Value(i)} })
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		return nullable(func(i int, v *value) { *v = value{k: vTime, t: a.Value(i).ToTime(unit)} })
	case *array.Date32:
		return nullable(func(i int, v *value) { *v = value{k: vTime, t: a.Value(i).ToTime()} })
	case *array.Date64:
		return nullable(func(i int, v *value) { *v = value{k: vTime, t: a.Value(i).ToTime()} })
	case *array.Map:
		keys, items := cellReader(a.Keys()), cellReader(a.Items())
		var scratch []pair
		kv, iv := new(value), new(value) // one each per column, not per cell
		return nullable(func(i int, v *value) {
			start, end := a.ValueOffsets(i)
			scratch = scratch[:0]
			for k := int(start); k < int(end); k++ {
				keys(k, kv)
				items(k, iv)
				val := *iv
				if kv.k == vInvalid {
					val = *kv // an invalid key makes the entry invalid
				}
				scratch = append(scratch, pair{key: keyText(kv), val: val})
			}
			*v = value{k: vPairs, pairs: scratch}
		})
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		fields := make([]cellFunc, a.NumField())
		for j := range fields {
			fields[j] = cellReader(a.Field(j))
		}
		var scratch []pair
		fv := new(value)
		return nullable(func(i int, v *value) {
			scratch = scratch[:0]
			for j, f := range fields {
				f(i, fv)
				scratch = append(scratch, pair{key: st.Field(j).Name, val: *fv})
			}
			*v = value{k: vPairs, pairs: scratch}
		})
	case *array.Dictionary:
		dict := cellReader(a.Dictionary())
		return nullable(func(i int, v *value) { dict(a.GetValueIndex(i), v) })
	default:
		// Decimals and rarer types: their text goes through the same parsing.
		return nullable(func(i int, v *value) { *v = stringValue(arr.ValueStr(i)) })
	}
}

func uintValue(u uint64) value {
	if u > 1<<63-1 {
		return value{k: vNumber, text: strconv.AppendUint(nil, u, 10)}
	}
	return value{k: vInt, i: int64(u)}
}

// keyText is a map key as a string, without copying string keys.
func keyText(kv *value) string {
	switch kv.k {
	case vString, vInvalid, vNumber:
		return unsafe.String(unsafe.SliceData(kv.text), len(kv.text))
	case vInt:
		return strconv.FormatInt(kv.i, 10)
	}
	return kv.shown()
}
