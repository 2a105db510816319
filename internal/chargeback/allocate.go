package chargeback

import (
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"time"
)

// Hour is the start of a UTC hour, in Unix seconds: the grain of the bill.
type Hour int64

// HourOf is the hour t falls in.
func HourOf(t time.Time) Hour {
	s := t.Unix()
	return Hour(s - ((s%3600)+3600)%3600)
}

// Time is the hour's start as a UTC time.
func (h Hour) Time() time.Time { return time.Unix(int64(h), 0).UTC() }

// Charge is billed cost for one bucket: an hour × gateway endpoint × model.
type Charge struct {
	Hour     Hour
	Endpoint string // gateway endpoint key, as the items spell it
	// Model is the destination model key, as the items spell it. Empty means
	// the charge covers the endpoint as a whole (e.g. a gateway feature fee):
	// it is spread over the items of every model of that endpoint and hour.
	Model  string
	Micros int64 // may be negative (a net retraction)
}

// Item is one attribution row, the unit cost is allocated to.
type Item struct {
	Hour     Hour
	Endpoint string
	Model    string
	// ListNanos is the row's list-price cost in nano-units (10⁻⁹): the
	// weight the bucket's charge is split by.
	ListNanos int64
	// Tokens is the fallback weight when a bucket's items all have zero list
	// cost (unpriced model); when those are all zero too, items share equally.
	Tokens int64
}

// Basis says which weights split a charge.
type Basis uint8

// Bases, in the order Allocate tries them.
const (
	BasisNone     Basis = iota // no items: the charge stayed unallocated
	BasisListCost              // list-price cost of each item
	BasisTokens                // total tokens, the bucket having no list-price cost
	BasisEqual                 // equal shares, the bucket having neither
)

func (b Basis) String() string {
	switch b {
	case BasisListCost:
		return "list_cost"
	case BasisTokens:
		return "tokens"
	case BasisEqual:
		return "equal"
	default:
		return "none"
	}
}

// ChargeResult is what became of one charge.
type ChargeResult struct {
	Items     int   // items that shared it; 0 when unallocated
	Basis     Basis // weights used
	Allocated int64 // micro-units given to items: the charge's Micros, or 0 when unallocated
}

// Result sums up an allocation. Billed = Allocated + Unallocated always.
type Result struct {
	// ItemMicros is each item's allocated cost, summed over the charges
	// that covered it; index-aligned with the items.
	ItemMicros []int64
	Charges    []ChargeResult // index-aligned with the charges
	Billed     int64          // Σ charge micros
	Allocated  int64          // Σ ItemMicros
	// Unallocated is the cost of charges whose bucket had no items.
	Unallocated int64
	// UnbilledItems counts items no charge covered (their hour is not billed
	// yet, or the bill names another endpoint or model); UnbilledListNanos
	// is their list-price cost.
	UnbilledItems     int
	UnbilledListNanos int64
}

// Visit receives each (charge, item) share as it is computed; micros may be 0.
type Visit func(charge, item int, micros int64)

type bucketKey struct {
	hour      Hour
	ep, model int32
}

type span struct{ start, end int32 }

// Allocate splits every charge over the items of its bucket in proportion to
// their list-price cost, by largest remainder (see the package comment), and
// calls visit (if not nil) for every share. Ties between equal remainders go
// to the item earlier in items, so callers that want results independent of
// storage order pass items sorted by a stable key.
func Allocate(charges []Charge, items []Item, visit Visit) (Result, error) {
	res := Result{ItemMicros: make([]int64, len(items)), Charges: make([]ChargeResult, len(charges))}
	if len(items) > math.MaxInt32 {
		return res, fmt.Errorf("chargeback: %d items is more than one allocation handles", len(items))
	}

	// Intern names, then give each bucket an id in first-seen order.
	eps := map[string]int32{}
	models := map[string]int32{}
	intern := func(m map[string]int32, s string) int32 {
		id, ok := m[s]
		if !ok {
			id = int32(len(m))
			m[s] = id
		}
		return id
	}
	buckets := map[bucketKey]int32{}
	var keys []bucketKey
	itemBucket := make([]int32, len(items))
	for i := range items {
		it := &items[i]
		if it.ListNanos < 0 || it.Tokens < 0 {
			return res, fmt.Errorf("chargeback: item %d (hour %s, endpoint %q, model %q): negative weight (list_nanos %d, tokens %d)",
				i, it.Hour.Time().Format(time.RFC3339), it.Endpoint, it.Model, it.ListNanos, it.Tokens)
		}
		k := bucketKey{it.Hour, intern(eps, it.Endpoint), intern(models, it.Model)}
		id, ok := buckets[k]
		if !ok {
			id = int32(len(keys))
			buckets[k] = id
			keys = append(keys, k)
		}
		itemBucket[i] = id
	}

	// Lay the items out bucket by bucket, the buckets of one hour × endpoint
	// next to each other, keeping input order inside a bucket.
	order := make([]int32, len(keys)) // position → bucket id
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		ka, kb := keys[a], keys[b]
		return cmp.Or(cmp.Compare(ka.hour, kb.hour), cmp.Compare(ka.ep, kb.ep), cmp.Compare(ka.model, kb.model))
	})
	pos := make([]int32, len(keys)) // bucket id → position
	for p, id := range order {
		pos[id] = int32(p)
	}
	start := make([]int32, len(keys)+1)
	for _, id := range itemBucket {
		start[pos[id]+1]++
	}
	for p := 1; p <= len(keys); p++ {
		start[p] += start[p-1]
	}
	laid := make([]int32, len(items))
	fill := slices.Clone(start[:len(keys)])
	for i, id := range itemBucket {
		p := pos[id]
		laid[fill[p]] = int32(i)
		fill[p]++
	}
	bucketSpan := func(id int32) span { p := pos[id]; return span{start[p], start[p+1]} }
	// Spans of whole hour × endpoint groups, for model-less charges.
	type ehKey struct {
		hour Hour
		ep   int32
	}
	ehSpans := map[ehKey]span{}
	for p, id := range order {
		k := ehKey{keys[id].hour, keys[id].ep}
		s, ok := ehSpans[k]
		if !ok {
			s.start = start[p]
		}
		s.end = start[p+1]
		ehSpans[k] = s
	}

	covered := make([]bool, len(items))
	var sc scratch
	for j := range charges {
		c := &charges[j]
		if c.Endpoint == "" {
			return res, fmt.Errorf("chargeback: charge %d (hour %s, model %q): empty endpoint", j, c.Hour.Time().Format(time.RFC3339), c.Model)
		}
		if c.Micros == math.MinInt64 {
			return res, fmt.Errorf("chargeback: charge %d: amount out of range", j)
		}
		res.Billed += c.Micros
		var s span
		if ep, ok := eps[c.Endpoint]; ok {
			if c.Model == "" {
				s = ehSpans[ehKey{c.Hour, ep}]
			} else if m, ok := models[c.Model]; ok {
				if id, ok := buckets[bucketKey{c.Hour, ep, m}]; ok {
					s = bucketSpan(id)
				}
			}
		}
		if s.end == s.start {
			res.Unallocated += c.Micros
			continue
		}
		idx := laid[s.start:s.end]
		basis, err := sc.split(c.Micros, items, idx, res.ItemMicros)
		if err != nil {
			return res, fmt.Errorf("chargeback: charge %d (hour %s, endpoint %q, model %q): %w", j, c.Hour.Time().Format(time.RFC3339), c.Endpoint, c.Model, err)
		}
		res.Charges[j] = ChargeResult{Items: len(idx), Basis: basis, Allocated: c.Micros}
		res.Allocated += c.Micros
		for k, i := range idx {
			covered[i] = true
			if visit != nil {
				visit(j, int(i), sc.share[k])
			}
		}
	}
	for i, ok := range covered {
		if !ok {
			res.UnbilledItems++
			res.UnbilledListNanos += items[i].ListNanos
		}
	}
	return res, nil
}

// scratch holds per-charge buffers, reused across charges.
type scratch struct {
	w     []uint64
	share []int64
	rank  []ranked
}

type ranked struct {
	rem uint64
	k   int32
}

// split divides b over the items idx (positions into items) by largest
// remainder, adding each share to total and leaving it in s.share.
func (s *scratch) split(b int64, items []Item, idx []int32, total []int64) (Basis, error) {
	n := len(idx)
	s.w = slices.Grow(s.w[:0], n)[:n]
	s.share = slices.Grow(s.share[:0], n)[:n]

	var listSum, tokenSum uint64
	var c1, c2 uint64
	for _, i := range idx {
		it := &items[i]
		listSum, c1 = bits.Add64(listSum, uint64(it.ListNanos), c1)
		tokenSum, c2 = bits.Add64(tokenSum, uint64(it.Tokens), c2)
	}
	basis, sum := BasisListCost, listSum
	switch {
	case c1 != 0 || (listSum == 0 && c2 != 0):
		return basis, fmt.Errorf("item weights overflow 64 bits")
	case listSum > 0:
		for k, i := range idx {
			s.w[k] = uint64(items[i].ListNanos)
		}
	case tokenSum > 0:
		basis, sum = BasisTokens, tokenSum
		for k, i := range idx {
			s.w[k] = uint64(items[i].Tokens)
		}
	default:
		basis, sum = BasisEqual, uint64(n)
		for k := range idx {
			s.w[k] = 1
		}
	}

	neg := b < 0
	ub := uint64(b)
	if neg {
		ub = uint64(-b)
	}
	var given uint64
	s.rank = s.rank[:0]
	for k := range n {
		// ub·w fits in 128 bits and, as w ≤ sum, the quotient fits in 64.
		hi, lo := bits.Mul64(ub, s.w[k])
		q, r := bits.Div64(hi, lo, sum)
		s.share[k] = int64(q)
		given += q
		if r > 0 {
			s.rank = append(s.rank, ranked{r, int32(k)})
		}
	}
	// left < n; only items with a remainder can be short of their exact share.
	if left := int(ub - given); left > 0 {
		slices.SortFunc(s.rank, func(a, b ranked) int {
			if a.rem != b.rem {
				return cmp.Compare(b.rem, a.rem)
			}
			return cmp.Compare(a.k, b.k)
		})
		for _, r := range s.rank[:left] {
			s.share[r.k]++
		}
	}
	for k, i := range idx {
		if neg {
			s.share[k] = -s.share[k]
		}
		total[i] += s.share[k]
	}
	return basis, nil
}
