// Package duckdb is obolus's embedded store: one DuckDB file holding the
// attribution, coverage, dead-letter, checkpoint and run tables and the analyst views.
package duckdb

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/obolus/obolus/internal/sqlrows"
	"github.com/obolus/obolus/schemas"
)

// Store is an open DuckDB file with obolus's schema applied. Its methods are
// safe for concurrent use; writes are serialised, because two DuckDB
// transactions that delete the same rows conflict and one would fail.
type Store struct {
	db      *sql.DB
	objects map[string]bool // tables and views the DDL creates: what ExportParquet may read
	path    string          // the database file; staged writes put their parts beside it

	mu sync.Mutex // held by every write
}

// Open opens or creates the DuckDB file at path and applies the DDL, which is
// idempotent, in one transaction.
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenWith(ctx, path, Options{})
}

// Options tune an opened store.
type Options struct {
	// MemoryLimit caps the memory DuckDB's buffer manager uses, in bytes;
	// beyond it DuckDB spills to <path>.tmp. 0 leaves DuckDB's default, 80%
	// of the machine's memory.
	MemoryLimit int64
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, opt Options) (*Store, error) {
	if opt.MemoryLimit < 0 {
		return nil, fmt.Errorf("memory limit %d: must not be negative", opt.MemoryLimit)
	}
	if err := create(ctx, path); err != nil {
		return nil, err
	}
	options := ""
	if opt.MemoryLimit > 0 {
		options = fmt.Sprintf("memory_limit=%dKiB", max(opt.MemoryLimit>>10, 1))
	}
	s, stmts, err := open(path, options)
	if s != nil {
		s.path = path
	}
	if err != nil {
		return nil, err
	}
	if err := s.applyDDL(ctx, path, stmts); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// create makes a new store at path, when there is none, atomically: it is
// built under a name of its own and linked into place only when complete.
// A process killed while DuckDB writes a new file would otherwise leave a
// file DuckDB refuses to open ("not a valid DuckDB database file"), and
// every later run would fail on it. An empty file, all such a crash can
// leave of an earlier obolus's store, is taken as no store.
func create(ctx context.Context, path string) error {
	st, err := os.Stat(path)
	switch {
	case err == nil && st.Size() > 0:
		return nil
	case err == nil && st.Mode().IsRegular():
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("replace empty store file: %w", err)
		}
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("open store: %w", err)
	}
	removeStaleDrafts(path)
	draft := fmt.Sprintf("%s.creating-%d-%d", path, os.Getpid(), time.Now().UnixNano())
	defer os.Remove(draft + ".wal")
	defer os.Remove(draft)
	s, stmts, err := open(draft, "")
	if err != nil {
		return err
	}
	err = s.applyDDL(ctx, path, stmts)
	if cerr := s.db.Close(); err == nil {
		err = cerr // closing checkpoints: the file is then complete on its own
	}
	if err != nil {
		return fmt.Errorf("create store %s: %w", path, err)
	}
	// A link, unlike a rename, fails if another process created the store
	// meanwhile: then that one is used. Where the file system has no hard
	// links, a rename: the race it leaves open needs two first runs at once.
	err = os.Link(draft, path)
	switch {
	case err == nil, errors.Is(err, fs.ErrExist):
		return nil
	case errors.Is(err, errors.ErrUnsupported), errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.ENOTSUP), errors.Is(err, syscall.EXDEV):
		if err := os.Rename(draft, path); err != nil {
			return fmt.Errorf("create store %s: %w", path, err)
		}
		return nil
	}
	return fmt.Errorf("create store %s: %w", path, err)
}

// removeStaleDrafts removes what creates killed an hour or more ago left.
func removeStaleDrafts(path string) {
	drafts, _ := filepath.Glob(path + ".creating-*")
	for _, d := range drafts {
		if st, err := os.Stat(d); err == nil && time.Since(st.ModTime()) > time.Hour {
			os.Remove(d)
		}
	}
}

// ErrNoStore is returned by OpenReadOnly for a path where no store exists.
var ErrNoStore = errors.New("no store")

// OpenReadOnly opens an existing store for reading: a path where no file
// exists is an error (ErrNoStore) naming it, so a mistyped path never
// creates an empty store, and nothing in the file is changed.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	if path != "" {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s: run obolus batch (or obolus init) to create it, or name the right file with --store or store.duckdb", ErrNoStore, path)
		}
	}
	s, stmts, err := open(path, "access_mode=read_only")
	if err != nil {
		return nil, err
	}
	for _, st := range stmts {
		s.objects[st.Name] = true
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("read-only: %w", err)
	}
	v, err := storeVersion(ctx, s.db)
	if err == nil {
		err = schemas.CheckStoreVersion(path, v, false)
	}
	if err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// ErrNotDuckDB is returned for a store path that holds another kind of file.
var ErrNotDuckDB = errors.New("not a DuckDB store")

// duckDBMagic is where every DuckDB database file says what it is: its
// main header starts with an 8-byte checksum, then these bytes.
const duckDBMagic = "DUCK"

// checkDuckDBFile refuses an existing, non-empty file that is not a DuckDB
// database, before DuckDB tries to make sense of it.
func checkDuckDBFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // Open creates it
	}
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer f.Close()
	head := make([]byte, 8+len(duckDBMagic))
	n, err := io.ReadFull(f, head)
	switch {
	case n == 0 && (err == io.EOF || err == nil):
		return nil // an empty file becomes a store
	case err == nil && string(head[8:]) == duckDBMagic:
		return nil
	case err != nil && !errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("open store %s: %w", path, err)
	}
	what := "another kind of file"
	if bytes.HasPrefix(head, []byte("SQLite form")) {
		what = "a SQLite database"
	}
	return fmt.Errorf("%w: %s is %s; name a DuckDB file (or a new path) with --store or store.duckdb", ErrNotDuckDB, path, what)
}

// noExtensions keeps DuckDB from downloading or loading extensions on its
// own: opening a SQLite file as a store would otherwise fetch sqlite_scanner
// from the network. obolus needs none beyond those built in.
const noExtensions = "autoinstall_known_extensions=false&autoload_known_extensions=false"

func open(path, options string) (*Store, []schemas.Statement, error) {
	if path == "" {
		return nil, nil, errors.New("empty database path")
	}
	if strings.ContainsAny(path, "?\x00") {
		// duckdb-go reads what follows '?' as configuration options.
		return nil, nil, fmt.Errorf("database path %q contains '?' or NUL", path)
	}
	if err := checkDuckDBFile(path); err != nil {
		return nil, nil, err
	}
	query := "?" + noExtensions
	if options != "" {
		query += "&" + options
	}
	stmts, err := schemas.DDL("duckdb")
	if err != nil {
		return nil, nil, err
	}
	// TIMESTAMP columns hold UTC. Go time.Time parameters bind as TIMESTAMPTZ,
	// which DuckDB converts through the session time zone: pin it to UTC so
	// the host's zone never shifts a comparison.
	connector, err := duckdb.NewConnector(path+query, func(ex driver.ExecerContext) error {
		_, err := ex.ExecContext(context.Background(), "SET TimeZone = 'UTC'", nil)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return &Store{db: sql.OpenDB(connector), objects: make(map[string]bool, len(stmts))}, stmts, nil
}

func (s *Store) applyDDL(ctx context.Context, path string, stmts []schemas.Statement) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	v, err := storeVersion(ctx, tx)
	if err != nil {
		return err
	}
	err = schemas.Migrate("duckdb", path, v, func(stmt string) error {
		_, err := tx.ExecContext(ctx, stmt)
		return err
	})
	if err != nil {
		return err
	}
	if v > 0 {
		if err := checkColumns(ctx, tx); err != nil {
			return fmt.Errorf("store %s: %w", path, err)
		}
	}
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st.SQL); err != nil {
			return fmt.Errorf("apply DDL of %s: %w", st.Name, err)
		}
		s.objects[st.Name] = true
	}
	if _, err := tx.ExecContext(ctx, "INSERT OR REPLACE INTO store_meta (name, value) VALUES (?, ?)",
		schemas.StoreVersionKey, strconv.Itoa(schemas.StoreVersion)); err != nil {
		return fmt.Errorf("record store version: %w", err)
	}
	return tx.Commit()
}

// canonicalColumns are the columns obolus writes, by table, in the order
// its writers produce them.
var canonicalColumns = map[string][]string{
	"attribution":  schemas.AttributionColumns(),
	"dead_letters": strings.Split(strings.ReplaceAll(schemas.DeadLetterColumns, " ", ""), ","),
	"budget_spend": budgetSpendColumns,
}

// columnList is table's canonical column list, quoted, for SELECT and INSERT.
func columnList(table string) string {
	cols := canonicalColumns[table]
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = quoteIdent(c)
	}
	return strings.Join(q, ", ")
}

// checkColumns refuses a store whose tables lack a column obolus writes,
// naming them, rather than failing at the first write.
func checkColumns(ctx context.Context, tx *sql.Tx) error {
	for _, table := range slices.Sorted(maps.Keys(canonicalColumns)) {
		rows, err := tx.QueryContext(ctx, "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = ?", table)
		if err != nil {
			return fmt.Errorf("read columns of %s: %w", table, err)
		}
		have, err := sqlrows.Collect(rows, func(c *string) []any { return []any{c} })
		if err != nil {
			return fmt.Errorf("read columns of %s: %w", table, err)
		}
		var missing []string
		for _, c := range canonicalColumns[table] {
			if !slices.Contains(have, c) {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("table %s lacks column(s) %s: it was not made by obolus, or was altered", table, strings.Join(missing, ", "))
		}
	}
	return nil
}

// storeVersion is the version the store records: 0 for a new store, 1 for
// one made before store_meta, -1 for a value that is not a version.
func storeVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	exists := func(table string) (bool, error) {
		var n int
		err := q.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?", table).Scan(&n)
		return n > 0, err
	}
	meta, err := exists("store_meta")
	if err != nil {
		return 0, fmt.Errorf("read store version: %w", err)
	}
	if meta {
		var value string
		err := q.QueryRowContext(ctx, "SELECT value FROM store_meta WHERE name = ?", schemas.StoreVersionKey).Scan(&value)
		if err == nil {
			return schemas.ParseStoreVersion(value), nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("read store version: %w", err)
		}
	}
	old, err := exists("attribution")
	if err != nil {
		return 0, fmt.Errorf("read store version: %w", err)
	}
	if old {
		return 1, nil
	}
	return 0, nil
}

// DB is the underlying database, for ad-hoc queries and the analyst views.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database; DuckDB checkpoints the file on close.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// stage creates the connection-local temporary table name, shaped like table,
// and fills it through the Appender with the rows fill appends. The caller
// drops it (dropStage) when done.
func stage(ctx context.Context, conn *sql.Conn, table, name string, fill func(*duckdb.Appender) error) error {
	// The stage has the canonical columns in canonical order, whatever the
	// table's order: the Appender fills by position, and the insert from the
	// stage names its columns.
	q := fmt.Sprintf("CREATE OR REPLACE TEMP TABLE %s AS SELECT %s FROM %s LIMIT 0", quoteIdent(name), columnList(table), quoteIdent(table))
	if _, err := conn.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("create staging table for %s: %w", table, err)
	}
	if err := appendTo(ctx, conn, name, fill); err != nil {
		return fmt.Errorf("stage %s: %w", table, err)
	}
	return nil
}

// appendTo fills the temporary table name of conn through an Appender; on
// an error from fill nothing of this call is appended.
func appendTo(ctx context.Context, conn *sql.Conn, name string, fill func(*duckdb.Appender) error) error {
	return conn.Raw(func(dc any) error {
		dconn, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("driver connection is %T", dc)
		}
		ap, err := duckdb.NewAppender(dconn, "temp", "main", name)
		if err != nil {
			return err
		}
		if err := fill(ap); err != nil {
			_ = ap.Clear()
			_ = ap.Close()
			return err
		}
		if err := ap.CloseWithCancel(ctx); err != nil {
			return fmt.Errorf("flush appender: %w", err)
		}
		return nil
	})
}

func dropStage(conn *sql.Conn, names ...string) {
	// The connection returns to the pool; its temp tables would live on and
	// hold memory. A failure here leaves only that, so it is not reported.
	for _, n := range names {
		_, _ = conn.ExecContext(context.Background(), "DROP TABLE IF EXISTS temp.main."+quoteIdent(n))
	}
}

// inTx runs fn in a transaction on conn, committing if fn succeeds.
func inTx(ctx context.Context, conn *sql.Conn, fn func(*sql.Tx) error) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// quoteIdent quotes a SQL identifier, doubling any embedded double quote.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// micros is t as a bound parameter for make_timestamp(?): integer
// microseconds since the epoch, so no time-zone conversion can touch it. The
// zero time binds as NULL.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// timeOrNil is t in UTC for the Appender, or NULL for the zero time.
func timeOrNil(t time.Time) driver.Value {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}
