package webhook

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"text":"hi"}`)
	sig := Sign("s3cret", ts, body)
	// What a receiver computes without obolus's code:
	// printf 'v1:1800000000:{"text":"hi"}' | openssl dgst -sha256 -hmac s3cret
	if want := "v1=64ccc8a6fe77496836d60784005a2d6c7a588d967fd79d1bc1dbf88d3a7cdfe9"; sig != want {
		t.Fatalf("signature %q, want %q", sig, want)
	}
	for _, c := range []struct {
		name            string
		secret, ts, sig string
		body            []byte
		at              time.Time
		ok              bool
	}{
		{"as sent", "s3cret", ts, sig, body, now, true},
		{"4 minutes later", "s3cret", ts, sig, body, now.Add(4 * time.Minute), true},
		{"replayed 6 minutes later", "s3cret", ts, sig, body, now.Add(6 * time.Minute), false},
		{"body changed", "s3cret", ts, sig, []byte(`{"text":"ho"}`), now, false},
		{"other secret", "other", ts, sig, body, now, false},
		{"timestamp changed", "s3cret", strconv.FormatInt(now.Unix()+1, 10), sig, body, now, false},
		{"timestamp not a number", "s3cret", "soon", sig, body, now, false},
		{"no scheme", "s3cret", ts, sig[3:], body, now, false},
	} {
		err := Verify(c.secret, c.ts, c.sig, c.body, c.at, 5*time.Minute)
		if (err == nil) != c.ok {
			t.Errorf("%s: Verify = %v, want ok %v", c.name, err, c.ok)
		}
	}
}

// receiver is a webhook endpoint that verifies every request's signature
// and answers from a script: the n-th attempt for an id gets script[n] (a
// status, or 0 to hang past the client's timeout), then 200.
type receiver struct {
	t      *testing.T
	secret string
	script map[string][]int

	mu       sync.Mutex
	attempts map[string]int
	accepted map[string]int
	bodies   map[string]string
}

func newReceiver(t *testing.T, secret string, script map[string][]int) (*receiver, *httptest.Server) {
	r := &receiver{t: t, secret: secret, script: script, attempts: map[string]int{}, accepted: map[string]int{}, bodies: map[string]string{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id := req.Header.Get(HeaderAlertID)
	if err := Verify(r.secret, req.Header.Get(HeaderTimestamp), req.Header.Get(HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
		r.t.Errorf("alert %s: %v", id, err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if req.Header.Get("Content-Type") != "application/json" {
		r.t.Errorf("alert %s: content type %q", id, req.Header.Get("Content-Type"))
	}
	r.mu.Lock()
	n := r.attempts[id]
	r.attempts[id]++
	code := http.StatusOK
	if s := r.script[id]; n < len(s) {
		code = s[n]
	}
	if code == http.StatusOK {
		r.accepted[id]++
		r.bodies[id] = string(body)
	}
	r.mu.Unlock()
	if code == 0 { // hang until the client gives up
		<-req.Context().Done()
		return
	}
	w.WriteHeader(code)
}

func (r *receiver) counts(id string) (attempts, accepted int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts[id], r.accepted[id]
}

func TestSend(t *testing.T) {
	rcv, srv := newReceiver(t, "k", map[string][]int{
		"flaky":   {500, 0, 503, 429, 408}, // five transient failures, one a timeout, then 200
		"refused": {400},
		"gone":    {404},
		"down":    {500, 500, 500, 500, 500, 500, 500},
	})
	c, err := New(Config{URL: srv.URL, Secret: "k", Timeout: 200 * time.Millisecond, Attempts: 6, Backoff: time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id                 string
		ok, permanent      bool
		attempts, accepted int
	}{
		{"plain", true, false, 1, 1},
		{"flaky", true, false, 6, 1},
		{"refused", false, true, 1, 0}, // a 400 is not retried
		{"gone", false, true, 1, 0},
		{"down", false, false, 6, 0}, // attempts spent; the caller tries again later
	} {
		err := c.Send(context.Background(), tc.id, []byte(`{"text":"`+tc.id+`"}`))
		if (err == nil) != tc.ok || Permanent(err) != tc.permanent {
			t.Errorf("%s: Send = %v (permanent %v), want ok %v, permanent %v", tc.id, err, Permanent(err), tc.ok, tc.permanent)
		}
		if a, n := rcv.counts(tc.id); a != tc.attempts || n != tc.accepted {
			t.Errorf("%s: %d attempts, %d accepted; want %d, %d", tc.id, a, n, tc.attempts, tc.accepted)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	for _, c := range []Config{
		{URL: "ftp://x", Secret: "k", Timeout: time.Second, Attempts: 1},
		{URL: "https://x", Timeout: time.Second, Attempts: 1},
		{URL: "https://x", Secret: "k", Attempts: 1},
		{URL: "https://x", Secret: "k", Timeout: time.Second},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}
