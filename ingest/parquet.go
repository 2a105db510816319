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
	var fields, nested []pqarrow.SchemaField // leaf columns read; those inside struct and map columns
	for _, f := range fr.Manifest.Fields {
		if c.c.lookup([]byte(f.Field.Name)) >= 0 {
			fields = appendLeafFields(fields, f)
			if !f.IsLeaf() {
				nested = appendLeafFields(nested, f)
			}
		}
	}
	leaves := make([]int, len(fields))
	for i, f := range fields {
		leaves[i] = f.ColIndex
	}
	if err := checkChunks(pf, leaves); err != nil {
		return fmt.Errorf("%s: corrupt Parquet file: %w", path, err)
	}
	if err := checkNested(pf, nested); err != nil {
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

// checkChunks checks that every column chunk of the given leaf columns lies
// inside the file, as pqarrow computes its extent: it opens the first chunk
// of each column on goroutines of its own, and a negative extent from a
// corrupt footer would panic there.
func checkChunks(pf *file.Reader, cols []int) error {
	size := pf.MetaData().GetSourceFileSize()
	for rg := range pf.NumRowGroups() {
		md := pf.MetaData().RowGroup(rg)
		for _, col := range cols {
			cc, err := md.ColumnChunk(col)
			if err != nil {
				return fmt.Errorf("row group %d column %d: %w", rg, col, err)
			}
			start := cc.DataPageOffset()
			if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && start > cc.DictionaryPageOffset() {
				start = cc.DictionaryPageOffset()
			}
			n := cc.TotalCompressedSize()
			if start < 0 || n < 0 || start > size || n > size-start {
				return fmt.Errorf("row group %d column %d: chunk of %d bytes at offset %d is outside the file (%d bytes)", rg, col, n, start, size)
			}
		}
	}
	return nil
}

// checkNested decodes the given leaf columns of nested fields once,
// here, where a panic is recovered, through the record readers pqarrow
// itself uses. pqarrow reads the children of struct and map columns on
// goroutines of its own, where a panic on a corrupt page (a page header
// without its dictionary header, a dictionary index with no dictionary, a bad
// compressed block) would end the process: found first here, such a file is
// an error instead. Costs one more decode of the nested columns.
func checkNested(pf *file.Reader, leaves []pqarrow.SchemaField) error {
	for _, leaf := range leaves {
		if err := checkLeaf(pf, leaf); err != nil {
			return fmt.Errorf("column %s: %w", pf.MetaData().Schema.Column(leaf.ColIndex).Path(), err)
		}
	}
	return nil
}

func checkLeaf(pf *file.Reader, leaf pqarrow.SchemaField) error {
	rr := file.NewRecordReader(pf.MetaData().Schema.Column(leaf.ColIndex), leaf.LevelInfo, leaf.Field.Type, arrowMem, pf.BufferPool())
	defer rr.Release()
	for rg := range pf.NumRowGroups() {
		pr, err := pf.RowGroup(rg).GetColumnPageReader(leaf.ColIndex)
		if err != nil {
			return fmt.Errorf("row group %d: %w", rg, err)
		}
		rr.SetPageReader(pr)
		for rr.HasMore() {
			rr.Reset()
			n, err := rr.ReadRecords(BatchSize)
			if err != nil {
				return fmt.Errorf("row group %d: %w", rg, err)
			}
			if n == 0 {
				break
			}
		}
	}
	return nil
}

// appendLeafFields appends the leaf columns of f (f itself if it is one).
func appendLeafFields(dst []pqarrow.SchemaField, f pqarrow.SchemaField) []pqarrow.SchemaField {
	if f.IsLeaf() {
		return append(dst, f)
	}
	for _, ch := range f.Children {
		dst = appendLeafFields(dst, ch)
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
