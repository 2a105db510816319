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

// identPattern matches one plain, "double quoted" or `backtick` identifier.
const identPattern = `(?:"(?:[^"]|"")*"|` + "`(?:[^`]|``)*`" + `|[A-Za-z_][A-Za-z0-9_]*)`

var (
	reCreateCatalog = regexp.MustCompile(`(?is)^(` + leadingComments + `)CREATE\s+CATALOG\s+(IF\s+NOT\s+EXISTS\s+)?(` + identPattern + `)\s*;?\s*$`)
	reUse           = regexp.MustCompile(`(?is)^(` + leadingComments + `)USE\s+(?:(?:(CATALOG)|SCHEMA|DATABASE)\s+)?(` + identPattern + `)(?:\s*\.\s*(` + identPattern + `))?\s*;?\s*$`)
	reSchemaDDL     = regexp.MustCompile(`(?is)^(` + leadingComments + `)(CREATE|DROP)\s+(?:SCHEMA|DATABASE)\s+(IF\s+(?:NOT\s+)?EXISTS\s+)?(` + identPattern + `)\s*\.\s*(` + identPattern + `)`)
	// Session variables (Databricks SQL, DBR 14.1+). The statement may open
	// with comment lines, as the statements of a rendered script do.
	//   DECLARE [OR REPLACE] [VARIABLE] name [type] [{DEFAULT | =} expr]
	//   https://docs.databricks.com/sql/language-manual/sql-ref-syntax-ddl-declare-variable.html
	//   SET {VAR | VARIABLE} name = expr
	//   https://docs.databricks.com/sql/language-manual/sql-ref-syntax-aux-set-variable.html
	// Only one unqualified or session-qualified name per statement: the
	// forms obolus's scripts use.
	reDeclareVar = regexp.MustCompile(`(?is)^(` + leadingComments + `)DECLARE\s+(?:OR\s+REPLACE\s+)?(?:VARIABLE\s+)?` + varNamePattern +
		`(?:\s+([A-Za-z_][A-Za-z0-9_]*(?:\s*\([0-9,\s]*\))?))?\s*(?:(?:DEFAULT\b|=)\s*(.*?))?\s*;?\s*$`)
	reSetVar = regexp.MustCompile(`(?is)^(` + leadingComments + `)SET\s+VAR(?:IABLE)?\s+` + varNamePattern + `\s*=\s*(.*?)\s*;?\s*$`)
)

// leadingComments matches the white space and -- comment lines a statement
// may open with (a script's statements carry their comments).
const leadingComments = `(?:\s|--[^\n]*(?:\n|$))*`

// varNamePattern captures a variable name, optionally qualified with
// session or system.session (the schema session variables live in).
const varNamePattern = `(?:(?:system\s*\.\s*)?session\s*\.\s*)?([A-Za-z_][A-Za-z0-9_]*)`

// rewriteVariables turns Databricks session-variable statements into DuckDB's
// SET VARIABLE, which both declares and assigns: DECLARE becomes an
// assignment of the default (NULL without one) cast to the declared type,
// SET VAR an assignment. References are rewritten by rewriteSQL.
func rewriteVariables(q string) string {
	if m := reDeclareVar.FindStringSubmatch(q); m != nil && !strings.EqualFold(m[3], "DEFAULT") {
		val := m[4]
		if val == "" {
			val = "NULL"
		}
		if m[3] != "" {
			val = "CAST(" + val + " AS " + m[3] + ")"
		}
		return m[1] + "SET VARIABLE " + strings.ToLower(m[2]) + " = " + val
	}
	if m := reSetVar.FindStringSubmatch(q); m != nil {
		return m[1] + "SET VARIABLE " + strings.ToLower(m[2]) + " = " + m[3]
	}
	return q
}

// parseIdent returns the name a token matched by identPattern stands for.
func parseIdent(tok string) string {
	if tok != "" && (tok[0] == '"' || tok[0] == '`') {
		return unquoteIdent(tok, tok[0])
	}
	return tok
}

// catalogIdent is the quoted DuckDB identifier for a Spark catalog token.
func catalogIdent(tok string, catalogs map[string]string) string {
	name := parseIdent(tok)
	if dst, ok := catalogs[strings.ToLower(name)]; ok {
		name = dst
	}
	return quoteIdent(name)
}

// rewriteStatementForm handles the Spark statements whose catalog part DuckDB
// spells differently: CREATE CATALOG, USE CATALOG|SCHEMA, CREATE|DROP SCHEMA c.s.
func rewriteStatementForm(q string, catalogs map[string]string) string {
	if v := rewriteVariables(q); v != q {
		return v
	}
	if m := reCreateCatalog.FindStringSubmatch(q); m != nil {
		ifNot := ""
		if m[2] != "" {
			ifNot = "IF NOT EXISTS "
		}
		return m[1] + "ATTACH " + ifNot + "':memory:' AS " + catalogIdent(m[3], catalogs)
	}
	if m := reUse.FindStringSubmatch(q); m != nil {
		switch {
		case m[2] != "": // USE CATALOG c
			return m[1] + "USE " + catalogIdent(m[3], catalogs)
		case m[4] != "": // USE c.s
			return m[1] + "USE " + catalogIdent(m[3], catalogs) + "." + quoteIdent(parseIdent(m[4]))
		default: // USE [SCHEMA] s
			return m[1] + "USE " + quoteIdent(parseIdent(m[3]))
		}
	}
	if m := reSchemaDDL.FindStringSubmatchIndex(q); m != nil {
		ifClause := ""
		if m[6] >= 0 {
			ifClause = strings.ToUpper(strings.Join(strings.Fields(q[m[6]:m[7]]), " ")) + " "
		}
		return q[m[2]:m[3]] + strings.ToUpper(q[m[4]:m[5]]) + " SCHEMA " + ifClause +
			catalogIdent(q[m[8]:m[9]], catalogs) + "." + quoteIdent(parseIdent(q[m[10]:m[11]])) + q[m[1]:]
	}
	return q
}

// rewriteSQL turns the Spark SQL the driver sends into DuckDB SQL, touching
// only code outside string literals, quoted identifiers and comments:
//   - `ident` -> "ident"
//   - current_timestamp() -> current_timestamp (and current_date)
//   - :name -> $name (only for names that were bound) and ? kept, each
//     optionally wrapped in CAST(... AS type)
//   - the catalog of a three-part name when DuckDB reserves it (system, main, temp)
//   - CREATE CATALOG x -> ATTACH ':memory:' AS x; USE CATALOG|SCHEMA x -> USE x
//   - string literals starting with /Volumes/ -> the local volume directory
//   - Spark functions DuckDB names differently (sparkFuncs)
//   - DECLARE VARIABLE / SET VAR -> SET VARIABLE (rewriteVariables), and a
//     variable referenced as system.session.name -> getvariable('name')
func rewriteSQL(q string, in rewriteInput) (rewriteOutput, error) {
	q = rewriteStatementForm(q, in.catalogs)

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
			if dst, ok := in.catalogs[strings.ToLower(name)]; ok && startsThreePartName(q, i, end) {
				name = dst
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
			if v, vend, ok := sessionVariable(q, i, end); ok {
				out.WriteString("getvariable(" + quoteLiteral(v) + ")")
				stmtHasCode = true
				i = vend
				continue
			}
			switch {
			case in.catalogs[lower] != "" && startsThreePartName(q, i, end):
				out.WriteString(quoteIdent(in.catalogs[lower]))
			case lower == "current_timestamp" || lower == "current_date":
				out.WriteString(word)
				// Spark allows empty parentheses; DuckDB only knows the keyword form.
				if j := skipSpace(q, end); j < n && q[j] == '(' {
					if k := skipSpace(q, j+1); k < n && q[k] == ')' {
						end = k + 1
					}
				}
			case sparkFuncs[lower] != "" && nextNonSpace(q, end) == '(':
				out.WriteString(sparkFuncs[lower])
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

// sparkFuncs maps Spark functions to DuckDB's names for the same function
// and arguments; filter, map_keys, to_json and lambdas (k -> ...) need no
// change. get_json_object and json_extract_string both take a '$.a.b' path
// and give NULL where it leads nowhere.
//
// unix_micros(ts) (microseconds since the epoch) is DuckDB's epoch_us(ts):
// https://docs.databricks.com/sql/language-manual/functions/unix_micros.html
// raise_error(msg) fails the statement with msg, as DuckDB's error(msg):
// https://docs.databricks.com/sql/language-manual/functions/raise_error.html
// array_join(array, delimiter) concatenates the elements, skipping NULLs, as
// DuckDB's array_to_string(list, delimiter) does:
// https://docs.databricks.com/sql/language-manual/functions/array_join.html
var sparkFuncs = map[string]string{"array_min": "list_min", "array_max": "list_max", "get_json_object": "json_extract_string",
	"unix_micros": "epoch_us", "raise_error": "error", "array_join": "array_to_string"}

// sessionVariable recognises a session variable referenced by its fully
// qualified name, system.session.name, at the word q[i:end]; DuckDB reads it
// as getvariable('name'). Databricks also resolves a bare name to a variable
// when no column has it, which no rewrite can tell apart, so obolus's
// scripts always qualify: see "Variables" at
// https://docs.databricks.com/sql/language-manual/sql-ref-variables.html
func sessionVariable(q string, i, end int) (name string, next int, ok bool) {
	if !strings.EqualFold(q[i:end], "system") || precededByDot(q, i) {
		return "", 0, false
	}
	j := skipSpace(q, end)
	if j >= len(q) || q[j] != '.' {
		return "", 0, false
	}
	j = skipSpace(q, j+1)
	k, found := identEnd(q, j)
	if !found || !strings.EqualFold(q[j:k], "session") {
		return "", 0, false
	}
	j = skipSpace(q, k)
	if j >= len(q) || q[j] != '.' {
		return "", 0, false
	}
	j = skipSpace(q, j+1)
	if j >= len(q) || !isIdentStart(q[j]) {
		return "", 0, false
	}
	k, _ = identEnd(q, j)
	return strings.ToLower(q[j:k]), k, true
}

// nextNonSpace is the first byte at or after i that is not white space, or 0.
func nextNonSpace(q string, i int) byte {
	if j := skipSpace(q, i); j < len(q) {
		return q[j]
	}
	return 0
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

// startsThreePartName reports whether the identifier q[i:end] is the first
// part of a name with at least three parts (catalog.schema.table): only then
// is it a catalog in Spark SQL.
func startsThreePartName(q string, i, end int) bool {
	if precededByDot(q, i) {
		return false
	}
	j := end
	for part := 0; part < 2; part++ {
		if j >= len(q) || q[j] != '.' {
			return false
		}
		j++
		next, found := identEnd(q, j)
		if !found {
			return false
		}
		j = next
	}
	return true
}

// identEnd returns the end of the identifier token starting at i.
func identEnd(q string, i int) (int, bool) {
	if i >= len(q) {
		return 0, false
	}
	switch c := q[i]; {
	case c == '"' || c == '`':
		end, err := scanQuoted(q, i, c)
		return end, err == nil
	case isIdentStart(c):
		j := i + 1
		for j < len(q) && isIdentPart(q[j]) {
			j++
		}
		return j, true
	}
	return 0, false
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
