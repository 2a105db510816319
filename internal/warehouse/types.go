package warehouse

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/obolus/obolus/internal/warehouse/tcli"
)

// duckType is a parsed DuckDB type name as duckdb-go reports it for a result
// column, e.g. `STRUCT("a" INTEGER, "b" DECIMAL(10,2))[]`.
type duckType struct {
	base             string // upper case: INTEGER, DECIMAL, LIST, ARRAY, STRUCT, MAP, UNION, JSON, ...
	precision, scale int32
	elem             *duckType // LIST, ARRAY
	key, value       *duckType // MAP
	fields           []duckField
}

type duckField struct {
	name string
	typ  *duckType
}

// parseDuckType parses the type names produced by duckdb-go's
// ColumnTypeDatabaseTypeName.
func parseDuckType(s string) (*duckType, error) {
	p := typeParser{s: s}
	t, err := p.parse()
	if err != nil {
		return nil, fmt.Errorf("type %q: %w", s, err)
	}
	p.space()
	if p.i != len(p.s) {
		return nil, fmt.Errorf("type %q: unexpected text at offset %d", s, p.i)
	}
	return t, nil
}

type typeParser struct {
	s string
	i int
}

func (p *typeParser) space() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *typeParser) eat(c byte) error {
	p.space()
	if p.i >= len(p.s) || p.s[p.i] != c {
		return fmt.Errorf("expected %q at offset %d", c, p.i)
	}
	p.i++
	return nil
}

func (p *typeParser) word() string {
	p.space()
	start := p.i
	for p.i < len(p.s) && (isIdentPart(p.s[p.i])) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *typeParser) name() (string, error) {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == '"' {
		end, err := scanQuoted(p.s, p.i, '"')
		if err != nil {
			return "", err
		}
		n := unquoteIdent(p.s[p.i:end], '"')
		p.i = end
		return n, nil
	}
	w := p.word()
	if w == "" {
		return "", fmt.Errorf("expected a field name at offset %d", p.i)
	}
	return w, nil
}

func (p *typeParser) parse() (*duckType, error) {
	w := strings.ToUpper(p.word())
	if w == "" {
		return nil, fmt.Errorf("expected a type name at offset %d", p.i)
	}
	t := &duckType{base: w}
	switch w {
	case "DECIMAL":
		if err := p.eat('('); err != nil {
			return nil, err
		}
		prec, err := strconv.Atoi(p.word())
		if err != nil {
			return nil, fmt.Errorf("decimal precision: %w", err)
		}
		if err := p.eat(','); err != nil {
			return nil, err
		}
		scale, err := strconv.Atoi(p.word())
		if err != nil {
			return nil, fmt.Errorf("decimal scale: %w", err)
		}
		if err := p.eat(')'); err != nil {
			return nil, err
		}
		t.precision, t.scale = int32(prec), int32(scale)
	case "STRUCT", "UNION":
		if err := p.eat('('); err != nil {
			return nil, err
		}
		for {
			n, err := p.name()
			if err != nil {
				return nil, err
			}
			ft, err := p.parse()
			if err != nil {
				return nil, err
			}
			t.fields = append(t.fields, duckField{name: n, typ: ft})
			p.space()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
				continue
			}
			if err := p.eat(')'); err != nil {
				return nil, err
			}
			break
		}
	case "MAP":
		if err := p.eat('('); err != nil {
			return nil, err
		}
		k, err := p.parse()
		if err != nil {
			return nil, err
		}
		if err := p.eat(','); err != nil {
			return nil, err
		}
		v, err := p.parse()
		if err != nil {
			return nil, err
		}
		if err := p.eat(')'); err != nil {
			return nil, err
		}
		t.key, t.value = k, v
	}
	// Postfix [] (LIST) and [n] (ARRAY), possibly repeated.
	for {
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != '[' {
			return t, nil
		}
		p.i++
		size := p.word()
		if err := p.eat(']'); err != nil {
			return nil, err
		}
		base := "LIST"
		if size != "" {
			base = "ARRAY"
		}
		t = &duckType{base: base, elem: t}
	}
}

// kind is how a result column is carried on the wire.
type kind int

const (
	kindBool kind = iota
	kindInt8
	kindInt16
	kindInt32
	kindInt64
	kindFloat32
	kindFloat64
	kindString  // text as is
	kindText    // any other value rendered as text (UUID, TIME, INTERVAL, ...)
	kindBinary  // BLOB
	kindDate    // DATE
	kindTime    // TIMESTAMP*, as an instant
	kindDecimal // DECIMAL(p,s)
	kindWide    // HUGEINT, UBIGINT, ...: narrowed to BIGINT like Spark's sum()
	kindNested  // LIST, ARRAY, STRUCT, MAP, UNION, JSON: JSON text
)

// column describes one result column.
type column struct {
	name  string
	typ   *duckType
	kind  kind
	ttype tcli.TTypeId
}

// newColumn maps a DuckDB result column to its Spark/HiveServer2 type.
func newColumn(name, duckName string) (column, error) {
	t, err := parseDuckType(duckName)
	if err != nil {
		return column{}, fmt.Errorf("column %q: %w", name, err)
	}
	c := column{name: name, typ: t}
	switch t.base {
	case "BOOLEAN":
		c.kind, c.ttype = kindBool, tcli.TTypeId_BOOLEAN_TYPE
	case "TINYINT":
		c.kind, c.ttype = kindInt8, tcli.TTypeId_TINYINT_TYPE
	case "SMALLINT", "UTINYINT":
		c.kind, c.ttype = kindInt16, tcli.TTypeId_SMALLINT_TYPE
	case "INTEGER", "USMALLINT":
		c.kind, c.ttype = kindInt32, tcli.TTypeId_INT_TYPE
	case "BIGINT", "UINTEGER":
		c.kind, c.ttype = kindInt64, tcli.TTypeId_BIGINT_TYPE
	case "UBIGINT", "HUGEINT", "UHUGEINT":
		c.kind, c.ttype = kindWide, tcli.TTypeId_BIGINT_TYPE
	case "FLOAT":
		c.kind, c.ttype = kindFloat32, tcli.TTypeId_FLOAT_TYPE
	case "DOUBLE":
		c.kind, c.ttype = kindFloat64, tcli.TTypeId_DOUBLE_TYPE
	case "VARCHAR", "ENUM", "BIT":
		c.kind, c.ttype = kindString, tcli.TTypeId_STRING_TYPE
	case "BLOB", "GEOMETRY":
		c.kind, c.ttype = kindBinary, tcli.TTypeId_BINARY_TYPE
	case "DATE":
		c.kind, c.ttype = kindDate, tcli.TTypeId_DATE_TYPE
	case "TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS":
		c.kind, c.ttype = kindTime, tcli.TTypeId_TIMESTAMP_TYPE
	case "DECIMAL":
		c.kind, c.ttype = kindDecimal, tcli.TTypeId_DECIMAL_TYPE
	case "LIST", "ARRAY":
		c.kind, c.ttype = kindNested, tcli.TTypeId_ARRAY_TYPE
	case "MAP":
		c.kind, c.ttype = kindNested, tcli.TTypeId_MAP_TYPE
	case "STRUCT":
		c.kind, c.ttype = kindNested, tcli.TTypeId_STRUCT_TYPE
	case "UNION", "JSON", "VARIANT":
		c.kind, c.ttype = kindNested, tcli.TTypeId_STRING_TYPE
	default: // UUID, TIME, TIMETZ, INTERVAL, BIGNUM, SQLNULL, ...
		c.kind, c.ttype = kindText, tcli.TTypeId_STRING_TYPE
	}
	return c, nil
}

// desc is the HiveServer2 column description. The driver reads every type,
// complex ones included, from the primitive entry.
func (c column) desc(pos int) *tcli.TColumnDesc {
	entry := &tcli.TPrimitiveTypeEntry{Type: c.ttype}
	if c.kind == kindDecimal {
		p, s := c.typ.precision, c.typ.scale
		entry.TypeQualifiers = &tcli.TTypeQualifiers{Qualifiers: map[string]*tcli.TTypeQualifierValue{
			"precision": {I32Value: &p},
			"scale":     {I32Value: &s},
		}}
	}
	return &tcli.TColumnDesc{
		ColumnName: c.name,
		TypeDesc:   &tcli.TTypeDesc{Types: []*tcli.TTypeEntry{{PrimitiveEntry: entry}}},
		Position:   int32(pos + 1),
	}
}

// Timestamps travel as text in this layout (the driver parses it back).
const timestampLayout = "2006-01-02 15:04:05.999999999"

var errNotInt64 = fmt.Errorf("value out of BIGINT range")

func toInt64(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case int32:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint64:
		if x > math.MaxInt64 {
			return 0, errNotInt64
		}
		return int64(x), nil
	case *big.Int:
		if !x.IsInt64() {
			return 0, errNotInt64
		}
		return x.Int64(), nil
	case int:
		return int64(x), nil
	}
	return 0, fmt.Errorf("unexpected %T for an integer column", v)
}

func toFloat64(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	}
	return 0, fmt.Errorf("unexpected %T for a floating point column", v)
}

// decimalString renders a DuckDB decimal with exactly its scale, as
// Databricks does ("1.50" for DECIMAL(5,2)).
func decimalString(v any) (string, error) {
	d, ok := v.(duckdb.Decimal)
	if !ok {
		return "", fmt.Errorf("unexpected %T for a decimal column", v)
	}
	return formatUnscaled(d.Value, int(d.Scale)), nil
}

func formatUnscaled(unscaled *big.Int, scale int) string {
	digits := new(big.Int).Abs(unscaled).String()
	neg := unscaled.Sign() < 0
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	if scale <= 0 {
		b.WriteString(digits)
		return b.String()
	}
	if len(digits) <= scale {
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", scale-len(digits)))
		b.WriteString(digits)
		return b.String()
	}
	b.WriteString(digits[:len(digits)-scale])
	b.WriteByte('.')
	b.WriteString(digits[len(digits)-scale:])
	return b.String()
}

// textValue renders values of kindText columns.
func textValue(t *duckType, v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		if t.base == "UUID" && len(x) == 16 {
			return formatUUID(x)
		}
		return string(x)
	case duckdb.UUID:
		return formatUUID(x[:])
	case time.Time:
		if t.base == "TIME" || t.base == "TIMETZ" {
			return x.Format("15:04:05.999999")
		}
		return x.Format(timestampLayout)
	case duckdb.Interval:
		return formatInterval(x)
	case *big.Int:
		return x.String()
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

func formatUUID(b []byte) string {
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// formatInterval follows DuckDB's text form, e.g. "1 year 2 months 3 days 04:05:06".
func formatInterval(iv duckdb.Interval) string {
	var parts []string
	plural := func(n int64, unit string) {
		if n == 0 {
			return
		}
		s := strconv.FormatInt(n, 10) + " " + unit
		if n != 1 && n != -1 {
			s += "s"
		}
		parts = append(parts, s)
	}
	plural(int64(iv.Months/12), "year")
	plural(int64(iv.Months%12), "month")
	plural(int64(iv.Days), "day")
	if iv.Micros != 0 || len(parts) == 0 {
		us := iv.Micros
		sign := ""
		if us < 0 {
			sign, us = "-", -us
		}
		h, m := us/3_600_000_000, (us/60_000_000)%60
		s, frac := (us/1_000_000)%60, us%1_000_000
		clock := fmt.Sprintf("%s%02d:%02d:%02d", sign, h, m, s)
		if frac != 0 {
			clock += strings.TrimRight(fmt.Sprintf(".%06d", frac), "0")
		}
		parts = append(parts, clock)
	}
	return strings.Join(parts, " ")
}

// appendJSON renders a nested DuckDB value as JSON text, keeping STRUCT field
// and MAP key order. Dates and timestamps become JSON strings, decimals exact
// numbers.
func appendJSON(b []byte, t *duckType, v any) ([]byte, error) {
	if v == nil {
		return append(b, "null"...), nil
	}
	if t == nil {
		t = &duckType{base: "JSON"}
	}
	switch t.base {
	case "STRUCT":
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("unexpected %T for a STRUCT value", v)
		}
		b = append(b, '{')
		for i, f := range t.fields {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, f.name)
			b = append(b, ':')
			var err error
			if b, err = appendJSON(b, f.typ, m[f.name]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case "MAP":
		keys, vals, err := mapEntries(v)
		if err != nil {
			return nil, err
		}
		b = append(b, '{')
		for i := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			if s, ok := keys[i].(string); ok {
				b = appendJSONString(b, s)
			} else {
				kb, err := appendJSON(nil, t.key, keys[i])
				if err != nil {
					return nil, err
				}
				b = appendJSONString(b, strings.Trim(string(kb), `"`))
			}
			b = append(b, ':')
			if b, err = appendJSON(b, t.value, vals[i]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case "LIST", "ARRAY":
		l, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("unexpected %T for a %s value", v, t.base)
		}
		b = append(b, '[')
		for i, e := range l {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSON(b, t.elem, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case "UNION":
		u, ok := v.(duckdb.Union)
		if !ok {
			return appendJSONScalar(b, t, v)
		}
		for _, f := range t.fields {
			if f.name == u.Tag {
				return appendJSON(b, f.typ, u.Value)
			}
		}
		return appendJSONScalar(b, nil, u.Value)
	case "DECIMAL":
		s, err := decimalString(v)
		if err != nil {
			return nil, err
		}
		return append(b, s...), nil
	case "DATE":
		if tm, ok := v.(time.Time); ok {
			return appendJSONString(b, tm.Format("2006-01-02")), nil
		}
	case "TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS":
		if tm, ok := v.(time.Time); ok {
			return appendJSONString(b, tm.UTC().Format(timestampLayout)), nil
		}
	case "BLOB", "UUID", "TIME", "TIMETZ", "INTERVAL", "BIGNUM", "HUGEINT", "UHUGEINT":
		if bi, ok := v.(*big.Int); ok {
			return append(b, bi.String()...), nil
		}
		return appendJSONString(b, textValue(t, v)), nil
	}
	return appendJSONScalar(b, t, v)
}

func mapEntries(v any) ([]any, []any, error) {
	switch m := v.(type) {
	case duckdb.OrderedMap:
		return m.Keys(), m.Values(), nil
	case *duckdb.OrderedMap:
		return m.Keys(), m.Values(), nil
	case duckdb.Map:
		keys := make([]any, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sortAny(keys)
		vals := make([]any, len(keys))
		for i, k := range keys {
			vals[i] = m[k]
		}
		return keys, vals, nil
	case map[string]any:
		keys := make([]any, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sortAny(keys)
		vals := make([]any, len(keys))
		for i, k := range keys {
			vals[i] = m[k.(string)]
		}
		return keys, vals, nil
	}
	return nil, nil, fmt.Errorf("unexpected %T for a MAP value", v)
}

func sortAny(keys []any) {
	// Insertion sort on the text form: maps here are small, and the order
	// only needs to be stable.
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && fmt.Sprint(keys[j]) < fmt.Sprint(keys[j-1]); j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
}

// appendJSONScalar renders primitives and the already-decoded values of JSON
// columns (maps with string keys, slices, numbers, strings).
func appendJSONScalar(b []byte, t *duckType, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int8, int16, int32, int64, int, uint8, uint16, uint32, uint64:
		return fmt.Append(b, x), nil
	case *big.Int:
		return append(b, x.String()...), nil
	case float32:
		return appendJSONFloat(b, float64(x), 32), nil
	case float64:
		return appendJSONFloat(b, x, 64), nil
	case string:
		return appendJSONString(b, x), nil
	case []byte:
		return appendJSONString(b, string(x)), nil
	case time.Time:
		return appendJSONString(b, x.UTC().Format(timestampLayout)), nil
	case duckdb.Decimal:
		return append(b, formatUnscaled(x.Value, int(x.Scale))...), nil
	case map[string]any, duckdb.OrderedMap, duckdb.Map:
		return appendJSON(b, &duckType{base: "MAP"}, x)
	case []any:
		return appendJSON(b, &duckType{base: "LIST"}, x)
	}
	return appendJSONString(b, textValue(&duckType{base: "?"}, v)), nil
}

func appendJSONFloat(b []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return appendJSONString(b, strconv.FormatFloat(f, 'g', -1, bits))
	}
	return strconv.AppendFloat(b, f, 'g', -1, bits)
}

const hexDigits = "0123456789abcdef"

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
