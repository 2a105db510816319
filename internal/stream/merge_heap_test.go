package stream

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestBufHeapOrder checks the merge heap gives records back in the
// (stamp, arrival, source, source offset) order, with ties on every level.
func TestBufHeapOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var h bufHeap
		var all []*buffered
		n := rng.IntN(300)
		for i := range n {
			b := &buffered{stamp: rng.Int64N(5), at: rng.Int64N(5)}
			b.rec.Source, b.rec.SourceOffset = uint32(rng.IntN(3)), int64(i)
			all = append(all, b)
			h.push(b)
			if rng.IntN(4) == 0 {
				// Pops between pushes, as the merge does.
				got := h.pop()
				all = slices.DeleteFunc(all, func(x *buffered) bool { return x == got })
				for _, x := range all {
					if (bufHeap{x, got}).less(0, 1) {
						t.Fatalf("popped %+v while %+v was waiting", *got, *x)
					}
				}
			}
		}
		slices.SortFunc(all, func(a, b *buffered) int {
			if (bufHeap{a, b}).less(0, 1) {
				return -1
			}
			return 1
		})
		for i, want := range all {
			if got := h.pop(); got != want {
				t.Fatalf("pop %d: got %+v, want %+v", i, *got, *want)
			}
		}
	}
}
