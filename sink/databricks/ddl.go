package databricks

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/obolus/obolus/internal/dbsql"
	"github.com/obolus/obolus/schemas"
)

// Init creates the schema (when missing) and every table and view of the
// Databricks DDL, idempotently: CREATE TABLE IF NOT EXISTS and CREATE OR
// REPLACE VIEW, so running it twice changes nothing. It returns the names of
// the objects it applied, in order; a view over tables the identity cannot
// read (the billing view over system.billing) is skipped and named so. A
// store of an older schema version is migrated first, and one of a newer
// version refused (schemas.StoreVersion).
func (s *Store) Init(ctx context.Context) ([]string, error) {
	stmts, err := schemas.DDL("databricks")
	if err != nil {
		return nil, fmt.Errorf("%w", err)
	}
	// USE must hold for every statement, and USE is per session: one connection.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("init %s: %w", s.schema, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+s.schema.Quoted()); err != nil {
		return nil, fmt.Errorf("create schema %s: %w", s.schema, err)
	}
	// Unqualified names in the DDL (and in the views' queries) resolve here.
	if _, err := conn.ExecContext(ctx, "USE "+s.schema.Quoted()); err != nil {
		return nil, fmt.Errorf("use schema %s: %w", s.schema, err)
	}
	v, err := s.Version(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx, conn, v); err != nil {
		return nil, err
	}
	var names []string
	for _, st := range stmts {
		if missing := s.unreadable(ctx, conn, st.Requires()); missing != "" {
			names = append(names, st.Name+" (skipped: cannot read "+missing+")")
			continue
		}
		for _, part := range st.Parts() {
			if _, err := conn.ExecContext(ctx, part); err != nil {
				return names, fmt.Errorf("apply DDL of %s in %s: %w", st.Name, s.schema, err)
			}
		}
		names = append(names, st.Name)
	}
	if err := s.recordVersion(ctx, conn); err != nil {
		return names, err
	}
	return names, nil
}

// unreadable returns the first of tables the connection cannot read, or "".
// The names come from obolus's own DDL files and are validated anyway.
func (s *Store) unreadable(ctx context.Context, conn *sql.Conn, tables []string) string {
	for _, t := range tables {
		name, err := dbsql.Name(t)
		if err != nil {
			return t
		}
		rows, err := conn.QueryContext(ctx, "SELECT 1 FROM "+name+" LIMIT 0")
		if err != nil {
			return t
		}
		_ = rows.Close()
	}
	return ""
}

// ViewsScript is a SQL script that creates or replaces the analyst views of
// schema (the v_ objects of the Databricks DDL), for a SQL task to run where
// obolus does not: a bundle deploys it. Views over tables the job may not be
// allowed to read (system.billing) are left out, as are the tables, which
// obolus init creates and migrates.
func ViewsScript(schema dbsql.Schema) (string, error) {
	stmts, err := schemas.DDL("databricks")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("-- obolus analyst views of " + schema.String() + ", rendered by obolus pushdown render --views-out.\n" +
		"-- The tables must exist (obolus init --target databricks). Safe to run again.\n")
	// Unqualified names in the views' queries resolve in the schema, as in Init.
	b.WriteString("USE " + schema.Quoted() + ";\n")
	for _, st := range stmts {
		if !strings.HasPrefix(st.Name, "v_") || len(st.Requires()) > 0 {
			continue
		}
		for _, part := range st.Parts() {
			b.WriteString("\n" + strings.TrimSuffix(strings.TrimSpace(part), ";") + ";\n")
		}
	}
	return b.String(), nil
}
