package dbsql

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// conn wraps the driver's connection so that a statement whose HTTP
// connection dropped before an answer is retried on a fresh connection:
// the driver retries 429/503 and lost result pages itself, but not a lost
// ExecuteStatement, which it cannot know to be safe. Every statement obolus
// sends is idempotent (SELECTs, MERGEs that replace, DDL IF NOT EXISTS, PUT
// OVERWRITE), so it is.
type conn struct {
	c driver.Conn
}

var (
	_ driver.Conn               = conn{}
	_ driver.Pinger             = conn{}
	_ driver.SessionResetter    = conn{}
	_ driver.Validator          = conn{}
	_ driver.ExecerContext      = conn{}
	_ driver.QueryerContext     = conn{}
	_ driver.ConnPrepareContext = conn{}
	_ driver.ConnBeginTx        = conn{}
	_ driver.NamedValueChecker  = conn{}
)

func (c conn) Prepare(query string) (driver.Stmt, error) { return c.c.Prepare(query) }
func (c conn) Close() error                              { return c.c.Close() }
func (c conn) Begin() (driver.Tx, error) {
	return c.c.Begin() //lint:ignore SA1019 forwarded; the driver refuses transactions anyway
}

func (c conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.c.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (c conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.c.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c conn) Ping(ctx context.Context) error { return badConn(c.c.(driver.Pinger).Ping(ctx)) }

func (c conn) ResetSession(ctx context.Context) error {
	return c.c.(driver.SessionResetter).ResetSession(ctx)
}

func (c conn) IsValid() bool { return c.c.(driver.Validator).IsValid() }

func (c conn) CheckNamedValue(nv *driver.NamedValue) error {
	return c.c.(driver.NamedValueChecker).CheckNamedValue(nv)
}

func (c conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	res, err := c.c.(driver.ExecerContext).ExecContext(ctx, query, args)
	return res, badConn(err)
}

func (c conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := c.c.(driver.QueryerContext).QueryContext(ctx, query, args)
	return rows, badConn(err)
}

// badConn turns a dropped transport into driver.ErrBadConn, which makes
// database/sql retry on another connection.
func badConn(err error) error {
	if err != nil && dropped(err) {
		return driver.ErrBadConn
	}
	return err
}

// dropped reports whether err says the connection went away without an
// answer, as opposed to an answer that was an error.
func dropped(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		return true
	}
	// The driver flattens transport errors into its own message.
	msg := err.Error()
	for _, s := range []string{"EOF", "connection reset by peer", "broken pipe", "server closed idle connection"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// IsDropped reports whether err is a connection that dropped without an
// answer (driver.ErrBadConn included); callers holding one pinned
// connection retry the whole unit of work on a fresh one.
func IsDropped(err error) bool {
	return errors.Is(err, driver.ErrBadConn) || (err != nil && dropped(err))
}
