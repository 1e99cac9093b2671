package storage

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// cidFilter answers "is this cid key certainly not stored?" without a B-tree
// search. The journal asks CID once per message that carries a cid, and the
// answer is almost always "no such cid": profiled at 50k msg/s that search
// was 62 % of the journal goroutine's time (docs/performance.md).
//
// It is a scalable bloom filter: a list of fixed-size filters, each sized
// for a capacity at ~1 % false positives (10 bits and 7 probes a key); when
// the newest is full another twice its size is added, so it never needs a
// rebuild. A false positive only costs the B-tree search it replaces; a
// false negative cannot happen, because every cid key reaches bbolt through
// the overlay (hot Apply) or the direct writer, and both add it here first,
// and Open adds every key already stored.
//
// Concurrency: add and mayContain are safe together. Bits are set with
// atomic OR and read with atomic loads; the filter list is an immutable
// slice swapped under mu.
type cidFilter struct {
	seed    maphash.Seed
	mu      sync.Mutex // guards growth (writers of parts)
	parts   atomic.Pointer[[]*bloom]
	initCap uint64
}

type bloom struct {
	bits  []atomic.Uint64
	m     uint64 // bits
	cap   uint64 // keys it is sized for
	count atomic.Uint64
}

const bloomProbes = 7

func newCIDFilter(capacity uint64) *cidFilter {
	f := &cidFilter{seed: maphash.MakeSeed(), initCap: max(capacity, 1<<16)}
	parts := []*bloom{newBloom(f.initCap)}
	f.parts.Store(&parts)
	return f
}

func newBloom(capacity uint64) *bloom {
	m := capacity * 10
	m = (m + 63) &^ 63
	return &bloom{bits: make([]atomic.Uint64, m/64), m: m, cap: capacity}
}

func (f *cidFilter) hashes(key []byte) (uint64, uint64) {
	h1 := maphash.Bytes(f.seed, key)
	h2 := h1>>33 | h1<<31 | 1 // odd, so the probes cover the table
	return h1, h2
}

// add records key. A nil filter ignores it: WAL replay at Open writes
// before the filter exists, and the filter is then filled from bbolt.
func (f *cidFilter) add(key []byte) {
	if f == nil {
		return
	}
	parts := *f.parts.Load()
	b := parts[len(parts)-1]
	if b.count.Add(1) > b.cap {
		b = f.grow(b)
	}
	h1, h2 := f.hashes(key)
	for i := uint64(0); i < bloomProbes; i++ {
		bit := (h1 + i*h2) % b.m
		b.bits[bit/64].Or(1 << (bit % 64))
	}
}

// grow adds a filter twice the size of full, unless another writer already
// did, and returns the newest.
func (f *cidFilter) grow(full *bloom) *bloom {
	f.mu.Lock()
	defer f.mu.Unlock()
	parts := *f.parts.Load()
	last := parts[len(parts)-1]
	if last != full {
		last.count.Add(1)
		return last
	}
	next := make([]*bloom, len(parts), len(parts)+1)
	copy(next, parts)
	b := newBloom(full.cap * 2)
	b.count.Store(1)
	next = append(next, b)
	f.parts.Store(&next)
	return b
}

// mayContain reports false only when key was never added.
func (f *cidFilter) mayContain(key []byte) bool {
	h1, h2 := f.hashes(key)
	for _, b := range *f.parts.Load() {
		hit := true
		for i := uint64(0); i < bloomProbes; i++ {
			bit := (h1 + i*h2) % b.m
			if b.bits[bit/64].Load()&(1<<(bit%64)) == 0 {
				hit = false
				break
			}
		}
		if hit {
			return true
		}
	}
	return false
}
