package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"chatd/chat"
)

// Seq allocation for a cluster (docs/cluster.md): when several nodes
// append to one session, each must take its seqs from the database, so
// that they are unique and leave no gaps. Not used by a single node yet,
// whose journal hands out seqs itself.
//
// The counter is session_seqs.last_seq, not sessions.last_seq: that one is
// the stored summary's seq, which Apply raises only with a committed
// message's summary (and a put may not roll back); allocating there would
// make every later Summary look stale. A session's counter starts at its
// summary's seq, so allocation continues where a single node left off.

// sqlAllocSeqs takes n seqs in one statement: the row lock of the upsert
// makes concurrent callers take turns, each seeing the last one's sum.
const sqlAllocSeqs = `INSERT INTO session_seqs AS q (session_id, last_seq)
VALUES ($1, coalesce((SELECT last_seq FROM sessions WHERE id = $1), 0) + $2)
ON CONFLICT (session_id) DO UPDATE SET last_seq = q.last_seq + $2
RETURNING last_seq`

// AllocSeqs hands out the n seqs first..first+n-1 of session id, n >= 1:
// atomically, so that callers on any connection or node never get the
// same seq twice, and without gaps (a seq is taken only by a call that
// returns it). One statement, one round trip; it commits by itself.
func (s *Store) AllocSeqs(ctx context.Context, id chat.SessionID, n int) (first uint64, err error) {
	if n < 1 {
		return 0, errors.New("pgstore: AllocSeqs: n must be at least 1")
	}
	var last int64
	if err := s.pool.QueryRow(ctx, sqlAllocSeqs, sid(id), int64(n)).Scan(&last); err != nil {
		return 0, fmt.Errorf("pgstore: allocate %d seqs of session %d: %w", n, id, err)
	}
	return uint64(last) - uint64(n) + 1, nil
}

// allocSeqsLocked is the textbook alternative, kept for the benchmark
// (BenchmarkAllocSeqs): read the counter with SELECT … FOR UPDATE and
// write it back, in an explicit transaction. Same guarantees, four round
// trips (BEGIN, SELECT, UPDATE, COMMIT) with the row locked throughout.
func (s *Store) allocSeqsLocked(ctx context.Context, id chat.SessionID, n int) (first uint64, err error) {
	if n < 1 {
		return 0, errors.New("pgstore: allocSeqsLocked: n must be at least 1")
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var last int64
		err := tx.QueryRow(ctx, `SELECT last_seq FROM session_seqs WHERE session_id = $1 FOR UPDATE`, sid(id)).Scan(&last)
		if errors.Is(err, pgx.ErrNoRows) {
			// First use: create the counter (a racing creator wins, and
			// this one then locks that row).
			_, err = tx.Exec(ctx, `INSERT INTO session_seqs (session_id, last_seq)
				VALUES ($1, coalesce((SELECT last_seq FROM sessions WHERE id = $1), 0)) ON CONFLICT DO NOTHING`, sid(id))
			if err == nil {
				err = tx.QueryRow(ctx, `SELECT last_seq FROM session_seqs WHERE session_id = $1 FOR UPDATE`, sid(id)).Scan(&last)
			}
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE session_seqs SET last_seq = $2 WHERE session_id = $1`, sid(id), last+int64(n)); err != nil {
			return err
		}
		first = uint64(last) + 1
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: allocate %d seqs of session %d: %w", n, id, err)
	}
	return first, nil
}
