package warehouse

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	dbsql "github.com/databricks/databricks-sql-go"

	obolusdbsql "github.com/obolus/obolus/internal/dbsql"
)

// Column declares one column for LoadTableAs.
type Column struct {
	Name string
	// Type in Spark SQL syntax as Databricks documents it, e.g. "string",
	// "bigint", "timestamp", "decimal(10,2)", "map<string,string>",
	// "array<struct<name:string,traffic_percent:double>>".
	Type string
}

// LoadTable creates (or replaces) table fullName ("[catalog.][schema.]table",
// e.g. "system.ai_gateway.usage") from a .jsonl/.ndjson/.json, .parquet or
// .csv file, creating the catalog and schema when missing. Column types are
// inferred by DuckDB; JSON objects become STRUCTs (use LoadTableAs for MAPs).
func (s *Server) LoadTable(ctx context.Context, fullName, file string) error {
	return s.loadTable(ctx, fullName, file, nil)
}

// LoadTableAs is LoadTable with declared columns: the table gets exactly
// these columns and types, and the file's fields are converted by name.
func (s *Server) LoadTableAs(ctx context.Context, fullName, file string, columns []Column) error {
	if len(columns) == 0 {
		return fmt.Errorf("warehouse: LoadTableAs %s: no columns declared", fullName)
	}
	return s.loadTable(ctx, fullName, file, columns)
}

func (s *Server) loadTable(ctx context.Context, fullName, file string, columns []Column) error {
	parts, err := splitTableName(fullName)
	if err != nil {
		return fmt.Errorf("warehouse: LoadTable: %w", err)
	}
	var defs, structFields []string
	for i, c := range columns {
		if !reIdent.MatchString(c.Name) {
			return fmt.Errorf("warehouse: LoadTable %s: column %d name %q is not a plain identifier", fullName, i+1, c.Name)
		}
		dt, err := sparkTypeToDuck(c.Type)
		if err != nil {
			return fmt.Errorf("warehouse: LoadTable %s: column %s: %w", fullName, c.Name, err)
		}
		defs = append(defs, quoteIdent(c.Name)+" "+dt)
		// The readers' column lists are struct literals of type names; both
		// parts were validated above.
		structFields = append(structFields, quoteLiteral(c.Name)+": "+quoteLiteral(dt))
	}
	var reader string
	switch ext := strings.ToLower(filepath.Ext(file)); ext {
	case ".jsonl", ".ndjson", ".json":
		reader = "read_json(?"
		if ext != ".json" {
			reader += ", format = 'newline_delimited'"
		}
		if columns != nil {
			reader += ", columns = {" + strings.Join(structFields, ", ") + "}"
		}
		reader += ")"
	case ".parquet":
		reader = "read_parquet(?)"
	case ".csv":
		reader = "read_csv(?"
		if columns != nil {
			reader += ", header = true, columns = {" + strings.Join(structFields, ", ") + "}"
		}
		reader += ")"
	default:
		return fmt.Errorf("warehouse: LoadTable %s: unsupported file type %q (want .jsonl, .ndjson, .json, .parquet or .csv)", fullName, ext)
	}
	if _, err := os.Stat(file); err != nil {
		return fmt.Errorf("warehouse: LoadTable %s: %w", fullName, err)
	}
	var target string
	switch len(parts) {
	case 3:
		cat := s.duckCatalog(parts[0])
		if err := s.ensureCatalog(ctx, cat); err != nil {
			return err
		}
		if _, err := s.db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+quoteIdent(cat)+"."+quoteIdent(parts[1])); err != nil {
			return fmt.Errorf("warehouse: LoadTable %s: creating schema: %w", fullName, err)
		}
		target = quoteIdent(cat) + "." + quoteIdent(parts[1]) + "." + quoteIdent(parts[2])
	case 2:
		if _, err := s.db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+quoteIdent(parts[0])); err != nil {
			return fmt.Errorf("warehouse: LoadTable %s: creating schema: %w", fullName, err)
		}
		target = quoteIdent(parts[0]) + "." + quoteIdent(parts[1])
	default:
		target = quoteIdent(parts[0])
	}
	if columns == nil {
		if _, err := s.db.ExecContext(ctx, "CREATE OR REPLACE TABLE "+target+" AS SELECT * FROM "+reader, file); err != nil {
			return fmt.Errorf("warehouse: LoadTable %s from %s: %w", fullName, file, err)
		}
		return nil
	}
	if _, err := s.db.ExecContext(ctx, "CREATE OR REPLACE TABLE "+target+" ("+strings.Join(defs, ", ")+")"); err != nil {
		return fmt.Errorf("warehouse: LoadTable %s: creating table: %w", fullName, err)
	}
	if _, err := s.db.ExecContext(ctx, "INSERT INTO "+target+" BY NAME SELECT * FROM "+reader, file); err != nil {
		return fmt.Errorf("warehouse: LoadTable %s from %s: %w", fullName, file, err)
	}
	return nil
}

// sparkTypeToDuck translates a Spark SQL type name to DuckDB's spelling.
func sparkTypeToDuck(spark string) (string, error) {
	p := sparkTypeParser{s: spark}
	t, err := p.parse()
	if err != nil {
		return "", fmt.Errorf("type %q: %w", spark, err)
	}
	p.space()
	if p.i != len(p.s) {
		return "", fmt.Errorf("type %q: unexpected text at offset %d", spark, p.i)
	}
	return t, nil
}

type sparkTypeParser struct {
	s string
	i int
}

func (p *sparkTypeParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n') {
		p.i++
	}
}

func (p *sparkTypeParser) expect(c byte) error {
	p.space()
	if p.i >= len(p.s) || p.s[p.i] != c {
		return fmt.Errorf("expected %q at offset %d", c, p.i)
	}
	p.i++
	return nil
}

func (p *sparkTypeParser) word() string {
	p.space()
	start := p.i
	for p.i < len(p.s) && isIdentPart(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

var sparkScalars = map[string]string{
	"string": "VARCHAR", "varchar": "VARCHAR", "char": "VARCHAR",
	"boolean": "BOOLEAN", "tinyint": "TINYINT", "byte": "TINYINT", "smallint": "SMALLINT", "short": "SMALLINT",
	"int": "INTEGER", "integer": "INTEGER", "bigint": "BIGINT", "long": "BIGINT",
	"float": "FLOAT", "real": "FLOAT", "double": "DOUBLE", "date": "DATE",
	"timestamp": "TIMESTAMPTZ", "timestamp_ltz": "TIMESTAMPTZ", "timestamp_ntz": "TIMESTAMP",
	"binary": "BLOB", "decimal": "DECIMAL(10,0)", "void": "INTEGER",
}

func (p *sparkTypeParser) parse() (string, error) {
	w := strings.ToLower(p.word())
	switch w {
	case "":
		return "", fmt.Errorf("expected a type at offset %d", p.i)
	case "decimal", "numeric", "dec":
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != '(' {
			return "DECIMAL(10,0)", nil
		}
		p.i++
		prec, err := strconv.Atoi(p.word())
		if err != nil || prec < 1 || prec > 38 {
			return "", fmt.Errorf("decimal precision at offset %d: want 1..38", p.i)
		}
		scale := 0
		p.space()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			if scale, err = strconv.Atoi(p.word()); err != nil || scale < 0 || scale > prec {
				return "", fmt.Errorf("decimal scale at offset %d: want 0..precision", p.i)
			}
		}
		if err := p.expect(')'); err != nil {
			return "", err
		}
		return fmt.Sprintf("DECIMAL(%d,%d)", prec, scale), nil
	case "varchar", "char":
		p.space()
		if p.i < len(p.s) && p.s[p.i] == '(' { // length limits do not exist in DuckDB
			p.i++
			if _, err := strconv.Atoi(p.word()); err != nil {
				return "", fmt.Errorf("%s length at offset %d", w, p.i)
			}
			if err := p.expect(')'); err != nil {
				return "", err
			}
		}
		return "VARCHAR", nil
	case "array":
		if err := p.expect('<'); err != nil {
			return "", err
		}
		elem, err := p.parse()
		if err != nil {
			return "", err
		}
		if err := p.expect('>'); err != nil {
			return "", err
		}
		return elem + "[]", nil
	case "map":
		if err := p.expect('<'); err != nil {
			return "", err
		}
		k, err := p.parse()
		if err != nil {
			return "", err
		}
		if err := p.expect(','); err != nil {
			return "", err
		}
		v, err := p.parse()
		if err != nil {
			return "", err
		}
		if err := p.expect('>'); err != nil {
			return "", err
		}
		return "MAP(" + k + ", " + v + ")", nil
	case "struct":
		if err := p.expect('<'); err != nil {
			return "", err
		}
		var fields []string
		for {
			name := p.word()
			if name == "" {
				return "", fmt.Errorf("expected a field name at offset %d", p.i)
			}
			if err := p.expect(':'); err != nil {
				return "", err
			}
			ft, err := p.parse()
			if err != nil {
				return "", err
			}
			fields = append(fields, quoteIdent(name)+" "+ft)
			p.space()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
				continue
			}
			if err := p.expect('>'); err != nil {
				return "", err
			}
			return "STRUCT(" + strings.Join(fields, ", ") + ")", nil
		}
	}
	if d, known := sparkScalars[w]; known {
		return d, nil
	}
	return "", fmt.Errorf("unknown type %q", w)
}

// ConnOptions are databricks-sql-go connector options that reach this
// server (host, port, HTTP path, token) for a warehouse id; with Config.TLS
// they include a transport that trusts the server's certificate. Add
// dbsql.WithRetries(-1, 0, 0) in tests that should fail fast. Unlike DSN it
// cannot turn telemetry off; the driver's feature-flag probe to
// https://127.0.0.1:443 then just fails. It needs Start; before that it
// returns nil.
func (s *Server) ConnOptions(warehouseID string) []dbsql.ConnOption {
	s.mu.Lock()
	base := s.baseURL
	s.mu.Unlock()
	u, err := url.Parse(base)
	if err != nil || u.Port() == "" {
		return nil
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return nil
	}
	opts := []dbsql.ConnOption{
		dbsql.WithServerHostname(u.Scheme + "://" + u.Hostname()),
		dbsql.WithPort(port),
		dbsql.WithHTTPPath(thriftPathPrefix + warehouseID),
		dbsql.WithAccessToken(s.cfg.Token),
	}
	if s.cfg.TLS {
		t, ok := obolusdbsql.TrustingTransport(s.certPEM)
		if !ok {
			return nil
		}
		opts = append(opts, dbsql.WithTransport(t))
	}
	return opts
}
