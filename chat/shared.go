package chat

import (
	"context"
	"slices"
	"sync"
	"time"
)

// A shared store: several chatd nodes write one store (the cluster's
// PostgreSQL, docs/cluster.md). Two things the single-node core keeps in
// memory are then decided by the store instead:
//
//   - A session's next seq. The journal still commits many messages in one
//     transaction (group commit), but it takes their sessions' last seqs
//     from the store under the store's lock on those sessions
//     (ApplyLocked), so two nodes never hand out the same seq and never
//     leave a gap. Before it builds the batch it catches the sessions'
//     CID lists up with what other nodes appended since it last looked,
//     so a retried cid is recognised whichever node stored the original.
//   - New session ids: reserved from the store a block at a time
//     (ReserveSessionIDs), so two nodes never create the same id.
//
// The single-node stores (storage.Bolt, memstore) do not take this path:
// their journal is the only writer and keeps the last seqs itself.

// SharedStore is a Store that several nodes write at once.
type SharedStore interface {
	Store
	// ApplyLocked locks the given sessions (given ascending and without
	// repeats; the store takes them in that order, so two nodes never
	// deadlock), calls build with each one's last seq — the highest seq
	// stored, 0 for none — and then commits the Batch build filled, in
	// one transaction, before unlocking. While build runs nobody else
	// can append to those sessions; build may read the store. If build
	// returns an error nothing is written and ApplyLocked returns it.
	ApplyLocked(ctx context.Context, sessions []SessionID, b *Batch, build func(last map[SessionID]uint64) error) error
	// ApplyLockedSince is ApplyLocked that also hands build, read under
	// the same locks and in the same round trip, the messages with a CID
	// of each session in since whose seq is above since's (ascending per
	// session; Session, Seq, From and CID set; at most MaxCatchUp+1 per
	// session, so that one more than MaxCatchUp says "more"): what other
	// nodes appended since the journal last looked.
	ApplyLockedSince(ctx context.Context, sessions []SessionID, since map[SessionID]uint64, b *Batch,
		build func(last map[SessionID]uint64, appended []Message) error) error
	// ReserveSessionIDs reserves n session ids no other caller (on any
	// node) will get, and returns the first: first, first+1 …
	// first+n-1. Ids only grow; a reserved id that is never used is a
	// gap, which is fine.
	ReserveSessionIDs(ctx context.Context, n int) (first SessionID, err error)
	// ClaimSessionID reserves the host-chosen id when it is above every
	// id reserved so far (which then continue after it), and reports
	// whether it did; when not, next is the lowest id it would take.
	ClaimSessionID(ctx context.Context, id SessionID) (ok bool, next SessionID, err error)
	// TryLease takes the lease name for holder when it is free, expired
	// or holder's already, and (re)sets its end to now+ttl; it reports
	// whether holder has the lease. "now" is the store's clock (the
	// database's), so the nodes' clocks need not agree. The work a lease
	// guards (the webhook dispatcher) runs on one node at a time.
	TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease frees the lease name if holder has it (else nothing).
	ReleaseLease(ctx context.Context, name, holder string) error
	// Lease reads the lease name: its holder (empty when nobody ever
	// took it or it was released) and how long it has left, measured on
	// the store's clock (negative: it expired that long ago). A node
	// asks it to learn who runs a lease's work, and when it takes a
	// lease over, how long the work went without an owner.
	Lease(ctx context.Context, name string) (LeaseInfo, error)
}

// LeaseInfo is a lease as SharedStore.Lease reads it.
type LeaseInfo struct {
	Holder string        // empty: free (never taken, or released)
	Left   time.Duration // until its end; negative: expired that long ago
}

// Live reports whether the lease is held now.
func (l LeaseInfo) Live() bool { return l.Holder != "" && l.Left > 0 }

// MaxCatchUp bounds the messages ApplyLockedSince returns per session: a
// journal that is further behind on a session drops its CID lists for it
// and rebuilds them from the store when a cid needs them.
const MaxCatchUp = cidScanPage

// sessionIDBlock is how many session ids a node reserves at a time.
const sessionIDBlock = 64

// sessionIDs hands out the ids of a reserved block (shared stores).
type sessionIDs struct {
	mu       sync.Mutex
	next, hi SessionID // next free id, and the block's end (exclusive)
}

// newSessionID returns an id for a new session: the next number on a
// single node, the next of this node's reserved block on a shared store.
func (c *Core) newSessionID(ctx context.Context) (SessionID, error) {
	if c.shared == nil {
		return SessionID(c.nextSession.Add(1)), nil
	}
	ids := &c.sharedIDs
	ids.mu.Lock()
	defer ids.mu.Unlock()
	if ids.next == ids.hi {
		first, err := c.shared.ReserveSessionIDs(ctx, sessionIDBlock)
		if err != nil {
			return 0, c.clientError("reserving session ids", err)
		}
		ids.next, ids.hi = first, first+sessionIDBlock
	}
	id := ids.next
	ids.next++
	return id, nil
}

// claimSharedID takes a host-chosen group id on a shared store.
func (c *Core) claimSharedID(ctx context.Context, id SessionID) error {
	ok, next, err := c.shared.ClaimSessionID(ctx, id)
	if err != nil {
		return c.clientError("claiming session id "+itoa(uint64(id)), err)
	}
	if !ok {
		return Errf(CodeConflict, "session id "+itoa(uint64(id))+" is taken or below the next free id; choose one above "+itoa(uint64(next)))
	}
	return nil
}

// buildShared is commit's build and apply on a shared store: the batch is
// built inside the store's lock on the sessions the ops append to. The
// messages other nodes appended since this journal last saw a session it
// holds CID lists for come back in the same round trip as the locks: one
// read per session under the locks made the other nodes wait for all of
// them (two nodes sharing 500 private chats: acks in seconds, 30 ms
// without; docs/cluster.md).
func (c *Core) buildShared(ctx context.Context, j *journalState, b *Batch, ops []*op) ([]SessionID, error) {
	var sids []SessionID
	for _, o := range ops {
		if o.batch == nil {
			sids = append(sids, o.msg.Session)
		}
	}
	slices.Sort(sids)
	sids = slices.Compact(sids)
	c.warmCIDs(ctx, j, ops)
	var since map[SessionID]uint64
	for _, sid := range sids {
		if s := j.cid.sessions[sid]; s != nil {
			if since == nil {
				since = make(map[SessionID]uint64)
			}
			since[sid] = s.last
		}
	}
	var touched []SessionID
	err := c.shared.ApplyLockedSince(ctx, sids, since, b, func(last map[SessionID]uint64, appended []Message) error {
		c.catchUpCIDs(j, since, last, appended)
		for _, sid := range sids {
			if known, ok := j.lastSeq[sid]; !ok || known != last[sid] {
				delete(j.lastAt, sid) // another node appended: re-read its last time
			}
			j.lastSeq[sid] = last[sid]
		}
		touched = c.build(ctx, j, b, ops)
		return nil
	})
	return touched, err
}

// warmCIDs rebuilds, before the locks are taken, the CID lists the ops'
// sends will check: a rebuild reads the session's stored messages, and
// under the locks it made every other node appending to those sessions
// wait (the first sends after a start, one read per session: two nodes
// sharing 500 private chats acked in ~2 s; docs/cluster.md). The lists
// are then complete up to the seq they read, and the locks' round trip
// brings what other nodes appended after it (catchUpCIDs). A failed read
// is left to build, which asks again under the locks and reports it.
func (c *Core) warmCIDs(ctx context.Context, j *journalState, ops []*op) {
	for _, o := range ops {
		if o.batch == nil && o.msg.CID != "" {
			_, _ = c.cidSession(ctx, &j.cid, o.msg.Session, o.msg.From)
		}
	}
}

// catchUpCIDs feeds the sessions' CID lists what other nodes appended
// (appended: their messages with a CID above since, per session), up to
// last, the stored last seq read under the lock. A session further
// behind than MaxCatchUp drops its lists (rebuilt from the store when a
// cid needs them, as on a single node).
func (c *Core) catchUpCIDs(j *journalState, since, last map[SessionID]uint64, appended []Message) {
	count := make(map[SessionID]int, len(since))
	for i := range appended {
		count[appended[i].Session]++
	}
	for i := range appended {
		m := &appended[i]
		if count[m.Session] > MaxCatchUp {
			continue
		}
		if s := j.cid.sessions[m.Session]; s != nil {
			j.cid.record(s, m)
		}
	}
	for sid, known := range since {
		s := j.cid.sessions[sid]
		switch {
		case s == nil || last[sid] <= known:
		case count[sid] > MaxCatchUp:
			j.cid.drop(sid)
		default:
			s.last = last[sid] // the messages without a CID in between need no entry
		}
	}
}
