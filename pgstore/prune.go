package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"chatd/chat"
)

// sqlPruneSessions lists app's sessions, by unsigned id from $2, whose
// oldest message is older than $3: the only ones with something to
// delete. Ids past 2^63 are negative as bigint and come last; $4 says
// whether $2 is one of them. At most $5 (NULL: all), since each one
// yields at least one deletion.
const sqlPruneSessions = `SELECT s.id FROM sessions s
WHERE s.app = $1
	AND (CASE WHEN $4 THEN s.id < 0 AND s.id >= $2 ELSE s.id >= $2 OR s.id < 0 END)
	AND EXISTS (SELECT 1 FROM (SELECT created_at FROM messages m WHERE m.session_id = s.id ORDER BY seq LIMIT 1) f
		WHERE f.created_at < $3)
ORDER BY s.id < 0, s.id
LIMIT $5`

// sqlPrune deletes a session's oldest messages while they are older than
// $2, at most $3 (NULL: no limit): bool_and over the seq order is true up
// to the first message that is not older, and false from there on. It
// reads at most $3 rows of the session.
const sqlPrune = `DELETE FROM messages WHERE session_id = $1 AND seq IN (
	SELECT seq FROM (
		SELECT seq, bool_and(created_at < $2) OVER (ORDER BY seq) AS old
		FROM (SELECT seq, created_at FROM messages WHERE session_id = $1 ORDER BY seq LIMIT $3) h
	) w WHERE old)`

// PruneMessages deletes app's messages created before `before`, oldest
// first per session, in one transaction of at most max deletions; see
// chat.Store.
func (s *Store) PruneMessages(ctx context.Context, app string, before int64, from chat.SessionID, max int) (deleted int, next chat.SessionID, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		deleted, next = 0, 0
		rows, _ := tx.Query(ctx, sqlPruneSessions, bs(app), sid(from), before, sid(from) < 0, limitParam(max))
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		for _, id := range ids {
			left := 0
			if max > 0 {
				left = max - deleted
			}
			tag, err := tx.Exec(ctx, sqlPrune, id, before, limitParam(left))
			if err != nil {
				return err
			}
			deleted += int(tag.RowsAffected())
			if max > 0 && deleted >= max {
				next = chat.SessionID(id) // it may hold more
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("pgstore: prune %s: %w", app, err)
	}
	return deleted, next, nil
}
