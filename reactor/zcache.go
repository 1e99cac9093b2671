package reactor

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"chatd/wsproto"
)

// Outbound compression (permessage-deflate, RFC 7692).
//
// The core sends a broadcast by calling Peer.Send with the same immutable
// slice for every recipient, and those recipients live on different event
// loops. zcache remembers the compressed form of recently sent payloads,
// keyed by the payload's identity (address of its first byte and length),
// so that each payload is compressed once however many recipients, on
// however many loops, negotiated compression. Every compressed payload is
// the same bytes for every such recipient: the server never takes over
// context between messages, and a client that limited the server's window
// only gets payloads short enough to fit it (see DeflateParams.MaxCompressed).
//
// Identity is safe because an entry holds the payload slice itself: while
// the entry exists the payload's memory cannot be freed and reused for
// other bytes, and chat.Peer's contract makes the payload immutable. An
// evicted entry can only be missed, never confused with another payload.

// Cache bounds. Typical events are a few hundred bytes, so zcacheEntries
// covers the broadcasts in flight at once; zcacheBytes bounds the payloads
// the cache keeps alive (plain plus compressed bytes). A payload larger
// than zcacheMaxPayload is compressed for each recipient without caching,
// so that one huge message cannot flush the cache.
const (
	zcacheEntries    = 256
	zcacheBytes      = 4 << 20
	zcacheMaxPayload = zcacheBytes / 8
)

// zkey is a payload's identity.
type zkey struct {
	p *byte
	n int
}

// zentry is one payload and its compressed form.
type zentry struct {
	key  zkey
	src  []byte // the payload: keeps its memory, and so key, unique while cached
	cost int    // bytes charged against zcacheBytes
	once sync.Once
	// z is the compressed payload, or nil when compressing does not make it
	// shorter (then the payload goes out uncompressed). Written once inside
	// once.Do, read-only after.
	z []byte
}

// zcache is the shared cache of compressed payloads. Safe for use by every
// event loop at once.
type zcache struct {
	mu    sync.Mutex             // guards m, ring, head, count, bytes
	m     map[zkey]*zentry       // the cached entries
	ring  [zcacheEntries]*zentry // entries in insertion order, oldest at head
	head  int                    // index of the oldest entry in ring
	count int                    // entries in ring (and m)
	bytes int                    // sum of cost over the entries
	// deflates counts compressions (one per distinct payload while it is
	// cached); read by Stats.
	deflates atomic.Uint64
}

func newZcache() *zcache {
	return &zcache{m: make(map[zkey]*zentry, zcacheEntries)}
}

// compressed returns p's permessage-deflate payload, compressing p unless
// another call (on any loop) already did or is doing it, or nil when
// compression would not make p shorter. p must be non-empty and, as every
// Send payload, immutable. The result is shared and read-only.
func (zc *zcache) compressed(p []byte) []byte {
	if len(p) > zcacheMaxPayload {
		return zc.deflate(p)
	}
	k := zkey{p: unsafe.SliceData(p), n: len(p)}
	zc.mu.Lock()
	e := zc.m[k]
	if e == nil {
		e = &zentry{key: k, src: p, cost: 2 * len(p)}
		zc.insert(e)
	}
	zc.mu.Unlock()
	// A second loop asking for the same payload waits here for the first
	// compression (microseconds) instead of repeating it.
	e.once.Do(func() { e.z = zc.deflate(p) })
	return e.z
}

// insert adds e, evicting the oldest entries to stay within the bounds.
// Called with mu held.
func (zc *zcache) insert(e *zentry) {
	for zc.count == len(zc.ring) || (zc.count > 0 && zc.bytes+e.cost > zcacheBytes) {
		old := zc.ring[zc.head]
		zc.ring[zc.head] = nil
		zc.head = (zc.head + 1) % len(zc.ring)
		zc.count--
		zc.bytes -= old.cost
		delete(zc.m, old.key)
	}
	zc.ring[(zc.head+zc.count)%len(zc.ring)] = e
	zc.count++
	zc.bytes += e.cost
	zc.m[e.key] = e
}

// deflate compresses p, or returns nil when that does not make it shorter.
func (zc *zcache) deflate(p []byte) []byte {
	zc.deflates.Add(1)
	z := wsproto.Deflate(make([]byte, 0, len(p)/2+64), p)
	if len(z) >= len(p) {
		return nil
	}
	return z
}

// len reports the number of cached entries and the bytes charged; for
// tests.
func (zc *zcache) len() (entries, bytes int) {
	zc.mu.Lock()
	defer zc.mu.Unlock()
	return zc.count, zc.bytes
}
