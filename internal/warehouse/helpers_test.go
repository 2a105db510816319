package warehouse

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	dbsql "github.com/databricks/databricks-sql-go"
	"github.com/databricks/databricks-sql-go/auth/noop"
	"github.com/databricks/databricks-sql-go/logger"
)

const testToken = "dapi-test-token"

func TestMain(m *testing.M) {
	// The driver logs zerolog JSON to stderr by default.
	_ = logger.SetLogLevel("disabled")
	os.Exit(m.Run())
}

// startServer starts a warehouse on a random loopback port.
func startServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Token == "" {
		cfg.Token = testToken
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := s.Start("127.0.0.1:0"); err != nil {
		_ = s.Close()
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// baseOptions are the driver options that reach s with the given token,
// failing fast unless the test adds its own WithRetries.
func baseOptions(t testing.TB, s *Server, token string) []dbsql.ConnOption {
	t.Helper()
	opts := s.ConnOptions("test")
	if opts == nil {
		t.Fatal("ConnOptions before Start")
	}
	auth := dbsql.WithAccessToken(token)
	if token == "" {
		auth = dbsql.WithAuthenticator(&noop.NoopAuth{})
	}
	return append(opts, auth, dbsql.WithRetries(-1, 0, 0))
}

// openDB opens a database/sql pool on s through the real driver.
func openDB(t testing.TB, s *Server, opts ...dbsql.ConnOption) *sql.DB {
	t.Helper()
	c, err := dbsql.NewConnector(append(baseOptions(t, s, testToken), opts...)...)
	if err != nil {
		t.Fatalf("NewConnector: %v", err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
