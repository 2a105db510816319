package chargeback

import (
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

var h0 = HourOf(time.Date(2026, 11, 3, 14, 0, 0, 0, time.UTC))

func TestAllocate(t *testing.T) {
	item := func(ep, model string, nanos, tokens int64) Item {
		return Item{Hour: h0, Endpoint: ep, Model: model, ListNanos: nanos, Tokens: tokens}
	}
	tests := []struct {
		name        string
		charges     []Charge
		items       []Item
		want        []int64 // per item
		basis       []Basis // per charge
		unallocated int64
		unbilled    int
	}{
		{
			name:    "proportional, exact",
			charges: []Charge{{h0, "ep", "m", 1000}},
			items:   []Item{item("ep", "m", 1, 0), item("ep", "m", 3, 0)},
			want:    []int64{250, 750},
			basis:   []Basis{BasisListCost},
		},
		{
			name:    "largest remainder, tie to the earlier item",
			charges: []Charge{{h0, "ep", "m", 100}},
			items:   []Item{item("ep", "m", 1, 0), item("ep", "m", 1, 0), item("ep", "m", 1, 0)},
			want:    []int64{34, 33, 33},
			basis:   []Basis{BasisListCost},
		},
		{
			name:    "largest remainder wins over order",
			charges: []Charge{{h0, "ep", "m", 10}},
			// exact shares 1.5, 3.3, 5.2: floors 1+3+5=9, the one left goes to .5
			items: []Item{item("ep", "m", 15, 0), item("ep", "m", 33, 0), item("ep", "m", 52, 0)},
			want:  []int64{2, 3, 5},
			basis: []Basis{BasisListCost},
		},
		{
			name:    "negative charge (net retraction) mirrors a positive one",
			charges: []Charge{{h0, "ep", "m", -100}},
			items:   []Item{item("ep", "m", 1, 0), item("ep", "m", 1, 0), item("ep", "m", 1, 0)},
			want:    []int64{-34, -33, -33},
			basis:   []Basis{BasisListCost},
		},
		{
			name:        "bucket without items stays unallocated",
			charges:     []Charge{{h0, "ep", "m", 500}, {h0 + 3600, "ep", "m", 70}, {h0, "other", "m", 5}},
			items:       []Item{item("ep", "m", 1, 0)},
			want:        []int64{500},
			basis:       []Basis{BasisListCost, BasisNone, BasisNone},
			unallocated: 75,
		},
		{
			name:    "zero list cost falls back to tokens, then to equal shares",
			charges: []Charge{{h0, "ep", "unpriced", 90}, {h0, "ep", "empty", 10}},
			items:   []Item{item("ep", "unpriced", 0, 1), item("ep", "unpriced", 0, 2), item("ep", "empty", 0, 0), item("ep", "empty", 0, 0)},
			want:    []int64{30, 60, 5, 5},
			basis:   []Basis{BasisTokens, BasisEqual},
		},
		{
			name:    "model-less charge spreads over every model of the endpoint and hour",
			charges: []Charge{{h0, "ep", "", 40}, {h0, "ep", "a", 4}},
			items:   []Item{item("ep", "a", 1, 0), item("ep", "b", 3, 0), item("ep2", "a", 100, 0)},
			want:    []int64{10 + 4, 30, 0},
			basis:   []Basis{BasisListCost, BasisListCost},
			// ep2's item has no charge.
			unbilled: 1,
		},
		{
			name:    "models are matched exactly: the caller normalises spelling",
			charges: []Charge{{h0, "ep", "GPT-5", 10}},
			items:   []Item{item("ep", "gpt-5", 1, 0)},
			want:    []int64{0},
			basis:   []Basis{BasisNone}, unallocated: 10, unbilled: 1,
		},
		{
			name:    "zero charge",
			charges: []Charge{{h0, "ep", "m", 0}},
			items:   []Item{item("ep", "m", 7, 0)},
			want:    []int64{0},
			basis:   []Basis{BasisListCost},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			visits := map[[2]int]int64{}
			res, err := Allocate(tc.charges, tc.items, func(c, i int, m int64) { visits[[2]int{c, i}] += m })
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.ItemMicros, tc.want) {
				t.Errorf("ItemMicros = %v, want %v", res.ItemMicros, tc.want)
			}
			for j, want := range tc.basis {
				if got := res.Charges[j].Basis; got != want {
					t.Errorf("charge %d basis = %s, want %s", j, got, want)
				}
			}
			if res.Unallocated != tc.unallocated || res.UnbilledItems != tc.unbilled {
				t.Errorf("unallocated %d, unbilled items %d; want %d, %d", res.Unallocated, res.UnbilledItems, tc.unallocated, tc.unbilled)
			}
			if res.Allocated+res.Unallocated != res.Billed {
				t.Errorf("allocated %d + unallocated %d != billed %d", res.Allocated, res.Unallocated, res.Billed)
			}
			perItem := make([]int64, len(tc.items))
			for k, m := range visits {
				perItem[k[1]] += m
			}
			if !slices.Equal(perItem, res.ItemMicros) {
				t.Errorf("visits sum per item %v, ItemMicros %v", perItem, res.ItemMicros)
			}
		})
	}
}

func TestAllocateErrors(t *testing.T) {
	tests := []struct {
		name    string
		charges []Charge
		items   []Item
		want    string
	}{
		{"negative weight", nil, []Item{{Hour: h0, Endpoint: "ep", Model: "m", ListNanos: -1}}, "item 0 (hour 2026-11-03T14:00:00Z, endpoint \"ep\", model \"m\"): negative weight"},
		{"empty endpoint", []Charge{{Hour: h0, Model: "m", Micros: 1}}, nil, "charge 0 (hour 2026-11-03T14:00:00Z, model \"m\"): empty endpoint"},
		{"weights overflow", []Charge{{h0, "ep", "m", 1}}, []Item{{Hour: h0, Endpoint: "ep", Model: "m", ListNanos: 1 << 62}, {Hour: h0, Endpoint: "ep", Model: "m", ListNanos: 1 << 62}, {Hour: h0, Endpoint: "ep", Model: "m", ListNanos: 1 << 62}, {Hour: h0, Endpoint: "ep", Model: "m", ListNanos: 1 << 62}}, "weights overflow"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Allocate(tc.charges, tc.items, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestAllocateRandom checks the invariants on random buckets: every charge is
// allocated exactly, and no share is a whole micro-unit or more away from its
// exact proportional value.
func TestAllocateRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var items []Item
		var charges []Charge
		for h := range 3 {
			hour := h0 + Hour(3600*h)
			for _, ep := range []string{"a", "b"} {
				for _, m := range []string{"x", "y"} {
					n := rng.IntN(6)
					for range n {
						items = append(items, Item{Hour: hour, Endpoint: ep, Model: m, ListNanos: rng.Int64N(1e9) * int64(rng.IntN(2)), Tokens: rng.Int64N(1000)})
					}
					if rng.IntN(4) > 0 {
						charges = append(charges, Charge{hour, ep, m, rng.Int64N(2e9) - 1e8})
					}
				}
			}
		}
		rng.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
		perCharge := make([]int64, len(charges))
		type share struct{ c, i int }
		var shares []share
		var amounts []int64
		res, err := Allocate(charges, items, func(c, i int, m int64) {
			perCharge[c] += m
			shares = append(shares, share{c, i})
			amounts = append(amounts, m)
		})
		if err != nil {
			t.Fatal(err)
		}
		for j, c := range charges {
			if res.Charges[j].Items > 0 && perCharge[j] != c.Micros {
				t.Fatalf("round %d charge %d: shares sum to %d, want %d", round, j, perCharge[j], c.Micros)
			}
		}
		// Exact proportional share, checked with rationals.
		for k, s := range shares {
			c := charges[s.c]
			var w, sum int64
			basis := res.Charges[s.c].Basis
			for i, it := range items {
				if it.Hour == c.Hour && it.Endpoint == c.Endpoint && it.Model == c.Model {
					wi := weightOf(it, basis)
					sum += wi
					if i == s.i {
						w = wi
					}
				}
			}
			exact := new(big.Rat).Mul(big.NewRat(c.Micros, 1), big.NewRat(w, sum))
			diff := new(big.Rat).Sub(exact, big.NewRat(amounts[k], 1))
			if diff.Abs(diff).Cmp(big.NewRat(1, 1)) >= 0 {
				t.Fatalf("round %d: share %d of charge %d is %s from exact %s", round, amounts[k], s.c, diff.FloatString(3), exact.FloatString(3))
			}
		}
		if res.Allocated+res.Unallocated != res.Billed {
			t.Fatalf("round %d: allocated %d + unallocated %d != billed %d", round, res.Allocated, res.Unallocated, res.Billed)
		}
	}
}

func weightOf(it Item, b Basis) int64 {
	switch b {
	case BasisListCost:
		return it.ListNanos
	case BasisTokens:
		return it.Tokens
	default:
		return 1
	}
}

func TestAllocateDeterministicUnderBucketOrder(t *testing.T) {
	// The result must not depend on the order charges come in, nor on other
	// buckets' items being interleaved.
	items := []Item{
		{Hour: h0, Endpoint: "a", Model: "x", ListNanos: 1},
		{Hour: h0 + 3600, Endpoint: "a", Model: "x", ListNanos: 1},
		{Hour: h0, Endpoint: "a", Model: "x", ListNanos: 1},
		{Hour: h0, Endpoint: "a", Model: "x", ListNanos: 1},
	}
	c1 := []Charge{{h0, "a", "x", 2}, {h0 + 3600, "a", "x", 5}}
	c2 := []Charge{{h0 + 3600, "a", "x", 5}, {h0, "a", "x", 2}}
	r1, _ := Allocate(c1, items, nil)
	r2, _ := Allocate(c2, items, nil)
	if !slices.Equal(r1.ItemMicros, r2.ItemMicros) || !slices.Equal(r1.ItemMicros, []int64{1, 5, 1, 0}) {
		t.Fatalf("got %v and %v, want [1 5 1 0] both", r1.ItemMicros, r2.ItemMicros)
	}
}

func TestHourOf(t *testing.T) {
	for _, tc := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 11, 3, 14, 59, 59, 999, time.UTC), "2026-11-03T14:00:00Z"},
		{time.Date(2026, 11, 3, 15, 0, 0, 0, time.FixedZone("x", 3600)), "2026-11-03T14:00:00Z"},
		{time.Date(1969, 12, 31, 23, 30, 0, 0, time.UTC), "1969-12-31T23:00:00Z"},
	} {
		if got := HourOf(tc.in).Time().Format(time.RFC3339); got != tc.want {
			t.Errorf("HourOf(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
