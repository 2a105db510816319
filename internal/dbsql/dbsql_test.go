package dbsql_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/dbsql"
	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/warehouse"
)

func TestWrongCredentialsAreAClearErrorWithoutTheSecret(t *testing.T) {
	wh := dbsqltest.Start(t, warehouse.Config{OAuthClients: map[string]string{"client-1": "the-right-secret-0123456789"}})
	const secret = "dapi-wrong-0123456789abcdef"
	tests := []struct {
		name string
		auth config.DatabricksAuth
	}{
		{"token", config.DatabricksAuth{Type: config.AuthToken, Token: secret}},
		{"oauth m2m", config.DatabricksAuth{Type: config.AuthOAuthM2M, ClientID: "client-1", ClientSecret: secret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := wh.Config
			cfg.Auth = tt.auth
			db := dbsqltest.Open(t, cfg)
			err := db.PingContext(dbsqltest.Context(t))
			if err == nil {
				t.Fatal("connected with wrong credentials")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the secret: %v", err)
			}
			if !errors.Is(err, dbsql.ErrAuth) {
				t.Errorf("error %v is not dbsql.ErrAuth", err)
			}
			t.Logf("%s: %v", tt.name, err)
		})
	}
}

// OAuth M2M over TLS: obolus gets a token from the workspace's token
// endpoint with the service principal's id and secret, uses it for the SQL
// calls, and gets a new one when it is about to expire.
func TestOAuthM2MSignsInAndRefreshes(t *testing.T) {
	const id, secret = "sp-obolus", "oauth-secret-0123456789abcdef"
	// Tokens live 11 s; clients renew 10 s before expiry, so each is used
	// for one second.
	wh := dbsqltest.Start(t, warehouse.Config{TLS: true, OAuthClients: map[string]string{id: secret}, TokenTTL: 11 * time.Second})
	cfg := wh.Config
	cfg.Auth = config.DatabricksAuth{Type: config.AuthOAuthM2M, ClientID: id, ClientSecret: secret}
	db := dbsqltest.Open(t, cfg)
	ctx := dbsqltest.Context(t)
	var one int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("query with an OAuth token: %v (got %d)", err, one)
	}
	first := wh.Server.Calls(warehouse.CallToken)
	if first < 1 {
		t.Fatalf("tokens issued = %d, want at least 1", first)
	}
	time.Sleep(1500 * time.Millisecond) // past the client's renewal point
	if err := db.QueryRowContext(ctx, "SELECT 2").Scan(&one); err != nil || one != 2 {
		t.Fatalf("query after the token's renewal point: %v (got %d)", err, one)
	}
	if got := wh.Server.Calls(warehouse.CallToken); got <= first {
		t.Errorf("tokens issued = %d after the renewal point, want more than %d", got, first)
	}
}

func TestMissingCredentialNamesTheKey(t *testing.T) {
	cfg := dbsqltest.ConfigFor("http://127.0.0.1:1", "")
	t.Setenv(config.EnvDatabricksToken, "")
	_, err := dbsql.NewConnector(cfg.ConnectOptions(func(string) (string, bool) { return "", false }))
	if err == nil || !strings.Contains(err.Error(), "databricks.auth.token") {
		t.Errorf("error = %v, want it to name databricks.auth.token", err)
	}
}

// Transient failures are retried: 503 and 429 (honouring Retry-After) by the
// driver, a connection dropped before the statement ran by obolus.
func TestTransientFailuresAreRetried(t *testing.T) {
	faults := &warehouse.Faults{}
	// Small pages, so that reading a result takes FetchResults calls.
	wh := dbsqltest.Start(t, warehouse.Config{Faults: faults, PageSize: 1000})
	cfg := wh.Config
	cfg.Retries, cfg.RetryWaitMin, cfg.RetryWaitMax = 3, 10*time.Millisecond, 100*time.Millisecond
	db := dbsqltest.Open(t, cfg)
	ctx := dbsqltest.Context(t)
	if err := db.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		inject func()
		n      int
	}{
		{"503 on ExecuteStatement", func() { faults.FailNext("ExecuteStatement", 2, 503, 0) }, 2},
		{"429 with Retry-After", func() { faults.FailNext("ExecuteStatement", 1, 429, 1) }, 1},
		{"503 on FetchResults", func() { faults.FailNext("FetchResults", 1, 503, 0) }, 1},
		{"dropped ExecuteStatement", func() { faults.DropNext("ExecuteStatement", 1) }, 1},
		{"dropped FetchResults", func() { faults.DropNext("FetchResults", 1) }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := faults.Injected()
			tt.inject()
			rows, err := db.QueryContext(ctx, "SELECT i FROM range(5000) AS t(i) ORDER BY i")
			if err != nil {
				t.Fatalf("query after %s: %v", tt.name, err)
			}
			var n int64
			for rows.Next() {
				var i int64
				if err := rows.Scan(&i); err != nil {
					t.Fatal(err)
				}
				if i != n {
					t.Fatalf("row %d holds %d: a page was lost or repeated", n, i)
				}
				n++
			}
			if err := rows.Err(); err != nil {
				t.Fatalf("reading after %s: %v", tt.name, err)
			}
			rows.Close()
			if n != 5000 {
				t.Errorf("read %d rows, want 5000", n)
			}
			if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS retried (a INT)"); err != nil {
				t.Fatalf("statement after %s: %v", tt.name, err)
			}
			if got := faults.Injected() - before; got != tt.n {
				t.Errorf("injected %d faults, want %d", got, tt.n)
			}
			faults.Reset()
		})
	}
}

func TestIdentifiers(t *testing.T) {
	for name, ok := range map[string]bool{
		"system.ai_gateway.usage": true, "usage": true, "a.b.c.d": false, "a`b": false, "x; DROP TABLE y": false,
		"main.obolus.attribution--": false, `a"b`: false, "": false, "1abc": false, "é": false,
	} {
		q, err := dbsql.Name(name)
		if (err == nil) != ok {
			t.Errorf("Name(%q) = %q, %v; want ok=%v", name, q, err, ok)
		}
	}
	if q, _ := dbsql.Name("system.ai_gateway.usage"); q != "`system`.`ai_gateway`.`usage`" {
		t.Errorf("quoted = %s", q)
	}
}
