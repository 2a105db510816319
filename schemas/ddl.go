package schemas

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
)

// The DDL lives in ddl/<dialect>/NN_name.sql: one file per table or view,
// applied in file-name order, so a view's file sorts after its tables'.
//
//go:embed ddl
var ddlFS embed.FS

//go:embed migrations
var migrationFS embed.FS

// Statement is one DDL file.
type Statement struct {
	// Name is the table or view the file creates: the file name without its
	// NN_ prefix and .sql suffix ("01_attribution.sql" → "attribution").
	Name string
	// SQL is the whole file. It may hold several statements separated by
	// semicolons (CREATE, then COMMENT ON ...); Parts splits them for drivers
	// that run one statement per call.
	SQL string
}

var (
	dialectName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	ddlFileName = regexp.MustCompile(`^[0-9]{2}_([a-z][a-z0-9_]*)\.sql$`)
)

// Dialects lists the SQL dialects that have DDL, sorted.
func Dialects() []string {
	entries, _ := fs.ReadDir(ddlFS, "ddl") // embedded: cannot fail
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// DDL returns the statements that create obolus's tables and views in the
// given dialect ("duckdb"), ordered by file name. Every statement is
// idempotent: applying the list twice changes nothing.
func DDL(dialect string) ([]Statement, error) {
	if !dialectName.MatchString(dialect) || !slices.Contains(Dialects(), dialect) {
		return nil, fmt.Errorf("no DDL for dialect %q (have %s)", dialect, strings.Join(Dialects(), ", "))
	}
	dir := path.Join("ddl", dialect)
	entries, err := fs.ReadDir(ddlFS, dir)
	if err != nil {
		return nil, fmt.Errorf("read DDL of dialect %q: %w", dialect, err)
	}
	// fs.ReadDir sorts by file name, which is the order of application.
	out := make([]Statement, 0, len(entries))
	seen := make(map[string]string, len(entries))
	for _, e := range entries {
		m := ddlFileName.FindStringSubmatch(e.Name())
		if e.IsDir() || m == nil {
			return nil, fmt.Errorf("DDL file %s/%s is not named NN_name.sql", dir, e.Name())
		}
		if prev, dup := seen[m[1]]; dup {
			return nil, fmt.Errorf("DDL files %s and %s in %s both create %q", prev, e.Name(), dir, m[1])
		}
		seen[m[1]] = e.Name()
		b, err := fs.ReadFile(ddlFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read DDL file %s/%s: %w", dir, e.Name(), err)
		}
		out = append(out, Statement{Name: m[1], SQL: string(b)})
	}
	return out, nil
}

// requiresLine names, in a DDL file's comments, tables outside obolus's
// schema that the object reads and that the identity running init may not
// be allowed to read (system.billing.*).
var requiresLine = regexp.MustCompile(`(?m)^-- requires: *(.+)$`)

// Requires lists the outside tables the object reads, from its file's
// "-- requires:" comment; a store skips the object where it cannot read them.
func (s Statement) Requires() []string {
	m := requiresLine.FindStringSubmatch(s.SQL)
	if m == nil {
		return nil
	}
	var out []string
	for _, t := range strings.Split(m[1], ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// Parts splits the file into its statements, without the trailing semicolons
// and leaving out empty ones and comment-only ones. Semicolons inside 'string
// literals', "quoted identifiers" and -- or /* */ comments do not split.
func (s Statement) Parts() []string {
	var (
		out   []string
		start int
		code  bool // the current statement holds more than whitespace and comments
	)
	q := s.SQL
	flush := func(end int) {
		if code {
			out = append(out, strings.TrimSpace(q[start:end]))
		}
		start, code = end+1, false
	}
	for i := 0; i < len(q); i++ {
		switch c := q[i]; {
		case c == '\'' || c == '"':
			// A doubled quote inside the literal escapes it, which this loop
			// handles as closing and reopening the literal.
			j := strings.IndexByte(q[i+1:], c)
			if j < 0 {
				i = len(q)
			} else {
				i += j + 1
			}
			code = true
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				i = len(q)
			} else {
				i += j
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				i = len(q)
			} else {
				i += j + 3
			}
		case c == ';':
			flush(i)
		case c != ' ' && c != '\t' && c != '\n' && c != '\r':
			code = true
		}
	}
	flush(len(q))
	return out
}
