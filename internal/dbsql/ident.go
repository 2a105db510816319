package dbsql

import (
	"fmt"
	"regexp"
	"strings"
)

var plainIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Ident validates one identifier from configuration and returns it quoted
// with backticks, the Databricks SQL form. Only plain identifiers (letters,
// digits and _, not starting with a digit) are accepted, so the quoted text
// is the same in every SQL dialect obolus meets: the local warehouse turns
// backticks into DuckDB's double quotes.
func Ident(name string) (string, error) {
	if !plainIdent.MatchString(name) {
		return "", fmt.Errorf("%q is not a plain identifier (letters, digits and _, not starting with a digit)", name)
	}
	return "`" + name + "`", nil
}

// Name validates a one- to three-part name (catalog.schema.table) and
// returns it with each part quoted.
func Name(name string) (string, error) {
	parts := strings.Split(name, ".")
	if len(parts) > 3 {
		return "", fmt.Errorf("%q is not a table name: want [catalog.][schema.]table", name)
	}
	quoted := make([]string, len(parts))
	for i, p := range parts {
		q, err := Ident(p)
		if err != nil {
			return "", fmt.Errorf("table name %q: %w", name, err)
		}
		quoted[i] = q
	}
	return strings.Join(quoted, "."), nil
}

// MustName is Name for names the program itself spells; it panics on a
// malformed constant, never on input.
func MustName(name string) string {
	q, err := Name(name)
	if err != nil {
		panic("dbsql: " + err.Error())
	}
	return q
}

// Schema is where obolus keeps its tables: a validated catalog and schema.
type Schema struct{ Catalog, Schema string }

// NewSchema validates catalog and schema names.
func NewSchema(catalog, schema string) (Schema, error) {
	if _, err := Ident(catalog); err != nil {
		return Schema{}, fmt.Errorf("catalog: %w", err)
	}
	if _, err := Ident(schema); err != nil {
		return Schema{}, fmt.Errorf("schema: %w", err)
	}
	return Schema{catalog, schema}, nil
}

// Table returns the quoted three-part name of an obolus table in s; table
// is a name obolus itself spells.
func (s Schema) Table(table string) string {
	return MustName(s.Catalog + "." + s.Schema + "." + table)
}

// Quoted is the quoted catalog.schema.
func (s Schema) Quoted() string { return MustName(s.Catalog + "." + s.Schema) }

// String is the unquoted catalog.schema, for messages.
func (s Schema) String() string { return s.Catalog + "." + s.Schema }
