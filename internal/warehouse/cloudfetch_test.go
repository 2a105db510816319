package warehouse

import (
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/thrift/lib/go/thrift"
	dbsql "github.com/databricks/databricks-sql-go"
	"github.com/pierrec/lz4/v4"

	"github.com/obolus/obolus/internal/warehouse/tcli"
)

// readSequence reads `SELECT i, label, ts` over range(n) through db and
// checks every row arrives once, in order, with its values.
func readSequence(t *testing.T, db *sql.DB, n int) {
	t.Helper()
	q := fmt.Sprintf(`SELECT i, 'row ' || i AS label, TIMESTAMP '2026-11-01 00:00:00' + to_seconds(i) AS ts
		FROM range(%d) t(i) ORDER BY i`, n)
	rows, err := db.QueryContext(testCtx(t), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	next := int64(0)
	for rows.Next() {
		var i int64
		var label string
		var ts time.Time
		if err := rows.Scan(&i, &label, &ts); err != nil {
			t.Fatal(err)
		}
		if i != next || label != fmt.Sprintf("row %d", next) || !ts.Equal(base.Add(time.Duration(next)*time.Second)) {
			t.Fatalf("row %d: got (%d, %q, %s)", next, i, label, ts)
		}
		next++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if next != int64(n) {
		t.Fatalf("read %d rows, want %d", next, n)
	}
}

func TestCloudFetch(t *testing.T) {
	const threshold, fileRows = 1000, 700
	tests := []struct {
		name      string
		rows      int
		tls       bool
		opts      []dbsql.ConnOption
		downloads int // files the client fetched
		fetches   int // FetchResults calls
	}{
		// 1000 rows in the first file, then 9 of 700 and one of 700: 11
		// files, four links per answer: direct results plus two fetches.
		{name: "large result through links", rows: 9000, downloads: 13, fetches: 3},
		{name: "over TLS", rows: 9000, tls: true, downloads: 13, fetches: 3},
		{name: "at the threshold stays inline", rows: threshold, downloads: 0, fetches: 0},
		// The client pages are 400 rows: the 1000 rows read to decide go
		// out as three inline pages.
		{name: "small result in several inline pages", rows: threshold, opts: []dbsql.ConnOption{dbsql.WithMaxRows(400)}, downloads: 0, fetches: 2},
		{name: "client without CloudFetch", rows: 9000, opts: []dbsql.ConnOption{dbsql.WithCloudFetch(false), dbsql.WithMaxRows(5000)}, downloads: 0, fetches: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Config{CloudFetchThreshold: threshold, CloudFetchFileRows: fileRows, TLS: tt.tls})
			readSequence(t, openDB(t, s, tt.opts...), tt.rows)
			if got := s.Calls(CallDownload); got != tt.downloads {
				t.Errorf("files downloaded = %d, want %d", got, tt.downloads)
			}
			if got := s.Calls("FetchResults"); got != tt.fetches {
				t.Errorf("FetchResults calls = %d, want %d", got, tt.fetches)
			}
			s.mu.Lock()
			left := len(s.files)
			s.mu.Unlock()
			if left != 0 {
				t.Errorf("%d result files left after the result was read and closed", left)
			}
		})
	}
}

// The driver checks a link's expiry before downloading it and fails the
// read with its "link expired" error; databricks-sql-go v1.14.0 does not ask
// for fresh links (the JDBC and Python connectors do). The query fails
// cleanly, nothing leaks, and running it again reads every row.
func TestCloudFetchExpiredLink(t *testing.T) {
	faults := &Faults{}
	s := startServer(t, Config{CloudFetchThreshold: 1000, CloudFetchFileRows: 700, Faults: faults})
	db := openDB(t, s)
	// The first four links come with direct results; the fifth, in the
	// first FetchResults, expires.
	faults.ExpireLinks(4, 1)
	var n int64
	err := func() error {
		rows, err := db.QueryContext(testCtx(t), `SELECT i FROM range(9000) t(i) ORDER BY i`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var i int64
			if err := rows.Scan(&i); err != nil {
				return err
			}
			if i != n {
				return fmt.Errorf("row %d: got %d", n, i)
			}
			n++
		}
		return rows.Err()
	}()
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "expired") {
		t.Fatalf("read past an expired link: err = %v after %d rows, want a link-expired error", err, n)
	}
	if n == 0 || n >= 9000 {
		t.Errorf("read %d rows before the expired link, want some but not all", n)
	}
	if faults.Injected() != 1 {
		t.Errorf("faults injected = %d, want 1", faults.Injected())
	}
	readSequence(t, db, 9000)
}

// databricks-sql-go v1.14.0 never asks for LZ4 (its UseLz4Compression has
// no option), so a Thrift client of our own asks, the way the JDBC and
// Python connectors do, and decodes what comes back.
func TestLZ4Results(t *testing.T) {
	for _, cloud := range []bool{false, true} {
		t.Run(fmt.Sprintf("cloudfetch=%v", cloud), func(t *testing.T) {
			s := startServer(t, Config{CloudFetchThreshold: 1000, CloudFetchFileRows: 700})
			const n = 3000
			ctx := testCtx(t)
			c := thriftClient(t, s)
			sess, err := c.OpenSession(ctx, &tcli.TOpenSessionReq{ClientProtocol: tcli.TProtocolVersion_SPARK_CLI_SERVICE_PROTOCOL_V8})
			if err != nil || sess.Status.StatusCode != tcli.TStatusCode_SUCCESS_STATUS {
				t.Fatalf("OpenSession: %v %v", err, sess.GetStatus())
			}
			yes := true
			req := &tcli.TExecuteStatementReq{
				SessionHandle:           sess.SessionHandle,
				Statement:               fmt.Sprintf("SELECT i, 'row ' || i AS label FROM range(%d) t(i) ORDER BY i", n),
				GetDirectResults:        &tcli.TSparkGetDirectResults{MaxRows: 1000},
				CanReadArrowResult_:     &yes,
				CanDecompressLZ4Result_: &yes,
				CanDownloadResult_:      &cloud,
			}
			resp, err := c.ExecuteStatement(ctx, req)
			if err != nil || resp.Status.StatusCode != tcli.TStatusCode_SUCCESS_STATUS {
				t.Fatalf("ExecuteStatement: %v %v", err, resp.GetStatus())
			}
			dr := resp.DirectResults
			if !dr.ResultSetMetadata.GetLz4Compressed() {
				t.Error("metadata does not say lz4Compressed")
			}
			schema := dr.ResultSetMetadata.ArrowSchema
			next := int64(0)
			read := func(rs *tcli.TRowSet) {
				var streams [][]byte
				for _, b := range rs.ArrowBatches {
					raw := unLZ4(t, b.Batch)
					streams = append(streams, append(bytes.Clone(schema), raw...))
				}
				for _, l := range rs.ResultLinks {
					streams = append(streams, unLZ4(t, download(t, s, l.FileLink)))
				}
				if cloud != (len(rs.ResultLinks) > 0) {
					t.Fatalf("cloudfetch=%v but the row set has %d links and %d batches", cloud, len(rs.ResultLinks), len(rs.ArrowBatches))
				}
				for _, st := range streams {
					r, err := ipc.NewReader(bytes.NewReader(st))
					if err != nil {
						t.Fatal(err)
					}
					for r.Next() {
						ids := r.RecordBatch().Column(0).(*array.Int64)
						for k := 0; k < ids.Len(); k++ {
							if ids.Value(k) != next {
								t.Fatalf("row %d: got %d", next, ids.Value(k))
							}
							next++
						}
					}
					if err := r.Err(); err != nil && err != io.EOF {
						t.Fatal(err)
					}
					r.Release()
				}
			}
			read(dr.ResultSet.Results)
			more := dr.ResultSet.GetHasMoreRows()
			for more {
				fr, err := c.FetchResults(ctx, &tcli.TFetchResultsReq{OperationHandle: resp.OperationHandle, Orientation: tcli.TFetchOrientation_FETCH_NEXT, MaxRows: 1000})
				if err != nil || fr.Status.StatusCode != tcli.TStatusCode_SUCCESS_STATUS {
					t.Fatalf("FetchResults: %v %v", err, fr.GetStatus())
				}
				read(fr.Results)
				more = fr.GetHasMoreRows()
			}
			if next != n {
				t.Fatalf("read %d rows, want %d", next, n)
			}
		})
	}
}

func unLZ4(t *testing.T, b []byte) []byte {
	t.Helper()
	out, err := io.ReadAll(lz4.NewReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatalf("not an LZ4 frame: %v", err)
	}
	return out
}

func download(t *testing.T, s *Server, link string) []byte {
	t.Helper()
	res, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", link, res.StatusCode, err)
	}
	return b
}

// thriftClient speaks TCLIService to s directly, for what the driver cannot
// be made to ask.
func thriftClient(t *testing.T, s *Server) *tcli.TCLIServiceClient {
	t.Helper()
	s.mu.Lock()
	base := s.baseURL
	s.mu.Unlock()
	trans, err := thrift.NewTHttpClient(base + thriftPathPrefix + "test")
	if err != nil {
		t.Fatal(err)
	}
	trans.(*thrift.THttpClient).SetHeader("Authorization", "Bearer "+s.cfg.Token)
	proto := thrift.NewTBinaryProtocolFactoryConf(&thrift.TConfiguration{})
	return tcli.NewTCLIServiceClientFactory(trans, proto)
}
