package httpapi

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// nonceCache remembers the nonces of accepted signed requests until their
// timestamps leave the signature window, so that a captured request cannot
// be replayed. It is per key: the same nonce under two apps (or an app and
// the admin key) are different entries.
//
// Entries are 128-bit keyed hashes of (key kind, key id, nonce) — maphash
// with two random per-process seeds, so clients cannot aim collisions — and
// an expiry in unix seconds: about 40 bytes each with map overhead, no
// per-entry allocation. Memory is bounded by max entries in total; when
// that many unexpired nonces are held, add answers nonceFull (the caller
// answers 429) rather than forgetting a live nonce, which would reopen the
// replay hole.
//
// The cache is sharded to keep lock hold times short; each shard drops its
// expired entries lazily, at most every sweepEvery seconds, on an add.
type nonceCache struct {
	max        int64
	sweepEvery int64
	seed1      maphash.Seed
	seed2      maphash.Seed
	n          atomic.Int64 // live entries over all shards
	// lastFull is the unix second of the last sweep of every shard made
	// because the cache was full; it rate-limits those sweeps to one a
	// second.
	lastFull atomic.Int64
	shards   [nonceShards]nonceShard
}

const nonceShards = 64

type nonceShard struct {
	mu        sync.Mutex          // guards m and nextSweep
	m         map[[2]uint64]int64 // nonce hash → expiry (unix s, inclusive)
	nextSweep int64               // unix s
	_         [40]byte            // keep shards on separate cache lines
}

// nonceResult is the outcome of nonceCache.add.
type nonceResult uint8

const (
	nonceAdded  nonceResult = iota + 1 // first use: the request may proceed
	nonceReplay                        // seen before and not yet expired
	nonceFull                          // cache full of live nonces
)

// newNonceCache makes a cache for a signature window of window seconds
// holding at most limit live nonces.
func newNonceCache(window int64, limit int) *nonceCache {
	c := &nonceCache{
		max:        int64(limit),
		sweepEvery: max(1, window/8),
		seed1:      maphash.MakeSeed(),
		seed2:      maphash.MakeSeed(),
	}
	for i := range c.shards {
		c.shards[i].m = make(map[[2]uint64]int64)
	}
	return c
}

// add records nonce under the key (kind, id), live until the unix second
// exp inclusive, at time now. nonce is borrowed and not kept.
func (c *nonceCache) add(kind byte, id string, nonce []byte, exp, now int64) nonceResult {
	k := c.hash(kind, id, nonce)
	sh := &c.shards[k[0]%nonceShards]
	for attempt := 0; ; attempt++ {
		sh.mu.Lock()
		if now >= sh.nextSweep {
			c.sweepLocked(sh, now)
		}
		if e, ok := sh.m[k]; ok {
			if e >= now {
				sh.mu.Unlock()
				return nonceReplay
			}
			sh.m[k] = exp // expired entry: reuse its slot, count unchanged
			sh.mu.Unlock()
			return nonceAdded
		}
		if c.n.Load() < c.max {
			sh.m[k] = exp
			c.n.Add(1)
			sh.mu.Unlock()
			return nonceAdded
		}
		sh.mu.Unlock()
		if attempt > 0 || !c.sweepAll(now) {
			return nonceFull
		}
	}
}

// sweepAll drops expired entries from every shard, at most once a second;
// it reports whether it swept.
func (c *nonceCache) sweepAll(now int64) bool {
	last := c.lastFull.Load()
	if last >= now || !c.lastFull.CompareAndSwap(last, now) {
		return false
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		c.sweepLocked(sh, now)
		sh.mu.Unlock()
	}
	return true
}

// sweepLocked drops sh's expired entries. sh.mu is held.
func (c *nonceCache) sweepLocked(sh *nonceShard, now int64) {
	var dropped int64
	for k, e := range sh.m {
		if e < now {
			delete(sh.m, k)
			dropped++
		}
	}
	if dropped > 0 {
		c.n.Add(-dropped)
	}
	sh.nextSweep = now + c.sweepEvery
}

// len is the number of entries held (live or not yet swept).
func (c *nonceCache) len() int64 { return c.n.Load() }

func (c *nonceCache) hash(kind byte, id string, nonce []byte) [2]uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed1)
	writeNonceKey(&h, kind, id, nonce)
	a := h.Sum64()
	h.SetSeed(c.seed2)
	writeNonceKey(&h, kind, id, nonce)
	return [2]uint64{a, h.Sum64()}
}

func writeNonceKey(h *maphash.Hash, kind byte, id string, nonce []byte) {
	// Length-prefix id so that (id, nonce) splits one way only.
	n := len(id)
	h.Write([]byte{kind, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	h.WriteString(id)
	h.Write(nonce)
}
