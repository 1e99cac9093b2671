package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"chatd/chat"
)

// The store of a cluster (chat.SharedStore; docs/cluster.md): several
// chatd nodes, each with its own pool (OpenShared), append to the same
// sessions. A node's journal takes a group commit's seqs under row locks
// on the sessions it appends to, and writes the batch in the same
// transaction (ApplyLocked); session ids come from a counter all nodes
// share (ReserveSessionIDs, ClaimSessionID).

var _ chat.SharedStore = (*Store)(nil)

// ErrPairTaken is wrapped by Apply's error when a batch creates a private
// session for a pair that has one already: two nodes opened the pair's
// private chat at once, and the other one committed first. The core then
// reads the stored one (chat's openPrivate).
var ErrPairTaken = errors.New("pgstore: the pair has a private session already")

// holdLimit bounds how long build may hold the locks: a node that stops
// there (frozen, cut off without its connection closing) has its
// connection ended by PostgreSQL (idle_in_transaction_session_timeout,
// for that transaction only), which rolls back and frees the sessions
// for the other nodes. A build takes milliseconds. A variable for tests.
var holdLimit = 30 * time.Second

// sqlLockSeqs locks the sessions' rows of session_seqs, creating the
// missing ones (a session not stored yet is lockable too), in the order
// given: ON CONFLICT DO UPDATE locks each row as it reaches it, so
// callers that all list sessions ascending never deadlock. The update
// changes nothing; it is what takes the lock.
const sqlLockSeqs = `INSERT INTO session_seqs AS q (session_id, last_seq)
SELECT id, 0 FROM unnest($1::bigint[]) WITH ORDINALITY u(id, n) ORDER BY n
ON CONFLICT (session_id) DO UPDATE SET last_seq = q.last_seq`

// sqlLastSeqs reads the locked sessions' last seqs: the greatest of the
// counter (seqs committed under the lock), the stored summary (which
// outlives messages pruned by retention) and the messages themselves
// (written by a single node, or by Apply, without the counter). It runs
// after sqlLockSeqs, so its snapshot, taken when it starts, sees what the
// lock's previous holders committed.
const sqlLastSeqs = `SELECT u.id, greatest(q.last_seq, coalesce(s.last_seq, 0),
	coalesce((SELECT max(m.seq) FROM messages m WHERE m.session_id = u.id), 0))
FROM unnest($1::bigint[]) u(id)
JOIN session_seqs q ON q.session_id = u.id
LEFT JOIN sessions s ON s.id = u.id`

// sqlAdvanceSeqs raises the locked sessions' counters to their new last
// seqs, in the batch's transaction.
const sqlAdvanceSeqs = `UPDATE session_seqs q SET last_seq = u.seq
FROM unnest($1::bigint[], $2::bigint[]) u(sid, seq)
WHERE q.session_id = u.sid AND u.seq > q.last_seq`

// ApplyLocked implements chat.SharedStore in one transaction on one
// connection of the pool, in two round trips:
//
//  1. BEGIN, lock the sessions' session_seqs rows (ascending) and read
//     their last seqs, pipelined;
//  2. after build: b's statements (as Apply queues them), the counters
//     raised to the new last seqs, and COMMIT, pipelined.
//
// build runs between them, holding the locks (for holdLimit at most: then
// PostgreSQL ends the connection); it may read the store
// through the pool (read committed: it sees every committed row), which
// needs a free connection: callers running ApplyLocked at once on one
// Store must be fewer than its pool (a core has one, its journal).
//
// Nothing is retried: a failure after build ran (a lost connection, the
// database's error) rolls everything back and is returned, since build's
// work cannot be undone; a connection that dies mid-transaction takes its
// locks and writes with it (PostgreSQL rolls back a disconnected
// session's transaction). With no sessions it calls build and Apply.
func (s *Store) ApplyLocked(ctx context.Context, sessions []chat.SessionID, b *chat.Batch, build func(last map[chat.SessionID]uint64) error) error {
	return s.ApplyLockedSince(ctx, sessions, nil, b, func(last map[chat.SessionID]uint64, _ []chat.Message) error { return build(last) })
}

// ApplyLockedSince implements chat.SharedStore: ApplyLocked, with the
// messages appended since `since` read in the locks' round trip.
func (s *Store) ApplyLockedSince(ctx context.Context, sessions []chat.SessionID, since map[chat.SessionID]uint64, b *chat.Batch,
	build func(last map[chat.SessionID]uint64, appended []chat.Message) error) error {
	if len(sessions) == 0 {
		if err := build(map[chat.SessionID]uint64{}, nil); err != nil {
			return err
		}
		return s.Apply(ctx, b)
	}
	ids := make([]int64, len(sessions))
	for i, id := range sessions {
		if i > 0 && sessions[i-1] >= id {
			return fmt.Errorf("pgstore: ApplyLocked: sessions %v are not ascending and unique", sessions)
		}
		ids[i] = sid(id)
	}
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: apply locked: %w", err)
	}
	// A connection released inside a transaction (a failed ROLLBACK) is
	// closed by the pool, which ends the transaction.
	defer c.Release()
	last, appended, err := lockSessions(ctx, c, ids, since)
	if err != nil {
		rollback(c)
		return fmt.Errorf("pgstore: locking sessions %v: %w", sessions, err)
	}
	if err := build(last, appended); err != nil {
		rollback(c)
		return err
	}
	if err := check(b); err != nil {
		rollback(c)
		return err
	}
	var q pgx.Batch
	queue(&q, b)
	queueAdvance(&q, sessions, last, b.Messages)
	q.Queue("COMMIT")
	if err := c.SendBatch(context.WithoutCancel(ctx), &q).Close(); err != nil {
		rollback(c)
		return applyError(err)
	}
	return nil
}

// lockSessions begins the transaction, locks ids and reads their last
// seqs, and the messages with a CID above since of the sessions in it:
// one round trip.
func lockSessions(ctx context.Context, c *pgxpool.Conn, ids []int64, since map[chat.SessionID]uint64) (map[chat.SessionID]uint64, []chat.Message, error) {
	var q pgx.Batch
	q.Queue("BEGIN")
	q.Queue(`SELECT set_config('idle_in_transaction_session_timeout', $1, true)`, strconv.FormatInt(holdLimit.Milliseconds(), 10))
	q.Queue(sqlLockSeqs, ids)
	last := make(map[chat.SessionID]uint64, len(ids))
	q.Queue(sqlLastSeqs, ids).Query(func(rows pgx.Rows) error {
		var id, seq int64
		_, err := pgx.ForEachRow(rows, []any{&id, &seq}, func() error {
			last[chat.SessionID(id)] = uint64(seq)
			return nil
		})
		return err
	})
	var appended []chat.Message
	if len(since) > 0 {
		sids, afters := make([]int64, 0, len(since)), make([]int64, 0, len(since))
		for _, id := range ids {
			if after, ok := since[chat.SessionID(id)]; ok {
				sids, afters = append(sids, id), append(afters, int64(after))
			}
		}
		q.Queue(sqlAppendedCIDs, sids, afters, chat.MaxCatchUp+1).Query(func(rows pgx.Rows) error {
			var id, seq int64
			var from, cid []byte
			_, err := pgx.ForEachRow(rows, []any{&id, &seq, &from, &cid}, func() error {
				appended = append(appended, chat.Message{Session: chat.SessionID(id), Seq: uint64(seq), From: string(from), CID: string(cid)})
				return nil
			})
			return err
		})
	}
	if err := c.SendBatch(ctx, &q).Close(); err != nil {
		return nil, nil, err
	}
	if len(last) != len(ids) {
		return nil, nil, fmt.Errorf("read %d last seqs of %d sessions", len(last), len(ids))
	}
	return last, appended, nil
}

// sqlAppendedCIDs reads, per (session, after), the messages with a CID
// above after, ascending, at most $3 a session. It runs after the locks
// are granted: it sees what their previous holders committed.
const sqlAppendedCIDs = `SELECT m.session_id, m.seq, m.sender, m.cid
FROM unnest($1::bigint[], $2::bigint[]) AS k(sid, after)
CROSS JOIN LATERAL (SELECT session_id, seq, sender, cid FROM messages
	WHERE session_id = k.sid AND seq > k.after AND cid <> ''::bytea
	ORDER BY seq LIMIT $3) m
ORDER BY m.session_id, m.seq`

// queueAdvance queues the counters' update: each locked session's new
// last seq, the greater of the one read and its highest in msgs.
func queueAdvance(q *pgx.Batch, sessions []chat.SessionID, last map[chat.SessionID]uint64, msgs []chat.Message) {
	top := make(map[chat.SessionID]uint64, len(sessions))
	for _, id := range sessions {
		top[id] = last[id]
	}
	for i := range msgs {
		m := &msgs[i]
		if t, ok := top[m.Session]; ok && m.Seq > t {
			top[m.Session] = m.Seq
		}
	}
	var c cols
	for _, id := range sessions {
		c.int(0, sid(id)).int(1, int64(top[id]))
	}
	q.Queue(sqlAdvanceSeqs, c.args(2)...)
}

// rollback ends c's transaction. When that fails (the connection is
// gone), the pool closes c on release, and PostgreSQL rolls back.
func rollback(c *pgxpool.Conn) {
	c.Exec(context.Background(), "ROLLBACK")
}

// ReserveSessionIDs implements chat.SharedStore: the counter of
// session_ids, raised first above every stored session (a database a
// single node wrote continues after its ids).
func (s *Store) ReserveSessionIDs(ctx context.Context, n int) (chat.SessionID, error) {
	if n < 1 {
		return 0, errors.New("pgstore: ReserveSessionIDs: n must be at least 1")
	}
	var first chat.SessionID
	err := s.sessionIDs(ctx, func(top chat.SessionID) (chat.SessionID, error) {
		if uint64(top) > math.MaxUint64-uint64(n) {
			return 0, fmt.Errorf("session ids exhausted (the highest is %d)", top)
		}
		first = top + 1
		return top + chat.SessionID(n), nil
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: reserve %d session ids: %w", n, err)
	}
	return first, nil
}

// ClaimSessionID implements chat.SharedStore.
func (s *Store) ClaimSessionID(ctx context.Context, id chat.SessionID) (ok bool, next chat.SessionID, err error) {
	err = s.sessionIDs(ctx, func(top chat.SessionID) (chat.SessionID, error) {
		if id <= top {
			next = top + 1
			return top, nil
		}
		ok, next = true, id
		return id, nil
	})
	if err != nil {
		return false, 0, fmt.Errorf("pgstore: claim session id %d: %w", id, err)
	}
	return ok, next, nil
}

// sessionIDs runs set on the highest session id reserved, claimed or
// stored (compared unsigned), under the counter's row lock, and stores
// the id it returns.
func (s *Store) sessionIDs(ctx context.Context, set func(top chat.SessionID) (chat.SessionID, error)) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var counter int64
		if err := tx.QueryRow(ctx, `SELECT last_id FROM session_ids FOR UPDATE`).Scan(&counter); err != nil {
			return err
		}
		stored, err := maxSessionID(ctx, tx)
		if err != nil {
			return err
		}
		to, err := set(max(chat.SessionID(counter), stored))
		if err != nil || to == chat.SessionID(counter) {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE session_ids SET last_id = $1`, sid(to))
		return err
	})
}

// sqlTryLease takes or renews a lease in one statement, on the database's
// clock: a new row, or the stored one when it has expired or is the
// caller's. When another holder's lease is live the update's WHERE
// refuses it and nothing is returned.
const sqlTryLease = `INSERT INTO leases (name, holder, until)
VALUES ($1, $2, now() + make_interval(secs => $3::float8))
ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until
WHERE leases.until < now() OR leases.holder = EXCLUDED.holder
RETURNING holder`

// TryLease implements chat.SharedStore.
func (s *Store) TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	var got string
	err := s.pool.QueryRow(ctx, sqlTryLease, name, holder, ttl.Seconds()).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pgstore: lease %q: %w", name, err)
	}
	return got == holder, nil
}

// Lease implements chat.SharedStore: the time left is computed by the
// database, on its clock.
func (s *Store) Lease(ctx context.Context, name string) (chat.LeaseInfo, error) {
	var l chat.LeaseInfo
	var left float64
	err := s.pool.QueryRow(ctx, `SELECT holder, extract(epoch FROM until - now())::float8 FROM leases WHERE name = $1`, name).Scan(&l.Holder, &left)
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.LeaseInfo{}, nil
	}
	if err != nil {
		return chat.LeaseInfo{}, fmt.Errorf("pgstore: read lease %q: %w", name, err)
	}
	l.Left = time.Duration(left * float64(time.Second))
	return l, nil
}

// ReleaseLease implements chat.SharedStore.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2`, name, holder); err != nil {
		return fmt.Errorf("pgstore: release lease %q: %w", name, err)
	}
	return nil
}
