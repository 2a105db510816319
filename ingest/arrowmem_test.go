package ingest

import (
	"testing"
	"unsafe"
)

func TestRecycler(t *testing.T) {
	r := &recycler{}
	for _, size := range []int{0, 1, 63, 64, 65, 1000, 1 << 20} {
		b := r.Allocate(size)
		if len(b) != size || cap(b) < size || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%align != 0 {
			t.Fatalf("Allocate(%d): len %d cap %d", size, len(b), cap(b))
		}
		b = b[:cap(b)]
		for i := range b {
			b[i] = 0xff
		}
		r.Free(b)
		// A reused buffer comes back zeroed over its whole capacity.
		b = r.Allocate(size)
		for i, c := range b[:cap(b)] {
			if c != 0 {
				t.Fatalf("Allocate(%d) after Free: byte %d is %#x", size, i, c)
			}
		}
		g := r.Reallocate(size*2+100, b)
		if len(g) != size*2+100 || uintptr(unsafe.Pointer(unsafe.SliceData(g)))%align != 0 {
			t.Fatalf("Reallocate: len %d", len(g))
		}
		r.Free(g)
	}
	r.Free(make([]byte, 100)) // not a size class: ignored
}
