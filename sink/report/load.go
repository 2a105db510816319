package report

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// loadField maps one column (or struct field) of a store table to where it
// sits in an exported file.
type loadField struct {
	target   string // column, or column.field for struct fields (DDL order)
	typ      string // VARCHAR, TIMESTAMP, DATE, DECIMAL, MAP
	required bool
}

type loadSpec struct {
	name   string // what the file holds, for messages
	table  string
	key    []string // columns identifying a row: repeats in a file are an error, and loading replaces stored rows with the same key
	fields []loadField
	// aliases are other names a field's value may come under, by target:
	// a row takes the first that it has, then the target's own.
	aliases map[string][]string
}

var billingUsageSpec = loadSpec{
	name:  "billing usage",
	table: "billing_usage",
	key:   []string{"record_id"},
	fields: []loadField{
		{"record_id", "VARCHAR", true},
		{"account_id", "VARCHAR", false},
		{"workspace_id", "VARCHAR", false},
		{"sku_name", "VARCHAR", true},
		{"cloud", "VARCHAR", true},
		{"usage_start_time", "TIMESTAMP", true},
		{"usage_end_time", "TIMESTAMP", true},
		{"usage_date", "DATE", false},
		{"custom_tags", "MAP", false},
		{"usage_unit", "VARCHAR", true},
		{"usage_quantity", "DECIMAL", true},
		{"usage_metadata.endpoint_name", "VARCHAR", false},
		{"usage_metadata.endpoint_id", "VARCHAR", false},
		{"usage_metadata.ai_gateway_endpoint_name", "VARCHAR", false},
		{"usage_metadata.ai_gateway_endpoint_id", "VARCHAR", false},
		{"usage_metadata.ai_gateway_destination_model", "VARCHAR", false},
		{"usage_metadata.ai_gateway_destination_id", "VARCHAR", false},
		{"identity_metadata.run_as", "VARCHAR", false},
		{"identity_metadata.run_by", "VARCHAR", false},
		{"identity_metadata.owned_by", "VARCHAR", false},
		{"identity_metadata.created_by", "VARCHAR", false},
		{"record_type", "VARCHAR", false},
		{"ingestion_date", "DATE", false},
		{"billing_origin_product", "VARCHAR", false},
		{"usage_type", "VARCHAR", false},
	},
	// The gateway's billing fields were flat in the Beta
	// (usage_metadata.ai_gateway_endpoint_name) and are a struct at GA
	// (usage_metadata.ai_gateway.endpoint_name); an export may hold either,
	// and the store keeps the flat names.
	aliases: gatewayBillingAliases(),
}

// gatewayBillingFields are the gateway's usage_metadata fields, by their GA
// name inside usage_metadata.ai_gateway.
var gatewayBillingFields = []string{"endpoint_name", "endpoint_id", "destination_model", "destination_id"}

func gatewayBillingAliases() map[string][]string {
	out := map[string][]string{}
	for _, f := range gatewayBillingFields {
		out["usage_metadata.ai_gateway_"+f] = []string{"usage_metadata.ai_gateway." + f}
	}
	return out
}

var listPricesSpec = loadSpec{
	name:  "list prices",
	table: "billing_list_prices",
	key:   []string{"sku_name", "cloud", "usage_unit", "currency_code", "price_start_time"},
	fields: []loadField{
		{"account_id", "VARCHAR", false},
		{"price_start_time", "TIMESTAMP", true},
		{"price_end_time", "TIMESTAMP", false},
		{"sku_name", "VARCHAR", true},
		{"cloud", "VARCHAR", true},
		{"currency_code", "VARCHAR", true},
		{"usage_unit", "VARCHAR", true},
		{"pricing.default", "DECIMAL", false},
		{"pricing.promotional.default", "DECIMAL", false},
		{"pricing.effective_list.default", "DECIMAL", true},
	},
}

// LoadBillingUsage loads an export of system.billing.usage (JSON lines,
// CSV or Parquet, told apart by extension; .gz allowed for JSON and CSV) into
// the DuckDB store's billing_usage table, replacing records with the same
// record_id, and returns how many it loaded. Nested columns may be structs
// (Parquet, JSON objects), JSON text (CSV cells) or flattened columns named
// usage_metadata.ai_gateway_endpoint_id; fields the file lacks load as NULL.
// JSON numbers are read as doubles (about 16 significant digits); quote
// decimals as strings, or use Parquet, to keep every digit.
func LoadBillingUsage(ctx context.Context, db *sql.DB, path string) (int64, error) {
	return load(ctx, db, billingUsageSpec, path)
}

// LoadListPrices loads an export of system.billing.list_prices into the
// store's billing_list_prices table the same way, replacing rows with the same
// sku_name, cloud, usage_unit, currency_code and price_start_time.
func LoadListPrices(ctx context.Context, db *sql.DB, path string) (int64, error) {
	return load(ctx, db, listPricesSpec, path)
}

const (
	loadRaw  = "obolus_load_raw"
	loadNorm = "obolus_load_norm"
)

func readerFor(path string) (string, error) {
	base := strings.ToLower(strings.TrimSuffix(filepath.Base(path), ".gz"))
	switch filepath.Ext(base) {
	case ".json", ".jsonl", ".ndjson":
		return "read_json(?, format = 'auto', sample_size = -1)", nil
	case ".csv":
		return "read_csv(?, header = true, all_varchar = true)", nil
	case ".parquet":
		if strings.HasSuffix(strings.ToLower(path), ".gz") {
			break
		}
		return "read_parquet(?)", nil
	}
	return "", fmt.Errorf("%s: unknown format: name it .jsonl, .json, .csv or .parquet", path)
}

func load(ctx context.Context, db *sql.DB, spec loadSpec, path string) (n int64, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("report: load %s from %s: %w", spec.name, path, err)
		}
	}()
	reader, err := readerFor(path)
	if err != nil {
		return 0, err
	}
	// Temporary tables live on one connection.
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	defer func() {
		for _, t := range []string{loadRaw, loadNorm} {
			_, _ = conn.ExecContext(context.Background(), "DROP TABLE IF EXISTS temp.main."+t)
		}
	}()
	if _, err := conn.ExecContext(ctx, "SET TimeZone = 'UTC'"); err != nil {
		return 0, err
	}
	if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TEMP TABLE "+loadRaw+" AS SELECT * FROM "+reader, path); err != nil {
		return 0, err
	}
	types, err := columnTypes(ctx, conn, loadRaw)
	if err != nil {
		return 0, err
	}
	sel, err := normaliseSelect(ctx, conn, spec, types)
	if err != nil {
		return 0, err
	}
	if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TEMP TABLE "+loadNorm+" AS "+sel); err != nil {
		return 0, err
	}
	if err := validateLoad(ctx, conn, spec); err != nil {
		return 0, err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	keys := quoteList(spec.key)
	if _, err := tx.ExecContext(ctx, "DELETE FROM "+quoteDuck(spec.table)+" WHERE ("+keys+") IN (SELECT "+keys+" FROM "+loadNorm+")"); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, "INSERT INTO "+quoteDuck(spec.table)+" BY NAME SELECT * FROM "+loadNorm)
	if err != nil {
		return 0, err
	}
	if n, err = res.RowsAffected(); err != nil {
		return 0, err
	}
	return n, tx.Commit()
}

func quoteDuck(ident string) string { return `"` + strings.ReplaceAll(ident, `"`, `""`) + `"` }

func quoteList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = quoteDuck(c)
	}
	return strings.Join(q, ", ")
}

// columnTypes maps each lower-cased column name of table to its name and DuckDB type.
func columnTypes(ctx context.Context, conn *sql.Conn, table string) (map[string][2]string, error) {
	rows, err := conn.QueryContext(ctx, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position", table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][2]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, err
		}
		out[strings.ToLower(name)] = [2]string{name, strings.ToUpper(typ)}
	}
	if len(out) == 0 && rows.Err() == nil {
		return nil, errors.New("the file has no columns")
	}
	return out, rows.Err()
}

// sourceExpr finds a field in the raw table: a top-level column, a struct
// field, a key of a JSON text column, or a flattened column named a.b.c.
// It returns the expression and the type of the column it reads, or "" when
// the file does not have the field.
func sourceExpr(ctx context.Context, conn *sql.Conn, types map[string][2]string, path []string) (string, string) {
	if col, ok := types[strings.ToLower(strings.Join(path, "."))]; ok {
		return "s." + quoteDuck(col[0]), col[1]
	}
	if len(path) == 1 {
		return "", ""
	}
	top, ok := types[strings.ToLower(path[0])]
	if !ok {
		return "", ""
	}
	switch {
	case strings.HasPrefix(top[1], "STRUCT"):
		e := "s." + quoteDuck(top[0])
		for _, p := range path[1:] {
			e += "." + quoteDuck(p)
		}
		// The struct may lack the field: ask DuckDB rather than parse the type.
		var typ string
		if err := conn.QueryRowContext(ctx, "SELECT typeof("+e+") FROM "+loadRaw+" s LIMIT 1").Scan(&typ); err != nil {
			return "", ""
		}
		return e, strings.ToUpper(typ)
	case top[1] == "VARCHAR" || top[1] == "JSON":
		jp := "$"
		for _, p := range path[1:] {
			jp += `."` + p + `"`
		}
		return "json_extract_string(s." + quoteDuck(top[0]) + ", '" + jp + "')", "VARCHAR"
	}
	return "", ""
}

func convert(expr, srcType, typ string) string {
	switch typ {
	case "TIMESTAMP":
		return "CAST(CAST(" + expr + " AS TIMESTAMPTZ) AS TIMESTAMP)"
	case "DATE":
		return "CAST(" + expr + " AS DATE)"
	case "DECIMAL":
		// Through text, so that a double's shortest spelling (0.07) is what
		// becomes the decimal, not its binary expansion.
		return "CAST(CAST(" + expr + " AS VARCHAR) AS DECIMAL(38,18))"
	case "MAP":
		switch {
		case strings.HasPrefix(srcType, "MAP"):
			return "CAST(" + expr + " AS MAP(VARCHAR, VARCHAR))"
		case strings.HasPrefix(srcType, "STRUCT"):
			return "CAST(to_json(" + expr + ") AS MAP(VARCHAR, VARCHAR))"
		default:
			return "CAST(json(nullif(" + expr + ", '')) AS MAP(VARCHAR, VARCHAR))"
		}
	}
	return "CAST(" + expr + " AS VARCHAR)"
}

// normaliseSelect builds the SELECT that turns the raw file into the target
// table's shape, struct columns assembled with struct_pack.
func normaliseSelect(ctx context.Context, conn *sql.Conn, spec loadSpec, types map[string][2]string) (string, error) {
	type node struct {
		name     string
		expr     string
		children []*node
	}
	var roots []*node
	find := func(list *[]*node, name string) *node {
		for _, n := range *list {
			if n.name == name {
				return n
			}
		}
		n := &node{name: name}
		*list = append(*list, n)
		return n
	}
	for _, f := range spec.fields {
		var exprs []string
		for _, name := range append(slices.Clone(spec.aliases[f.target]), f.target) {
			if expr, srcType := sourceExpr(ctx, conn, types, strings.Split(name, ".")); expr != "" {
				exprs = append(exprs, convert(expr, srcType, f.typ))
			}
		}
		switch {
		case len(exprs) == 0 && f.required:
			return "", fmt.Errorf("no column %s (have %s)", f.target, strings.Join(sortedNames(types), ", "))
		case len(exprs) == 0:
			exprs = []string{convert("NULL", "VARCHAR", f.typ)}
		case len(exprs) > 1:
			exprs = []string{"coalesce(" + strings.Join(exprs, ", ") + ")"}
		}
		list := &roots
		var n *node
		for _, p := range strings.Split(f.target, ".") {
			n = find(list, p)
			list = &n.children
		}
		n.expr = exprs[0]
	}
	var render func(n *node) string
	render = func(n *node) string {
		if len(n.children) == 0 {
			return n.expr
		}
		parts := make([]string, len(n.children))
		for i, c := range n.children {
			parts[i] = quoteDuck(c.name) + " := " + render(c)
		}
		return "struct_pack(" + strings.Join(parts, ", ") + ")"
	}
	cols := make([]string, len(roots))
	for i, r := range roots {
		cols[i] = render(r) + " AS " + quoteDuck(r.name)
	}
	return "SELECT " + strings.Join(cols, ", ") + " FROM " + loadRaw + " s", nil
}

func sortedNames(types map[string][2]string) []string {
	out := make([]string, 0, len(types))
	for _, t := range types {
		out = append(out, t[0])
	}
	slices.Sort(out)
	return out
}

// validateLoad names the first record with a missing required field or a
// repeated key.
func validateLoad(ctx context.Context, conn *sql.Conn, spec loadSpec) error {
	keyExpr := "concat_ws(', ', " + strings.Join(func() []string {
		out := make([]string, len(spec.key))
		for i, k := range spec.key {
			out[i] = "'" + k + " ' || coalesce(CAST(" + exprOf(k) + " AS VARCHAR), 'NULL')"
		}
		return out
	}(), ", ") + ")"
	for _, f := range spec.fields {
		if !f.required {
			continue
		}
		var id string
		var row int64
		q := "SELECT " + keyExpr + ", n FROM (SELECT *, row_number() OVER () AS n FROM " + loadNorm + ") WHERE " + exprOf(f.target) + " IS NULL LIMIT 1"
		err := conn.QueryRowContext(ctx, q).Scan(&id, &row)
		if err == nil {
			return fmt.Errorf("record %d (%s): %s is missing or NULL", row, id, f.target)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
	}
	var id string
	var count int64
	keys := quoteList(spec.key)
	err := conn.QueryRowContext(ctx, "SELECT "+keyExpr+", count(*) FROM "+loadNorm+" GROUP BY "+keys+" HAVING count(*) > 1 ORDER BY "+keys+" LIMIT 1").Scan(&id, &count)
	if err == nil {
		return fmt.Errorf("%s appears %d times", id, count)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	return nil
}

// exprOf is the SQL for a target path in the normalised table.
func exprOf(target string) string {
	parts := strings.Split(target, ".")
	for i, p := range parts {
		parts[i] = quoteDuck(p)
	}
	return strings.Join(parts, ".")
}
