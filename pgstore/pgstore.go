// Package pgstore is a chat.Store on PostgreSQL, through pgx: the store of
// a chatd whose `store` setting is a postgres:// URL, and the first part
// of running several nodes on one database (docs/cluster.md). It passes
// chat/storetest like storage.Bolt.
//
// Open creates and migrates the schema itself (migrate.go). Apply is one
// round trip: every part of the batch is one multi-row statement over
// arrays (unnest), all sent as one pipeline that PostgreSQL runs as one
// implicit transaction (apply.go). Reads are single statements on a
// connection pool; they never wait for writes.
//
// A Store is also a chat.SharedStore, for several nodes on one database
// (OpenShared): ApplyLocked takes a group commit's seqs under row locks
// and commits it in the same transaction; session ids come from a
// counter every node shares (shared.go).
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"chatd/chat"
)

var _ chat.Store = (*Store)(nil)

// Store is a chat.Store on a PostgreSQL database. It is safe for
// concurrent use; the core calls Apply from its journal goroutine only.
type Store struct {
	pool *pgxpool.Pool
	// node is the connection holding the database lock (exclusive for
	// Open, shared for OpenShared); closing it releases the lock.
	node *pgx.Conn
	// blobTurns bounds the blob transfers (blobs.go) running at once to
	// half the pool, so that uploads never take every connection.
	blobTurns chan struct{}
}

// nodeLock is the advisory lock key every chatd holds on its database for
// as long as it runs ("chatd1" in ASCII): a single node exclusively
// (Open), the nodes of a cluster shared (OpenShared). So a database is
// used by one single node or by one cluster, never both.
const nodeLock = 0x636861746431

// nodeLockWait is how long Open and OpenShared wait for the lock: a chatd
// that has just stopped has closed its connection, but its server process
// may not have ended yet.
var nodeLockWait = 3 * time.Second

// ErrInUse is returned by Open and OpenShared when another chatd uses the
// database in a way that excludes this one; the message says which and
// what to do.
var ErrInUse = errors.New("pgstore: the database is in use")

// Open connects to the database at dsn (a postgres:// URL or a key=value
// connection string, as libpq takes), brings its schema up to date and
// returns the store, for one single chatd: it holds an exclusive advisory
// lock on the database until Close, and fails with ErrInUse while any
// other chatd, single or a cluster's node, uses it. A single node hands
// out seqs from its own journal, so anything else appending to its
// sessions would hand out the same ones; nodes of a cluster take them
// from the database instead (OpenShared, chat.Config.SharedStore;
// docs/cluster.md).
func Open(ctx context.Context, dsn string) (*Store, error) {
	return open(ctx, dsn, false)
}

// OpenShared is Open for a node of a cluster, whose core takes seqs and
// session ids from the database (chat.Config.SharedStore, shared.go): it
// holds the same lock shared, so any number of nodes open the database
// at once, and fails with ErrInUse while a single chatd (Open) holds it.
// The migrations take turns under another advisory lock.
func OpenShared(ctx context.Context, dsn string) (*Store, error) {
	return open(ctx, dsn, true)
}

func open(ctx context.Context, dsn string, shared bool) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "chatd" // in pg_stat_activity
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: connect to %s: %w", Redact(dsn), err)
	}
	s := &Store{pool: pool, blobTurns: make(chan struct{}, max(1, cfg.MaxConns/2))}
	// The lock comes first: a refused chatd does not migrate a database
	// the other kind of chatd is using.
	if err := s.lockDatabase(ctx, shared); err != nil {
		pool.Close()
		return nil, err
	}
	ms, err := loadMigrations(migrations)
	if err == nil {
		_, err = migrate(ctx, pool, ms)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// lockDatabase takes the database lock, shared or exclusive, on a
// connection of its own, taken out of the pool for the store's lifetime.
func (s *Store) lockDatabase(ctx context.Context, shared bool) error {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: %w", err)
	}
	conn := c.Hijack()
	fn := "pg_advisory_lock"
	if shared {
		fn = "pg_advisory_lock_shared"
	}
	_, err = conn.Exec(ctx, "SET lock_timeout = "+strconv.Itoa(int(nodeLockWait/time.Millisecond)))
	if err == nil {
		_, err = conn.Exec(ctx, "SELECT "+fn+"($1)", int64(nodeLock))
	}
	if err == nil {
		_, err = conn.Exec(ctx, "RESET lock_timeout")
	}
	var pe *pgconn.PgError
	busy := errors.As(err, &pe) && pe.Code == "55P03" // lock_not_available
	if err != nil && !busy {
		conn.Close(ctx)
		return fmt.Errorf("pgstore: the database lock: %w", err)
	}
	if busy {
		err := inUse(ctx, conn, shared)
		conn.Close(ctx)
		return err
	}
	s.node = conn
	return nil
}

// lockHolder is a chatd holding the database lock.
type lockHolder struct {
	single    bool // exclusive: a single node
	app, addr string
}

func (h lockHolder) String() string {
	return fmt.Sprintf("%s from %s", orDefault(h.app, "?"), orDefault(h.addr, "a local socket"))
}

// inUse is ErrInUse saying who holds the lock that this chatd (shared: a
// cluster node) was refused, and what to do.
func inUse(ctx context.Context, conn *pgx.Conn, shared bool) error {
	rows, _ := conn.Query(ctx, `SELECT l.mode = 'ExclusiveLock', coalesce(a.application_name, ''), coalesce(a.client_addr::text, '')
		FROM pg_locks l LEFT JOIN pg_stat_activity a USING (pid)
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
		AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND (l.classid::bigint << 32 | l.objid::bigint) = $1 ORDER BY a.backend_start`, int64(nodeLock))
	hs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (lockHolder, error) {
		var h lockHolder
		err := r.Scan(&h.single, &h.app, &h.addr)
		return h, err
	})
	switch {
	case err != nil || len(hs) == 0:
		return fmt.Errorf("%w by another chatd that held its lock for %s (it may have just stopped: start again; docs/cluster.md)", ErrInUse, nodeLockWait)
	case hs[0].single && shared:
		return fmt.Errorf("%w by a single chatd node (%s), which a cluster cannot share; stop it, or restart it with cluster_node to make it a node of the cluster (docs/cluster.md)", ErrInUse, hs[0])
	case hs[0].single:
		return fmt.Errorf("%w by another single chatd node (%s); one single node per database: stop it, or run both as nodes of a cluster (cluster_node; docs/cluster.md)", ErrInUse, hs[0])
	}
	nodes := "nodes"
	if len(hs) == 1 {
		nodes = "node"
	}
	names := make([]string, 0, 4)
	for i, h := range hs {
		if i == 3 {
			names = append(names, fmt.Sprintf("and %d more", len(hs)-i))
			break
		}
		names = append(names, h.String())
	}
	return fmt.Errorf("%w by a cluster (%d chatd %s with cluster_node: %s), which a single node cannot share; stop them, or start this chatd with cluster_node to join them (docs/cluster.md)", ErrInUse, len(hs), nodes, strings.Join(names, ", "))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Close closes the pool's connections and releases the database lock. Reads in flight finish first.
func (s *Store) Close() error {
	s.pool.Close()
	if s.node != nil {
		return s.node.Close(context.Background())
	}
	return nil
}

// Redact returns dsn with its password replaced by "xxxxx", for messages.
func Redact(dsn string) string {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "(unparsable connection string)"
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// bstr is a string kept in a bytea column (see migrations/0001_init.sql
// for why). Scan into (*bstr)(&s); pass bs(s) as a parameter.
type bstr string

// ScanBytes implements pgtype.BytesScanner; src is copied.
func (s *bstr) ScanBytes(src []byte) error {
	*s = bstr(src)
	return nil
}

// bs is s as a bytea parameter: never nil, which pgx would send as NULL.
func bs(s string) []byte {
	if s == "" {
		return []byte{}
	}
	return []byte(s)
}

// sid is a session id as stored: the same 64 bits, signed.
func sid(id chat.SessionID) int64 { return int64(id) }

// seqParam is a seq bound for a query: seqs are stored as bigint, so
// anything above MaxInt64 means "no bound".
func seqParam(seq uint64) int64 {
	if seq > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(seq)
}

// limitParam is a LIMIT: NULL (no limit) for limit <= 0.
func limitParam(limit int) any {
	if limit <= 0 {
		return nil
	}
	return int64(limit)
}

// notFound wraps chat.ErrNotFound when err is pgx.ErrNoRows.
func notFound(what string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("pgstore: %s: %w", what, chat.ErrNotFound)
	}
	return fmt.Errorf("pgstore: %s: %w", what, err)
}

// App returns an app.
func (s *Store) App(ctx context.Context, id string) (chat.App, error) {
	a := chat.App{ID: id}
	err := s.pool.QueryRow(ctx, `SELECT name, secret, created_at, retention_days, max_users, max_groups
		FROM apps WHERE id = $1`, bs(id)).
		Scan((*bstr)(&a.Name), (*bstr)(&a.Secret), &a.CreatedAt, &a.RetentionDays, &a.MaxUsers, &a.MaxGroups)
	if err != nil {
		return chat.App{}, notFound("app "+id, err)
	}
	return a, nil
}

// Apps returns every app, by id.
func (s *Store) Apps(ctx context.Context) ([]chat.App, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, name, secret, created_at, retention_days, max_users, max_groups
		FROM apps ORDER BY id`)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (chat.App, error) {
		var a chat.App
		err := r.Scan((*bstr)(&a.ID), (*bstr)(&a.Name), (*bstr)(&a.Secret), &a.CreatedAt, &a.RetentionDays, &a.MaxUsers, &a.MaxGroups)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: apps: %w", err)
	}
	return out, nil
}

const userCols = `app, uid, nickname, avatar, extra, created_at, updated_at`

func scanUser(r pgx.Row) (chat.User, error) {
	var u chat.User
	err := r.Scan((*bstr)(&u.App), (*bstr)(&u.UID), (*bstr)(&u.Nickname), (*bstr)(&u.Avatar),
		(*[]byte)(&u.Extra), &u.CreatedAt, &u.UpdatedAt)
	return u, err
}

// User returns a user.
func (s *Store) User(ctx context.Context, app, uid string) (chat.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE app = $1 AND uid = $2`,
		bs(app), bs(uid)))
	if err != nil {
		return chat.User{}, notFound("user "+uid, err)
	}
	return u, nil
}

// Users lists app's users by uid (bytewise), after the uid `after`.
func (s *Store) Users(ctx context.Context, app, after string, limit int) ([]chat.User, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+userCols+` FROM users WHERE app = $1 AND uid > $2 ORDER BY uid LIMIT $3`,
		bs(app), bs(after), limitParam(limit))
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (chat.User, error) { return scanUser(r) })
	if err != nil {
		return nil, fmt.Errorf("pgstore: users of %s: %w", app, err)
	}
	return out, nil
}

// Token returns a token by hash.
func (s *Store) Token(ctx context.Context, hash [32]byte) (chat.Token, error) {
	t := chat.Token{Hash: hash}
	err := s.pool.QueryRow(ctx, `SELECT app, uid, created_at, expires_at FROM tokens WHERE hash = $1`, hash[:]).
		Scan((*bstr)(&t.App), (*bstr)(&t.UID), &t.CreatedAt, &t.ExpiresAt)
	if err != nil {
		return chat.Token{}, notFound("token", err)
	}
	return t, nil
}

// Session returns a session.
func (s *Store) Session(ctx context.Context, id chat.SessionID) (chat.Session, error) {
	x := chat.Session{ID: id}
	err := s.pool.QueryRow(ctx, `SELECT app, kind, name, avatar, owner, pair0, pair1, created_at,
		last_seq, last_at, last_from, last_type, last_preview FROM sessions WHERE id = $1`, sid(id)).
		Scan((*bstr)(&x.App), &x.Kind, (*bstr)(&x.Name), (*bstr)(&x.Avatar), (*bstr)(&x.Owner),
			(*bstr)(&x.Pair[0]), (*bstr)(&x.Pair[1]), &x.CreatedAt,
			&x.LastSeq, &x.LastAt, (*bstr)(&x.LastFrom), (*bstr)(&x.LastType), (*bstr)(&x.LastPreview))
	if err != nil {
		return chat.Session{}, notFound(fmt.Sprintf("session %d", id), err)
	}
	return x, nil
}

// PrivateSession finds the private session of a pair, in either order.
func (s *Store) PrivateSession(ctx context.Context, app, a, b string) (chat.SessionID, error) {
	if b < a {
		a, b = b, a
	}
	var id int64
	err := s.pool.QueryRow(ctx, `SELECT id FROM sessions WHERE app = $1 AND kind = 1
		AND least(pair0, pair1) = $2 AND greatest(pair0, pair1) = $3 LIMIT 1`, bs(app), bs(a), bs(b)).Scan(&id)
	if err != nil {
		return 0, notFound("private session", err)
	}
	return chat.SessionID(id), nil
}

func scanMember(r pgx.Row) (chat.Member, error) {
	var m chat.Member
	var id int64
	err := r.Scan(&id, (*bstr)(&m.UID), &m.Role, &m.ReadSeq, &m.JoinedAt)
	m.Session = chat.SessionID(id)
	return m, err
}

// Members returns a session's members, by uid.
func (s *Store) Members(ctx context.Context, id chat.SessionID) ([]chat.Member, error) {
	rows, _ := s.pool.Query(ctx, `SELECT session_id, uid, role, read_seq, joined_at FROM members
		WHERE session_id = $1 ORDER BY uid`, sid(id))
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (chat.Member, error) { return scanMember(r) })
	if err != nil {
		return nil, fmt.Errorf("pgstore: members of %d: %w", id, err)
	}
	return out, nil
}

// Member returns one membership.
func (s *Store) Member(ctx context.Context, id chat.SessionID, uid string) (chat.Member, error) {
	m, err := scanMember(s.pool.QueryRow(ctx, `SELECT session_id, uid, role, read_seq, joined_at FROM members
		WHERE session_id = $1 AND uid = $2`, sid(id), bs(uid)))
	if err != nil {
		return chat.Member{}, notFound("member "+uid, err)
	}
	return m, nil
}

// UserSessions lists the sessions a user is a member of, ascending.
func (s *Store) UserSessions(ctx context.Context, app, uid string) ([]chat.SessionID, error) {
	rows, _ := s.pool.Query(ctx, `SELECT session_id FROM members WHERE app = $1 AND uid = $2`, bs(app), bs(uid))
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (chat.SessionID, error) {
		var id int64
		err := r.Scan(&id)
		return chat.SessionID(id), err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: sessions of %s: %w", uid, err)
	}
	slices.Sort(out) // unsigned order; bigint's would put ids past 2^63 first
	return out, nil
}

const msgCols = `session_id, seq, app, sender, type, content, cid, created_at, edited_at, edits, mentions, mention_all`

// Messages returns up to limit messages with lo <= seq <= hi, ascending;
// see chat.Store.
func (s *Store) Messages(ctx context.Context, id chat.SessionID, lo, hi uint64, limit int, newest bool) ([]chat.Message, error) {
	if lo > hi || lo > math.MaxInt64 {
		return nil, nil
	}
	order := "ASC"
	if newest {
		order = "DESC"
	}
	rows, _ := s.pool.Query(ctx, `SELECT `+msgCols+` FROM messages WHERE session_id = $1 AND seq BETWEEN $2 AND $3
		ORDER BY seq `+order+` LIMIT $4`, sid(id), int64(lo), seqParam(hi), limitParam(limit))
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (chat.Message, error) {
		var m chat.Message
		var session int64
		var mentions []byte
		err := r.Scan(&session, &m.Seq, (*bstr)(&m.App), (*bstr)(&m.From), (*bstr)(&m.Type), (*[]byte)(&m.Content),
			(*bstr)(&m.CID), &m.CreatedAt, &m.EditedAt, &m.Edits, &mentions, &m.MentionAll)
		if err != nil {
			return m, err
		}
		m.Session = chat.SessionID(session)
		m.Mentions, err = decodeMentions(mentions)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: messages of %d: %w", id, err)
	}
	if newest {
		slices.Reverse(out)
	}
	return out, nil
}

// MaxSessionID is the largest session id stored, 0 when none. Ids past
// 2^63 are negative as bigint, and larger than every other.
func (s *Store) MaxSessionID(ctx context.Context) (chat.SessionID, error) {
	id, err := maxSessionID(ctx, s.pool)
	if err != nil {
		return 0, fmt.Errorf("pgstore: max session id: %w", err)
	}
	return id, nil
}

// maxSessionID is MaxSessionID on a pool or in a transaction.
func maxSessionID(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (chat.SessionID, error) {
	var id int64
	err := q.QueryRow(ctx, `SELECT coalesce((SELECT max(id) FROM sessions WHERE id < 0), (SELECT max(id) FROM sessions), 0)`).Scan(&id)
	return chat.SessionID(id), err
}

// Restrictions lists every stored ban and mute.
func (s *Store) Restrictions(ctx context.Context) ([]chat.Restriction, error) {
	rows, _ := s.pool.Query(ctx, `SELECT app, uid, kind, until, reason, created_at FROM restrictions`)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (chat.Restriction, error) {
		var x chat.Restriction
		err := r.Scan((*bstr)(&x.App), (*bstr)(&x.UID), &x.Kind, &x.Until, (*bstr)(&x.Reason), &x.CreatedAt)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: restrictions: %w", err)
	}
	return out, nil
}

// CountUsers counts app's users.
func (s *Store) CountUsers(ctx context.Context, app string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM users WHERE app = $1`, bs(app)).Scan(&n); err != nil {
		return 0, fmt.Errorf("pgstore: count users of %s: %w", app, err)
	}
	return n, nil
}

// CountGroups counts app's group sessions.
func (s *Store) CountGroups(ctx context.Context, app string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM sessions WHERE app = $1 AND kind = $2`, bs(app), int16(chat.KindGroup)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("pgstore: count groups of %s: %w", app, err)
	}
	return n, nil
}
