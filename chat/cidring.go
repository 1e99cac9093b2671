package chat

import (
	"context"
	"hash/maphash"
)

// cidWindow is how far back a retried send is recognised: a send whose CID
// its sender already used in the same session, for one of that session's
// last cidWindow messages, is a duplicate of it. Retries come within
// seconds of the original (a reconnect, a lost ack); a window of messages
// rather than a store-wide index keeps the check in memory and the store
// free of a random-keyed index that every checkpoint would have to rewrite
// across its whole tree.
const cidWindow = 512

// maxCIDRings bounds the sessions whose recent CIDs the journal keeps in
// memory (cidWindow × 8 bytes each: 16 MiB at most); past it an arbitrary
// ring is dropped and rebuilt from the store when next needed.
const maxCIDRings = 4096

// cidRing holds the CID hashes of a session's last cidWindow messages,
// indexed by seq mod cidWindow (0: no CID). Owned by the journal goroutine.
type cidRing struct {
	last uint64 // the newest seq recorded
	h    [cidWindow]uint64
}

// cidSeed keys the CID hashes for this process.
var cidSeed = maphash.MakeSeed()

// cidHash hashes a sender's CID; never 0.
func cidHash(from, cid string) uint64 {
	var h maphash.Hash
	h.SetSeed(cidSeed)
	h.WriteString(from)
	h.WriteByte(0)
	h.WriteString(cid)
	if v := h.Sum64(); v != 0 {
		return v
	}
	return 1
}

// record notes that seq (> r.last) carries h (0: no CID).
func (r *cidRing) record(seq, h uint64) {
	// Seqs skipped since r.last (none while the journal is the only
	// writer) must not keep hashes from a lap ago.
	lo := r.last + 1
	if seq > cidWindow {
		lo = max(lo, seq-cidWindow+1)
	}
	for s := lo; s < seq; s++ {
		r.h[s%cidWindow] = 0
	}
	r.h[seq%cidWindow] = h
	r.last = seq
}

// candidates calls fn with each recorded seq whose hash is h, newest first,
// until fn returns true.
func (r *cidRing) candidates(h uint64, fn func(seq uint64) bool) {
	for d := uint64(0); d < cidWindow && d < r.last; d++ {
		s := r.last - d
		if r.h[s%cidWindow] == h && fn(s) {
			return
		}
	}
}

// ring returns the CID ring of session sid, loading it from the session's
// newest stored messages when it is not in memory. (Messages of the batch
// being built are not stored yet: the batch's own cid map covers them, and
// commit records them here once they are durable.)
func (c *Core) ring(ctx context.Context, j *journalState, sid SessionID) (*cidRing, error) {
	if r := j.rings[sid]; r != nil {
		return r, nil
	}
	ms, err := c.store.Messages(ctx, sid, 1, ^uint64(0), cidWindow, true)
	if err != nil {
		return nil, err
	}
	r := &cidRing{}
	for i := range ms {
		var h uint64
		if ms[i].CID != "" {
			h = cidHash(ms[i].From, ms[i].CID)
		}
		r.record(ms[i].Seq, h)
	}
	if len(j.rings) >= maxCIDRings {
		for k := range j.rings { // an arbitrary one
			delete(j.rings, k)
			break
		}
	}
	j.rings[sid] = r
	return r, nil
}

// findCID looks for the stored message of m's session that m's sender sent
// with m's CID, among the session's last cidWindow messages.
func (c *Core) findCID(ctx context.Context, j *journalState, m *Message) (Message, bool, error) {
	r, err := c.ring(ctx, j, m.Session)
	if err != nil {
		return Message{}, false, err
	}
	var found Message
	var ok bool
	r.candidates(cidHash(m.From, m.CID), func(seq uint64) bool {
		ms, e := c.store.Messages(ctx, m.Session, seq, seq, 1, false)
		if e != nil {
			err = e
			return true
		}
		if len(ms) == 1 && ms[0].From == m.From && ms[0].CID == m.CID {
			found, ok = ms[0], true
			return true
		}
		return false // a hash collision: keep looking
	})
	return found, ok, err
}
