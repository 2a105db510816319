package synth

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
)

// sink receives the generated rows and owns the files of one format.
type sink interface {
	openUsage(k int) error
	usage(c *call) error
	closeUsage() error
	legacy(c *call) error
	payload(q *request) error
	trace(q *request) error
	// spans writes the request's OpenTelemetry span rows (AgentLogsOTel).
	spans(q *request) error
	// finish closes every file and returns the paths written, relative to
	// the output directory.
	finish() ([]string, error)
	// abort releases resources after an error.
	abort()
}

// Relative paths of the output layout.
func usageFile(k int, ext string) string {
	return filepath.Join("usage", fmt.Sprintf("ai_gateway_usage-%03d.%s", k, ext))
}
func legacyFile(ext string) string { return filepath.Join("usage", "endpoint_usage-000."+ext) }
func agentFile(ag *agent, late bool, kind, ext string) string {
	dir := "agents"
	if late {
		dir = "agents_late"
	}
	return filepath.Join(dir, ag.endpoint+"_"+kind+"."+ext)
}

const (
	kindPayload = "payload"
	kindTraces  = "traces"
)

// outFile is a buffered output file.
type outFile struct {
	rel string
	f   *os.File
	w   *bufio.Writer
}

func createOut(dir, rel string) (*outFile, error) {
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", rel, err)
	}
	f, err := os.Create(p)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", rel, err)
	}
	return &outFile{rel: rel, f: f, w: bufio.NewWriterSize(f, 1<<20)}, nil
}

func (o *outFile) write(b []byte) error {
	if _, err := o.w.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", o.rel, err)
	}
	return nil
}

func (o *outFile) close() error {
	if err := o.w.Flush(); err != nil {
		o.f.Close()
		return fmt.Errorf("write %s: %w", o.rel, err)
	}
	if err := o.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", o.rel, err)
	}
	return nil
}

// textSink writes JSON Lines or CSV with a header row.
type textSink struct {
	w       *world
	dir     string
	csv     bool
	ext     string
	enc     recEnc
	scratch []byte
	spanBuf []span
	cur     *outFile
	leg     *outFile
	agents  map[string]*outFile
	order   []*outFile // every file opened, for finish and abort
}

func newTextSink(w *world, dir string, csv bool) *textSink {
	s := &textSink{w: w, dir: dir, csv: csv, ext: FormatJSONL, agents: make(map[string]*outFile)}
	if csv {
		s.ext = FormatCSV
	}
	s.enc.csv = csv
	return s
}

func (s *textSink) open(rel string, cols []column) (*outFile, error) {
	o, err := createOut(s.dir, rel)
	if err != nil {
		return nil, err
	}
	s.order = append(s.order, o)
	if s.csv {
		if err := o.write(csvHeader(cols)); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// emit writes the encoded record and resets the buffer.
func (s *textSink) emit(o *outFile) error {
	err := o.write(s.enc.b)
	s.enc.b = s.enc.b[:0]
	return err
}

func (s *textSink) openUsage(k int) error {
	o, err := s.open(usageFile(k, s.ext), usageColumns)
	s.cur = o
	return err
}

func (s *textSink) usage(c *call) error {
	s.scratch = s.w.encUsage(&s.enc, c, s.scratch)
	return s.emit(s.cur)
}

func (s *textSink) closeUsage() error {
	if s.cur == nil {
		return nil
	}
	err := s.cur.close()
	s.cur = nil
	return err
}

func (s *textSink) legacy(c *call) error {
	if s.leg == nil {
		o, err := s.open(legacyFile(s.ext), legacyColumns)
		if err != nil {
			return err
		}
		s.leg = o
	}
	s.scratch = s.w.encLegacy(&s.enc, c, s.scratch)
	return s.emit(s.leg)
}

func (s *textSink) agentOut(q *request, kind string, cols []column) (*outFile, error) {
	rel := agentFile(s.w.agents[q.agent], q.late, kind, s.ext)
	if o, ok := s.agents[rel]; ok {
		return o, nil
	}
	o, err := s.open(rel, cols)
	if err != nil {
		return nil, err
	}
	s.agents[rel] = o
	return o, nil
}

func (s *textSink) payload(q *request) error {
	o, err := s.agentOut(q, kindPayload, payloadColumns)
	if err != nil {
		return err
	}
	s.w.encPayload(&s.enc, q)
	return s.emit(o)
}

func (s *textSink) trace(q *request) error {
	o, err := s.agentOut(q, kindTraces, traceColumns)
	if err != nil {
		return err
	}
	s.scratch = s.w.encTrace(&s.enc, q, s.scratch)
	return s.emit(o)
}

func (s *textSink) spans(q *request) error {
	v2 := s.w.cfg.OTelLayout == OTelV2
	o, err := s.agentOut(q, kindSpans, spanColumns(s.w.cfg.OTelLayout))
	if err != nil {
		return err
	}
	s.spanBuf = s.w.spans(q, s.spanBuf[:0])
	for i := range s.spanBuf {
		s.scratch = s.w.encSpan(&s.enc, q, &s.spanBuf[i], v2, s.scratch)
		if err := s.emit(o); err != nil {
			return err
		}
	}
	return nil
}

func (s *textSink) finish() ([]string, error) {
	var rels []string
	var first error
	for _, o := range s.order {
		if o == s.cur || o == s.leg || s.agents[o.rel] == o {
			if err := o.close(); err != nil && first == nil {
				first = err
			}
		}
		rels = append(rels, o.rel)
	}
	s.order = nil
	return rels, first
}

func (s *textSink) abort() {
	for _, o := range s.order {
		o.f.Close()
	}
	s.order = nil
}
