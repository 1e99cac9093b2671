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
// with two random per-process seeds, so clients cannot aim collisions —
// mapped to an expiry in unix seconds and the index of the key's quota:
// about 48 bytes each with map overhead, no per-entry allocation. When a
// limit is reached, add answers nonceFull (the caller answers 429) rather
// than forgetting a live nonce, which would reopen the replay hole.
//
// The cache is partitioned so that one key's traffic cannot lock the
// others out: each key holds at most perKey live nonces, the app keys
// together at most total, and the admin key has a partition of its own
// (perKey) outside total. Memory is bounded by total + perKey entries.
//
// The cache is sharded to keep lock hold times short; each shard drops its
// expired entries lazily, at most every sweepEvery seconds, on an add.
type nonceCache struct {
	total      int64 // live app-key entries, all apps together
	perKey     int64 // live entries of one key
	sweepEvery int64
	seed1      maphash.Seed
	seed2      maphash.Seed
	n          atomic.Int64 // live app-key entries over all shards
	// lastFull is the unix second of the last sweep of every shard made
	// because a limit was reached; it rate-limits those sweeps to one a
	// second.
	lastFull atomic.Int64
	shards   [nonceShards]nonceShard

	// quotaMu guards quotaIdx and quotas (appends); the counters
	// themselves are atomic. Taken after a shard's mu by the sweeps.
	quotaMu  sync.RWMutex
	quotaIdx map[nonceKey]uint32 // key → index in quotas
	quotas   []*nonceQuota       // never shrinks: keys are apps, created by the admin
}

const nonceShards = 64

// nonceKey names a signing key: kindAdmin with id "", or kindApp with the
// app id.
type nonceKey struct {
	kind byte
	id   string
}

// nonceQuota counts one key's live entries.
type nonceQuota struct {
	n   atomic.Int64
	app bool // counted against total as well
}

// nonceEntry is one remembered nonce.
type nonceEntry struct {
	exp   int64  // unix s, inclusive
	quota uint32 // index in nonceCache.quotas
}

type nonceShard struct {
	mu        sync.Mutex               // guards m and nextSweep
	m         map[[2]uint64]nonceEntry // nonce hash → entry
	nextSweep int64                    // unix s
	_         [40]byte                 // keep shards on separate cache lines
}

// nonceResult is the outcome of nonceCache.add.
type nonceResult uint8

const (
	nonceAdded  nonceResult = iota + 1 // first use: the request may proceed
	nonceReplay                        // seen before and not yet expired
	nonceFull                          // this key's partition (or the apps' total) is full of live nonces
)

// newNonceCache makes a cache for a signature window of window seconds
// holding at most total live app nonces, and at most perKey for any one
// key (the admin key's perKey are outside total).
func newNonceCache(window int64, total, perKey int) *nonceCache {
	c := &nonceCache{
		total:      int64(total),
		perKey:     int64(perKey),
		sweepEvery: max(1, window/8),
		seed1:      maphash.MakeSeed(),
		seed2:      maphash.MakeSeed(),
		quotaIdx:   make(map[nonceKey]uint32),
	}
	for i := range c.shards {
		c.shards[i].m = make(map[[2]uint64]nonceEntry)
	}
	return c
}

// quota returns the index and counter of key (kind, id), adding them on
// first use.
func (c *nonceCache) quota(kind byte, id string) (uint32, *nonceQuota) {
	c.quotaMu.RLock()
	i, ok := c.quotaIdx[nonceKey{kind, id}]
	var q *nonceQuota
	if ok {
		q = c.quotas[i]
	}
	c.quotaMu.RUnlock()
	if ok {
		return i, q
	}
	c.quotaMu.Lock()
	defer c.quotaMu.Unlock()
	if i, ok := c.quotaIdx[nonceKey{kind, id}]; ok {
		return i, c.quotas[i]
	}
	i = uint32(len(c.quotas))
	q = &nonceQuota{app: kind != kindAdmin}
	c.quotas = append(c.quotas, q)
	c.quotaIdx[nonceKey{kind, id}] = i
	return i, q
}

// add records nonce under the key (kind, id), live until the unix second
// exp inclusive, at time now. nonce is borrowed and not kept.
func (c *nonceCache) add(kind byte, id string, nonce []byte, exp, now int64) nonceResult {
	k := c.hash(kind, id, nonce)
	qi, q := c.quota(kind, id)
	sh := &c.shards[k[0]%nonceShards]
	for attempt := 0; ; attempt++ {
		sh.mu.Lock()
		if now >= sh.nextSweep {
			c.sweepLocked(sh, now)
		}
		if e, ok := sh.m[k]; ok {
			if e.exp >= now {
				sh.mu.Unlock()
				return nonceReplay
			}
			// An expired entry of the same key: reuse its slot, counts
			// unchanged.
			sh.m[k] = nonceEntry{exp: exp, quota: qi}
			sh.mu.Unlock()
			return nonceAdded
		}
		if q.n.Load() < c.perKey && (!q.app || c.n.Load() < c.total) {
			sh.m[k] = nonceEntry{exp: exp, quota: qi}
			q.n.Add(1)
			if q.app {
				c.n.Add(1)
			}
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
	c.quotaMu.RLock()
	for k, e := range sh.m {
		if e.exp < now {
			delete(sh.m, k)
			q := c.quotas[e.quota]
			q.n.Add(-1)
			if q.app {
				dropped++
			}
		}
	}
	c.quotaMu.RUnlock()
	if dropped > 0 {
		c.n.Add(-dropped)
	}
	sh.nextSweep = now + c.sweepEvery
}

// len is the number of entries held (live or not yet swept), the admin
// key's included.
func (c *nonceCache) len() int64 {
	c.quotaMu.RLock()
	defer c.quotaMu.RUnlock()
	var n int64
	for _, q := range c.quotas {
		n += q.n.Load()
	}
	return n
}

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
