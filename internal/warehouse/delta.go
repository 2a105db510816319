package warehouse

import (
	"fmt"
	"slices"
	"strings"
)

// Databricks runs Delta DDL; DuckDB does not know its clauses. The warehouse
// translates the forms obolus's DDL uses, so clients send the statements a
// workspace runs, unchanged.

// deltaForm rewrites one Delta DDL statement into the statements DuckDB
// runs: the table or view without the Delta-only clauses (USING, CLUSTER BY,
// PARTITIONED BY, TBLPROPERTIES), then its comments as COMMENT ON
// statements; CREATE VOLUME becomes nothing, volumes being directories here.
// ok is false for a statement with none of these, which runs as it is.
func deltaForm(stmt string) (forms []string, ok bool, err error) {
	toks, err := tokenizeDDL(stmt)
	if err != nil {
		return nil, false, err
	}
	if forms, ok, err := addColumnsForm(toks); ok || err != nil {
		return forms, ok, err
	}
	if len(toks) < 2 || !strings.EqualFold(toks[0].text, "CREATE") {
		return nil, false, nil
	}
	delta := false
	for _, t := range toks {
		if t.kind == tokWord {
			switch strings.ToUpper(t.text) {
			case "USING", "CLUSTER", "PARTITIONED", "TBLPROPERTIES", "COMMENT", "VOLUME":
				delta = true
			}
		}
	}
	if !delta {
		return nil, false, nil
	}
	forms, err = translateDelta(stmt, toks)
	if err == nil && slices.Equal(forms, []string{stmt}) {
		// Nothing Delta-specific to rewrite (CREATE TABLE ... AS SELECT):
		// the statement runs as it is.
		return nil, false, nil
	}
	return forms, true, err
}

// addColumnsForm rewrites Delta's ALTER TABLE name ADD COLUMNS (def, ...),
// whose definitions may carry COMMENT, into one DuckDB ADD COLUMN per
// definition and its COMMENT ON. ok is false for any other statement.
func addColumnsForm(toks []token) (forms []string, ok bool, err error) {
	if len(toks) < 5 || !strings.EqualFold(toks[0].text, "ALTER") || !strings.EqualFold(toks[1].text, "TABLE") ||
		!strings.EqualFold(toks[3].text, "ADD") || !strings.EqualFold(toks[4].text, "COLUMNS") {
		return nil, false, nil
	}
	name := toks[2].text
	if len(toks) < 6 || toks[5].text != "(" {
		return nil, true, fmt.Errorf("ALTER TABLE %s ADD COLUMNS without a column list", name)
	}
	closeAt := matching(toks, 5)
	if closeAt < 0 {
		return nil, true, fmt.Errorf("%s: unbalanced parentheses", name)
	}
	for _, el := range splitTop(toks[6:closeAt]) {
		if len(el) == 0 {
			continue
		}
		def, comment := cutComment(el)
		forms = append(forms, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s", name, joinTokens(def)))
		if comment != "" {
			forms = append(forms, fmt.Sprintf("COMMENT ON COLUMN %s.%s IS %s", name, el[0].text, comment))
		}
	}
	return forms, true, nil
}

func translateDelta(stmt string, toks []token) ([]string, error) {
	// CREATE [OR REPLACE] {TABLE [IF NOT EXISTS] | VIEW} name ( ... ) clauses
	i := 0
	word := func(w string) bool {
		if i < len(toks) && strings.EqualFold(toks[i].text, w) {
			i++
			return true
		}
		return false
	}
	if !word("CREATE") {
		return []string{stmt}, nil
	}
	orReplace := word("OR") && word("REPLACE")
	kind := ""
	switch {
	case word("VOLUME"):
		// Volumes are plain directories on the local warehouse.
		return nil, nil
	case word("TABLE"):
		kind = "TABLE"
		if word("IF") {
			if !word("NOT") || !word("EXISTS") {
				return nil, fmt.Errorf("CREATE TABLE IF without NOT EXISTS")
			}
		}
	case word("VIEW"):
		kind = "VIEW"
	default:
		return []string{stmt}, nil
	}
	if i >= len(toks) || toks[i].kind != tokWord {
		return nil, fmt.Errorf("CREATE %s without a name", kind)
	}
	name := toks[i].text
	i++
	var (
		cols     []string // column definitions (tables) or names (views), comments removed
		comments []string // COMMENT ON statements
	)
	switch {
	case i < len(toks) && toks[i].text == "(":
		closeAt := matching(toks, i)
		if closeAt < 0 {
			return nil, fmt.Errorf("%s: unbalanced parentheses", name)
		}
		for _, el := range splitTop(toks[i+1 : closeAt]) {
			if len(el) == 0 {
				continue
			}
			def, comment := cutComment(el)
			cols = append(cols, joinTokens(def))
			if comment != "" {
				comments = append(comments, fmt.Sprintf("COMMENT ON COLUMN %s.%s IS %s", name, el[0].text, comment))
			}
		}
		i = closeAt + 1
	case kind == "TABLE":
		// CREATE TABLE ... AS SELECT and the like: nothing to translate.
		return []string{stmt}, nil
	}
	// Clauses after the column list (a view's list is optional).
	var tableComment, query string
	for i < len(toks) {
		switch {
		case word("USING"):
			i++ // the format name
		case word("CLUSTER"), word("PARTITIONED"):
			if !word("BY") || i >= len(toks) || toks[i].text != "(" {
				return nil, fmt.Errorf("%s: CLUSTER/PARTITIONED BY without a column list", name)
			}
			i = matching(toks, i) + 1
		case word("TBLPROPERTIES"):
			if i >= len(toks) || toks[i].text != "(" {
				return nil, fmt.Errorf("%s: TBLPROPERTIES without a list", name)
			}
			i = matching(toks, i) + 1
		case word("COMMENT"):
			if i >= len(toks) || toks[i].kind != tokString {
				return nil, fmt.Errorf("%s: COMMENT without a string", name)
			}
			tableComment = toks[i].text
			i++
		case kind == "VIEW" && word("AS"):
			query = stmt[toks[i].pos:]
			i = len(toks)
		default:
			return nil, fmt.Errorf("%s: unexpected %q after the column list", name, toks[i].text)
		}
	}
	var head string
	switch kind {
	case "TABLE":
		head = "CREATE TABLE IF NOT EXISTS " + name + " (\n    " + strings.Join(cols, ",\n    ") + "\n)"
	default:
		if query == "" {
			return nil, fmt.Errorf("view %s has no AS query", name)
		}
		create := "CREATE VIEW "
		if orReplace {
			create = "CREATE OR REPLACE VIEW "
		}
		head = create + name
		if len(cols) > 0 {
			head += " (" + strings.Join(cols, ", ") + ")"
		}
		head += " AS\n" + query
	}
	out := []string{head}
	if tableComment != "" {
		out = append(out, fmt.Sprintf("COMMENT ON %s %s IS %s", kind, name, tableComment))
	}
	return append(out, comments...), nil
}

type tokKind int

const (
	tokWord tokKind = iota
	tokString
	tokPunct
)

type token struct {
	kind tokKind
	text string
	pos  int
}

// tokenizeDDL splits DDL into words, 'string literals' (kept quoted), and single
// punctuation characters, dropping whitespace and comments.
func tokenizeDDL(q string) ([]token, error) {
	var toks []token
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '\'':
			j := i + 1
			for ; j < len(q); j++ {
				if q[j] == '\'' {
					if j+1 < len(q) && q[j+1] == '\'' {
						j++
						continue
					}
					break
				}
			}
			if j >= len(q) {
				return nil, fmt.Errorf("unterminated string at offset %d", i)
			}
			toks = append(toks, token{tokString, q[i : j+1], i})
			i = j + 1
		case c == '_' || c == '`' || c == '"' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(q) && (q[j] == '_' || q[j] == '.' || q[j] == '`' || q[j] == '"' || q[j] >= 'a' && q[j] <= 'z' || q[j] >= 'A' && q[j] <= 'Z' || q[j] >= '0' && q[j] <= '9') {
				j++
			}
			toks = append(toks, token{tokWord, q[i:j], i})
			i = j
		default:
			toks = append(toks, token{tokPunct, string(c), i})
			i++
		}
	}
	return toks, nil
}

// matching returns the index of the ")" closing the "(" at open, or -1.
func matching(toks []token, open int) int {
	depth := 0
	for i := open; i < len(toks); i++ {
		switch toks[i].text {
		case "(":
			depth++
		case ")":
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// splitTop splits tokens at commas outside parentheses.
func splitTop(toks []token) [][]token {
	var out [][]token
	depth, start := 0, 0
	for i, t := range toks {
		switch {
		case t.kind != tokPunct:
		case t.text == "(":
			depth++
		case t.text == ")":
			depth--
		case t.text == "," && depth == 0:
			out = append(out, toks[start:i])
			start = i + 1
		}
	}
	return append(out, toks[start:])
}

// cutComment removes a trailing COMMENT 'text' from a column definition.
func cutComment(el []token) ([]token, string) {
	n := len(el)
	if n >= 3 && strings.EqualFold(el[n-2].text, "COMMENT") && el[n-1].kind == tokString {
		return el[:n-2], el[n-1].text
	}
	return el, ""
}

func joinTokens(toks []token) string {
	parts := make([]string, len(toks))
	for i, t := range toks {
		parts[i] = t.text
	}
	s := strings.Join(parts, " ")
	return strings.NewReplacer("( ", "(", " )", ")", " ,", ",").Replace(s)
}

// replaceWhereForm rewrites Delta's INSERT INTO t REPLACE WHERE predicate
// query, which replaces the rows matching the predicate with the query's in
// one commit, into the one DuckDB statement that does the same atomically:
//
//	MERGE INTO t USING (query) AS s ON FALSE
//	WHEN NOT MATCHED BY TARGET THEN INSERT *
//	WHEN NOT MATCHED BY SOURCE AND (predicate) THEN DELETE
//
// The predicate's parameter markers move after the query's, so a query with
// markers of its own is refused. ok is false for any other statement.
func replaceWhereForm(q string) (form string, ok bool, err error) {
	toks, err := tokenizeDDL(q)
	if err != nil || len(toks) < 5 || !strings.EqualFold(toks[0].text, "INSERT") || !strings.EqualFold(toks[1].text, "INTO") {
		return "", false, nil
	}
	i := 2
	if strings.EqualFold(toks[i].text, "TABLE") {
		i++
	}
	if i+2 >= len(toks) || toks[i].kind != tokWord || !strings.EqualFold(toks[i+1].text, "REPLACE") || !strings.EqualFold(toks[i+2].text, "WHERE") {
		return "", false, nil
	}
	name, predFrom := toks[i].text, i+3
	// The query starts at the first SELECT, WITH, TABLE, VALUES or FROM
	// outside parentheses: the predicate's subqueries are inside them.
	depth, queryAt := 0, -1
	for j := predFrom; j < len(toks) && queryAt < 0; j++ {
		switch t := toks[j]; {
		case t.text == "(":
			depth++
		case t.text == ")":
			depth--
		case depth == 0 && t.kind == tokWord:
			switch strings.ToUpper(t.text) {
			case "SELECT", "WITH", "TABLE", "VALUES", "FROM":
				queryAt = j
			}
		}
	}
	if queryAt <= predFrom {
		return "", true, fmt.Errorf("INSERT INTO %s REPLACE WHERE: no predicate or no query after it", name)
	}
	for j := queryAt; j < len(toks); j++ {
		named := toks[j].text == ":" && j+1 < len(toks) && toks[j+1].kind == tokWord && toks[j-1].text != ":"
		if toks[j].kind == tokPunct && (toks[j].text == "?" || named) {
			return "", true, fmt.Errorf("INSERT INTO %s REPLACE WHERE: the local warehouse binds parameters in the predicate only, not in the query", name)
		}
	}
	pred := strings.TrimSpace(q[toks[predFrom].pos:toks[queryAt].pos])
	query := strings.TrimRight(strings.TrimSpace(q[toks[queryAt].pos:]), ";")
	return "MERGE INTO " + name + " USING (" + query + ") AS obolus_replace_source ON FALSE " +
		"WHEN NOT MATCHED BY TARGET THEN INSERT * " +
		"WHEN NOT MATCHED BY SOURCE AND (" + pred + ") THEN DELETE", true, nil
}
