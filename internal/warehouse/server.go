package warehouse

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	duckdb "github.com/duckdb/duckdb-go/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/obolus/obolus/internal/warehouse/tcli"
)

// Config configures a Server.
type Config struct {
	// Token is the bearer token every Thrift call must carry. Required.
	// A wrong or missing token is answered with HTTP 401.
	Token string
	// DuckDBPath is the DuckDB database file; "" keeps everything in memory.
	DuckDBPath string
	// Faults, when set, injects HTTP failures and delays. May be nil.
	Faults *Faults
	// PageSize caps the rows per result page (direct results and each
	// FetchResults); 0 leaves it to the client's maxRows.
	PageSize int
	// ColumnResults makes the server answer with column-based row sets even
	// when the client can read Arrow (the driver always asks for Arrow). A
	// session can also choose with the session parameter
	// warehouse.result_format=column|arrow (a DSN query parameter).
	ColumnResults bool
	// DirectResultsWait is how long ExecuteStatement waits for a query to
	// finish before answering RUNNING and letting the driver poll (the driver
	// polls once a second). 0 means 5s; negative means never wait.
	DirectResultsWait time.Duration
	// VolumeRoot is the directory behind /Volumes/<catalog>/<schema>/<volume>/...
	// paths (staging PUT/GET/REMOVE and string literals in SQL). "" means a
	// temporary directory removed by Close.
	VolumeRoot string
	// TLS makes Start serve HTTPS (HTTP/2 where the client offers it) with
	// a certificate generated for 127.0.0.1, ::1 and localhost; clients trust
	// it through CertificatePEM. Staging and result links are https too.
	TLS bool
	// CloudFetchThreshold: a result of more rows than this, asked for by a
	// client that can download results (the driver's default), is answered
	// with CloudFetch links to Arrow files this server serves, as a
	// workspace does for large results. 0 means 100,000; negative never.
	CloudFetchThreshold int
	// CloudFetchFileRows is the rows per CloudFetch file after the first
	// (which holds the first CloudFetchThreshold rows); 0 means 65,536.
	CloudFetchFileRows int
	// LinkTTL is how long a result link stays valid; 0 means 15 minutes.
	LinkTTL time.Duration
	// OAuthClients are the service principals (client id -> secret) that
	// may get tokens from POST /oidc/v1/token (OAuth M2M); the tokens are
	// accepted like Token until they expire.
	OAuthClients map[string]string
	// TokenTTL is the lifetime of issued OAuth tokens; 0 means one hour.
	TokenTTL time.Duration
	// Meter records the server's calls, sessions and operations; nil
	// records nothing.
	Meter metric.Meter
	// Metrics, when set, is served at GET /metrics without a token, as
	// Prometheus scrapes: the Prometheus exposition of Meter's provider.
	Metrics http.Handler
}

// reservedCatalogs are Spark catalog names DuckDB keeps for itself; the server
// maps them to these DuckDB catalogs in SQL and in names given to LoadTable.
var reservedCatalogs = map[string]string{
	"system": "system_catalog",
	"main":   "main_catalog",
	"temp":   "temp_catalog",
}

// Server is a local Databricks SQL warehouse. Create it with New.
type Server struct {
	cfg        Config
	connector  *duckdb.Connector
	db         *sql.DB
	processor  *tcli.TCLIServiceProcessor
	proto      thrift.TProtocolFactory
	volumeRoot string
	ownVolume  bool
	baseCtx    context.Context
	stopAll    context.CancelFunc

	// writeMu serialises statements that write (see operation.execute).
	writeMu sync.Mutex

	mu       sync.Mutex
	sessions map[handleID]*session
	ops      map[handleID]*operation
	staged   map[string]*stagedFile
	files    map[string]*resultFile // CloudFetch files by link name
	tokens   map[string]time.Time   // issued OAuth tokens and their expiry
	calls    map[string]int         // Thrift calls served, by name (for tests)
	httpSrv  *http.Server
	baseURL  string
	tlsCert  tls.Certificate
	certPEM  []byte
	closed   bool
	// inflight counts requests being served; drained is closed when Close
	// waits and the count reaches zero.
	inflight int
	drained  chan struct{}
	// metricsReg is the callback observing the server for Config.Meter.
	metricsReg metric.Registration
}

// databricksFunctions are Databricks SQL built-ins DuckDB lacks, as DuckDB
// macros with the same meaning.
var databricksFunctions = []string{
	// https://docs.databricks.com/en/sql/language-manual/functions/timestamp_micros.html
	"timestamp_micros(us) AS make_timestamp(us)",
	// https://docs.databricks.com/en/sql/language-manual/functions/read_files.html
	// (Parquet only: the format obolus stages; paths under /Volumes/ map to
	// the volume root like every literal).
	"read_files(path, format := 'parquet') AS TABLE SELECT * FROM read_parquet(path)",
}

// New opens (or creates) the DuckDB database and prepares the server. It
// does not listen; use Start or mount Handler.
func New(cfg Config) (*Server, error) {
	if cfg.Token == "" {
		return nil, errors.New("warehouse: Config.Token is required")
	}
	if cfg.PageSize < 0 {
		return nil, fmt.Errorf("warehouse: Config.PageSize %d is negative", cfg.PageSize)
	}
	connector, err := duckdb.NewConnector(cfg.DuckDBPath, func(execer driver.ExecerContext) error {
		// Timestamps are shown in UTC unless a session asks for a zone, as on Databricks.
		if _, err := execer.ExecContext(context.Background(), "SET TimeZone = 'UTC'", nil); err != nil {
			return err
		}
		// Databricks built-ins DuckDB spells differently, as macros of the
		// connection, seen from every catalog a session uses.
		for _, m := range databricksFunctions {
			if _, err := execer.ExecContext(context.Background(), "CREATE OR REPLACE TEMP MACRO "+m, nil); err != nil {
				return fmt.Errorf("define %s: %w", m, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("warehouse: opening DuckDB %q: %w", cfg.DuckDBPath, err)
	}
	s := &Server{
		cfg:       cfg,
		connector: connector,
		db:        sql.OpenDB(connector),
		proto:     thrift.NewTBinaryProtocolFactoryConf(&thrift.TConfiguration{}),
		sessions:  map[handleID]*session{},
		ops:       map[handleID]*operation{},
		staged:    map[string]*stagedFile{},
		files:     map[string]*resultFile{},
		tokens:    map[string]time.Time{},
		calls:     map[string]int{},
	}
	if cfg.TLS {
		if s.tlsCert, s.certPEM, err = selfSigned(time.Now()); err != nil {
			_ = s.db.Close()
			return nil, err
		}
	}
	s.baseCtx, s.stopAll = context.WithCancel(context.Background())
	s.processor = tcli.NewTCLIServiceProcessor(&service{s: s})

	s.volumeRoot = cfg.VolumeRoot
	if s.volumeRoot == "" {
		if s.volumeRoot, err = os.MkdirTemp("", "warehouse-volumes-"); err != nil {
			_ = s.db.Close()
			return nil, fmt.Errorf("warehouse: creating volume root: %w", err)
		}
		s.ownVolume = true
	}
	if s.volumeRoot, err = filepath.Abs(s.volumeRoot); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("warehouse: volume root: %w", err)
	}
	for _, duck := range reservedCatalogs {
		if err := s.ensureCatalog(context.Background(), duck); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	if cfg.Meter != nil {
		if err := s.observe(cfg.Meter); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	return s, nil
}

// DB is the DuckDB database behind the server, for loading fixtures and
// checking results. Catalogs named system, main and temp in Spark SQL
// are system_catalog, main_catalog and temp_catalog here.
func (s *Server) DB() *sql.DB { return s.db }

// Handler serves the Thrift endpoint POST /sql/1.0/warehouses/<id> and the
// staging URLs the server hands out.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the background.
// It returns the base URL, e.g. "http://127.0.0.1:41234" (https with
// Config.TLS).
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("warehouse: listening on %q: %w", addr, err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	scheme := "http"
	if s.cfg.TLS {
		scheme = "https"
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{s.tlsCert}, MinVersion: tls.VersionTLS12}
	}
	s.mu.Lock()
	if s.closed || s.httpSrv != nil {
		s.mu.Unlock()
		_ = ln.Close()
		return "", errors.New("warehouse: server closed or already started")
	}
	s.httpSrv = srv
	s.baseURL = scheme + "://" + ln.Addr().String()
	s.mu.Unlock()
	if s.cfg.TLS {
		// The certificate is in TLSConfig, so no files are named.
		go func() { _ = srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { _ = srv.Serve(ln) }()
	}
	return s.baseURL, nil
}

// DSN returns a databricks-sql-go DSN for this server (telemetry off). With
// Config.TLS it is https, and the client must trust CertificatePEM, which a
// DSN cannot say: use ConnOptions. It needs Start; before that it returns "".
func (s *Server) DSN(warehouseID string) string {
	s.mu.Lock()
	base := s.baseURL
	s.mu.Unlock()
	if base == "" {
		return ""
	}
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	u.User = url.UserPassword("token", s.cfg.Token)
	u.Path = "/sql/1.0/warehouses/" + url.PathEscape(warehouseID)
	u.RawQuery = "enableTelemetry=false"
	return u.String()
}

// duckCatalog maps a Spark catalog name to the DuckDB catalog holding it.
func (s *Server) duckCatalog(name string) string {
	if d, ok := reservedCatalogs[strings.ToLower(name)]; ok {
		return d
	}
	return name
}

// ensureCatalog attaches an in-memory DuckDB catalog unless one of that name exists.
func (s *Server) ensureCatalog(ctx context.Context, name string) error {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM duckdb_databases() WHERE database_name = ?", name).Scan(&n); err != nil {
		return fmt.Errorf("warehouse: looking up catalog %q: %w", name, err)
	}
	if n > 0 {
		return nil
	}
	// ATTACH takes no bound parameters; the name is quoted as an identifier.
	if _, err := s.db.ExecContext(ctx, "ATTACH IF NOT EXISTS ':memory:' AS "+quoteIdent(name)); err != nil {
		return fmt.Errorf("warehouse: attaching catalog %q: %w", name, err)
	}
	return nil
}

// Close stops serving, ends all sessions and closes DuckDB.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv := s.httpSrv
	reg := s.metricsReg
	sessions := make([]*session, 0, len(s.sessions))
	for _, se := range s.sessions {
		sessions = append(sessions, se)
	}
	s.sessions = map[handleID]*session{}
	s.ops = map[handleID]*operation{}
	s.mu.Unlock()

	var errs []error
	// Cancel running statements first so in-flight calls waiting on them
	// return, then wait for the requests being served. The connections are
	// then closed outright: http.Server.Shutdown would also wait up to six
	// seconds for a connection that never sent a request, and Go's client
	// transport opens such spare connections whenever requests overlap.
	if reg != nil {
		errs = append(errs, reg.Unregister())
	}
	s.stopAll()
	if err := s.waitRequests(30 * time.Second); err != nil {
		errs = append(errs, err)
	}
	if srv != nil {
		if err := srv.Close(); err != nil {
			errs = append(errs, fmt.Errorf("warehouse: stopping http server: %w", err))
		}
	}
	for _, se := range sessions {
		se.close()
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("warehouse: closing DuckDB: %w", err))
	}
	if err := s.connector.Close(); err != nil {
		errs = append(errs, fmt.Errorf("warehouse: closing DuckDB connector: %w", err))
	}
	if s.ownVolume {
		if err := os.RemoveAll(s.volumeRoot); err != nil {
			errs = append(errs, fmt.Errorf("warehouse: removing volume root: %w", err))
		}
	}
	return errors.Join(errs...)
}

const thriftPathPrefix = "/sql/1.0/warehouses/"

type baseURLKey struct{}

// enter counts a request in, unless the server is closing.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.inflight++
	return true
}

func (s *Server) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight--
	if s.inflight == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
}

// waitRequests waits for the requests being served once the server is
// closed (no new one is counted in). The bound only guards against a
// handler that hangs; cancelled statements make them return at once.
func (s *Server) waitRequests(bound time.Duration) error {
	s.mu.Lock()
	if s.inflight == 0 {
		s.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	s.drained = ch
	n := s.inflight
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-time.After(bound):
		return fmt.Errorf("warehouse: %d requests still running %s after close", n, bound)
	}
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		http.Error(w, "warehouse: shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.leave()
	if r.URL.Path == "/metrics" && s.cfg.Metrics != nil && r.Method == http.MethodGet {
		s.cfg.Metrics.ServeHTTP(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, stagingPathPrefix) {
		s.serveStaging(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, cloudFetchPathPrefix) {
		s.serveResultFile(w, r)
		return
	}
	if r.URL.Path == tokenPath {
		s.serveToken(w, r)
		return
	}
	id, isThrift := strings.CutPrefix(r.URL.Path, thriftPathPrefix)
	if !isThrift || id == "" || strings.Contains(id, "/") {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "warehouse: Thrift calls must be POST", http.StatusMethodNotAllowed)
		return
	}
	if !s.authorized(r) {
		// The driver puts this header's text into the error it reports.
		w.Header().Set("X-Databricks-Reason-Phrase", "warehouse: invalid or missing bearer token")
		http.Error(w, "invalid or missing bearer token", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 256<<20))
	if err != nil {
		http.Error(w, "warehouse: reading request: "+err.Error(), http.StatusBadRequest)
		return
	}
	method := thriftMethod(body)
	s.mu.Lock()
	s.calls[method]++
	s.mu.Unlock()
	if rule, fault := s.cfg.Faults.take(method); fault {
		if rule.drop {
			dropConnection(w)
			return
		}
		if h := rule.retryAfterHeader(); h != "" {
			w.Header().Set("Retry-After", h)
		}
		http.Error(w, "warehouse: injected fault", rule.status)
		return
	}

	in := &thrift.TMemoryBuffer{Buffer: bytes.NewBuffer(body)}
	outBuf := responseBuffers.Get().(*bytes.Buffer)
	defer func() {
		outBuf.Reset()
		responseBuffers.Put(outBuf)
	}()
	out := &thrift.TMemoryBuffer{Buffer: outBuf}
	ctx := context.WithValue(r.Context(), baseURLKey{}, requestBase(r))
	_, terr := s.processor.Process(ctx, s.proto.GetProtocol(in), s.proto.GetProtocol(out))
	if out.Len() == 0 {
		msg := "warehouse: empty Thrift response"
		if terr != nil {
			msg = "warehouse: " + terr.Error()
		}
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-thrift")
	w.Header().Set("Content-Length", strconv.Itoa(out.Len()))
	_, _ = w.Write(out.Bytes())
}

// responseBuffers recycles response buffers: result pages run to megabytes
// and growing a fresh buffer for each one dominated the server's cost.
var responseBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// observe registers the server's instruments with m: they are read from
// the server's own counts at each collection.
func (s *Server) observe(m metric.Meter) error {
	calls, err := m.Int64ObservableCounter("obolus.warehouse.calls", metric.WithUnit("{call}"),
		metric.WithDescription("Requests served, per method: a Thrift call name (ExecuteStatement, FetchResults, ...), "+CallToken+" or "+CallDownload))
	if err != nil {
		return fmt.Errorf("warehouse metrics: %w", err)
	}
	sessions, err := m.Int64ObservableGauge("obolus.warehouse.sessions", metric.WithUnit("{session}"),
		metric.WithDescription("Open sessions"))
	if err != nil {
		return fmt.Errorf("warehouse metrics: %w", err)
	}
	ops, err := m.Int64ObservableGauge("obolus.warehouse.operations", metric.WithUnit("{operation}"),
		metric.WithDescription("Statements held open (running, or with results not yet closed)"))
	if err != nil {
		return fmt.Errorf("warehouse metrics: %w", err)
	}
	s.metricsReg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		for method, n := range s.calls {
			o.ObserveInt64(calls, int64(n), metric.WithAttributes(attribute.String("method", method)))
		}
		o.ObserveInt64(sessions, int64(len(s.sessions)))
		o.ObserveInt64(ops, int64(len(s.ops)))
		return nil
	}, calls, sessions, ops)
	if err != nil {
		return fmt.Errorf("warehouse metrics: %w", err)
	}
	return nil
}

// Calls reports how often the server has served method: a Thrift call name
// (ExecuteStatement, FetchResults, ...), CallToken or CallDownload.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

func (s *Server) authorized(r *http.Request) bool {
	tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return found && (subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.Token)) == 1 || s.issuedTokenValid(tok))
}

// thriftMethod reads the call name from a TBinaryProtocol message without
// consuming the body.
func thriftMethod(body []byte) string {
	buf := &thrift.TMemoryBuffer{Buffer: bytes.NewBuffer(body)}
	name, _, _, err := thrift.NewTBinaryProtocolConf(buf, &thrift.TConfiguration{}).ReadMessageBegin(context.Background())
	if err != nil {
		return ""
	}
	return name
}

// requestBase is the scheme and host the client reached this server at,
// which the links the server hands out (staging, results) must use.
func requestBase(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

func dropConnection(w http.ResponseWriter) {
	hj, canHijack := w.(http.Hijacker)
	if !canHijack {
		// HTTP/2 or a test recorder: the closest thing is an aborted handler.
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	_ = conn.Close()
}
