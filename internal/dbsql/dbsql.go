// Package dbsql opens connections to a Databricks SQL warehouse from obolus's
// configuration and names warehouse objects safely (validated, quoted identifiers).
package dbsql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	databricks "github.com/databricks/databricks-sql-go"
	"github.com/databricks/databricks-sql-go/logger"

	"github.com/obolus/obolus/internal/config"
)

// ErrAuth marks a connection the warehouse refused because of the credentials.
var ErrAuth = errors.New("databricks: authentication failed")

// Open returns a connection pool to the configured warehouse. Credentials
// left empty in cfg are read from the DATABRICKS_* environment variables.
// Nothing is sent before the first query; call Ping to check the connection.
func Open(cfg config.Databricks) (*sql.DB, error) {
	c, err := NewConnector(cfg, cfg.Credentials(os.LookupEnv))
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

var quietDriver sync.Once

// NewConnector builds the driver connector: host, HTTP path, credentials,
// query tags, UTC session time zone, statement timeout and retries. Errors
// from connecting never contain the token or client secret.
func NewConnector(cfg config.Databricks, creds config.DatabricksAuth) (driver.Connector, error) {
	// The driver logs zerolog JSON to stderr; obolus reports its errors itself.
	quietDriver.Do(func() { _ = logger.SetLogLevel("disabled") })

	if !cfg.Enabled() {
		return nil, errors.New("databricks.host: empty; configure the workspace host (see docs/databricks.md)")
	}
	if cfg.Path() == "" {
		return nil, errors.New("databricks.http_path: empty; set http_path or warehouse_id")
	}
	opts := []databricks.ConnOption{
		// The host must come first: the OAuth option reads it.
		databricks.WithServerHostname(cfg.Host),
		databricks.WithPort(cfg.Port),
		databricks.WithHTTPPath(cfg.Path()),
		databricks.WithUserAgentEntry("obolus"),
		// Timestamps cross the wire as text in the session zone; UTC keeps
		// them equal to what obolus compares against.
		databricks.WithSessionParams(map[string]string{"timezone": "UTC"}),
		databricks.WithTimeout(cfg.Timeout),
		databricks.WithRetries(cfg.Retries, cfg.RetryWaitMin, cfg.RetryWaitMax),
	}
	if len(cfg.QueryTags) > 0 {
		// After the session parameters: the option adds to them.
		opts = append(opts, databricks.WithQueryTags(cfg.QueryTags))
	}
	var secrets []string
	switch creds.Type {
	case config.AuthOAuthM2M:
		if creds.ClientID == "" || creds.ClientSecret == "" {
			return nil, fmt.Errorf("databricks.auth: oauth_m2m needs client_id and client_secret (or %s and %s)", config.EnvDatabricksClientID, config.EnvDatabricksClientSecret)
		}
		opts = append(opts, databricks.WithClientCredentials(creds.ClientID, creds.ClientSecret))
		secrets = append(secrets, creds.ClientSecret)
	default:
		if creds.Token == "" {
			return nil, fmt.Errorf("databricks.auth.token: empty; set it, OBOLUS_DATABRICKS_AUTH_TOKEN or %s", config.EnvDatabricksToken)
		}
		opts = append(opts, databricks.WithAccessToken(creds.Token))
		secrets = append(secrets, creds.Token)
	}
	c, err := databricks.NewConnector(opts...)
	if err != nil {
		return nil, fmt.Errorf("databricks: configure connection: %w", redact(err, secrets))
	}
	return &connector{Connector: c, secrets: secrets, where: cfg.Host + cfg.Path()}, nil
}

// connector wraps the driver's to turn refused credentials into ErrAuth and
// to keep secrets out of every connection error.
type connector struct {
	driver.Connector
	secrets []string
	where   string
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err == nil {
		return conn{dc}, nil
	}
	err = redact(err, c.secrets)
	if isAuthError(err) {
		return nil, fmt.Errorf("%w at %s: the warehouse refused the credentials (check databricks.auth): %v", ErrAuth, c.where, err)
	}
	return nil, fmt.Errorf("databricks: connect to %s: %w", c.where, err)
}

func isAuthError(err error) bool {
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"401", "403", "unauthorized", "forbidden", "invalid access token", "bearer token", "invalid_client"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// redact replaces every secret in err's message. The error chain is
// flattened into the message: wrapped driver errors could carry the secret.
func redact(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if len(s) >= 4 && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "[REDACTED]")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return errors.New(msg)
}
