package warehouse

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Faults injects transport failures into the server so tests can exercise
// the driver's retry and error paths. All methods are safe for concurrent
// use and a nil *Faults injects nothing.
type Faults struct {
	mu         sync.Mutex
	rules      []faultRule
	execDelay  time.Duration
	injected   int
	expireSkip int // result links to hand out valid before expired ones
	expire     int // result links still to hand out already expired
	stmtFaults []stmtFault
}

type stmtFault struct {
	contains  string
	remaining int
}

type faultRule struct {
	method     string // Thrift call name; "" matches every call
	remaining  int
	status     int
	retryAfter int // seconds; negative = no Retry-After header
	drop       bool
}

// FailNext makes the next n Thrift calls named method (e.g. "FetchResults";
// "" matches any call) answer with HTTP status (typically 503 or 429) and,
// when retryAfterSeconds >= 0, a Retry-After header. The driver honours
// Retry-After literally, so tests should keep it at 0 or 1.
func (f *Faults) FailNext(method string, n, status, retryAfterSeconds int) {
	if f == nil || n <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, faultRule{method: method, remaining: n, status: status, retryAfter: retryAfterSeconds})
}

// FailStatement makes the next n statements whose SQL text contains
// contains fail as a statement error (as a Delta commit conflict would),
// after the transport has accepted them.
func (f *Faults) FailStatement(contains string, n int) {
	if f == nil || n <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stmtFaults = append(f.stmtFaults, stmtFault{contains: contains, remaining: n})
}

// statementError is the injected failure of statement q, if one is due.
func (f *Faults) statementError(q string) error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.stmtFaults {
		sf := &f.stmtFaults[i]
		if strings.Contains(q, sf.contains) {
			err := fmt.Errorf("injected failure of a statement containing %q", sf.contains)
			if sf.remaining--; sf.remaining == 0 {
				f.stmtFaults = slices.Delete(f.stmtFaults, i, i+1)
			}
			f.injected++
			return err
		}
	}
	return nil
}

// DropNext makes the server close the TCP connection without answering the
// next n Thrift calls named method ("" = any), after reading the request and
// before executing it.
func (f *Faults) DropNext(method string, n int) {
	if f == nil || n <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, faultRule{method: method, remaining: n, drop: true})
}

// DelayExecute makes every ExecuteStatement wait d before running its SQL
// (the wait is cancellable like the query itself). Zero turns it off.
func (f *Faults) DelayExecute(d time.Duration) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.execDelay = d
}

// ExpireLinks makes n CloudFetch result links, after the next skip ones the
// server hands out, expired by the time the client gets to them: their
// expiry time is in the past and downloading them is refused with 403, as
// cloud storage refuses a presigned URL past its expiry.
func (f *Faults) ExpireLinks(skip, n int) {
	if f == nil || n <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expireSkip, f.expire = max(skip, 0), n
}

func (f *Faults) takeExpiredLink() bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.expire == 0 {
		return false
	}
	if f.expireSkip > 0 {
		f.expireSkip--
		return false
	}
	f.expire--
	f.injected++
	return true
}

// Injected reports how many failures (status answers and dropped
// connections) have been injected so far.
func (f *Faults) Injected() int {
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected
}

// Reset removes all pending faults and the execute delay.
func (f *Faults) Reset() {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
	f.execDelay = 0
	f.expireSkip, f.expire = 0, 0
	f.stmtFaults = nil
}

func (f *Faults) take(method string) (faultRule, bool) {
	if f == nil {
		return faultRule{}, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.rules {
		r := &f.rules[i]
		if r.remaining > 0 && (r.method == "" || r.method == method) {
			r.remaining--
			f.injected++
			out := *r
			if r.remaining == 0 {
				f.rules = append(f.rules[:i], f.rules[i+1:]...)
			}
			return out, true
		}
	}
	return faultRule{}, false
}

func (f *Faults) delay() time.Duration {
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.execDelay
}

func (r faultRule) retryAfterHeader() string {
	if r.retryAfter < 0 {
		return ""
	}
	return strconv.Itoa(r.retryAfter)
}
