package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"

	bolt "go.etcd.io/bbolt"

	"chatd/chat"
)

// Apply makes b durable; see chat.Store for the order and the meaning of
// each part. An empty batch commits nothing.
//
// A batch of only Messages, Summaries, Reads, Records and DelRecords (the
// hot path) is appended to the WAL as one record, synced (one sequential
// fsync), then added to the active overlay; a checkpoint writes it into
// bbolt later. Any other batch first checkpoints, then commits in one
// bbolt write transaction. Record kinds and keys are checked before
// either writes anything.
// See doc.go. On error nothing of b is stored, except that after a failed
// WAL sync the record may still be on disk (Apply then refuses everything
// until a restart, which replays it).
//
// ctx is not consulted: a batch handed to Apply is always finished, so the
// core's journal can drain its last batch after its context ends.
func (s *Bolt) Apply(_ context.Context, b *chat.Batch) error {
	if b.Empty() {
		return nil
	}
	if s.dbFailed.Load() {
		return errDBFailed
	}
	if err := checkRecords(b); err != nil {
		return err // before anything is written
	}
	var err error
	if !hotOnly(b) {
		err = s.applyDirect(b)
	} else {
		err = s.applyHot(b)
	}
	if err != nil {
		return s.classify(err)
	}
	s.diskFull.Store(false)
	return nil
}

// applyHot appends a batch of only Messages, Summaries, Reads, Records
// and DelRecords to the WAL and the active overlay.
func (s *Bolt) applyHot(b *chat.Batch) error {
	if s.activeN.Load() > overlayHardFactor*s.maxMsgs || s.activeSize.Load() > 2*checkpointBytes {
		// Checkpoints are falling far behind (or failing): write to
		// bbolt before growing the overlay further. Not at the first
		// sign of lag: under saturation a checkpoint can take longer
		// than the overlay takes to reach maxMsgs again, and stalling
		// every send for it (seen: ~1 s at 50k msg/s) is worse than
		// holding a few more seconds of messages in memory.
		if err := s.checkpoint(); err != nil {
			return fmt.Errorf("storage: apply: %w", err)
		}
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if s.closed {
		return errClosed
	}
	if err := s.wal.append(b); err != nil {
		return err
	}
	if s.wal.wantsGrowth() {
		poke(s.growKick)
	}
	s.mu.Lock()
	s.active.add(b)
	n, size := s.active.n, s.active.size
	s.mu.Unlock()
	s.activeN.Store(int64(n))
	s.activeSize.Store(int64(size))
	if int64(n) >= s.maxMsgs || size >= checkpointBytes {
		poke(s.kick)
	}
	return nil
}

// overlayHardFactor × Options.CheckpointMessages is where Apply stops
// waiting for the checkpointer and checkpoints itself.
const overlayHardFactor = 8

// applyDirect checkpoints, then commits b in one bbolt write transaction,
// so one fsync. Holding ckptMu and applyMu throughout keeps it ordered
// with every hot batch: those before it are in bbolt first, those after
// it wait.
//
// It does no per-message allocation of its own: values are encoded into
// one arena reused across batches (bbolt keeps value slices until commit,
// while it copies keys, so keys share one scratch buffer).
func (s *Bolt) applyDirect(b *chat.Batch) error {
	s.lockCkpt()
	defer s.ckptMu.Unlock()
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if s.closed {
		return errClosed
	}
	if err := s.checkpointLocked(); err != nil {
		return fmt.Errorf("storage: apply: %w", err)
	}
	w := &s.w
	w.prepare(b)
	err := s.update(func(tx *bolt.Tx) error { return w.apply(tx, b) })
	w.release()
	if err != nil {
		return fmt.Errorf("storage: apply: %w", err)
	}
	return nil
}

// maxArenaKeep caps the arena kept between batches, so one huge batch
// does not pin its memory for the life of the process.
const maxArenaKeep = 16 << 20

// empty is the value of index-only keys.
var empty = []byte{}

// writer is Apply's scratch, reused across batches. Owned by Apply under
// Bolt.applyMu; nothing in it outlives one Apply.
type writer struct {
	arena  []byte     // every value Put in the current transaction
	key    []byte     // scratch for the key of one Put or Delete
	prefix []byte     // scratch for a scan prefix or second key
	hashes [][32]byte // DelUserTokens' hashes, collected before deleting

	// checkpoint is set while a checkpoint writes an overlay: messages'
	// a summary or read mark whose stored record does not decode is
	// skipped rather than failing, so one corrupt record
	// cannot stop every later checkpoint (reads of it fail anyway).
	checkpoint bool
	puts       int         // Puts since the checkpoint last yielded
	mayYield   func() bool // set by a checkpoint: whether it may yield now (Bolt.relaxed)

	// The app of the session last looked up by sessionApp.
	appOf chat.SessionID
	app   []byte

	bk buckets // of the current transaction
}

// buckets are one write transaction's bucket handles.
type buckets struct {
	apps, users, tokens, tokensByUser, sessions, pairs *bolt.Bucket
	members, userSessions, msgs                        *bolt.Bucket
}

// prepare sizes the arena for b.
func (w *writer) prepare(b *chat.Batch) {
	need := 0
	for i := range b.Messages {
		m := &b.Messages[i]
		need += maxMessageLen(m)
	}
	need += 128 * (len(b.Apps) + len(b.Users) + len(b.Tokens) + len(b.Sessions) + len(b.Members) +
		len(b.Summaries) + len(b.Reads) + len(b.Restrictions))
	for i := range b.Users {
		need += len(b.Users[i].Extra)
	}
	w.arena = slices.Grow(w.arena[:0], need)

	w.appOf, w.app = 0, w.app[:0]
}

// release drops what the finished transaction referenced.
func (w *writer) release() {
	if cap(w.arena) > maxArenaKeep {
		w.arena = nil
	}
	w.bk = buckets{}
}

// since returns the arena bytes appended after start, capped so that no
// later append can write into them.
func (w *writer) since(start int) []byte {
	return w.arena[start:len(w.arena):len(w.arena)]
}

func (w *writer) apply(tx *bolt.Tx, b *chat.Batch) error {
	bk := &w.bk
	bk.apps, bk.users, bk.tokens = tx.Bucket(bApps), tx.Bucket(bUsers), tx.Bucket(bTokens)
	bk.tokensByUser, bk.sessions, bk.pairs = tx.Bucket(bTokensByUser), tx.Bucket(bSessions), tx.Bucket(bPairs)
	bk.members, bk.userSessions = tx.Bucket(bMembers), tx.Bucket(bUserSessions)
	bk.msgs = tx.Bucket(bMsgs)
	// Keys that mostly grow at the end (or at the end of one session's
	// range) pack pages fuller; see doc.go for the measurement.
	bk.msgs.FillPercent = 0.9
	bk.sessions.FillPercent = 0.9
	bk.members.FillPercent = 0.9

	// The order chat.Store documents.
	if err := w.putApps(b); err != nil {
		return err
	}
	if err := w.putUsers(b); err != nil {
		return err
	}
	for i := range b.DelUsers {
		u := &b.DelUsers[i]
		w.key = appendUserKey(w.key[:0], u.App, u.UID)
		if err := w.bk.users.Delete(w.key); err != nil {
			return fmt.Errorf("delete user %q: %w", u.UID, err)
		}
	}
	if err := w.putTokens(b); err != nil {
		return err
	}
	if err := w.delTokens(b); err != nil {
		return err
	}
	if err := w.delUserTokens(b); err != nil {
		return err
	}
	if err := w.putSessions(b); err != nil {
		return err
	}
	if err := w.putMembers(b); err != nil {
		return err
	}
	if err := w.delMembers(b); err != nil {
		return err
	}
	if err := w.putMessages(b); err != nil {
		return err
	}
	if err := w.putSummaries(b); err != nil {
		return err
	}
	if err := w.putReads(b); err != nil {
		return err
	}
	if err := w.putRecords(tx, b); err != nil {
		return err
	}
	return w.putRestrictions(tx, b)
}

func (w *writer) putApps(b *chat.Batch) error {
	for i := range b.Apps {
		a := &b.Apps[i]
		start := len(w.arena)
		w.arena = appendApp(w.arena, a)
		w.key = append(w.key[:0], a.ID...)
		if err := w.bk.apps.Put(w.key, w.since(start)); err != nil {
			return fmt.Errorf("put app %q: %w", a.ID, err)
		}
	}
	return nil
}

func (w *writer) putUsers(b *chat.Batch) error {
	for i := range b.Users {
		u := &b.Users[i]
		start := len(w.arena)
		w.arena = appendUser(w.arena, u)
		w.key = appendUserKey(w.key[:0], u.App, u.UID)
		if err := w.bk.users.Put(w.key, w.since(start)); err != nil {
			return fmt.Errorf("put user %q: %w", u.UID, err)
		}
	}
	return nil
}

func (w *writer) putTokens(b *chat.Batch) error {
	for i := range b.Tokens {
		t := &b.Tokens[i]
		// A re-put token may belong to another user now: drop the old
		// index entry with the old record.
		if err := w.delToken(t.Hash[:]); err != nil {
			return err
		}
		start := len(w.arena)
		w.arena = appendToken(w.arena, t)
		if err := w.bk.tokens.Put(t.Hash[:], w.since(start)); err != nil {
			return fmt.Errorf("put token: %w", err)
		}
		w.key = append(appendUserKey(w.key[:0], t.App, t.UID), t.Hash[:]...)
		if err := w.bk.tokensByUser.Put(w.key, empty); err != nil {
			return fmt.Errorf("put token index: %w", err)
		}
	}
	return nil
}

func (w *writer) delTokens(b *chat.Batch) error {
	for i := range b.DelTokens {
		if err := w.delToken(b.DelTokens[i][:]); err != nil {
			return err
		}
	}
	return nil
}

// delToken deletes a token and its tokens_by_user entry, if it exists.
func (w *writer) delToken(hash []byte) error {
	v := w.bk.tokens.Get(hash)
	if v == nil {
		return nil
	}
	r := reader{b: v}
	r.version()
	app, uid := r.raw(), r.raw()
	if r.bad {
		return corrupt("token")
	}
	w.key = append(appendStr(appendStr(w.key[:0], app), uid), hash...)
	if err := w.bk.tokensByUser.Delete(w.key); err != nil {
		return fmt.Errorf("delete token index: %w", err)
	}
	if err := w.bk.tokens.Delete(hash); err != nil {
		return fmt.Errorf("delete token: %w", err)
	}
	return nil
}

func (w *writer) delUserTokens(b *chat.Batch) error {
	for i := range b.DelUserTokens {
		u := &b.DelUserTokens[i]
		w.prefix = appendUserKey(w.prefix[:0], u.App, u.UID)
		// Collect first: deleting under a bbolt cursor skips keys.
		w.hashes = w.hashes[:0]
		c := w.bk.tokensByUser.Cursor()
		for k, _ := c.Seek(w.prefix); k != nil && bytes.HasPrefix(k, w.prefix); k, _ = c.Next() {
			if len(k) != len(w.prefix)+32 {
				return corrupt("tokens_by_user key")
			}
			w.hashes = append(w.hashes, [32]byte(k[len(w.prefix):]))
		}
		for j := range w.hashes {
			h := w.hashes[j][:]
			if err := w.bk.tokens.Delete(h); err != nil {
				return fmt.Errorf("delete token: %w", err)
			}
			w.key = append(append(w.key[:0], w.prefix...), h...)
			if err := w.bk.tokensByUser.Delete(w.key); err != nil {
				return fmt.Errorf("delete token index: %w", err)
			}
		}
	}
	return nil
}

func (w *writer) putSessions(b *chat.Batch) error {
	for i := range b.Sessions {
		sess := &b.Sessions[i]
		w.key = appendU64(w.key[:0], uint64(sess.ID))
		w.prefix = w.prefix[:0]
		if sess.Kind == chat.KindPrivate {
			w.prefix = appendPairKey(w.prefix, sess.App, sess.Pair)
		}
		if err := w.unindexOldPair(sess.ID, w.prefix); err != nil {
			return err
		}
		rec := *sess
		if prev := w.bk.sessions.Get(w.key); prev != nil {
			// Keep the newer summary: a put made from an older read (an owner
			// change) must not roll LastSeq back.
			var stored chat.Session
			if !decodeSession(prev, &stored) {
				return corrupt("session")
			}
			if stored.LastSeq > rec.LastSeq {
				rec.LastSeq, rec.LastAt, rec.LastFrom = stored.LastSeq, stored.LastAt, stored.LastFrom
				rec.LastType, rec.LastPreview = stored.LastType, stored.LastPreview
			}
		}
		start := len(w.arena)
		w.arena = appendSession(w.arena, &rec)
		if err := w.bk.sessions.Put(w.key, w.since(start)); err != nil {
			return fmt.Errorf("put session %d: %w", sess.ID, err)
		}
		if sess.Kind == chat.KindPrivate {
			start := len(w.arena)
			w.arena = appendU64(w.arena, uint64(sess.ID))
			if err := w.bk.pairs.Put(w.prefix, w.since(start)); err != nil {
				return fmt.Errorf("put pair of session %d: %w", sess.ID, err)
			}
		}
		if w.appOf == sess.ID {
			w.appOf = 0 // its app may have changed
		}
	}
	return nil
}

// unindexOldPair removes the pair index entry of the stored session id
// (w.key) when it is private and its pair key differs from newPair (empty
// when the new record is not private).
func (w *writer) unindexOldPair(id chat.SessionID, newPair []byte) error {
	old := w.bk.sessions.Get(w.key)
	if old == nil {
		return nil
	}
	var h sessionHead
	if !parseSessionHead(old, &h) {
		return corrupt("session")
	}
	if h.kind != chat.KindPrivate {
		return nil
	}
	a, b := h.pair[0], h.pair[1]
	if bytes.Compare(b, a) < 0 {
		a, b = b, a
	}
	var kb [128]byte
	oldPair := appendStr(appendStr(appendStr(kb[:0], h.app), a), b)
	if bytes.Equal(oldPair, newPair) {
		return nil
	}
	if v := w.bk.pairs.Get(oldPair); len(v) == 8 && binary.BigEndian.Uint64(v) == uint64(id) {
		if err := w.bk.pairs.Delete(oldPair); err != nil {
			return fmt.Errorf("delete old pair of session %d: %w", id, err)
		}
	}
	return nil
}

// sessionApp returns the app of a stored session (aliasing w.app), caching
// the last one: a batch's members mostly share a session.
func (w *writer) sessionApp(id chat.SessionID) ([]byte, bool) {
	if id == w.appOf && id != 0 {
		return w.app, true
	}
	var kb [8]byte
	v := w.bk.sessions.Get(appendU64(kb[:0], uint64(id)))
	if v == nil {
		return nil, false
	}
	r := reader{b: v}
	r.version()
	app := r.raw()
	if r.bad {
		return nil, false
	}
	w.app = append(w.app[:0], app...)
	w.appOf = id
	return w.app, true
}

func (w *writer) putMembers(b *chat.Batch) error {
	for i := range b.Members {
		m := &b.Members[i]
		app, ok := w.sessionApp(m.Session)
		if !ok {
			return fmt.Errorf("member %q of session %d: %w", m.UID, m.Session, chat.ErrNotFound)
		}
		start := len(w.arena)
		w.arena = appendMember(w.arena, m)
		w.key = appendMemberKey(w.key[:0], m.Session, m.UID)
		if err := w.bk.members.Put(w.key, w.since(start)); err != nil {
			return fmt.Errorf("put member %q of session %d: %w", m.UID, m.Session, err)
		}
		w.key = appendU64(appendStr(appendStr(w.key[:0], app), m.UID), uint64(m.Session))
		if err := w.bk.userSessions.Put(w.key, empty); err != nil {
			return fmt.Errorf("put user session: %w", err)
		}
	}
	return nil
}

func (w *writer) delMembers(b *chat.Batch) error {
	for i := range b.DelMembers {
		d := &b.DelMembers[i]
		w.key = appendMemberKey(w.key[:0], d.Session, d.UID)
		if w.bk.members.Get(w.key) == nil {
			continue
		}
		if err := w.bk.members.Delete(w.key); err != nil {
			return fmt.Errorf("delete member %q of session %d: %w", d.UID, d.Session, err)
		}
		if app, ok := w.sessionApp(d.Session); ok {
			w.key = appendU64(appendStr(appendStr(w.key[:0], app), d.UID), uint64(d.Session))
			if err := w.bk.userSessions.Delete(w.key); err != nil {
				return fmt.Errorf("delete user session: %w", err)
			}
		}
	}
	return nil
}

// putMessages puts messages in batch order, so of two puts of one
// (Session, Seq) the later wins. (Sorting them by key first made no
// measurable difference to commit time; bbolt sorts within each node.)
func (w *writer) putMessages(b *chat.Batch) error {
	for i := range b.Messages {
		if err := w.putMessage(&b.Messages[i]); err != nil {
			return err
		}
	}
	return nil
}

// yield gives the processor away every ckptYield Puts of a checkpoint
// while mayYield says so (see Bolt.flush); hot paths never yield.
func (w *writer) yield() {
	if !w.checkpoint {
		return
	}
	if w.puts++; w.puts >= ckptYield {
		w.puts = 0
		if w.mayYield() {
			runtime.Gosched()
		}
	}
}

func (w *writer) putMessage(m *chat.Message) error {
	w.yield()
	start := len(w.arena)
	w.arena = appendMessage(w.arena, m)
	w.key = appendMsgKey(w.key[:0], m.Session, m.Seq)
	if err := w.bk.msgs.Put(w.key, w.since(start)); err != nil {
		return fmt.Errorf("put message %d/%d: %w", m.Session, m.Seq, err)
	}
	return nil
}

// putSummaries applies each run of summaries for one session at once: of
// those with Seq above the stored LastSeq, the first with the highest Seq
// is what applying them one by one leaves. The stored record is rewritten
// by splicing its Last* tail, without decoding it.
func (w *writer) putSummaries(b *chat.Batch) error {
	ss := b.Summaries
	for i := 0; i < len(ss); {
		id := ss[i].Session
		j := i + 1
		for j < len(ss) && ss[j].Session == id {
			j++
		}
		run := ss[i:j]
		i = j
		w.yield()

		w.key = appendU64(w.key[:0], uint64(id))
		v := w.bk.sessions.Get(w.key)
		if v == nil {
			continue // a summary of a missing session is ignored
		}
		tail, last, ok := sessionTail(v)
		if !ok {
			if w.checkpoint {
				continue
			}
			return corrupt("session")
		}
		best := -1
		for k := range run {
			if run[k].Seq > last {
				best, last = k, run[k].Seq
			}
		}
		if best < 0 {
			continue
		}
		sm := &run[best]
		start := len(w.arena)
		w.arena = append(w.arena, v[:tail]...)
		w.arena = binary.AppendUvarint(w.arena, sm.Seq)
		w.arena = binary.AppendVarint(w.arena, sm.At)
		w.arena = appendStr(w.arena, sm.From)
		w.arena = appendStr(w.arena, sm.Type)
		w.arena = appendStr(w.arena, sm.Preview)
		if err := w.bk.sessions.Put(w.key, w.since(start)); err != nil {
			return fmt.Errorf("put summary of session %d: %w", id, err)
		}
	}
	return nil
}

// sessionTail returns the offset of LastSeq in a session value, and LastSeq.
func sessionTail(v []byte) (int, uint64, bool) {
	r := reader{b: v}
	r.version()
	r.raw()  // App
	r.byte() // Kind
	for range 5 {
		r.raw() // Name, Avatar, Owner, Pair[0], Pair[1]
	}
	r.varint() // CreatedAt
	off := len(v) - len(r.b)
	last := r.uvarint()
	return off, last, !r.bad
}

// putReads raises members' ReadSeq, a run of marks for one member at once,
// by splicing the stored record.
func (w *writer) putReads(b *chat.Batch) error {
	rs := b.Reads
	for i := 0; i < len(rs); {
		id, uid := rs[i].Session, rs[i].UID
		j := i + 1
		for j < len(rs) && rs[j].Session == id && rs[j].UID == uid {
			j++
		}
		run := rs[i:j]
		i = j
		w.yield()

		w.key = appendMemberKey(w.key[:0], id, uid)
		v := w.bk.members.Get(w.key)
		if v == nil {
			continue // a read mark of a missing member is ignored
		}
		r := reader{b: v}
		r.version()
		role := r.byte()
		stored := r.uvarint()
		joined := r.varint()
		if !r.end() {
			if w.checkpoint {
				continue
			}
			return corrupt("member")
		}
		seq := stored
		for k := range run {
			seq = max(seq, run[k].Seq)
		}
		if seq == stored {
			continue
		}
		start := len(w.arena)
		w.arena = append(w.arena, recordV1, role)
		w.arena = binary.AppendUvarint(w.arena, seq)
		w.arena = binary.AppendVarint(w.arena, joined)
		if err := w.bk.members.Put(w.key, w.since(start)); err != nil {
			return fmt.Errorf("put read mark of %q in session %d: %w", uid, id, err)
		}
	}
	return nil
}
