package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"chatd/chat"
)

var _ chat.Store = (*Bolt)(nil)

// ErrLocked is returned (wrapped) by Open when another process holds the
// data file.
var ErrLocked = errors.New("storage: data file is in use by another process")

// ErrNewerSchema is returned (wrapped) by Open when the data file was
// written by a newer chatd with a schema this build does not know.
var ErrNewerSchema = errors.New("storage: data file has a newer schema than this chatd supports")

// SchemaVersion is the layout version this build writes into meta/schema.
// See doc.go for the layout.
const SchemaVersion = 2

// Bucket names.
var (
	bMeta         = []byte("meta")
	bApps         = []byte("apps")
	bUsers        = []byte("users")
	bTokens       = []byte("tokens")
	bTokensByUser = []byte("tokens_by_user")
	bSessions     = []byte("sessions")
	bPairs        = []byte("pairs")
	bMembers      = []byte("members")
	bUserSessions = []byte("user_sessions")
	bMsgs         = []byte("msgs")
	bRecords      = []byte("records") // a nested bucket per record kind

	allBuckets = [][]byte{bMeta, bApps, bUsers, bTokens, bTokensByUser, bSessions, bPairs,
		bMembers, bUserSessions, bMsgs, bRecords, bRestrictions}

	// bCIDsV1 was schema 1's store-wide index of client message ids,
	// dropped by the upgrade to schema 2 (the journal finds retried sends
	// among a session's recent messages instead).
	bCIDsV1 = []byte("cids")

	keySchema = []byte("schema")
)

// Options tunes Open. The zero value is right for production.
type Options struct {
	// LockTimeout is how long Open waits for another process to release
	// the data file before failing with ErrLocked. Zero means 500ms.
	LockTimeout time.Duration
	// NoSync skips fsync on commit. UNSAFE: a crash or power loss can
	// lose acknowledged writes or corrupt the file. Only for throwaway
	// benchmarks.
	NoSync bool
	// CheckpointInterval is how often the checkpointer writes the WAL's
	// changes into bbolt (see doc.go). Zero means 1s; negative means never
	// on a timer, only when the overlay is full, before a batch that
	// needs bbolt, and on Backup and Close.
	CheckpointInterval time.Duration
	// CheckpointMessages starts a checkpoint early once the overlay holds
	// this many messages. Zero means 50,000 (a second at 50k msg/s).
	CheckpointMessages int
	// LogError receives the failures nobody waits for: a background
	// checkpoint that failed (see checkpointer), and with a nil err the
	// news that checkpoints succeed again. Nil means the standard
	// library's log package.
	LogError func(what string, err error)
}

// checkpointBytes starts a checkpoint early once the overlay holds about
// this many bytes.
const checkpointBytes = 64 << 20

// Bolt is a chat.Store on one bbolt file with a write-ahead log in front
// of it (see doc.go). It is safe for concurrent use.
//
// Lock order: ckptMu, then applyMu, then mu, then an overlay's recKind.mu
// (a leaf).
type Bolt struct {
	db   *bolt.DB
	path string

	// ckptMu serialises checkpoints and batches applied to bbolt
	// directly; guards cw.
	ckptMu  sync.Mutex
	cw      writer       // the checkpoint's scratch
	ckptTxs atomic.Int64 // bbolt transactions checkpoints have committed
	// pacing is set (under ckptMu) while the background checkpointer
	// runs a checkpoint: flush may rest between transactions.
	pacing bool
	// ckptWaiters counts callers blocked on ckptMu that must not wait
	// out a paced checkpoint (lockCkpt).
	ckptWaiters atomic.Int32

	applyMu sync.Mutex // serialises Apply; guards w, wal and closed
	w       writer     // a direct Apply's reusable scratch
	wal     *wal
	closed  bool

	// mu guards active and frozen (the pointers and what they hold).
	// Apply takes it to add to active; readers hold RLock across their
	// bbolt read transaction and their overlay lookups, so they see a
	// frozen overlay either in memory or in bbolt, never neither.
	mu     sync.RWMutex
	active *overlay // receives Apply's hot changes
	frozen *overlay // being written to bbolt by a checkpoint; nil between

	// activeN mirrors active.n and activeSize active.size, so Apply can
	// tell a full overlay without mu.
	activeN, activeSize atomic.Int64
	maxMsgs             int64

	kick      chan struct{} // wakes the checkpointer early; capacity 1
	growKick  chan struct{} // asks the checkpointer to grow the WAL; capacity 1
	stop      chan struct{} // closed by Close
	done      chan struct{} // closed when the checkpointer has returned
	closeOnce sync.Once
	closeErr  error

	// diskFull is set when a write failed for lack of space (classify)
	// and cleared when one succeeds; see DiskFull.
	diskFull atomic.Bool
	// dbFailed is set for good when a bbolt commit failed other than
	// for lack of space (update): every later write is refused.
	dbFailed atomic.Bool
	// failCommits, set by tests only, makes every bbolt write
	// transaction fail with that error as if its commit had.
	failCommits atomic.Pointer[error]
}

// Open opens or creates the data file at path, creating its folder (0700)
// if missing; a new file gets mode 0600. A file held by another process
// fails with an error wrapping ErrLocked after opt.LockTimeout; a file
// with a newer schema fails with an error wrapping ErrNewerSchema and is
// left untouched.
func Open(path string, opt Options) (*Bolt, error) {
	if opt.LockTimeout <= 0 {
		opt.LockTimeout = 500 * time.Millisecond
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("storage: create data folder: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: opt.LockTimeout,
		NoSync:  opt.NoSync,
		// As etcd does: a hashmap freelist stays fast when the file is
		// fragmented, and not writing the freelist on every commit saves
		// pages per commit; Open rebuilds it by scanning the file.
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s (waited %v)", ErrLocked, path, opt.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	if err := initSchema(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	s := &Bolt{db: db, path: path, active: newOverlay(nil), maxMsgs: int64(opt.CheckpointMessages),
		kick: make(chan struct{}, 1), growKick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if s.maxMsgs <= 0 {
		s.maxMsgs = 50_000
	}
	if err := s.recover(opt.NoSync); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: open %s: recover write-ahead log: %w", path, err)
	}
	interval := opt.CheckpointInterval
	if interval == 0 {
		interval = time.Second
	}
	go s.checkpointer(interval, opt.LogError)
	return s, nil
}

// initSchema checks the file's schema, read-only first so that a file this
// build must refuse is never written to, then creates what is missing.
func initSchema(db *bolt.DB) error {
	fresh, upgrade := false, false
	err := db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		if meta == nil {
			if err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				return fmt.Errorf("not a chatd data file (bucket %q but no meta)", name)
			}); err != nil {
				return err
			}
			fresh = true
			return nil
		}
		v := meta.Get(keySchema)
		if len(v) != 4 {
			return fmt.Errorf("meta/schema: %w", ErrCorrupt)
		}
		ver := binary.BigEndian.Uint32(v)
		switch {
		case ver > SchemaVersion:
			return fmt.Errorf("%w: the file has schema %d, this build knows up to %d; run a newer chatd",
				ErrNewerSchema, ver, SchemaVersion)
		case ver < 1:
			return fmt.Errorf("meta/schema %d: %w", ver, ErrCorrupt)
		}
		upgrade = ver < SchemaVersion
		return nil
	})
	if err != nil {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		// Schema 1 → 2: drop the cid index.
		if upgrade && tx.Bucket(bCIDsV1) != nil {
			if err := tx.DeleteBucket(bCIDsV1); err != nil {
				return err
			}
		}
		if fresh || upgrade {
			return tx.Bucket(bMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, SchemaVersion))
		}
		return nil
	})
}

// Path is the data file's path as given to Open.
func (s *Bolt) Path() string { return s.path }

// Close stops the checkpointer, writes everything in the WAL into bbolt,
// deletes the WAL and closes the file. Apply fails after Close. Calling it
// again returns the first call's result.
func (s *Bolt) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Bolt) close() error {
	close(s.stop)
	<-s.done
	s.lockCkpt()
	defer s.ckptMu.Unlock()
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.closed = true
	err := s.checkpointLocked()
	if err == nil {
		// Everything is in bbolt: the log is no longer needed.
		err = s.wal.close()
	} else {
		s.wal.f.Close() // keep it: Open replays it
	}
	if cerr := s.db.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("storage: close: %w", err)
	}
	return nil
}

// Backup writes a consistent copy of the whole file to w while the store
// stays in use (a read transaction's snapshot) and returns the bytes
// written. It checkpoints first, so the copy holds every Apply that
// returned before Backup was called (the WAL's records included). The
// copy opens with Open.
func (s *Bolt) Backup(w io.Writer) (int64, error) { return s.BackupSized(w, nil) }

// BackupSized is Backup; sized (if not nil) is called with the copy's
// length once it is known, before anything is written to w (an HTTP
// answer sends it as Content-Length, so that a copy cut short is seen).
// A failure before sized is called (the checkpoint: a full disk) writes
// nothing.
func (s *Bolt) BackupSized(w io.Writer, sized func(int64)) (int64, error) {
	if err := s.checkpoint(); err != nil {
		return 0, fmt.Errorf("storage: backup: %w", s.classify(err))
	}
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		if sized != nil {
			sized(tx.Size())
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("storage: backup: %w", err)
	}
	return n, nil
}

// Verify checks that the file at path is a whole chatd data file this
// build can open: bbolt's own consistency check (every page reachable
// once, none past the end) and the schema. It opens the file read-only
// and writes nothing (a backup is checked before it is kept or
// restored).
func Verify(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("storage: verify: %w", err)
	}
	if fi.Size() < 4<<10 {
		return fmt.Errorf("storage: verify %s: %d bytes is too short for a data file", path, fi.Size())
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("storage: verify %s: %w", path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if int64(tx.Size()) > fi.Size() {
			return fmt.Errorf("storage: verify %s: the file is cut short (%d of %d bytes)", path, fi.Size(), tx.Size())
		}
		meta := tx.Bucket(bMeta)
		if meta == nil {
			return fmt.Errorf("storage: verify %s: not a chatd data file (no meta bucket)", path)
		}
		v := meta.Get(keySchema)
		if len(v) != 4 {
			return fmt.Errorf("storage: verify %s: meta/schema: %w", path, ErrCorrupt)
		}
		if ver := binary.BigEndian.Uint32(v); ver > SchemaVersion {
			return fmt.Errorf("storage: verify %s: %w: schema %d, this build knows up to %d", path, ErrNewerSchema, ver, SchemaVersion)
		}
		var first error
		for err := range tx.Check() { // drained: the check runs until it closes
			if first == nil {
				first = fmt.Errorf("storage: verify %s: %w (%v)", path, ErrCorrupt, err)
			}
		}
		return first
	})
}

func notFound(what string) error { return fmt.Errorf("storage: %s: %w", what, chat.ErrNotFound) }

func corrupt(what string) error { return fmt.Errorf("storage: %s: %w", what, ErrCorrupt) }

func named(kind, name string) string {
	if name == "" {
		return kind
	}
	return kind + " " + name
}

// get runs fn on the value of key in bucket inside a read transaction; fn
// must copy what it keeps. A missing key returns an error wrapping
// chat.ErrNotFound naming kind and name (joined only on failure).
func (s *Bolt) get(bucket, key []byte, kind, name string, fn func(v []byte) bool) error {
	return s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucket).Get(key)
		if v == nil {
			return notFound(named(kind, name))
		}
		if !fn(v) {
			return corrupt(named(kind, name))
		}
		return nil
	})
}

// App returns an app.
func (s *Bolt) App(_ context.Context, id string) (chat.App, error) {
	var a chat.App
	err := s.get(bApps, []byte(id), "app", id, func(v []byte) bool { return decodeApp(v, &a) })
	return a, err
}

// Apps returns every app, by ID.
func (s *Bolt) Apps(_ context.Context) ([]chat.App, error) {
	var out []chat.App
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bApps).ForEach(func(k, v []byte) error {
			var a chat.App
			if !decodeApp(v, &a) {
				return corrupt("app " + string(k))
			}
			out = append(out, a)
			return nil
		})
	})
	return out, err
}

// User returns a user.
func (s *Bolt) User(_ context.Context, app, uid string) (chat.User, error) {
	var u chat.User
	var kb [64]byte
	err := s.get(bUsers, appendUserKey(kb[:0], app, uid), "user", uid, func(v []byte) bool { return decodeUser(v, &u) })
	return u, err
}

// Users lists users of app in key order (the uid's length, then its bytes),
// after the uid `after`; see chat.Store.
func (s *Bolt) Users(_ context.Context, app, after string, limit int) ([]chat.User, error) {
	var out []chat.User
	prefix := appendStr(nil, app)
	start := prefix
	if after != "" {
		start = appendUserKey(nil, app, after)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bUsers).Cursor()
		for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if after != "" && bytes.Equal(k, start) {
				continue
			}
			if limit > 0 && len(out) == limit {
				break
			}
			var u chat.User
			if !decodeUser(v, &u) {
				return corrupt("user " + string(k))
			}
			out = append(out, u)
		}
		return nil
	})
	return out, err
}

// Token returns a token by hash.
func (s *Bolt) Token(_ context.Context, hash [32]byte) (chat.Token, error) {
	t := chat.Token{Hash: hash}
	err := s.get(bTokens, hash[:], "token", "", func(v []byte) bool { return decodeToken(v, &t) })
	return t, err
}

// Session returns a session, with the newest summary of the overlays.
func (s *Bolt) Session(_ context.Context, id chat.SessionID) (chat.Session, error) {
	sess := chat.Session{ID: id}
	var kb [8]byte
	s.mu.RLock()
	defer s.mu.RUnlock()
	err := s.get(bSessions, appendU64(kb[:0], uint64(id)), "session", "", func(v []byte) bool { return decodeSession(v, &sess) })
	if err != nil {
		return sess, err
	}
	for _, o := range [2]*overlay{s.frozen, s.active} {
		if o == nil {
			continue
		}
		if sm, ok := o.sums[id]; ok && sm.Seq > sess.LastSeq {
			sess.LastSeq, sess.LastAt, sess.LastFrom, sess.LastType, sess.LastPreview = sm.Seq, sm.At, sm.From, sm.Type, sm.Preview
		}
	}
	return sess, nil
}

// readSeqLocked raises m.ReadSeq to the overlays' read marks. The caller
// holds s.mu.RLock.
func (s *Bolt) readSeqLocked(m *chat.Member) {
	if len(s.active.reads) == 0 && (s.frozen == nil || len(s.frozen.reads) == 0) {
		return
	}
	k := readKey{session: m.Session, uid: m.UID}
	for _, o := range [2]*overlay{s.frozen, s.active} {
		if o == nil {
			continue
		}
		if seq, ok := o.reads[k]; ok && seq > m.ReadSeq {
			m.ReadSeq = seq
		}
	}
}

// PrivateSession finds the private session of a pair, in either order.
func (s *Bolt) PrivateSession(_ context.Context, app, a, b string) (chat.SessionID, error) {
	var id chat.SessionID
	var kb [96]byte
	err := s.get(bPairs, appendPairKey(kb[:0], app, [2]string{a, b}), "private session", "", func(v []byte) bool {
		if len(v) != 8 {
			return false
		}
		id = chat.SessionID(binary.BigEndian.Uint64(v))
		return true
	})
	return id, err
}

// Members returns a session's members, by UID.
func (s *Bolt) Members(_ context.Context, id chat.SessionID) ([]chat.Member, error) {
	var out []chat.Member
	prefix := appendU64(nil, uint64(id))
	s.mu.RLock()
	defer s.mu.RUnlock()
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bMembers).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			m := chat.Member{Session: id, UID: string(k[8:])}
			if !decodeMember(v, &m) {
				return corrupt("member " + m.UID)
			}
			s.readSeqLocked(&m)
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

// Member returns one membership.
func (s *Bolt) Member(_ context.Context, id chat.SessionID, uid string) (chat.Member, error) {
	m := chat.Member{Session: id, UID: uid}
	var kb [64]byte
	s.mu.RLock()
	defer s.mu.RUnlock()
	err := s.get(bMembers, appendMemberKey(kb[:0], id, uid), "member", uid, func(v []byte) bool { return decodeMember(v, &m) })
	if err == nil {
		s.readSeqLocked(&m)
	}
	return m, err
}

// UserSessions lists the sessions a user is a member of, ascending.
func (s *Bolt) UserSessions(_ context.Context, app, uid string) ([]chat.SessionID, error) {
	var out []chat.SessionID
	var kb [64]byte
	prefix := appendUserKey(kb[:0], app, uid)
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bUserSessions).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if len(k) != len(prefix)+8 {
				return corrupt("user_sessions key")
			}
			out = append(out, chat.SessionID(binary.BigEndian.Uint64(k[len(prefix):])))
		}
		return nil
	})
	return out, err
}

// Messages returns up to limit messages with lo <= seq <= hi, ascending; see
// chat.Store. It merges bbolt's page with the overlays' (a message in an
// overlay replaces bbolt's of the same Seq). Each source yields at most
// limit messages from the right end, so the merge's right end is exact.
func (s *Bolt) Messages(_ context.Context, id chat.SessionID, lo, hi uint64, limit int, newest bool) ([]chat.Message, error) {
	if lo > hi {
		return nil, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out, err := s.boltMessages(id, lo, hi, limit, newest)
	if err != nil {
		return nil, err
	}
	for _, o := range [2]*overlay{s.frozen, s.active} {
		if o == nil {
			continue
		}
		if over := o.rangeOf(id, lo, hi, limit, newest); len(over) > 0 {
			out = mergeMsgs(out, copyContents(over))
		}
	}
	if limit > 0 && len(out) > limit {
		if newest {
			out = out[len(out)-limit:]
		} else {
			out = out[:limit]
		}
	}
	return out, nil
}

// copyContents copies overlay messages out for a caller: one slice and one
// buffer for every Content.
func copyContents(ms []chat.Message) []chat.Message {
	out := slices.Clone(ms)
	n := 0
	for i := range out {
		n += len(out[i].Content)
	}
	if n == 0 {
		return out
	}
	buf := make([]byte, 0, n)
	for i := range out {
		if c := out[i].Content; len(c) > 0 {
			start := len(buf)
			buf = append(buf, c...)
			out[i].Content = buf[start:len(buf):len(buf)]
		}
	}
	return out
}

// boltMessages is Messages on bbolt alone. A page is copied out with a
// handful of allocations whatever its length (see decodePage).
func (s *Bolt) boltMessages(id chat.SessionID, lo, hi uint64, limit int, newest bool) ([]chat.Message, error) {
	want := hi - lo + 1 // 0 when the range is all of uint64
	if limit > 0 && (want == 0 || uint64(limit) < want) {
		want = uint64(limit)
	}
	capHint := 64
	if want != 0 && want < uint64(capHint) {
		capHint = int(want)
	}
	var out []chat.Message
	err := s.db.View(func(tx *bolt.Tx) error {
		views := make([]msgView, 0, capHint)
		keys := make([]msgKeyVal, 0, capHint)
		c := tx.Bucket(bMsgs).Cursor()
		var kb [16]byte
		var k, v []byte
		if newest {
			seek := appendMsgKey(kb[:0], id, hi)
			k, v = c.Seek(seek)
			if k == nil {
				k, v = c.Last()
			} else if !bytes.Equal(k, seek) {
				k, v = c.Prev()
			}
		} else {
			k, v = c.Seek(appendMsgKey(kb[:0], id, lo))
		}
		for ; k != nil; k, v = step(c, newest) {
			sid, seq, ok := parseMsgKey(k)
			if !ok {
				return corrupt("msgs key")
			}
			if sid != id || seq < lo || seq > hi {
				break
			}
			views = append(views, msgView{})
			if !parseMessage(v, &views[len(views)-1]) {
				return corrupt("message")
			}
			keys = append(keys, msgKeyVal{session: sid, seq: seq})
			if limit > 0 && len(views) == limit {
				break
			}
		}
		if newest {
			for i, j := 0, len(views)-1; i < j; i, j = i+1, j-1 {
				views[i], views[j] = views[j], views[i]
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
		out = decodePage(views, keys)
		return nil
	})
	return out, err
}

func step(c *bolt.Cursor, back bool) ([]byte, []byte) {
	if back {
		return c.Prev()
	}
	return c.Next()
}

// MaxSessionID is the largest session id stored, 0 when none.
func (s *Bolt) MaxSessionID(_ context.Context) (chat.SessionID, error) {
	var id chat.SessionID
	err := s.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bSessions).Cursor().Last()
		if k == nil {
			return nil
		}
		if len(k) != 8 {
			return corrupt("sessions key")
		}
		id = chat.SessionID(binary.BigEndian.Uint64(k))
		return nil
	})
	return id, err
}
