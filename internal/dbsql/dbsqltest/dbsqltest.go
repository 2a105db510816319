// Package dbsqltest starts the local warehouse for tests of the Databricks
// path and points obolus's Databricks configuration at it.
package dbsqltest

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/dbsql"
	"github.com/obolus/obolus/internal/warehouse"
)

// Token is the bearer token the test warehouse accepts.
const Token = "dapi-obolus-test-0123456789abcdef"

// Warehouse is a running local warehouse and a configuration that reaches it.
type Warehouse struct {
	Server *warehouse.Server
	// Config reaches the server with the right token, no retries and the
	// default catalog and schema (main.obolus).
	Config config.Databricks
}

// Start starts a local warehouse on a random loopback port; it stops when
// the test ends. cfg.Token is filled in when empty.
func Start(t testing.TB, cfg warehouse.Config) *Warehouse {
	t.Helper()
	if cfg.Token == "" {
		cfg.Token = Token
	}
	s, err := warehouse.New(cfg)
	if err != nil {
		t.Fatalf("warehouse.New: %v", err)
	}
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		_ = s.Close()
		t.Fatalf("warehouse Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("warehouse Close: %v", err)
		}
	})
	w := &Warehouse{Server: s, Config: ConfigFor(base, cfg.Token)}
	if cfg.TLS {
		// obolus trusts the server's own certificate the way a user trusts
		// a private CA: databricks.ca_file.
		w.Config.CAFile = filepath.Join(t.TempDir(), "warehouse-ca.pem")
		if err := os.WriteFile(w.Config.CAFile, s.CertificatePEM(), 0o600); err != nil {
			t.Fatalf("write warehouse certificate: %v", err)
		}
	}
	return w
}

// ConfigFor is a databricks section for the local warehouse at base
// ("http://127.0.0.1:PORT") with defaults for everything else.
func ConfigFor(base, token string) config.Databricks {
	v := config.New()
	c, err := config.Load(v, "")
	if err != nil {
		panic("dbsqltest: defaults do not load: " + err.Error()) // a programming error
	}
	d := c.Databricks
	u, err := url.Parse(base)
	if err != nil {
		panic("dbsqltest: base URL: " + err.Error())
	}
	d.Host = u.Scheme + "://" + u.Hostname()
	d.Port, _ = strconv.Atoi(u.Port())
	d.WarehouseID = "obolus-test"
	d.Auth = config.DatabricksAuth{Type: config.AuthToken, Token: token}
	d.Retries, d.RetryWaitMin, d.RetryWaitMax = -1, 0, 0
	d.Timeout = 0
	return d
}

// Open opens a connection pool through the real driver; it closes when the
// test ends.
func Open(t testing.TB, cfg config.Databricks) *sql.DB {
	t.Helper()
	db, err := dbsql.Open(cfg.ConnectOptions(os.LookupEnv))
	if err != nil {
		t.Fatalf("dbsql.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// Context is a test context with a generous deadline.
func Context(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// AttributionDigest is a digest of the attribution table in schema of the
// catalog main (who got which tokens, by which method and weight), read on
// the server's DuckDB, for comparing two runs' answers row for row.
func (w *Warehouse) AttributionDigest(t testing.TB, schema string) string {
	t.Helper()
	var d string
	err := w.Server.DB().QueryRowContext(Context(t), `SELECT md5(string_agg(concat_ws('|', invocation_id, end_user, match_method, weight, total_tokens), ',' ORDER BY invocation_id, end_user))
		FROM main_catalog.`+schema+`.attribution`).Scan(&d)
	if err != nil {
		t.Fatalf("attribution digest of %s: %v", schema, err)
	}
	return d
}
