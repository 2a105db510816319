package ingest

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// RowScanner is the query result ReadRows consumes; *sql.Rows is one.
type RowScanner interface {
	Columns() ([]string, error)
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ReadRows decodes the rows of a query result the way ReadFiles decodes file
// rows: columns are matched by name, values go through the same field rules,
// and the same window, batching and dead letters ("row N", Source = source)
// apply. Go values from database drivers are understood: strings, integers,
// floats, bools, time.Time, maps of any map type (a STRUCT column, or a MAP
// as map[any]any), and ordered maps with Keys() and Values() (duckdb-go's MAP).
func ReadRows(ctx context.Context, rows RowScanner, source string, spec Spec, w Window, emit Emit) (Stats, error) {
	c, err := newCollector(ctx, spec, w, emit)
	if err != nil {
		return Stats{}, err
	}
	c.source = source
	names, err := rows.Columns()
	if err != nil {
		return Stats{}, fmt.Errorf("%s: columns: %w", source, err)
	}
	cols := c.c.columnIndex(names)
	raw := make([]any, len(names))
	dest := make([]any, len(names))
	for i := range raw {
		dest[i] = &raw[i]
	}
	vals := make([]value, len(names))
	uuidCol := uuidColumns(rows, len(names))
	return c.run(func() error {
		var rowNo int64
		for rows.Next() {
			rowNo++
			if err := rows.Scan(dest...); err != nil {
				return fmt.Errorf("%s: row %d: %w", source, rowNo, err)
			}
			if err := c.begin(); err != nil {
				return err
			}
			for j := range raw {
				if b, ok := raw[j].([]byte); ok && uuidCol[j] && len(b) == 16 {
					vals[j] = stringValue(formatUUID(b))
					continue
				}
				vals[j] = goValue(raw[j])
			}
			if err := c.decoded(c.values(names, cols, vals), "row", rowNo, func() []byte { return renderRow(names, vals) }); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%s: %w", source, err)
		}
		return nil
	})
}

// uuidColumns marks the columns a driver types as UUID: duckdb-go scans them
// as 16 raw bytes, which are ids to obolus and must read as the canonical text.
func uuidColumns(rows RowScanner, n int) []bool {
	marks := make([]bool, n)
	typed, ok := rows.(interface {
		ColumnTypes() ([]*sql.ColumnType, error)
	})
	if !ok {
		return marks
	}
	types, err := typed.ColumnTypes()
	if err != nil {
		return marks
	}
	for i, t := range types {
		if i < n && strings.EqualFold(t.DatabaseTypeName(), "UUID") {
			marks[i] = true
		}
	}
	return marks
}

func formatUUID(b []byte) string {
	const hexdigits = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexdigits[c>>4], hexdigits[c&0xf])
	}
	return string(out)
}

// goValue converts a value scanned by a database driver.
func goValue(x any) value {
	switch x := x.(type) {
	case nil:
		return value{}
	case string:
		return stringValue(x)
	case []byte:
		return stringValue(string(x))
	case int64:
		return value{k: vInt, i: x}
	case int32:
		return value{k: vInt, i: int64(x)}
	case int16:
		return value{k: vInt, i: int64(x)}
	case int8:
		return value{k: vInt, i: int64(x)}
	case int:
		return value{k: vInt, i: int64(x)}
	case uint8:
		return value{k: vInt, i: int64(x)}
	case uint16:
		return value{k: vInt, i: int64(x)}
	case uint32:
		return value{k: vInt, i: int64(x)}
	case uint64:
		return uintValue(x)
	case float64:
		return value{k: vFloat, f: x}
	case float32:
		return value{k: vFloat, f: float64(x)}
	case bool:
		return value{k: vBool, b: x}
	case time.Time:
		return value{k: vTime, t: x}
	}
	if m, ok := x.(map[string]any); ok { // a STRUCT column
		pairs := make([]pair, 0, len(m))
		for k, v := range m {
			pairs = append(pairs, pair{key: k, val: goValue(v)})
		}
		slices.SortFunc(pairs, func(a, b pair) int { return cmp.Compare(a.key, b.key) })
		return value{k: vPairs, pairs: pairs}
	}
	rv := reflect.ValueOf(x)
	if om, ok := asOrderedMap(rv); ok {
		keys, vals := om.Keys(), om.Values()
		pairs := make([]pair, 0, len(keys))
		for i, k := range keys {
			kv := goValue(k)
			var iv value
			if i < len(vals) {
				iv = goValue(vals[i])
			}
			if kv.k == vInvalid {
				iv = kv
			}
			pairs = append(pairs, pair{key: keyText(&kv), val: iv})
		}
		return value{k: vPairs, pairs: pairs}
	}
	if rv.Kind() == reflect.Map {
		// map[string]any for STRUCTs, map[any]any from drivers that return MAPs so.
		pairs := make([]pair, 0, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			kv := goValue(it.Key().Interface())
			iv := goValue(it.Value().Interface())
			if kv.k == vInvalid {
				iv = kv
			}
			pairs = append(pairs, pair{key: keyText(&kv), val: iv})
		}
		slices.SortFunc(pairs, func(a, b pair) int { return cmp.Compare(a.key, b.key) })
		return value{k: vPairs, pairs: pairs}
	}
	if s, ok := x.(fmt.Stringer); ok {
		return stringValue(s.String())
	}
	return stringValue(fmt.Sprint(x))
}

// orderedMap is how duckdb-go returns MAP columns (duckdb.OrderedMap): keys
// and values in order, behind pointer-receiver methods.
type orderedMap interface {
	Keys() []any
	Values() []any
}

func asOrderedMap(rv reflect.Value) (orderedMap, bool) {
	if om, ok := rv.Interface().(orderedMap); ok {
		return om, true
	}
	if rv.Kind() != reflect.Struct || !reflect.PointerTo(rv.Type()).Implements(reflect.TypeFor[orderedMap]()) {
		return nil, false
	}
	p := reflect.New(rv.Type())
	p.Elem().Set(rv)
	return p.Interface().(orderedMap), true
}
