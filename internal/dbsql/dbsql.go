// Package dbsql opens connections to a Databricks SQL warehouse from obolus's
// configuration and names warehouse objects safely (validated, quoted identifiers).
package dbsql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	databricks "github.com/databricks/databricks-sql-go"
	"github.com/databricks/databricks-sql-go/auth/tokenprovider"
	"github.com/databricks/databricks-sql-go/logger"
	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// The environment variables the Databricks tools read credentials from.
const (
	EnvToken        = "DATABRICKS_TOKEN"
	EnvClientID     = "DATABRICKS_CLIENT_ID"
	EnvClientSecret = "DATABRICKS_CLIENT_SECRET"
)

// ErrAuth marks a connection the warehouse refused because of the credentials.
var ErrAuth = errors.New("databricks: authentication failed")

// Options says how to reach a warehouse.
type Options struct {
	Host     string // workspace host name, or http://127.0.0.1 for the local warehouse
	Port     int
	HTTPPath string
	// CAFile names a PEM file of extra certificate authorities to trust.
	CAFile string
	// NoCloudFetch asks for every result inline, page by page, instead of
	// as links to files in the workspace's cloud storage.
	NoCloudFetch bool
	// QueryTags label every statement (system.query.history.query_tags).
	QueryTags map[string]string
	// Timeout bounds a statement; Retries and the waits govern the
	// driver's retries of transient failures.
	Timeout                    time.Duration
	Retries                    int
	RetryWaitMin, RetryWaitMax time.Duration
	// Token is a personal access token; with ClientID set, OAuth
	// machine-to-machine with ClientID and ClientSecret is used instead.
	Token, ClientID, ClientSecret string
	// OAuth asks for OAuth machine-to-machine.
	OAuth bool
}

// Open returns a connection pool to the warehouse. Nothing is sent before
// the first query; call Ping to check the connection.
func Open(opt Options) (*sql.DB, error) {
	c, err := NewConnector(opt)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

var quietDriver sync.Once

// NewConnector builds the driver connector: host, HTTP path, credentials,
// query tags, UTC session time zone, statement timeout and retries. Errors
// from connecting never contain the token or client secret. They name the
// configuration keys, which is where a user fixes them.
func NewConnector(opt Options) (driver.Connector, error) {
	// The driver logs zerolog JSON to stderr; obolus reports its errors itself.
	// Its auth packages log through zerolog's global logger instead.
	quietDriver.Do(func() {
		_ = logger.SetLogLevel("disabled")
		zerolog.SetGlobalLevel(zerolog.Disabled)
	})

	if opt.Host == "" {
		return nil, errors.New("databricks.host: empty; configure the workspace host (see docs/databricks.md)")
	}
	if opt.HTTPPath == "" {
		return nil, errors.New("databricks.http_path: empty; set http_path or warehouse_id")
	}
	opts := []databricks.ConnOption{
		databricks.WithServerHostname(opt.Host),
		databricks.WithPort(opt.Port),
		databricks.WithHTTPPath(opt.HTTPPath),
		databricks.WithUserAgentEntry("obolus"),
		// Timestamps cross the wire as text in the session zone; UTC keeps
		// them equal to what obolus compares against.
		databricks.WithSessionParams(map[string]string{"timezone": "UTC"}),
		databricks.WithTimeout(opt.Timeout),
		databricks.WithRetries(opt.Retries, opt.RetryWaitMin, opt.RetryWaitMax),
		databricks.WithCloudFetch(!opt.NoCloudFetch),
	}
	if len(opt.QueryTags) > 0 {
		// After the session parameters: the option adds to them.
		opts = append(opts, databricks.WithQueryTags(opt.QueryTags))
	}
	transport, err := newTransport(opt.CAFile)
	if err != nil {
		return nil, err
	}
	if transport != nil {
		opts = append(opts, databricks.WithTransport(transport))
	}
	var secrets []string
	if opt.OAuth {
		if opt.ClientID == "" || opt.ClientSecret == "" {
			return nil, fmt.Errorf("databricks.auth: oauth_m2m needs client_id and client_secret (or %s and %s)", EnvClientID, EnvClientSecret)
		}
		opts = append(opts, databricks.WithTokenProvider(newOAuthProvider(opt, transport)))
		secrets = append(secrets, opt.ClientSecret)
	} else {
		if opt.Token == "" {
			return nil, fmt.Errorf("databricks.auth.token: empty; set it, OBOLUS_DATABRICKS_AUTH_TOKEN or %s", EnvToken)
		}
		opts = append(opts, databricks.WithAccessToken(opt.Token))
		secrets = append(secrets, opt.Token)
	}
	c, err := databricks.NewConnector(opts...)
	if err != nil {
		return nil, fmt.Errorf("databricks: configure connection: %w", redact(err, secrets))
	}
	return &connector{Connector: c, secrets: secrets, where: opt.Host + opt.HTTPPath}, nil
}

// oauthProvider signs obolus in as a service principal (OAuth M2M): a
// client-credentials grant at the workspace's /oidc/v1/token, the endpoint
// Databricks documents for service principals, with the token reused until
// shortly before it expires and then fetched again. The driver's own
// WithClientCredentials finds the endpoint by OIDC discovery only for host
// names of the Databricks clouds, and with its own HTTP client; this
// provider goes through the connection's transport (databricks.ca_file).
// https://docs.databricks.com/en/dev-tools/auth/oauth-m2m.html
type oauthProvider struct {
	src oauth2.TokenSource
}

func newOAuthProvider(opt Options, custom *http.Transport) oauthProvider {
	var transport http.RoundTripper = http.DefaultTransport
	if custom != nil {
		transport = custom
	}
	cc := clientcredentials.Config{
		ClientID:     opt.ClientID,
		ClientSecret: opt.ClientSecret,
		TokenURL:     workspaceURL(opt.Host, opt.Port) + "/oidc/v1/token",
		Scopes:       []string{"all-apis"},
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: transport, Timeout: time.Minute})
	// clientcredentials' source already reuses a token until ten seconds
	// before its expiry.
	return oauthProvider{src: cc.TokenSource(ctx)}
}

func (p oauthProvider) GetToken(context.Context) (*tokenprovider.Token, error) {
	t, err := p.src.Token()
	if err != nil {
		return nil, fmt.Errorf("oauth m2m token: %w", err)
	}
	return &tokenprovider.Token{AccessToken: t.AccessToken, TokenType: t.Type(), ExpiresAt: t.Expiry}, nil
}

func (oauthProvider) Name() string { return "obolus-oauth-m2m" }

// workspaceURL is the scheme, host and (non-default) port of the workspace
// that host and port name; a bare host name means https.
func workspaceURL(host string, port int) string {
	scheme := "https"
	if rest, ok := strings.CutPrefix(host, "https://"); ok {
		host = rest
	} else if rest, ok := strings.CutPrefix(host, "http://"); ok {
		scheme, host = "http", rest
	}
	host = strings.TrimSuffix(host, "/")
	if port > 0 && !(scheme == "https" && port == 443) && !(scheme == "http" && port == 80) {
		host = net.JoinHostPort(host, strconv.Itoa(port))
	}
	return scheme + "://" + host
}

// newTransport is the HTTP transport for a CA file (TrustingTransport of its
// contents). Without a file it is nil, and the driver uses its own pooled
// transport.
func newTransport(caFile string) (*http.Transport, error) {
	if caFile == "" {
		return nil, nil
	}
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("databricks.ca_file: %w; name a readable PEM file of certificate authorities, or leave it empty to trust the system's", err)
	}
	t, ok := TrustingTransport(pemBytes)
	if !ok {
		return nil, fmt.Errorf("databricks.ca_file: %s holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)", caFile)
	}
	return t, nil
}

// TrustingTransport is the default transport's settings with the PEM
// certificates' authorities trusted besides the system's; ok is false when
// pemCerts holds none.
func TrustingTransport(pemCerts []byte) (t *http.Transport, ok bool) {
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pemCerts) {
		return nil, false
	}
	t = http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return t, true
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
