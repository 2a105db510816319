package warehouse

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// placeholder says how one Spark parameter marker is written for DuckDB.
// cast is empty when the bound Go value already carries the right type.
type placeholder struct {
	cast string
}

// rewriteInput is everything the SQL rewrite needs besides the text.
type rewriteInput struct {
	named      map[string]placeholder // :name markers to turn into $name
	positional []placeholder          // ? markers, in order of appearance
	catalogs   map[string]string      // lower-case Spark catalog name -> DuckDB catalog name
	volumeRoot string                 // local directory behind '/Volumes/...'; "" = no mapping
}

// rewriteOutput is the DuckDB text and what the scan learned about it.
type rewriteOutput struct {
	sql        string
	statements int // number of non-empty statements separated by ';'
	markers    int // number of ? markers seen
}

var (
	reCreateCatalog = regexp.MustCompile(`(?is)^(\s*)CREATE\s+CATALOG\s+(IF\s+NOT\s+EXISTS\s+)?`)
	reUseKeyword    = regexp.MustCompile(`(?is)^(\s*)USE\s+(CATALOG|SCHEMA|DATABASE)\s+`)
)

// rewriteSQL turns the Spark SQL the driver sends into DuckDB SQL, touching
// only code outside string literals, quoted identifiers and comments:
//   - `ident` -> "ident"
//   - current_timestamp() -> current_timestamp
//   - :name -> $name (only for names that were bound) and ? kept, each
//     optionally wrapped in CAST(... AS type)
//   - <catalog>.x where the catalog is renamed (DuckDB reserves "system")
//   - CREATE CATALOG x -> ATTACH ':memory:' AS x; USE CATALOG|SCHEMA x -> USE x
//   - string literals starting with /Volumes/ -> the local volume directory
func rewriteSQL(q string, in rewriteInput) (rewriteOutput, error) {
	if m := reCreateCatalog.FindStringSubmatchIndex(q); m != nil {
		ifNot := ""
		if m[4] >= 0 {
			ifNot = "IF NOT EXISTS "
		}
		rest := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(q[m[1]:]), ";"))
		q = q[m[2]:m[3]] + "ATTACH " + ifNot + "':memory:' AS " + rest
	}
	if m := reUseKeyword.FindStringSubmatchIndex(q); m != nil {
		q = q[m[2]:m[3]] + "USE " + q[m[1]:]
	}

	var out strings.Builder
	out.Grow(len(q) + 16)
	res := rewriteOutput{}
	stmtHasCode := false
	pos := 0
	n := len(q)
	for i := 0; i < n; {
		c := q[i]
		switch {
		case c == '\'':
			end, err := scanQuoted(q, i, '\'')
			if err != nil {
				return res, err
			}
			lit := q[i:end]
			out.WriteString(mapVolumeLiteral(lit, in.volumeRoot))
			stmtHasCode = true
			i = end
		case c == '"' || c == '`':
			end, err := scanQuoted(q, i, c)
			if err != nil {
				return res, err
			}
			name := unquoteIdent(q[i:end], c)
			if end < n && q[end] == '.' && !precededByDot(q, i) {
				if dst, ok := in.catalogs[strings.ToLower(name)]; ok {
					name = dst
				}
			}
			if c == '`' || name != unquoteIdent(q[i:end], c) {
				out.WriteString(quoteIdent(name))
			} else {
				out.WriteString(q[i:end])
			}
			stmtHasCode = true
			i = end
		case c == '-' && i+1 < n && q[i+1] == '-':
			end := strings.IndexByte(q[i:], '\n')
			if end < 0 {
				end = n
			} else {
				end += i
			}
			out.WriteString(q[i:end])
			i = end
		case c == '/' && i+1 < n && q[i+1] == '*':
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				return res, fmt.Errorf("unterminated /* comment starting at offset %d", i)
			}
			end += i + 4
			out.WriteString(q[i:end])
			i = end
		case c == ';':
			if stmtHasCode {
				res.statements++
			}
			stmtHasCode = false
			out.WriteByte(c)
			i++
		case c == '?':
			if pos < len(in.positional) {
				writeMarker(&out, "?", in.positional[pos])
			} else {
				out.WriteByte('?')
			}
			pos++
			res.markers++
			stmtHasCode = true
			i++
		case c == ':' && i+1 < n && isIdentStart(q[i+1]) && (i == 0 || q[i-1] != ':'):
			end := i + 1
			for end < n && isIdentPart(q[end]) {
				end++
			}
			name := q[i+1 : end]
			if ph, ok := in.named[name]; ok {
				writeMarker(&out, "$"+name, ph)
			} else {
				out.WriteString(q[i:end])
			}
			stmtHasCode = true
			i = end
		case isIdentStart(c):
			end := i + 1
			for end < n && isIdentPart(q[end]) {
				end++
			}
			word := q[i:end]
			lower := strings.ToLower(word)
			switch {
			case end < n && q[end] == '.' && !precededByDot(q, i) && in.catalogs[lower] != "":
				out.WriteString(quoteIdent(in.catalogs[lower]))
			case lower == "current_timestamp" || lower == "current_date":
				out.WriteString(word)
				// Spark allows empty parentheses; DuckDB only knows the keyword form.
				if j := skipSpace(q, end); j < n && q[j] == '(' {
					if k := skipSpace(q, j+1); k < n && q[k] == ')' {
						end = k + 1
					}
				}
			default:
				out.WriteString(word)
			}
			stmtHasCode = true
			i = end
		case c >= '0' && c <= '9':
			end := i + 1
			for end < n && isIdentPart(q[end]) {
				end++
			}
			out.WriteString(q[i:end])
			stmtHasCode = true
			i = end
		default:
			if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				stmtHasCode = true
			}
			out.WriteByte(c)
			i++
		}
	}
	if stmtHasCode {
		res.statements++
	}
	res.sql = out.String()
	return res, nil
}

func writeMarker(out *strings.Builder, marker string, ph placeholder) {
	if ph.cast == "" {
		out.WriteString(marker)
		return
	}
	out.WriteString("CAST(")
	out.WriteString(marker)
	out.WriteString(" AS ")
	out.WriteString(ph.cast)
	out.WriteString(")")
}

// scanQuoted returns the offset just past the quoted token starting at i.
// A doubled quote character inside the token is an escaped quote.
func scanQuoted(q string, i int, quote byte) (int, error) {
	for j := i + 1; j < len(q); j++ {
		if q[j] == quote {
			if j+1 < len(q) && q[j+1] == quote {
				j++
				continue
			}
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated %c quote starting at offset %d", quote, i)
}

func unquoteIdent(tok string, quote byte) string {
	inner := tok[1 : len(tok)-1]
	q := string(quote)
	return strings.ReplaceAll(inner, q+q, q)
}

// quoteIdent quotes a DuckDB identifier.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// quoteLiteral quotes a DuckDB string literal. It is used only for values that
// DuckDB cannot take as bound parameters (ATTACH paths).
func quoteLiteral(s string) string {
	return `'` + strings.ReplaceAll(s, `'`, `''`) + `'`
}

func mapVolumeLiteral(lit, root string) string {
	if root == "" {
		return lit
	}
	inner := strings.ReplaceAll(lit[1:len(lit)-1], "''", "'")
	rel, ok := strings.CutPrefix(inner, "/Volumes/")
	if !ok {
		return lit
	}
	return quoteLiteral(filepath.Join(root, filepath.FromSlash(rel)))
}

func precededByDot(q string, i int) bool {
	j := i - 1
	for j >= 0 && (q[j] == ' ' || q[j] == '\t' || q[j] == '\n' || q[j] == '\r') {
		j--
	}
	return j >= 0 && q[j] == '.'
}

func skipSpace(q string, i int) int {
	for i < len(q) && (q[i] == ' ' || q[i] == '\t' || q[i] == '\n' || q[i] == '\r') {
		i++
	}
	return i
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isIdentPart(c byte) bool {
	return isIdentStart(c) || (c >= '0' && c <= '9')
}

var reIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// splitTableName validates a one- to three-part table name such as
// "system.ai_gateway.usage" and returns its parts.
func splitTableName(full string) ([]string, error) {
	parts := strings.Split(full, ".")
	if len(parts) < 1 || len(parts) > 3 {
		return nil, fmt.Errorf("table name %q: want [catalog.][schema.]table", full)
	}
	for _, p := range parts {
		if !reIdent.MatchString(p) {
			return nil, fmt.Errorf("table name %q: part %q is not a plain identifier", full, p)
		}
	}
	return parts, nil
}
