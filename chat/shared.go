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
}

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
// built inside the store's lock on the sessions the ops append to.
func (c *Core) buildShared(ctx context.Context, j *journalState, b *Batch, ops []*op) ([]SessionID, error) {
	var sids []SessionID
	for _, o := range ops {
		if o.batch == nil {
			sids = append(sids, o.msg.Session)
		}
	}
	slices.Sort(sids)
	sids = slices.Compact(sids)
	var touched []SessionID
	err := c.shared.ApplyLocked(ctx, sids, b, func(last map[SessionID]uint64) error {
		for _, sid := range sids {
			c.catchUpCIDs(ctx, j, sid, last[sid])
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

// catchUpCIDs feeds session sid's CID lists the messages other nodes
// appended since this journal last saw it (up to last, the stored last
// seq read under the lock). A session whose lists are not held is
// rebuilt from the store when a cid needs it, as on a single node.
func (c *Core) catchUpCIDs(ctx context.Context, j *journalState, sid SessionID, last uint64) {
	s := j.cid.sessions[sid]
	if s == nil || s.last >= last {
		return
	}
	if last-s.last > cidScanPage {
		j.cid.drop(sid) // far behind: a rebuild reads what is needed
		return
	}
	ms, err := c.store.Messages(ctx, sid, s.last+1, last, 0, false)
	if err != nil || len(ms) == 0 || ms[len(ms)-1].Seq != last {
		j.cid.drop(sid) // rebuilt from the store when next needed
		return
	}
	for i := range ms {
		j.cid.record(s, &ms[i])
	}
}
