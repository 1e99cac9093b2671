package pgstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"chatd/chat"
)

// The statements of Apply, one per part of a batch, each over arrays of
// the part's rows. ON CONFLICT DO UPDATE may not touch one row twice in a
// statement, so Apply first folds repeated keys of a part (the later put
// wins, as if applied one after the other).
const (
	sqlApps = `INSERT INTO apps (id, name, secret, created_at, retention_days, max_users, max_groups)
SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[])
ON CONFLICT (id) DO UPDATE SET name = excluded.name, secret = excluded.secret, created_at = excluded.created_at,
	retention_days = excluded.retention_days, max_users = excluded.max_users, max_groups = excluded.max_groups`

	sqlUsers = `INSERT INTO users (app, uid, nickname, avatar, extra, created_at, updated_at)
SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[], $6::bigint[], $7::bigint[])
ON CONFLICT (app, uid) DO UPDATE SET nickname = excluded.nickname, avatar = excluded.avatar, extra = excluded.extra,
	created_at = excluded.created_at, updated_at = excluded.updated_at`

	sqlDelUsers = `DELETE FROM users x USING unnest($1::bytea[], $2::bytea[]) d(app, uid)
WHERE x.app = d.app AND x.uid = d.uid`

	sqlTokens = `INSERT INTO tokens (hash, app, uid, created_at, expires_at)
SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bigint[], $5::bigint[])
ON CONFLICT (hash) DO UPDATE SET app = excluded.app, uid = excluded.uid, created_at = excluded.created_at,
	expires_at = excluded.expires_at`

	sqlDelTokens = `DELETE FROM tokens WHERE hash = ANY($1::bytea[])`

	sqlDelUserTokens = `DELETE FROM tokens x USING unnest($1::bytea[], $2::bytea[]) d(app, uid)
WHERE x.app = d.app AND x.uid = d.uid`

	// A put keeps the stored summary (last_*) when its seq is higher: SET
	// reads the stored row (s) as it was before the statement.
	sqlSessions = `INSERT INTO sessions AS s (id, app, kind, name, avatar, owner, pair0, pair1, created_at,
	last_seq, last_at, last_from, last_type, last_preview)
SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::smallint[], $4::bytea[], $5::bytea[], $6::bytea[], $7::bytea[],
	$8::bytea[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bytea[], $13::bytea[], $14::bytea[])
ON CONFLICT (id) DO UPDATE SET app = excluded.app, kind = excluded.kind, name = excluded.name,
	avatar = excluded.avatar, owner = excluded.owner, pair0 = excluded.pair0, pair1 = excluded.pair1,
	created_at = excluded.created_at,
	last_seq     = CASE WHEN s.last_seq > excluded.last_seq THEN s.last_seq     ELSE excluded.last_seq     END,
	last_at      = CASE WHEN s.last_seq > excluded.last_seq THEN s.last_at      ELSE excluded.last_at      END,
	last_from    = CASE WHEN s.last_seq > excluded.last_seq THEN s.last_from    ELSE excluded.last_from    END,
	last_type    = CASE WHEN s.last_seq > excluded.last_seq THEN s.last_type    ELSE excluded.last_type    END,
	last_preview = CASE WHEN s.last_seq > excluded.last_seq THEN s.last_preview ELSE excluded.last_preview END`

	// A member of a session that does not exist gets app '' and then
	// fails the foreign key (members_session_id_fkey), failing the batch.
	sqlMembers = `INSERT INTO members (session_id, uid, app, role, read_seq, joined_at)
SELECT u.sid, u.uid, coalesce(s.app, ''::bytea), u.role, u.read_seq, u.joined_at
FROM unnest($1::bigint[], $2::bytea[], $3::smallint[], $4::bigint[], $5::bigint[]) u(sid, uid, role, read_seq, joined_at)
LEFT JOIN sessions s ON s.id = u.sid
ON CONFLICT (session_id, uid) DO UPDATE SET app = excluded.app, role = excluded.role, read_seq = excluded.read_seq,
	joined_at = excluded.joined_at`

	sqlDelMembers = `DELETE FROM members x USING unnest($1::bigint[], $2::bytea[]) d(sid, uid)
WHERE x.session_id = d.sid AND x.uid = d.uid`

	sqlMessages = `INSERT INTO messages (` + msgCols + `)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[], $5::bytea[], $6::bytea[], $7::bytea[],
	$8::bigint[], $9::bigint[], $10::bigint[], $11::bytea[], $12::boolean[])
ON CONFLICT (session_id, seq) DO UPDATE SET app = excluded.app, sender = excluded.sender, type = excluded.type,
	content = excluded.content, cid = excluded.cid, created_at = excluded.created_at, edited_at = excluded.edited_at,
	edits = excluded.edits, mentions = excluded.mentions, mention_all = excluded.mention_all`

	// One row per session (Apply keeps the highest seq of each).
	sqlSummaries = `UPDATE sessions s SET last_seq = u.seq, last_at = u.at, last_from = u.sender, last_type = u.type,
	last_preview = u.preview
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bytea[], $5::bytea[], $6::bytea[]) u(sid, seq, at, sender, type, preview)
WHERE s.id = u.sid AND u.seq > s.last_seq`

	// One row per member (Apply keeps the highest seq of each).
	sqlReads = `UPDATE members m SET read_seq = u.seq
FROM unnest($1::bigint[], $2::bytea[], $3::bigint[]) u(sid, uid, seq)
WHERE m.session_id = u.sid AND m.uid = u.uid AND u.seq > m.read_seq`

	sqlRecords = `INSERT INTO records (kind, key, value)
SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[])
ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value`

	sqlDelRecords = `DELETE FROM records x USING unnest($1::text[], $2::bytea[]) d(kind, key)
WHERE x.kind = d.kind AND x.key = d.key`

	sqlRestrictions = `INSERT INTO restrictions (app, uid, kind, until, reason, created_at)
SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::smallint[], $4::bigint[], $5::bytea[], $6::bigint[])
ON CONFLICT (app, uid, kind) DO UPDATE SET until = excluded.until, reason = excluded.reason,
	created_at = excluded.created_at`

	sqlDelRestrictions = `DELETE FROM restrictions x USING unnest($1::bytea[], $2::bytea[], $3::smallint[]) d(app, uid, kind)
WHERE x.app = d.app AND x.uid = d.uid AND x.kind = d.kind`
)

// Apply commits b in one transaction, in the order chat.Store documents:
// one pipeline of statements that PostgreSQL runs as one implicit
// transaction, so a batch costs one round trip however many messages it
// holds. A failed statement rolls back the whole batch. ctx's
// cancellation is ignored: a batch handed to Apply is finished (or fails
// on the database's own error), as the journal expects.
func (s *Store) Apply(ctx context.Context, b *chat.Batch) error {
	if err := check(b); err != nil {
		return err
	}
	var q pgx.Batch
	queue(&q, b)
	if q.Len() == 0 {
		return nil
	}
	return applyError(s.pool.SendBatch(context.WithoutCancel(ctx), &q).Close())
}

// applyError words a failed Apply: a member of a missing session wraps
// chat.ErrNotFound, a second private session of a pair ErrPairTaken,
// PostgreSQL's disk_full wraps chat.ErrDiskFull (the core answers it
// `unavailable`, "disk full").
func applyError(err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23503" && pe.TableName == "members":
			return fmt.Errorf("pgstore: apply: a member of a session that is not stored: %w", chat.ErrNotFound)
		case pe.Code == "23505" && pe.ConstraintName == "sessions_pair": // unique_violation
			return fmt.Errorf("pgstore: apply: a private session of a pair that has one (another node created it at the same time): %w", ErrPairTaken)
		case pe.Code == "53100": // disk_full
			return fmt.Errorf("pgstore: apply: %s: %w", pe.Message, chat.ErrDiskFull)
		case pe.Code == "22P02" && strings.Contains(pe.Message, fencedMark): // sqlFence's
			return fmt.Errorf("pgstore: apply: %s: %w", pe.Message, chat.ErrFenced)
		}
	}
	return fmt.Errorf("pgstore: apply: %w", err)
}

// sqlFence is a fenced batch's first statement (chat.Batch.Fence): it
// share-locks the lease's row, so that the lease cannot change hands
// (sqlTryLease updates it) before the transaction ends, and fails the
// transaction when the lease is not the holder's or has ended, by casting
// a text to an integer (PostgreSQL has no raise outside PL/pgSQL): error
// 22P02 naming fencedMark, which applyError turns into chat.ErrFenced.
// The text includes now() so that the planner cannot fold the cast into
// a constant, which it would evaluate (and fail) whatever the WHERE says.
const sqlFence = `SELECT ('` + fencedMark + ` lease ' || $1::text || ' is not held by ' || $2::text || ' at ' || now()::text)::int
WHERE NOT EXISTS (SELECT 1 FROM leases WHERE name = $1 AND holder = $2 AND until > now() FOR SHARE)`

const fencedMark = "chatd-fenced:"

// check refuses, before anything is sent, what the schema cannot hold:
// bad record kinds and keys (as every Store does), and seqs past 2^63.
func check(b *chat.Batch) error {
	for _, r := range b.Records {
		if err := checkRecord(r.Kind, r.Key); err != nil {
			return err
		}
	}
	for _, k := range b.DelRecords {
		if err := checkRecord(k.Kind, k.Key); err != nil {
			return err
		}
	}
	bad := func(seq uint64) bool { return seq > math.MaxInt64 }
	for i := range b.Messages {
		if bad(b.Messages[i].Seq) {
			return fmt.Errorf("pgstore: message seq %d is past 2^63", b.Messages[i].Seq)
		}
	}
	for i := range b.Sessions {
		if bad(b.Sessions[i].LastSeq) {
			return fmt.Errorf("pgstore: session %d: last seq %d is past 2^63", b.Sessions[i].ID, b.Sessions[i].LastSeq)
		}
	}
	for i := range b.Members {
		if bad(b.Members[i].ReadSeq) {
			return fmt.Errorf("pgstore: member %q: read seq %d is past 2^63", b.Members[i].UID, b.Members[i].ReadSeq)
		}
	}
	for i := range b.Summaries {
		if bad(b.Summaries[i].Seq) {
			return fmt.Errorf("pgstore: summary seq %d is past 2^63", b.Summaries[i].Seq)
		}
	}
	for i := range b.Reads {
		if bad(b.Reads[i].Seq) {
			return fmt.Errorf("pgstore: read seq %d is past 2^63", b.Reads[i].Seq)
		}
	}
	return nil
}

func checkRecord(kind string, key []byte) error { return chat.CheckRecord("pgstore", kind, key) }

// lastWins drops every element of xs whose key comes again later, keeping
// the order of the rest. A batch without repeats (the usual case) is
// returned as it is.
func lastWins[T any, K comparable](xs []T, key func(*T) K) []T {
	if len(xs) < 2 {
		return xs
	}
	last := make(map[K]int, len(xs))
	for i := range xs {
		last[key(&xs[i])] = i
	}
	if len(last) == len(xs) {
		return xs
	}
	out := make([]T, 0, len(last))
	for i := range xs {
		if last[key(&xs[i])] == i {
			out = append(out, xs[i])
		}
	}
	return out
}

// queue adds b's statements to q, skipping empty parts.
func queue(q *pgx.Batch, b *chat.Batch) {
	if f := b.Fence; f != nil {
		q.Queue(sqlFence, f.Lease, f.Holder)
	}
	if apps := lastWins(b.Apps, func(a *chat.App) string { return a.ID }); len(apps) > 0 {
		var c cols
		for _, a := range apps {
			c.bytes(0, a.ID).bytes(1, a.Name).bytes(2, a.Secret).int(3, a.CreatedAt).
				int(4, int64(a.RetentionDays)).int(5, int64(a.MaxUsers)).int(6, int64(a.MaxGroups))
		}
		q.Queue(sqlApps, c.args(7)...)
	}
	if users := lastWins(b.Users, userKey); len(users) > 0 {
		var c cols
		for _, u := range users {
			c.bytes(0, u.App).bytes(1, u.UID).bytes(2, u.Nickname).bytes(3, u.Avatar).raw(4, nilIfEmpty(u.Extra)).
				int(5, u.CreatedAt).int(6, u.UpdatedAt)
		}
		q.Queue(sqlUsers, c.args(7)...)
	}
	if len(b.DelUsers) > 0 {
		var c cols
		for _, k := range b.DelUsers {
			c.bytes(0, k.App).bytes(1, k.UID)
		}
		q.Queue(sqlDelUsers, c.args(2)...)
	}
	if toks := lastWins(b.Tokens, func(t *chat.Token) [32]byte { return t.Hash }); len(toks) > 0 {
		var c cols
		for _, t := range toks {
			c.raw(0, t.Hash[:]).bytes(1, t.App).bytes(2, t.UID).int(3, t.CreatedAt).int(4, t.ExpiresAt)
		}
		q.Queue(sqlTokens, c.args(5)...)
	}
	if len(b.DelTokens) > 0 {
		hs := make([][]byte, len(b.DelTokens))
		for i := range b.DelTokens {
			hs[i] = b.DelTokens[i][:]
		}
		q.Queue(sqlDelTokens, hs)
	}
	if len(b.DelUserTokens) > 0 {
		var c cols
		for _, k := range b.DelUserTokens {
			c.bytes(0, k.App).bytes(1, k.UID)
		}
		q.Queue(sqlDelUserTokens, c.args(2)...)
	}
	if sessions := foldSessions(b.Sessions); len(sessions) > 0 {
		var c cols
		for _, x := range sessions {
			c.int(0, sid(x.ID)).bytes(1, x.App).small(2, int16(x.Kind)).bytes(3, x.Name).bytes(4, x.Avatar).
				bytes(5, x.Owner).bytes(6, x.Pair[0]).bytes(7, x.Pair[1]).int(8, x.CreatedAt).
				int(9, int64(x.LastSeq)).int(10, x.LastAt).bytes(11, x.LastFrom).bytes(12, x.LastType).bytes(13, x.LastPreview)
		}
		q.Queue(sqlSessions, c.args(14)...)
	}
	if members := lastWins(b.Members, func(m *chat.Member) chat.MemberKey {
		return chat.MemberKey{Session: m.Session, UID: m.UID}
	}); len(members) > 0 {
		var c cols
		for _, m := range members {
			c.int(0, sid(m.Session)).bytes(1, m.UID).small(2, int16(m.Role)).int(3, int64(m.ReadSeq)).int(4, m.JoinedAt)
		}
		q.Queue(sqlMembers, c.args(5)...)
	}
	if len(b.DelMembers) > 0 {
		var c cols
		for _, k := range b.DelMembers {
			c.int(0, sid(k.Session)).bytes(1, k.UID)
		}
		q.Queue(sqlDelMembers, c.args(2)...)
	}
	if msgs := lastWins(b.Messages, func(m *chat.Message) [2]uint64 { return [2]uint64{uint64(m.Session), m.Seq} }); len(msgs) > 0 {
		var c cols
		for i := range msgs {
			m := &msgs[i]
			c.int(0, sid(m.Session)).int(1, int64(m.Seq)).bytes(2, m.App).bytes(3, m.From).bytes(4, m.Type).
				raw(5, nilIfEmpty(m.Content)).bytes(6, m.CID).int(7, m.CreatedAt).int(8, m.EditedAt).
				int(9, int64(m.Edits)).raw(10, encodeMentions(m.Mentions))
			c.bools = append(c.bools, m.MentionAll)
		}
		q.Queue(sqlMessages, append(c.args(11), c.bools)...)
	}
	if sums := highest(b.Summaries, func(x *chat.Summary) chat.SessionID { return x.Session },
		func(x *chat.Summary) uint64 { return x.Seq }); len(sums) > 0 {
		var c cols
		for _, sm := range sums {
			c.int(0, sid(sm.Session)).int(1, int64(sm.Seq)).int(2, sm.At).bytes(3, sm.From).bytes(4, sm.Type).bytes(5, sm.Preview)
		}
		q.Queue(sqlSummaries, c.args(6)...)
	}
	if reads := highest(b.Reads, func(x *chat.ReadMark) chat.MemberKey { return chat.MemberKey{Session: x.Session, UID: x.UID} },
		func(x *chat.ReadMark) uint64 { return x.Seq }); len(reads) > 0 {
		var c cols
		for _, r := range reads {
			c.int(0, sid(r.Session)).bytes(1, r.UID).int(2, int64(r.Seq))
		}
		q.Queue(sqlReads, c.args(3)...)
	}
	if recs := lastWins(b.Records, func(r *chat.Record) [2]string { return [2]string{r.Kind, string(r.Key)} }); len(recs) > 0 {
		kinds := make([]string, len(recs))
		var c cols
		for i, r := range recs {
			kinds[i] = r.Kind
			value := r.Value
			if value == nil {
				value = []byte{} // NOT NULL: an empty value is a value
			}
			c.raw(1, r.Key).raw(2, value)
		}
		a := c.args(3)
		a[0] = kinds
		q.Queue(sqlRecords, a...)
	}
	if len(b.DelRecords) > 0 {
		kinds := make([]string, len(b.DelRecords))
		var c cols
		for i, k := range b.DelRecords {
			kinds[i] = k.Kind
			c.raw(1, k.Key)
		}
		a := c.args(2)
		a[0] = kinds
		q.Queue(sqlDelRecords, a...)
	}
	if rs := lastWins(b.Restrictions, func(r *chat.Restriction) chat.RestrictionKey { return r.Key() }); len(rs) > 0 {
		var c cols
		for _, r := range rs {
			c.bytes(0, r.App).bytes(1, r.UID).small(2, int16(r.Kind)).int(3, r.Until).bytes(4, r.Reason).int(5, r.CreatedAt)
		}
		q.Queue(sqlRestrictions, c.args(6)...)
	}
	if len(b.DelRestrictions) > 0 {
		var c cols
		for _, k := range b.DelRestrictions {
			c.bytes(0, k.App).bytes(1, k.UID).small(2, int16(k.Kind))
		}
		q.Queue(sqlDelRestrictions, c.args(3)...)
	}
}

func userKey(u *chat.User) chat.UserKey { return chat.UserKey{App: u.App, UID: u.UID} }

// foldSessions folds repeated ids of a batch into one put each, as if
// applied in order: the later put wins, but keeps an earlier put's
// summary when that one's LastSeq is higher.
func foldSessions(xs []chat.Session) []chat.Session {
	out := lastWins(xs, func(s *chat.Session) chat.SessionID { return s.ID })
	if len(out) == len(xs) {
		return xs
	}
	at := make(map[chat.SessionID]int, len(out))
	for i := range out {
		at[out[i].ID] = i
	}
	best := make(map[chat.SessionID]chat.Session)
	for _, x := range xs {
		if b, ok := best[x.ID]; !ok || x.LastSeq >= b.LastSeq {
			best[x.ID] = x
		}
	}
	for id, b := range best {
		o := &out[at[id]]
		if b.LastSeq > o.LastSeq {
			o.LastSeq, o.LastAt, o.LastFrom, o.LastType, o.LastPreview = b.LastSeq, b.LastAt, b.LastFrom, b.LastType, b.LastPreview
		}
	}
	return out
}

// highest keeps one element per key: the one of the highest seq, the
// first of equals (a later equal one would not apply). It serves
// Summaries (per session) and Reads (per member).
func highest[T any, K comparable](xs []T, key func(*T) K, seq func(*T) uint64) []T {
	if len(xs) < 2 {
		return xs
	}
	at := make(map[K]int, 8)
	out := make([]T, 0, 8)
	for i := range xs {
		k := key(&xs[i])
		j, ok := at[k]
		switch {
		case !ok:
			at[k] = len(out)
			out = append(out, xs[i])
		case seq(&xs[i]) > seq(&out[j]):
			out[j] = xs[i]
		}
	}
	return out
}

// cols gathers a statement's parameter arrays, column by column.
type cols struct {
	b     [14][][]byte
	i     [14][]int64
	s     [14][]int16
	bools []bool
}

func (c *cols) bytes(n int, v string) *cols { c.b[n] = append(c.b[n], bs(v)); return c }
func (c *cols) raw(n int, v []byte) *cols   { c.b[n] = append(c.b[n], v); return c }
func (c *cols) int(n int, v int64) *cols    { c.i[n] = append(c.i[n], v); return c }
func (c *cols) small(n int, v int16) *cols  { c.s[n] = append(c.s[n], v); return c }

// args returns the first n columns as statement arguments.
func (c *cols) args(n int) []any {
	out := make([]any, n)
	for k := range n {
		switch {
		case c.b[k] != nil:
			out[k] = c.b[k]
		case c.i[k] != nil:
			out[k] = c.i[k]
		case c.s[k] != nil:
			out[k] = c.s[k]
		}
	}
	return out
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// encodeMentions packs uids as uvarint length + bytes each (nil for
// none): a text[] per row cannot ride the batch's arrays, and uids may
// hold any byte.
func encodeMentions(uids []string) []byte {
	if len(uids) == 0 {
		return nil
	}
	n := 0
	for _, u := range uids {
		n += binary.MaxVarintLen64 + len(u)
	}
	out := make([]byte, 0, n)
	for _, u := range uids {
		out = binary.AppendUvarint(out, uint64(len(u)))
		out = append(out, u...)
	}
	return out
}

func decodeMentions(b []byte) ([]string, error) {
	var out []string
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, errors.New("pgstore: corrupt mentions")
		}
		out = append(out, string(b[k:k+int(n)]))
		b = b[k+int(n):]
	}
	return out, nil
}
