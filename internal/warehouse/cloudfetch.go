package warehouse

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pierrec/lz4/v4"

	"github.com/obolus/obolus/internal/warehouse/tcli"
)

// A Databricks warehouse answers a large result with CloudFetch: FetchResults
// carries links (presigned cloud-storage URLs with an expiry) to Arrow IPC
// files instead of the rows, and the client downloads them in parallel. This
// server plays both parts: it writes the files and serves them under
// cloudFetchPathPrefix until they are downloaded or expire.

const (
	cloudFetchPathPrefix = "/cloudfetch/"
	// defaultCloudFetchThreshold: results of more rows go through links.
	defaultCloudFetchThreshold = 100_000
	// defaultCloudFetchFileRows: rows per result file.
	defaultCloudFetchFileRows = 65_536
	// defaultLinkTTL is how long a link stays valid: 15 minutes, like the
	// presigned URLs a workspace hands out.
	defaultLinkTTL = 15 * time.Minute
	// CallDownload counts the CloudFetch files downloaded, for Calls.
	CallDownload = "CloudFetch download"
	// linksPerFetch is how many files one FetchResults answer links to.
	linksPerFetch = 4
)

// resultFile is one CloudFetch file waiting to be downloaded.
type resultFile struct {
	data    []byte
	expires time.Time
	expired bool // fault: answer as an expired presigned URL would
}

// cloudFetchThreshold is the row count above which results go through links,
// or -1 when CloudFetch is off.
func (s *Server) cloudFetchThreshold() int {
	switch t := s.cfg.CloudFetchThreshold; {
	case t < 0:
		return -1
	case t == 0:
		return defaultCloudFetchThreshold
	default:
		return t
	}
}

func (s *Server) cloudFetchFileRows() int {
	if s.cfg.CloudFetchFileRows > 0 {
		return s.cfg.CloudFetchFileRows
	}
	return defaultCloudFetchFileRows
}

func (s *Server) linkTTL() time.Duration {
	if s.cfg.LinkTTL > 0 {
		return s.cfg.LinkTTL
	}
	return defaultLinkTTL
}

// publish stores one file and returns the link to it.
func (s *Server) publish(op *operation, data []byte, offset, rows int64, rawBytes int) (*tcli.TSparkArrowResultLink, error) {
	var tok [16]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, fmt.Errorf("result link token: %w", err)
	}
	name := hex.EncodeToString(tok[:])
	expires := time.Now().Add(s.linkTTL())
	f := &resultFile{data: data, expires: expires}
	if s.cfg.Faults.takeExpiredLink() {
		// Expired between FetchResults and the download: the client sees a
		// past expiry time, and the storage refuses the URL.
		f.expired = true
		expires = time.Now().Add(-time.Second)
	}
	s.mu.Lock()
	s.sweepLocked(time.Now())
	s.files[name] = f
	s.mu.Unlock()
	return &tcli.TSparkArrowResultLink{
		FileLink:       op.base + cloudFetchPathPrefix + name,
		ExpiryTime:     expires.Unix(),
		StartRowOffset: offset,
		RowCount:       rows,
		BytesNum:       int64(rawBytes),
	}, nil
}

// sweepLocked forgets files past their expiry, which no client can read any
// more. Files outlive their operation, as cloud storage objects do: with
// direct results the operation closes before the client downloads.
func (s *Server) sweepLocked(now time.Time) {
	for name, f := range s.files {
		if now.After(f.expires) {
			delete(s.files, name)
		}
	}
}

// serveResultFile answers GET /cloudfetch/<token>. Like a presigned URL it
// needs no bearer token: the unguessable name is the credential. A file is
// forgotten once downloaded: the driver never asks twice for a file it has.
//
// The file is claimed (removed and counted) before its bytes go out, never
// after: the client may read them, finish the result and close it before
// this handler runs again, and whoever looks at the server then must see
// the download. A write that fails puts the file back for a retry.
func (s *Server) serveResultFile(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, cloudFetchPathPrefix)
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "result files are read with GET", http.StatusMethodNotAllowed)
		return
	}
	s.mu.Lock()
	f := s.files[name]
	claimed := f != nil && !f.expired && !time.Now().After(f.expires)
	if claimed {
		delete(s.files, name)
		s.calls[CallDownload]++
	}
	s.mu.Unlock()
	switch {
	case f == nil:
		http.Error(w, "NoSuchKey: the result file does not exist or was already read", http.StatusNotFound)
		return
	case !claimed:
		// What cloud storage answers for a presigned URL past its expiry.
		http.Error(w, "AccessDenied: Request has expired", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.apache.arrow.stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
	if _, err := w.Write(f.data); err != nil {
		s.mu.Lock()
		s.files[name] = f
		s.calls[CallDownload]--
		s.mu.Unlock()
	}
}

// cloudPage reads up to linksPerFetch files of rows from the cursor, after
// first (the page that decided this result is large, if any), and publishes
// them as links.
func (op *operation) cloudPage(first *page, more bool) encodedPage {
	rs := &tcli.TRowSet{Rows: []*tcli.TRow{}, ResultLinks: []*tcli.TSparkArrowResultLink{}}
	fileRows := op.srv.cloudFetchFileRows()
	for len(rs.ResultLinks) < linksPerFetch {
		p := first
		first = nil
		if p == nil {
			if !more {
				break
			}
			var err error
			if p, more, err = op.cur.next(fileRows); err != nil {
				return encodedPage{err: err}
			}
		}
		if len(rs.ResultLinks) == 0 {
			rs.StartRowOffset = p.offset
		}
		if p.n == 0 {
			break
		}
		data, raw, err := op.resultFile(p)
		if err != nil {
			return encodedPage{err: err}
		}
		link, err := op.srv.publish(op, data, p.offset, int64(p.n), raw)
		if err != nil {
			return encodedPage{err: err}
		}
		rs.ResultLinks = append(rs.ResultLinks, link)
	}
	return encodedPage{rs: rs, more: more}
}

// resultFile encodes one page as a whole Arrow IPC stream (schema, batch,
// end marker), LZ4-framed when the client can decompress. It returns the
// bytes and their uncompressed size.
func (op *operation) resultFile(p *page) ([]byte, int, error) {
	batch, err := op.enc.arrowBatch(p)
	if err != nil {
		return nil, 0, err
	}
	var buf bytes.Buffer
	buf.Grow(len(op.enc.schemaBytes) + len(batch) + 8)
	buf.Write(op.enc.schemaBytes)
	buf.Write(batch)
	buf.Write([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}) // IPC end of stream
	raw := buf.Len()
	if !op.lz4 {
		return buf.Bytes(), raw, nil
	}
	data, err := lz4Frame(buf.Bytes())
	return data, raw, err
}

// lz4Frame compresses b as one LZ4 frame, the format the driver reads for
// both inline batches and CloudFetch files.
func lz4Frame(b []byte) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(b)/2 + 64)
	w := lz4.NewWriter(&out)
	if _, err := w.Write(b); err != nil {
		return nil, fmt.Errorf("lz4: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("lz4: %w", err)
	}
	return out.Bytes(), nil
}
