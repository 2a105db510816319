// Package webhook posts budget alerts to an HTTP endpoint as
// Slack-compatible JSON, signed with HMAC-SHA256, retrying what may pass
// when tried again.
//
// Receivers verify a request by recomputing the signature over the raw
// body (see Verify) and may drop repeats by X-Obolus-Alert-Id: delivery is
// at least once.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/obolus/obolus/internal/retry"
)

// Headers of a webhook request.
const (
	HeaderAlertID   = "X-Obolus-Alert-Id"
	HeaderTimestamp = "X-Obolus-Timestamp" // Unix seconds when the attempt was signed
	HeaderSignature = "X-Obolus-Signature" // v1=<hex HMAC-SHA256 of "v1:"+timestamp+":"+body>
)

// Config says where and how to post.
type Config struct {
	URL string
	// Secret keys the signature; it is never logged.
	Secret string
	// Timeout bounds one attempt; Attempts is the number of tries, the
	// n-th retry waiting n×Backoff.
	Timeout  time.Duration
	Attempts int
	Backoff  time.Duration
	// Client sends the requests; nil means a new http.Client.
	Client *http.Client
	Log    *slog.Logger
}

// Client posts alerts.
type Client struct {
	cfg Config
	hc  *http.Client
	now func() time.Time
}

// New checks cfg and returns a client.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" || (!strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://")) {
		return nil, errors.New("webhook: the URL must start with http:// or https://")
	}
	if cfg.Secret == "" {
		return nil, errors.New("webhook: no secret to sign requests with")
	}
	if cfg.Timeout <= 0 || cfg.Attempts < 1 || cfg.Backoff < 0 {
		return nil, fmt.Errorf("webhook: timeout %s, attempts %d, backoff %s: want a positive timeout, at least one attempt", cfg.Timeout, cfg.Attempts, cfg.Backoff)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	hc := cfg.Client
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{cfg: cfg, hc: hc, now: time.Now}, nil
}

// Sign is the X-Obolus-Signature value of body signed at timestamp (Unix
// seconds, as sent in X-Obolus-Timestamp).
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("v1:" + timestamp + ":"))
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a request's signature, in constant time, and that its
// timestamp is within tolerance of now (a replayed old request fails).
// Receivers written in Go can call it; others do the same in a few lines
// (docs/streaming.md, Budget alerts).
func Verify(secret, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook: timestamp %q is not Unix seconds", timestamp)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook: timestamp %s is %s away from now, beyond %s", timestamp, d.Round(time.Second), tolerance)
	}
	if !hmac.Equal([]byte(signature), []byte(Sign(secret, timestamp, body))) {
		return errors.New("webhook: signature does not match")
	}
	return nil
}

// StatusError is a non-2xx answer.
type StatusError struct {
	Code int
	Body string // the first 512 bytes
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("webhook answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Body)
}

// errBadURL is a URL the request cannot be built from.
var errBadURL = errors.New("webhook: the URL does not parse")

// Permanent reports whether err will not pass if tried again: a 4xx
// other than 408 (timeout) and 429 (too many requests) says the request
// itself is wrong (bad URL path, rejected signature), as does a URL that
// does not parse.
func Permanent(err error) bool {
	if errors.Is(err, errBadURL) {
		return true
	}
	var se *StatusError
	return errors.As(err, &se) && se.Code >= 400 && se.Code < 500 && se.Code != http.StatusRequestTimeout && se.Code != http.StatusTooManyRequests
}

// Send posts body for the alert id, retrying network errors, timeouts,
// 408, 429 and 5xx; each attempt is signed anew with its own timestamp.
// It returns nil once the receiver answered 2xx, or the last error
// (Permanent tells the two kinds of failure apart).
func (c *Client) Send(ctx context.Context, id string, body []byte) error {
	p := retry.Policy{Attempts: c.cfg.Attempts, Wait: c.cfg.Backoff,
		Retryable: func(err error) bool { return !Permanent(err) },
		OnRetry: func(attempt int, err error) {
			c.cfg.Log.Warn("budget alert webhook failed; retrying", "alert_id", id, "attempt", attempt, "err", err)
		}}
	return retry.Do(ctx, p, func(ctx context.Context) error { return c.post(ctx, id, body) })
}

func (c *Client) post(ctx context.Context, id string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, bytes.NewReader(body))
	if err != nil {
		// Not wrapped: url.Parse's error quotes the URL, which may hold a token.
		return errBadURL
	}
	ts := strconv.FormatInt(c.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "obolus")
	req.Header.Set(HeaderAlertID, id)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(c.cfg.Secret, ts, body))
	resp, err := c.hc.Do(req)
	if err != nil {
		// The URL may carry a token (Slack's do): say only where it went wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("webhook post: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // lets the connection be reused
	if resp.StatusCode/100 != 2 {
		return &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(msg))}
	}
	return nil
}
