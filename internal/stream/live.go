package stream

import "container/heap"

// liveSet tracks the offsets of records the partition's state still depends
// on. Its minimum bounds where a replay must start to rebuild the state.
type liveSet struct {
	refs map[int64]int32
	h    offHeap
}

type offHeap []int64

func (h offHeap) Len() int           { return len(h) }
func (h offHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h offHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *offHeap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *offHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}

func newLiveSet() liveSet { return liveSet{refs: make(map[int64]int32)} }

// add takes a reference on off.
func (s *liveSet) add(off int64) {
	n := s.refs[off]
	if n == 0 {
		heap.Push(&s.h, off)
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

// min returns the lowest referenced offset. Heap entries of offsets no
// longer referenced are dropped lazily here.
func (s *liveSet) min() (int64, bool) {
	for len(s.h) > 0 {
		if top := s.h[0]; s.refs[top] > 0 {
			return top, true
		}
		heap.Pop(&s.h)
	}
	return 0, false
}

func (s *liveSet) len() int { return len(s.refs) }
