package stream

import "container/heap"

// liveSet tracks the offsets of records the partition's state still depends
// on, each with the watermark just before that record was processed. Its
// minimum is where a replay must start to rebuild the state.
type liveSet struct {
	refs map[int64]int32
	h    markHeap
}

type mark struct{ off, wm int64 }

type markHeap []mark

func (h markHeap) Len() int           { return len(h) }
func (h markHeap) Less(i, j int) bool { return h[i].off < h[j].off }
func (h markHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *markHeap) Push(x any)        { *h = append(*h, x.(mark)) }
func (h *markHeap) Pop() any {
	old := *h
	m := old[len(old)-1]
	*h = old[:len(old)-1]
	return m
}

func newLiveSet() liveSet { return liveSet{refs: make(map[int64]int32)} }

// add takes a reference on off; wm must be the watermark before off was
// processed (the same value every time off is added).
func (s *liveSet) add(off, wm int64) {
	n := s.refs[off]
	if n == 0 {
		heap.Push(&s.h, mark{off, wm})
	}
	s.refs[off] = n + 1
}

// remove drops a reference taken by add.
func (s *liveSet) remove(off int64) {
	switch n := s.refs[off]; {
	case n > 1:
		s.refs[off] = n - 1
	case n == 1:
		delete(s.refs, off)
	}
}

// min returns the lowest referenced offset and its watermark. Heap entries
// of offsets no longer referenced are dropped lazily here.
func (s *liveSet) min() (mark, bool) {
	for len(s.h) > 0 {
		top := s.h[0]
		if s.refs[top.off] > 0 {
			return top, true
		}
		heap.Pop(&s.h)
	}
	return mark{}, false
}

func (s *liveSet) len() int { return len(s.refs) }
