package warehouse

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/obolus/obolus/internal/warehouse/tcli"
)

// maxProtocol is the newest protocol the server speaks; V8 is the first
// with named parameters.
const maxProtocol = tcli.TProtocolVersion_SPARK_CLI_SERVICE_PROTOCOL_V8

// resultFormatConf is the session parameter that picks the row-set format.
const resultFormatConf = "warehouse.result_format"

type handleID [16]byte

func newHandle() (handleID, []byte, error) {
	var id handleID
	secret := make([]byte, 16)
	if _, err := rand.Read(id[:]); err != nil {
		return id, nil, fmt.Errorf("generating handle: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return id, nil, fmt.Errorf("generating handle secret: %w", err)
	}
	return id, secret, nil
}

// sessionID and operationID read handles defensively: the generated getters
// dereference their receivers.
func sessionID(h *tcli.TSessionHandle) (handleID, bool) {
	if h == nil {
		return handleID{}, false
	}
	return toHandleID(h.SessionId)
}

func operationID(h *tcli.TOperationHandle) (handleID, bool) {
	if h == nil {
		return handleID{}, false
	}
	return toHandleID(h.OperationId)
}

func toHandleID(h *tcli.THandleIdentifier) (handleID, bool) {
	var id handleID
	if h == nil || len(h.GUID) != len(id) {
		return id, false
	}
	copy(id[:], h.GUID)
	return id, true
}

func ok() *tcli.TStatus { return &tcli.TStatus{StatusCode: tcli.TStatusCode_SUCCESS_STATUS} }

func errStatus(msg, sqlState string) *tcli.TStatus {
	st := &tcli.TStatus{StatusCode: tcli.TStatusCode_ERROR_STATUS, ErrorMessage: &msg, DisplayMessage: &msg}
	if sqlState != "" {
		st.SqlState = &sqlState
	}
	return st
}

// session is one driver connection: a dedicated DuckDB connection, so USE
// and SET stay per session as on Databricks.
type session struct {
	id      handleID
	secret  []byte
	conn    *duckdb.Conn
	execMu  sync.Mutex // DuckDB connections run one statement at a time
	loc     *time.Location
	columns bool

	mu     sync.Mutex
	ops    map[handleID]*operation
	closed bool
}

func (se *session) close() {
	se.mu.Lock()
	if se.closed {
		se.mu.Unlock()
		return
	}
	se.closed = true
	ops := make([]*operation, 0, len(se.ops))
	for _, op := range se.ops {
		ops = append(ops, op)
	}
	se.ops = nil
	se.mu.Unlock()
	for _, op := range ops {
		op.close()
	}
	se.execMu.Lock()
	_ = se.conn.Close()
	se.execMu.Unlock()
}

// service implements the generated TCLIService interface.
type service struct{ s *Server }

var _ tcli.TCLIService = (*service)(nil)

func (sv *service) OpenSession(ctx context.Context, req *tcli.TOpenSessionReq) (*tcli.TOpenSessionResp, error) {
	s := sv.s
	proto := req.GetClientProtocol()
	if req.IsSetClientProtocolI64() {
		proto = tcli.TProtocolVersion(req.GetClientProtocolI64())
	}
	if proto > maxProtocol || proto < 0 {
		proto = maxProtocol
	}
	resp := &tcli.TOpenSessionResp{Status: ok(), ServerProtocolVersion: proto}

	se := &session{loc: time.UTC, columns: s.cfg.ColumnResults, ops: map[handleID]*operation{}}
	for k, v := range req.GetConfiguration() {
		switch strings.ToLower(k) {
		case "timezone":
			loc, err := time.LoadLocation(v)
			if err != nil {
				resp.Status = errStatus(fmt.Sprintf("session configuration timezone=%q: %v", v, err), "22023")
				return resp, nil
			}
			se.loc = loc
		case resultFormatConf:
			switch strings.ToLower(v) {
			case "column", "columns":
				se.columns = true
			case "arrow":
				se.columns = false
			default:
				resp.Status = errStatus(fmt.Sprintf("session configuration %s=%q: want column or arrow", k, v), "22023")
				return resp, nil
			}
		}
	}
	var err error
	if se.id, se.secret, err = newHandle(); err != nil {
		return nil, err
	}
	dc, err := s.connector.Connect(ctx)
	if err != nil {
		resp.Status = errStatus("opening DuckDB connection: "+err.Error(), "08001")
		return resp, nil
	}
	conn, isDuck := dc.(*duckdb.Conn)
	if !isDuck {
		_ = dc.Close()
		return nil, fmt.Errorf("unexpected connection type %T from DuckDB", dc)
	}
	se.conn = conn
	if se.loc != time.UTC {
		// Keep SQL casts and TIMESTAMPTZ literals in the session zone too, as
		// Spark's session time zone does. SET takes no bound parameters; the
		// zone name was validated by time.LoadLocation.
		if _, err := se.conn.ExecContext(ctx, "SET TimeZone = "+quoteLiteral(se.loc.String()), nil); err != nil {
			_ = se.conn.Close()
			resp.Status = errStatus(fmt.Sprintf("session configuration timezone=%q: %v", se.loc, err), "22023")
			return resp, nil
		}
	}

	if ns := req.GetInitialNamespace(); ns != nil && (ns.GetCatalogName() != "" || ns.GetSchemaName() != "") {
		var target []string
		if c := string(ns.GetCatalogName()); c != "" {
			target = append(target, quoteIdent(s.duckCatalog(c)))
		}
		if sc := string(ns.GetSchemaName()); sc != "" {
			target = append(target, quoteIdent(sc))
		}
		if _, err := se.conn.ExecContext(ctx, "USE "+strings.Join(target, "."), nil); err != nil {
			_ = se.conn.Close()
			resp.Status = errStatus(fmt.Sprintf("initial namespace catalog=%q schema=%q: %v", ns.GetCatalogName(), ns.GetSchemaName(), err), "3F000")
			return resp, nil
		}
		resp.InitialNamespace = ns
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = se.conn.Close()
		resp.Status = errStatus("warehouse is shutting down", "08006")
		return resp, nil
	}
	s.sessions[se.id] = se
	s.mu.Unlock()

	multi := true
	resp.SessionHandle = &tcli.TSessionHandle{SessionId: &tcli.THandleIdentifier{GUID: se.id[:], Secret: se.secret}}
	resp.CanUseMultipleCatalogs = &multi
	resp.Configuration = map[string]string{}
	return resp, nil
}

func (sv *service) CloseSession(ctx context.Context, req *tcli.TCloseSessionReq) (*tcli.TCloseSessionResp, error) {
	s := sv.s
	id, valid := sessionID(req.GetSessionHandle())
	if !valid {
		return &tcli.TCloseSessionResp{Status: errStatus("Invalid SessionHandle", "")}, nil
	}
	s.mu.Lock()
	se := s.sessions[id]
	delete(s.sessions, id)
	if se != nil {
		for opID, op := range s.ops {
			if op.sess == se {
				delete(s.ops, opID)
			}
		}
	}
	s.mu.Unlock()
	if se != nil {
		se.close()
	}
	return &tcli.TCloseSessionResp{Status: ok()}, nil
}

func (sv *service) ExecuteStatement(ctx context.Context, req *tcli.TExecuteStatementReq) (*tcli.TExecuteStatementResp, error) {
	s := sv.s
	sid, valid := sessionID(req.GetSessionHandle())
	s.mu.Lock()
	se := s.sessions[sid]
	s.mu.Unlock()
	if !valid || se == nil {
		return &tcli.TExecuteStatementResp{Status: errStatus("Invalid SessionHandle: unknown or closed session", "08003")}, nil
	}
	op, err := s.newOperation(se, req)
	if err != nil {
		return nil, err
	}
	op.base, _ = ctx.Value(baseURLKey{}).(string)
	go op.run()

	wait := s.cfg.DirectResultsWait
	if wait == 0 {
		wait = 5 * time.Second
	}
	if wait > 0 {
		timer := time.NewTimer(wait)
		select {
		case <-op.done:
		case <-timer.C:
		case <-ctx.Done():
			// The client gave up on this call (its context ended), so nobody
			// will poll or cancel this operation: stop it here.
			s.closeOperation(op)
		}
		timer.Stop()
	}

	resp := &tcli.TExecuteStatementResp{Status: ok(), OperationHandle: op.handle()}
	if req.GetDirectResults == nil {
		return resp, nil
	}
	if wait < 0 {
		// Always asynchronous: say RUNNING even if the statement already
		// finished, so clients take the polling path.
		running := tcli.TOperationState_RUNNING_STATE
		resp.DirectResults = &tcli.TSparkDirectResults{OperationStatus: &tcli.TGetOperationStatusResp{Status: ok(), OperationState: &running}}
		return resp, nil
	}
	dr := &tcli.TSparkDirectResults{}
	closed := &tcli.TCloseOperationResp{Status: ok()}
	op.mu.Lock()
	switch op.state {
	case tcli.TOperationState_FINISHED_STATE:
		fr, more, ferr := op.fetchLocked(s.pageSize(req.GetDirectResults.GetMaxRows()), false)
		if ferr != nil {
			// The values could not be encoded: the statement failed after all.
			op.failLocked(ferr)
			dr.CloseOperation = closed
			break
		}
		dr.ResultSetMetadata, dr.ResultSet = op.metadataLocked(), fr
		if !more {
			dr.CloseOperation = closed
		}
	case tcli.TOperationState_ERROR_STATE, tcli.TOperationState_CANCELED_STATE, tcli.TOperationState_TIMEDOUT_STATE:
		// The driver does not close failed queries it ran with QueryContext;
		// close them here and say so.
		dr.CloseOperation = closed
	}
	dr.OperationStatus = op.statusLocked()
	closeNow := dr.CloseOperation != nil
	op.mu.Unlock()
	if closeNow {
		s.closeOperation(op)
	}
	resp.DirectResults = dr
	return resp, nil
}

func (sv *service) GetOperationStatus(ctx context.Context, req *tcli.TGetOperationStatusReq) (*tcli.TGetOperationStatusResp, error) {
	op := sv.s.lookupOperation(req.GetOperationHandle())
	if op == nil {
		return &tcli.TGetOperationStatusResp{Status: errStatus("Invalid OperationHandle: unknown or closed operation", "")}, nil
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.statusLocked(), nil
}

func (sv *service) CancelOperation(ctx context.Context, req *tcli.TCancelOperationReq) (*tcli.TCancelOperationResp, error) {
	op := sv.s.lookupOperation(req.GetOperationHandle())
	if op == nil {
		return &tcli.TCancelOperationResp{Status: ok()}, nil
	}
	op.cancelAndWait()
	op.mu.Lock()
	if op.state == tcli.TOperationState_RUNNING_STATE || op.state == tcli.TOperationState_FINISHED_STATE {
		op.state = tcli.TOperationState_CANCELED_STATE
	}
	op.releaseLocked()
	op.mu.Unlock()
	return &tcli.TCancelOperationResp{Status: ok()}, nil
}

func (sv *service) CloseOperation(ctx context.Context, req *tcli.TCloseOperationReq) (*tcli.TCloseOperationResp, error) {
	if op := sv.s.lookupOperation(req.GetOperationHandle()); op != nil {
		sv.s.closeOperation(op)
	}
	// Closing an unknown or already closed operation is not an error: the
	// server may have closed it with the direct results.
	return &tcli.TCloseOperationResp{Status: ok()}, nil
}

func (sv *service) GetResultSetMetadata(ctx context.Context, req *tcli.TGetResultSetMetadataReq) (*tcli.TGetResultSetMetadataResp, error) {
	op := sv.s.lookupOperation(req.GetOperationHandle())
	if op == nil {
		return &tcli.TGetResultSetMetadataResp{Status: errStatus("Invalid OperationHandle: unknown or closed operation", "")}, nil
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.state != tcli.TOperationState_FINISHED_STATE {
		return &tcli.TGetResultSetMetadataResp{Status: errStatus("operation has no result set in state "+op.state.String(), "")}, nil
	}
	return op.metadataLocked(), nil
}

func (sv *service) FetchResults(ctx context.Context, req *tcli.TFetchResultsReq) (*tcli.TFetchResultsResp, error) {
	s := sv.s
	op := s.lookupOperation(req.GetOperationHandle())
	if op == nil {
		return &tcli.TFetchResultsResp{Status: errStatus("Invalid OperationHandle: unknown or closed operation", "")}, nil
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.state != tcli.TOperationState_FINISHED_STATE {
		return &tcli.TFetchResultsResp{Status: errStatus("cannot fetch results in state "+op.state.String(), "")}, nil
	}
	switch req.GetOrientation() {
	case tcli.TFetchOrientation_FETCH_NEXT:
	case tcli.TFetchOrientation_FETCH_FIRST:
		if op.cur.offset != 0 {
			return &tcli.TFetchResultsResp{Status: errStatus("FETCH_FIRST after rows were fetched is not supported: results are forward only", "0A000")}, nil
		}
	default:
		return &tcli.TFetchResultsResp{Status: errStatus("fetch orientation "+req.GetOrientation().String()+" is not supported: results are forward only", "0A000")}, nil
	}
	resp, _, err := op.fetchLocked(s.pageSize(req.GetMaxRows()), req.GetIncludeResultSetMetadata())
	if err != nil {
		return &tcli.TFetchResultsResp{Status: errStatus(err.Error(), "22000")}, nil
	}
	return resp, nil
}

// pageSize is the number of rows to put in one page for a client asking
// for maxRows.
func (s *Server) pageSize(maxRows int64) int {
	n := int(maxRows)
	if n <= 0 {
		n = 100_000
	}
	if s.cfg.PageSize > 0 && s.cfg.PageSize < n {
		n = s.cfg.PageSize
	}
	return n
}

func (s *Server) lookupOperation(h *tcli.TOperationHandle) *operation {
	id, valid := operationID(h)
	if !valid {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ops[id]
}

func (s *Server) closeOperation(op *operation) {
	s.mu.Lock()
	delete(s.ops, op.id)
	s.mu.Unlock()
	op.sess.mu.Lock()
	delete(op.sess.ops, op.id)
	op.sess.mu.Unlock()
	op.close()
}
