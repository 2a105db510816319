package otlp

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/obolus/obolus/schemas"
)

// Path is where OTLP/HTTP exporters send traces.
const Path = "/v1/traces"

// Content types of OTLP/HTTP.
const (
	ContentProtobuf = "application/x-protobuf"
	ContentJSON     = "application/json"
)

// Exporter takes the spans of one request. It returns once what it accepted
// is durable, with how many spans it rejected (and why, for the client); an
// error means nothing may be relied on and the client should retry.
type Exporter interface {
	Export(ctx context.Context, spans []Span) (Result, error)
}

// Result is what an Exporter did with a request's spans.
type Result struct {
	// Rejected spans were not accepted (and not retryable: they are
	// malformed, and dead-lettered); Message says why, naming the first.
	Rejected int64
	Message  string
}

// Config configures the handler. Zero fields take the defaults below.
type Config struct {
	// MaxBodyBytes bounds a request body, both as sent and after gzip.
	MaxBodyBytes int64
	// MaxInFlight bounds the requests being exported at once; one more is
	// answered 429 with Retry-After.
	MaxInFlight int
	// Timeout bounds an export; an exporter that cannot finish in time
	// (Kafka not keeping up) is answered 503 with Retry-After.
	Timeout time.Duration
	// RetryAfter is what 429 and 503 answers tell the client to wait.
	RetryAfter time.Duration
	// BearerToken, when set, must be sent as "Authorization: Bearer <token>".
	BearerToken string
	// Keys says which attributes to keep (the span table reader's keys).
	Keys schemas.SpanKeys
	Log  *slog.Logger
}

// google.rpc.Code values of error bodies (google/rpc/code.proto), so that
// a status does not need gRPC's package.
type code int32

const (
	codeInvalidArgument   code = 3
	codeResourceExhausted code = 8
	codeUnavailable       code = 14
	codeUnauthenticated   code = 16
)

// Defaults of Config.
const (
	DefaultMaxBodyBytes = 8 << 20
	DefaultMaxInFlight  = 16
	DefaultTimeout      = 5 * time.Second
	DefaultRetryAfter   = time.Second
)

// Stats counts what the handler did.
type Stats struct {
	Requests  int64 `json:"requests"`
	Spans     int64 `json:"spans"`
	Rejected  int64 `json:"rejected_spans"`
	Malformed int64 `json:"malformed_requests"`
	TooLarge  int64 `json:"too_large"`
	Throttled int64 `json:"throttled"`
	Failed    int64 `json:"failed"`
	Denied    int64 `json:"unauthorized"`
}

// Handler serves POST /v1/traces.
type Handler struct {
	cfg       Config
	exp       Exporter
	slots     chan struct{}
	tokenHash [32]byte

	requests, spans, rejected, malformed, tooLarge, throttled, failed, denied atomic.Int64
}

// NewHandler returns the handler; exp receives the spans.
func NewHandler(cfg Config, exp Exporter) *Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.Keys = cfg.Keys.OrDefault()
	h := &Handler{cfg: cfg, exp: exp, slots: make(chan struct{}, cfg.MaxInFlight)}
	if cfg.BearerToken != "" {
		// Hashes of equal length, so the comparison's time says nothing
		// about the token's length either.
		h.tokenHash = sha256.Sum256([]byte(cfg.BearerToken))
	}
	return h
}

// Stats returns the handler's counts.
func (h *Handler) Stats() Stats {
	return Stats{Requests: h.requests.Load(), Spans: h.spans.Load(), Rejected: h.rejected.Load(), Malformed: h.malformed.Load(),
		TooLarge: h.tooLarge.Load(), Throttled: h.throttled.Load(), Failed: h.failed.Load(), Denied: h.denied.Load()}
}

// ServeHTTP answers as OTLP/HTTP says: 200 with an ExportTraceServiceResponse
// (partial_success naming rejected spans), 400 for a body that does not
// decode, 401 without the bearer token, 413 for a body over the limit, 415
// for another content type or encoding, 429 or 503 with Retry-After when the
// intake cannot take more now. Error bodies are a google.rpc.Status in the
// request's encoding.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.requests.Add(1)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	ct := contentType(r)
	if h.cfg.BearerToken != "" && !h.authorized(r) {
		h.denied.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="obolus"`)
		h.fail(w, ct, http.StatusUnauthorized, codeUnauthenticated, "missing or wrong bearer token")
		return
	}
	if ct != ContentProtobuf && ct != ContentJSON {
		h.fail(w, ContentProtobuf, http.StatusUnsupportedMediaType, codeInvalidArgument,
			fmt.Sprintf("content type %q: send %s or %s", r.Header.Get("Content-Type"), ContentProtobuf, ContentJSON))
		return
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		h.throttled.Add(1)
		h.retryLater(w, ct, http.StatusTooManyRequests, codeResourceExhausted,
			fmt.Sprintf("%d requests in flight (stream.otlp.max_in_flight)", h.cfg.MaxInFlight))
		return
	}
	body, status, err := h.readBody(w, r)
	if err != nil {
		if status == http.StatusRequestEntityTooLarge {
			h.tooLarge.Add(1)
		} else {
			h.malformed.Add(1)
		}
		c := codeInvalidArgument
		if status == http.StatusRequestEntityTooLarge {
			c = codeResourceExhausted
		}
		h.fail(w, ct, status, c, err.Error())
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := h.unmarshal(ct, body, &req); err != nil {
		h.malformed.Add(1)
		h.fail(w, ct, http.StatusBadRequest, codeInvalidArgument, err.Error())
		return
	}
	spans := Rows(nil, req.GetResourceSpans(), &h.cfg.Keys)
	h.spans.Add(int64(len(spans)))
	var res Result
	if len(spans) > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
		res, err = h.exp.Export(ctx, spans)
		cancel()
		if err != nil {
			h.failed.Add(1)
			// Never the request's headers: they may carry the token.
			h.cfg.Log.Warn("otlp: export failed; the client is told to retry", "spans", len(spans), "err", err)
			h.retryLater(w, ct, http.StatusServiceUnavailable, codeUnavailable, "cannot take the spans now: "+err.Error())
			return
		}
	}
	h.rejected.Add(res.Rejected)
	resp := &coltracepb.ExportTraceServiceResponse{}
	if res.Rejected > 0 {
		resp.PartialSuccess = &coltracepb.ExportTracePartialSuccess{RejectedSpans: res.Rejected, ErrorMessage: strings.ToValidUTF8(res.Message, "\uFFFD")}
	}
	h.write(w, ct, http.StatusOK, resp)
}

func (h *Handler) authorized(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(got[:], h.tokenHash[:]) == 1
}

// contentType is the request's media type without parameters, or "".
func contentType(r *http.Request) string {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}

// readBody reads the body within the size limit, gunzipped if it says so.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	limit := h.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body of %d bytes is over the limit of %d (stream.otlp.max_body_bytes)", r.ContentLength, limit)
	}
	var in io.Reader = http.MaxBytesReader(w, r.Body, limit)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(in)
		if err != nil {
			return nil, tooLargeOr(err), fmt.Errorf("gzip body: %w", err)
		}
		defer zr.Close()
		in = zr
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("content encoding %q: send gzip or none", enc)
	}
	// One byte more than the limit tells a body at the limit from one over
	// it, and bounds what a small gzip body may expand to.
	b, err := io.ReadAll(io.LimitReader(in, limit+1))
	if err != nil {
		return nil, tooLargeOr(err), fmt.Errorf("read body: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body is over the limit of %d bytes once decompressed (stream.otlp.max_body_bytes)", limit)
	}
	return b, 0, nil
}

// tooLargeOr is 413 for a read cut by the size limit, else 400.
func tooLargeOr(err error) int {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

func (h *Handler) unmarshal(ct string, body []byte, req *coltracepb.ExportTraceServiceRequest) error {
	if ct == ContentJSON {
		// Receivers must ignore fields they do not know (OTLP spec).
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, req); err != nil {
			return fmt.Errorf("decode OTLP/JSON body: %w", err)
		}
		return fixJSONIDs(req.GetResourceSpans())
	}
	if err := proto.Unmarshal(body, req); err != nil {
		return fmt.Errorf("decode OTLP/protobuf body: %w", err)
	}
	return nil
}

// retryLater answers a retryable status with Retry-After.
func (h *Handler) retryLater(w http.ResponseWriter, ct string, status int, c code, msg string) {
	secs := int((h.cfg.RetryAfter + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(1, secs)))
	h.fail(w, ct, status, c, msg)
}

// fail answers an error with a google.rpc.Status body.
func (h *Handler) fail(w http.ResponseWriter, ct string, status int, c code, msg string) {
	// The message may quote the body; a protobuf string must be UTF-8.
	h.write(w, ct, status, &statuspb.Status{Code: int32(c), Message: strings.ToValidUTF8(msg, "\uFFFD")})
}

func (h *Handler) write(w http.ResponseWriter, ct string, status int, m proto.Message) {
	var b []byte
	var err error
	if ct == ContentJSON {
		b, err = protojson.Marshal(m)
	} else {
		ct = ContentProtobuf
		b, err = proto.Marshal(m)
	}
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
