package warehouse

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/obolus/obolus/internal/warehouse/tcli"
)

// operation is one ExecuteStatement: it runs in the background and then
// serves its result page by page.
type operation struct {
	id         handleID
	secret     []byte
	srv        *Server
	sess       *session
	query      string
	params     []*tcli.TSparkParameter
	useArrow   bool
	arrowTypes *tcli.TSparkArrowTypes
	cloud      bool   // the client can download CloudFetch links
	lz4        bool   // the client can decompress LZ4
	base       string // scheme://host the client reached us at, for staging and result links
	ctx        context.Context
	cancel     context.CancelFunc
	done       chan struct{}
	started    time.Time

	mu        sync.Mutex
	state     tcli.TOperationState
	errMsg    string
	sqlState  string
	completed time.Time
	enc       *encoding
	cur       *cursor
	prefetch  chan encodedPage // next page being prepared, if any
	delivery  delivery
	pending   []*page // inline pages read before the delivery was decided
	modified  *int64
	staging   bool
}

func (s *Server) newOperation(se *session, req *tcli.TExecuteStatementReq) (*operation, error) {
	id, secret, err := newHandle()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(s.baseCtx)
	if t := req.GetQueryTimeout(); t > 0 {
		ctx, cancel = contextWithTimeout(ctx, cancel, time.Duration(t)*time.Second)
	}
	op := &operation{
		id:         id,
		secret:     secret,
		srv:        s,
		sess:       se,
		query:      req.GetStatement(),
		params:     req.GetParameters(),
		useArrow:   req.GetCanReadArrowResult_() && !se.columns,
		arrowTypes: req.GetUseArrowNativeTypes(),
		cloud:      req.GetCanDownloadResult_(),
		lz4:        req.GetCanDecompressLZ4Result_(),
		ctx:        ctx,
		cancel:     cancel,
		done:       make(chan struct{}),
		started:    time.Now(),
		state:      tcli.TOperationState_RUNNING_STATE,
	}
	s.mu.Lock()
	s.ops[id] = op
	s.mu.Unlock()
	se.mu.Lock()
	if se.ops != nil {
		se.ops[id] = op
	}
	se.mu.Unlock()
	return op, nil
}

func contextWithTimeout(parent context.Context, parentCancel context.CancelFunc, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, d)
	return ctx, func() { cancel(); parentCancel() }
}

func (op *operation) handle() *tcli.TOperationHandle {
	return &tcli.TOperationHandle{
		OperationId:   &tcli.THandleIdentifier{GUID: op.id[:], Secret: op.secret},
		OperationType: tcli.TOperationType_EXECUTE_STATEMENT,
		HasResultSet:  true,
	}
}

// execResult is what a finished statement leaves behind.
type execResult struct {
	columns  []column
	cur      *cursor
	modified *int64
	staging  bool
}

func (op *operation) run() {
	defer close(op.done)
	// The context only governs execution; reading the finished result does
	// not need it, and cancelling releases it from the server's context.
	defer op.cancel()
	res, err := op.executeSafely()

	op.mu.Lock()
	defer op.mu.Unlock()
	op.completed = time.Now()
	if err != nil {
		switch {
		case errors.Is(op.ctx.Err(), context.DeadlineExceeded):
			op.state = tcli.TOperationState_TIMEDOUT_STATE
			op.errMsg, op.sqlState = "query timed out: "+err.Error(), "57014"
		case op.ctx.Err() != nil:
			op.state = tcli.TOperationState_CANCELED_STATE
			op.errMsg, op.sqlState = "query was cancelled", "57014"
		default:
			op.state = tcli.TOperationState_ERROR_STATE
			op.errMsg, op.sqlState = err.Error(), sqlStateOf(err)
		}
		return
	}
	enc, err := newEncoding(res.columns, op.useArrow, op.arrowTypes, op.sess.loc)
	if err != nil {
		res.cur.close()
		op.state = tcli.TOperationState_ERROR_STATE
		op.errMsg, op.sqlState = err.Error(), "HY000"
		return
	}
	enc.lz4 = op.lz4 && op.useArrow
	op.enc, op.cur, op.modified, op.staging = enc, res.cur, res.modified, res.staging
	op.state = tcli.TOperationState_FINISHED_STATE
}

// executeSafely turns a panic in the engine or driver code into a failed
// statement instead of a crashed server.
func (op *operation) executeSafely() (res *execResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, fmt.Errorf("internal error executing statement: %v", r)
		}
	}()
	return op.execute()
}

// executeEach runs the statements a Delta statement translated into, in
// order, and answers with the last one's result (an empty one for none).
func (op *operation) executeEach(forms []string) (*execResult, error) {
	res := &execResult{cur: newStaticCursor(0, nil)}
	for i, q := range forms {
		sub := &operation{srv: op.srv, sess: op.sess, query: q, base: op.base, ctx: op.ctx}
		r, err := sub.execute()
		if err != nil {
			return nil, err
		}
		if i < len(forms)-1 {
			r.cur.close()
		}
		res = r
	}
	return res, nil
}

func (op *operation) execute() (*execResult, error) {
	ctx := op.ctx
	if d := op.srv.cfg.Faults.delay(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	if err := op.srv.cfg.Faults.statementError(op.query); err != nil {
		return nil, err
	}
	if res, isStaging, err := op.srv.stagingStatement(op.query, op.base); isStaging || err != nil {
		return res, err
	}
	if forms, ok, err := deltaForm(op.query); ok || err != nil {
		if err != nil {
			return nil, fmt.Errorf("reading statement: %w", err)
		}
		return op.executeEach(forms)
	}
	args, in, err := bindParameters(op.params)
	if err != nil {
		return nil, err
	}
	in.catalogs = reservedCatalogs
	in.volumeRoot = op.srv.volumeRoot
	query := op.query
	if form, ok, err := replaceWhereForm(query); ok || err != nil {
		if err != nil {
			return nil, fmt.Errorf("reading statement: %w", err)
		}
		query = form
	}
	rw, err := rewriteSQL(query, in)
	if err != nil {
		return nil, fmt.Errorf("reading statement: %w", err)
	}
	if rw.statements == 0 {
		return nil, errors.New("empty statement")
	}
	if len(in.positional) > 0 && rw.markers != len(in.positional) {
		return nil, fmt.Errorf("statement has %d ? markers but %d positional parameters were bound", rw.markers, len(in.positional))
	}

	op.sess.execMu.Lock()
	defer op.sess.execMu.Unlock()
	ds, err := op.sess.conn.PrepareContext(ctx, rw.sql)
	if err != nil {
		return nil, err
	}
	stmt, isDuck := ds.(*duckdb.Stmt)
	if !isDuck {
		_ = ds.Close()
		return nil, fmt.Errorf("unexpected statement type %T from DuckDB", ds)
	}
	stype, _ := stmt.StatementType()
	if stype != duckdb.STATEMENT_TYPE_SELECT {
		// Delta commits writes to one table serializably: of two MERGEs
		// that read the same rows, one fails with a concurrent-modification
		// error and is retried against the other's result. DuckDB's
		// snapshot isolation would let both commit on the same snapshot
		// (two writers each inserting its own version of one invocation),
		// so writes here run one at a time, which is what the retries
		// amount to.
		op.srv.writeMu.Lock()
		defer op.srv.writeMu.Unlock()
	}
	rows, err := stmt.QueryContext(ctx, args)
	if err != nil {
		_ = stmt.Close()
		return nil, err
	}
	closeStmt := func() { _ = stmt.Close() }
	names := rows.Columns()
	typed, _ := rows.(driver.RowsColumnTypeDatabaseTypeName)
	cols := make([]column, len(names))
	for i, n := range names {
		tn := "VARCHAR"
		if typed != nil {
			tn = typed.ColumnTypeDatabaseTypeName(i)
		}
		if cols[i], err = newColumn(n, tn); err != nil {
			_ = rows.Close()
			closeStmt()
			return nil, err
		}
	}

	if stype == duckdb.STATEMENT_TYPE_SELECT || !isCommandResult(names) {
		return &execResult{columns: cols, cur: newRowsCursor(rows, len(cols), closeStmt)}, nil
	}

	// A command: DuckDB answers with one Count (DML, CTAS) or Success column.
	// Databricks answers DML with num_affected_rows (+ num_inserted_rows) and
	// everything else with an empty result.
	var count *int64
	if names[0] == "Count" {
		dest := make([]driver.Value, 1)
		if err := rows.Next(dest); err == nil && dest[0] != nil {
			if n, cerr := toInt64(dest[0]); cerr == nil {
				count = &n
			}
		}
	}
	_ = rows.Close()
	closeStmt()
	if count == nil {
		return &execResult{cur: newStaticCursor(0, nil)}, nil
	}
	affected := column{name: "num_affected_rows", typ: &duckType{base: "BIGINT"}, kind: kindInt64, ttype: tcli.TTypeId_BIGINT_TYPE}
	inserted := affected
	inserted.name = "num_inserted_rows"
	if stype == duckdb.STATEMENT_TYPE_INSERT || stype == duckdb.STATEMENT_TYPE_CREATE {
		return &execResult{
			columns:  []column{affected, inserted},
			cur:      newStaticCursor(2, [][]any{{*count, *count}}),
			modified: count,
		}, nil
	}
	return &execResult{
		columns:  []column{affected},
		cur:      newStaticCursor(1, [][]any{{*count}}),
		modified: count,
	}, nil
}

func isCommandResult(names []string) bool {
	return len(names) == 1 && (names[0] == "Count" || names[0] == "Success")
}

func (op *operation) statusLocked() *tcli.TGetOperationStatusResp {
	st := op.state
	resp := &tcli.TGetOperationStatusResp{Status: ok(), OperationState: &st}
	started := op.started.UnixMilli()
	resp.OperationStarted = &started
	if !op.completed.IsZero() {
		c := op.completed.UnixMilli()
		resp.OperationCompleted = &c
	}
	if op.errMsg != "" {
		msg, state := op.errMsg, op.sqlState
		resp.ErrorMessage = &msg
		resp.DisplayMessage = &msg
		if state != "" {
			resp.SqlState = &state
		}
	}
	if st == tcli.TOperationState_FINISHED_STATE {
		has := op.enc != nil && len(op.enc.columns) > 0
		resp.HasResultSet = &has
		resp.NumModifiedRows = op.modified
	}
	return resp
}

func (op *operation) metadataLocked() *tcli.TGetResultSetMetadataResp {
	md := op.enc.metadata()
	if op.delivery == links {
		f := tcli.TSparkRowSetType_URL_BASED_SET
		md.ResultFormat = &f
	}
	staging := op.staging
	md.IsStagingOperation = &staging
	return md
}

// encodedPage is one page read from the cursor and encoded for the wire.
type encodedPage struct {
	rs   *tcli.TRowSet
	more bool
	err  error
}

// delivery is how an operation hands out its rows: decided on the first
// fetch, from the result's size and what the client can read.
type delivery uint8

const (
	undecided delivery = iota
	inline             // row sets carry the rows, page by page
	links              // row sets carry CloudFetch links to Arrow files
)

func (op *operation) encodePage(n int) encodedPage {
	if op.delivery == undecided {
		return op.decide(n)
	}
	if op.delivery == links {
		return op.cloudPage(nil, true)
	}
	var pg *page
	more := false
	if len(op.pending) > 0 {
		pg, op.pending = op.pending[0], op.pending[1:]
		more = len(op.pending) > 0 // read only once the cursor was drained
	} else {
		var err error
		if pg, more, err = op.cur.next(n); err != nil {
			return encodedPage{err: err}
		}
	}
	rs, err := op.enc.rowSet(pg)
	return encodedPage{rs: rs, more: more, err: err}
}

// decide reads the first rows and chooses the delivery: links when the
// client can download them and the result has more rows than the threshold,
// pages of n rows otherwise.
func (op *operation) decide(n int) encodedPage {
	t := op.srv.cloudFetchThreshold()
	if !op.cloud || !op.useArrow || t < 0 || op.staging {
		op.delivery = inline
		return op.encodePage(n)
	}
	first, more, err := op.cur.next(t)
	if err != nil {
		return encodedPage{err: err}
	}
	if more {
		op.delivery = links
		return op.cloudPage(first, more)
	}
	op.delivery = inline
	op.pending = first.split(n)
	return op.encodePage(n)
}

func (op *operation) fetchLocked(n int, withMetadata bool) (*tcli.TFetchResultsResp, bool, error) {
	if op.cur == nil || op.enc == nil {
		return nil, false, errors.New("operation has no result set")
	}
	var ep encodedPage
	if op.prefetch != nil {
		// A client that changes its page size mid-stream gets the prefetched
		// page at the old size; it is still the next slice of rows.
		ep = <-op.prefetch
		op.prefetch = nil
	} else {
		ep = op.encodePage(n)
	}
	if ep.err != nil {
		return nil, false, ep.err
	}
	resp := &tcli.TFetchResultsResp{Status: ok(), HasMoreRows: &ep.more, Results: ep.rs}
	if withMetadata {
		resp.ResultSetMetadata = op.metadataLocked()
	}
	if !ep.more {
		// Drained: let DuckDB free the result now rather than at CloseOperation.
		op.cur.close()
		return resp, false, nil
	}
	// Read and encode the next page while the client decodes this one; the
	// cursor belongs to that goroutine until its page is taken.
	ch := make(chan encodedPage, 1)
	op.prefetch = ch
	go func() { ch <- op.encodePage(n) }()
	return resp, true, nil
}

// failLocked turns a finished operation into a failed one, e.g. when its
// values cannot be encoded.
func (op *operation) failLocked(err error) {
	op.state = tcli.TOperationState_ERROR_STATE
	op.errMsg, op.sqlState = err.Error(), "22000"
	op.releaseLocked()
}

func (op *operation) releaseLocked() {
	if op.prefetch != nil {
		<-op.prefetch // the cursor is in use until the page is done
		op.prefetch = nil
	}
	if op.cur != nil {
		op.cur.close()
	}
}

func (op *operation) cancelAndWait() {
	op.cancel()
	<-op.done
}

func (op *operation) close() {
	op.cancelAndWait()
	op.mu.Lock()
	defer op.mu.Unlock()
	op.state = tcli.TOperationState_CLOSED_STATE
	op.releaseLocked()
}

// sqlStateOf maps DuckDB error classes to the SQLSTATEs Databricks uses for
// the same mistakes.
func sqlStateOf(err error) string {
	var de *duckdb.Error
	if !errors.As(err, &de) {
		var pe *paramError
		if errors.As(err, &pe) {
			return "22023"
		}
		return "HY000"
	}
	msg := strings.ToLower(de.Msg)
	switch de.Type {
	case duckdb.ErrorTypeParser, duckdb.ErrorTypeSyntax:
		return "42601"
	case duckdb.ErrorTypeBinder:
		if strings.Contains(msg, "column") {
			return "42703"
		}
		return "42000"
	case duckdb.ErrorTypeCatalog:
		if strings.Contains(msg, "function") {
			return "42883"
		}
		if strings.Contains(msg, "already exists") {
			return "42P07"
		}
		return "42P01"
	case duckdb.ErrorTypeConversion, duckdb.ErrorTypeInvalidInput:
		return "22018"
	case duckdb.ErrorTypeOutOfRange:
		return "22003"
	case duckdb.ErrorTypeDivideByZero:
		return "22012"
	case duckdb.ErrorTypeConstraint:
		return "23000"
	case duckdb.ErrorTypeInterrupt:
		return "57014"
	case duckdb.ErrorTypeNotImplemented:
		return "0A000"
	case duckdb.ErrorTypeParameterNotResolved, duckdb.ErrorTypeParameterNotAllowed:
		return "42P02"
	case duckdb.ErrorTypeTransaction:
		return "40001"
	}
	return "HY000"
}

// paramError is a parameter the server cannot bind.
type paramError struct {
	param string
	msg   string
}

func (e *paramError) Error() string { return "parameter " + e.param + ": " + e.msg }

var reDecimalType = regexp.MustCompile(`^DECIMAL\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)$`)
var reNumber = regexp.MustCompile(`^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`)

var timestampLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

// bindParameters turns TSparkParameters into DuckDB binds and tells the SQL
// rewrite how to write each marker.
func bindParameters(ps []*tcli.TSparkParameter) ([]driver.NamedValue, rewriteInput, error) {
	in := rewriteInput{}
	if len(ps) == 0 {
		return nil, in, nil
	}
	type bound struct {
		ordinal int
		nv      driver.NamedValue
		ph      placeholder
	}
	var named, positional []bound
	for i, p := range ps {
		ordinal := i + 1
		if p.IsSetOrdinal() {
			ordinal = int(p.GetOrdinal())
		}
		label := "#" + strconv.Itoa(ordinal)
		if p.GetName() != "" {
			label = p.GetName()
			if !reIdent.MatchString(label) {
				return nil, in, &paramError{param: strconv.Quote(label), msg: "name is not a plain identifier"}
			}
		}
		v, cast, err := sparkParamValue(p)
		if err != nil {
			return nil, in, &paramError{param: label, msg: err.Error()}
		}
		b := bound{ordinal: ordinal, nv: driver.NamedValue{Ordinal: ordinal, Value: v}, ph: placeholder{cast: cast}}
		if p.GetName() != "" {
			b.nv.Name = p.GetName()
			named = append(named, b)
		} else {
			positional = append(positional, b)
		}
	}
	if len(named) > 0 && len(positional) > 0 {
		return nil, in, &paramError{param: "list", msg: "named and positional parameters cannot be mixed"}
	}
	var args []driver.NamedValue
	if len(named) > 0 {
		in.named = make(map[string]placeholder, len(named))
		for i, b := range named {
			in.named[b.nv.Name] = b.ph
			b.nv.Ordinal = i + 1
			args = append(args, b.nv)
		}
		return args, in, nil
	}
	sort.SliceStable(positional, func(i, j int) bool { return positional[i].ordinal < positional[j].ordinal })
	for i, b := range positional {
		b.nv.Ordinal = i + 1
		args = append(args, b.nv)
		in.positional = append(in.positional, b.ph)
	}
	return args, in, nil
}

// sparkParamValue converts one parameter to the Go value DuckDB binds, plus a
// cast for types DuckDB cannot infer from that value.
func sparkParamValue(p *tcli.TSparkParameter) (any, string, error) {
	typ := strings.ToUpper(strings.TrimSpace(p.GetType()))
	val := p.GetValue()
	if val == nil || typ == "VOID" || typ == "NULL" {
		return nil, "", nil
	}
	var s string
	switch {
	case val.IsSetStringValue():
		s = val.GetStringValue()
	case val.IsSetDoubleValue():
		s = strconv.FormatFloat(val.GetDoubleValue(), 'g', -1, 64)
	case val.IsSetBooleanValue():
		s = strconv.FormatBool(val.GetBooleanValue())
	default:
		return nil, "", nil
	}
	switch typ {
	case "", "STRING", "VARCHAR", "CHAR":
		return s, "", nil
	case "BOOLEAN":
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, "", fmt.Errorf("BOOLEAN value %q: %w", s, err)
		}
		return b, "", nil
	case "TINYINT", "BYTE":
		n, err := strconv.ParseInt(s, 10, 8)
		return int8(n), "", wrapParse(typ, s, err)
	case "SMALLINT", "SHORT":
		n, err := strconv.ParseInt(s, 10, 16)
		return int16(n), "", wrapParse(typ, s, err)
	case "INTEGER", "INT":
		n, err := strconv.ParseInt(s, 10, 32)
		return int32(n), "", wrapParse(typ, s, err)
	case "BIGINT", "LONG":
		n, err := strconv.ParseInt(s, 10, 64)
		return n, "", wrapParse(typ, s, err)
	case "FLOAT", "REAL":
		f, err := strconv.ParseFloat(s, 32)
		return float32(f), "", wrapParse(typ, s, err)
	case "DOUBLE":
		f, err := strconv.ParseFloat(s, 64)
		return f, "", wrapParse(typ, s, err)
	case "DATE":
		if _, err := time.Parse("2006-01-02", s); err != nil {
			return nil, "", fmt.Errorf("DATE value %q: want YYYY-MM-DD", s)
		}
		return s, "DATE", nil
	case "TIMESTAMP", "TIMESTAMP_LTZ", "TIMESTAMP_NTZ":
		for _, layout := range timestampLayouts {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC(), "", nil
			}
		}
		return nil, "", fmt.Errorf("TIMESTAMP value %q: want RFC 3339", s)
	case "BINARY":
		return []byte(s), "", nil
	}
	if strings.HasPrefix(typ, "INTERVAL") {
		return s, "INTERVAL", nil
	}
	if strings.HasPrefix(typ, "DECIMAL") {
		if !reNumber.MatchString(s) {
			return nil, "", fmt.Errorf("DECIMAL value %q is not a number", s)
		}
		cast := "DECIMAL(38, 18)"
		if m := reDecimalType.FindStringSubmatch(typ); m != nil {
			prec, _ := strconv.Atoi(m[1])
			scale, _ := strconv.Atoi(m[2])
			prec = max(min(prec, 38), 1)
			scale = min(scale, prec)
			cast = fmt.Sprintf("DECIMAL(%d, %d)", prec, scale)
		}
		return s, cast, nil
	}
	return nil, "", fmt.Errorf("type %q is not supported", p.GetType())
}

func wrapParse(typ, s string, err error) error {
	if err == nil {
		return nil
	}
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		err = ne.Err
	}
	return fmt.Errorf("%s value %q: %w", typ, s, err)
}
