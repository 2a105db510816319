package pushdown

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	databricks "github.com/databricks/databricks-sql-go"
)

// Inline returns the statement's SQL with its parameters written into the
// text, for a script that runs without a client to bind them: a named
// marker :name becomes exprs[name] when set (a session variable, say), else
// its bound value as a literal; ? markers become their values in order.
// Markers inside string literals, quoted identifiers and comments are text.
func (st Statement) Inline(exprs map[string]string) (string, error) {
	named := map[string]any{}
	var positional []any
	for _, a := range st.Args {
		if p, ok := a.(databricks.Parameter); ok && p.Name != "" {
			named[p.Name] = p
			continue
		}
		positional = append(positional, a)
	}
	q := st.SQL
	var out strings.Builder
	out.Grow(len(q))
	pos := 0
	for i := 0; i < len(q); {
		end, err := skipText(q, i)
		if err != nil {
			return "", err
		}
		if end > i {
			out.WriteString(q[i:end])
			i = end
			continue
		}
		c := q[i]
		switch {
		case c == '?':
			if pos >= len(positional) {
				return "", fmt.Errorf("inline: statement has more ? markers than its %d positional parameters", len(positional))
			}
			lit, err := Literal(positional[pos])
			if err != nil {
				return "", fmt.Errorf("inline: parameter %d: %w", pos+1, err)
			}
			out.WriteString(lit)
			pos++
			i++
		case c == ':' && i+1 < len(q) && isIdentByte(q[i+1], false) && (i == 0 || q[i-1] != ':'):
			j := i + 1
			for j < len(q) && isIdentByte(q[j], true) {
				j++
			}
			name := q[i+1 : j]
			if e, ok := exprs[name]; ok {
				out.WriteString(e)
			} else if v, ok := named[name]; ok {
				lit, err := Literal(v)
				if err != nil {
					return "", fmt.Errorf("inline: parameter %s: %w", name, err)
				}
				out.WriteString(lit)
			} else {
				return "", fmt.Errorf("inline: marker :%s has no value", name)
			}
			i = j
		default:
			out.WriteByte(c)
			i++
		}
	}
	if pos != len(positional) {
		return "", fmt.Errorf("inline: %d positional parameters for %d ? markers", len(positional), pos)
	}
	return out.String(), nil
}

// skipText returns the end of the string literal, quoted identifier or
// comment starting at i, or i when none starts there.
func skipText(q string, i int) (int, error) {
	switch c := q[i]; {
	case c == '\'' || c == '"' || c == '`':
		for j := i + 1; j < len(q); j++ {
			if q[j] == c {
				if j+1 < len(q) && q[j+1] == c {
					j++
					continue
				}
				return j + 1, nil
			}
		}
		return 0, fmt.Errorf("unterminated %c quote at offset %d", c, i)
	case c == '-' && strings.HasPrefix(q[i:], "--"):
		if j := strings.IndexByte(q[i:], '\n'); j >= 0 {
			return i + j + 1, nil
		}
		return len(q), nil
	case c == '/' && strings.HasPrefix(q[i:], "/*"):
		if j := strings.Index(q[i+2:], "*/"); j >= 0 {
			return i + j + 4, nil
		}
		return 0, fmt.Errorf("unterminated comment at offset %d", i)
	}
	return i, nil
}

func isIdentByte(c byte, digits bool) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (digits && c >= '0' && c <= '9')
}

// SplitStatements splits a script into its statements at the semicolons
// outside literals and comments, each without its semicolon; comments
// before a statement stay with it, and what holds no code is dropped.
func SplitStatements(script string) ([]string, error) {
	var out []string
	start, code := 0, false
	for i := 0; i < len(script); {
		end, err := skipText(script, i)
		if err != nil {
			return nil, err
		}
		if end > i {
			if c := script[i]; c == '\'' || c == '"' || c == '`' {
				code = true
			}
			i = end
			continue
		}
		switch c := script[i]; {
		case c == ';':
			if code {
				out = append(out, strings.TrimSpace(script[start:i]))
			}
			start, code = i+1, false
		case c != ' ' && c != '\t' && c != '\n' && c != '\r':
			code = true
		}
		i++
	}
	if code {
		out = append(out, strings.TrimSpace(script[start:]))
	}
	return out, nil
}

// Literal writes v as a SQL literal that Databricks SQL and DuckDB read as
// the same value of the same type as the bound parameter would be.
//   - Strings: Spark SQL reads backslash escapes inside literals and DuckDB
//     does not, and Spark may substitute ${...}; so quotes, backslashes,
//     $, braces and control characters are written as chr(n) pieces of a
//     concat(...), which both read alike. Other text is quoted as is.
//   - Times: TIMESTAMP 'yyyy-mm-dd hh:mm:ss.ffffff' in UTC (read in the
//     session time zone, which must be UTC, as for every obolus statement).
//   - Doubles: CAST(<shortest exact decimal, with exponent> AS DOUBLE), so
//     neither reads a DECIMAL; NaN and infinities are refused.
//   - Integers: CAST(n AS BIGINT).
func Literal(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "NULL", nil
	case string:
		return stringLiteral(v), nil
	case int64:
		return "CAST(" + strconv.FormatInt(v, 10) + " AS BIGINT)", nil
	case int:
		return "CAST(" + strconv.Itoa(v) + " AS BIGINT)", nil
	case float64:
		return doubleLiteral(v)
	case bool:
		if v {
			return "TRUE", nil
		}
		return "FALSE", nil
	case time.Time:
		return timestampLiteral(v), nil
	case databricks.Parameter:
		return parameterLiteral(v)
	}
	return "", fmt.Errorf("no literal for a %T", v)
}

func parameterLiteral(p databricks.Parameter) (string, error) {
	s, isString := p.Value.(string)
	if p.Value != nil && !isString {
		return Literal(p.Value)
	}
	switch p.Type {
	case databricks.SqlVoid:
		return "NULL", nil
	case databricks.SqlString, databricks.SqlUnkown:
		return stringLiteral(s), nil
	case databricks.SqlBigInt, databricks.SqlInteger:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return "", fmt.Errorf("integer parameter %q: %w", s, err)
		}
		return Literal(n)
	case databricks.SqlDouble:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return "", fmt.Errorf("double parameter %q: %w", s, err)
		}
		return doubleLiteral(f)
	case databricks.SqlTimestamp:
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return "", fmt.Errorf("timestamp parameter %q: %w", s, err)
		}
		return timestampLiteral(t), nil
	case databricks.SqlDate:
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return "", fmt.Errorf("date parameter %q: %w", s, err)
		}
		return "DATE '" + t.Format(time.DateOnly) + "'", nil
	}
	return "", fmt.Errorf("no literal for a parameter of type %v", p.Type)
}

func timestampLiteral(t time.Time) string {
	return "TIMESTAMP '" + t.UTC().Format("2006-01-02 15:04:05.999999") + "'"
}

func doubleLiteral(f float64) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("double %v has no literal", f)
	}
	// 'e' with the shortest exact digits: an exponent makes both dialects
	// read a double, and the digits round-trip exactly.
	return "CAST(" + strconv.FormatFloat(f, 'e', -1, 64) + " AS DOUBLE)", nil
}

// stringLiteral quotes s for both dialects; see Literal.
func stringLiteral(s string) string {
	var parts []string
	var cur strings.Builder
	for _, r := range s {
		if r == '\'' || r == '\\' || r == '$' || r == '{' || r == '}' || r < 0x20 || r == 0x7f {
			if cur.Len() > 0 {
				parts = append(parts, "'"+cur.String()+"'")
				cur.Reset()
			}
			parts = append(parts, "chr("+strconv.Itoa(int(r))+")")
			continue
		}
		cur.WriteRune(r)
	}
	if cur.Len() > 0 || len(parts) == 0 {
		parts = append(parts, "'"+cur.String()+"'")
	}
	if len(parts) == 1 && !strings.HasPrefix(parts[0], "chr(") {
		return parts[0]
	}
	return "concat(" + strings.Join(parts, ", ") + ")"
}
