package ingest

import (
	"math/bits"
	"sync"
	"unsafe"
)

// recycler is an Arrow allocator that reuses buffers. pqarrow allocates new
// buffers for every record batch and frees them when the batch is released;
// with Arrow's GoAllocator, Free does nothing and every batch becomes garbage
// (about half of what a Parquet read allocated). Buffers come in power-of-two
// size classes, 64-byte aligned as Arrow requires, zeroed as GoAllocator's are.
// sync.Pool drops idle buffers at garbage collection, so nothing is held for long.
type recycler struct {
	pools [maxClass + 1]sync.Pool
}

const (
	minClass = 6  // 64 B
	maxClass = 30 // 1 GiB; larger buffers are not pooled
	align    = 64
)

var arrowMem = &recycler{}

func sizeClass(n int) int {
	c := bits.Len(uint(n - 1))
	return max(c, minClass)
}

func (r *recycler) Allocate(size int) []byte {
	c := sizeClass(max(size, 1))
	if c > maxClass {
		return alignedBuf(size, size)
	}
	if p, ok := r.pools[c].Get().(*[]byte); ok {
		b := *p
		clear(b)
		return b[:size]
	}
	return alignedBuf(size, 1<<c)
}

// alignedBuf returns a zeroed buffer of length size and capacity capacity
// starting on a 64-byte boundary.
func alignedBuf(size, capacity int) []byte {
	buf := make([]byte, capacity+align)
	shift := int(-uintptr(unsafe.Pointer(unsafe.SliceData(buf))) & (align - 1))
	return buf[shift : shift+size : shift+capacity]
}

func (r *recycler) Reallocate(size int, b []byte) []byte {
	if size <= cap(b) {
		return b[:size]
	}
	nb := r.Allocate(size)
	copy(nb, b)
	r.Free(b)
	return nb
}

func (r *recycler) Free(b []byte) {
	c := cap(b)
	if c < 1<<minClass || c&(c-1) != 0 || sizeClass(c) > maxClass {
		return // not one of ours
	}
	b = b[:c]
	r.pools[sizeClass(c)].Put(&b)
}
