// Package memstore is an in-memory chat.Store for the core's tests. It keeps
// nothing across a restart. It passes chat/storetest like the bbolt store,
// so the core behaves the same on either.
package memstore

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"

	"chatd/chat"
)

var _ chat.Store = (*Store)(nil)

// pairKey is the private-pair index key; a <= b.
type pairKey struct{ app, a, b string }

// Store is an in-memory chat.Store. Every value is copied in on Apply and
// out on reads, so callers never share memory with the store.
type Store struct {
	mu sync.RWMutex // guards every field below; Apply holds it for writing for the whole batch

	apps         map[string]chat.App
	users        map[chat.UserKey]chat.User
	tokens       map[[32]byte]chat.Token
	userTokens   map[chat.UserKey]map[[32]byte]struct{}
	sessions     map[chat.SessionID]chat.Session
	pairs        map[pairKey]chat.SessionID
	members      map[chat.SessionID]map[string]chat.Member
	userSessions map[chat.UserKey]map[chat.SessionID]struct{}
	msgs         map[chat.SessionID][]chat.Message // ascending by Seq
	maxSession   chat.SessionID
	records      map[string]map[string][]byte // kind → key → value
	restrictions map[chat.RestrictionKey]chat.Restriction
}

// New returns an empty store.
func New() *Store {
	return &Store{
		apps:         make(map[string]chat.App),
		users:        make(map[chat.UserKey]chat.User),
		tokens:       make(map[[32]byte]chat.Token),
		userTokens:   make(map[chat.UserKey]map[[32]byte]struct{}),
		sessions:     make(map[chat.SessionID]chat.Session),
		pairs:        make(map[pairKey]chat.SessionID),
		members:      make(map[chat.SessionID]map[string]chat.Member),
		userSessions: make(map[chat.UserKey]map[chat.SessionID]struct{}),
		msgs:         make(map[chat.SessionID][]chat.Message),
		records:      make(map[string]map[string][]byte),
		restrictions: make(map[chat.RestrictionKey]chat.Restriction),
	}
}

func pairOf(app string, p [2]string) pairKey {
	if p[1] < p[0] {
		p[0], p[1] = p[1], p[0]
	}
	return pairKey{app: app, a: p[0], b: p[1]}
}

// Apply commits b in the order chat.Store documents. It checks the batch
// before changing anything, so a failed Apply changes nothing. ctx is not
// consulted: a batch handed to Apply is always finished.
func (s *Store) Apply(_ context.Context, b *chat.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	// The only way a batch can fail: a member of an unknown session.
	for _, m := range b.Members {
		if _, ok := s.sessions[m.Session]; ok {
			continue
		}
		if !slices.ContainsFunc(b.Sessions, func(x chat.Session) bool { return x.ID == m.Session }) {
			return fmt.Errorf("memstore: member %q of session %d: %w", m.UID, m.Session, chat.ErrNotFound)
		}
	}
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

	for _, a := range b.Apps {
		s.apps[a.ID] = a
	}
	for _, u := range b.Users {
		u.Extra = clone(u.Extra)
		s.users[chat.UserKey{App: u.App, UID: u.UID}] = u
	}
	for _, t := range b.Tokens {
		s.deleteToken(t.Hash)
		s.tokens[t.Hash] = t
		k := chat.UserKey{App: t.App, UID: t.UID}
		set := s.userTokens[k]
		if set == nil {
			set = make(map[[32]byte]struct{})
			s.userTokens[k] = set
		}
		set[t.Hash] = struct{}{}
	}
	for _, h := range b.DelTokens {
		s.deleteToken(h)
	}
	for _, k := range b.DelUsers {
		delete(s.users, k)
	}
	for _, k := range b.DelUserTokens {
		for h := range s.userTokens[k] {
			delete(s.tokens, h)
		}
		delete(s.userTokens, k)
	}
	for _, sess := range b.Sessions {
		if old, ok := s.sessions[sess.ID]; ok && old.Kind == chat.KindPrivate {
			if pk := pairOf(old.App, old.Pair); s.pairs[pk] == old.ID {
				delete(s.pairs, pk)
			}
		}
		if old, ok := s.sessions[sess.ID]; ok && old.LastSeq > sess.LastSeq {
			sess.LastSeq, sess.LastAt, sess.LastFrom = old.LastSeq, old.LastAt, old.LastFrom
			sess.LastType, sess.LastPreview = old.LastType, old.LastPreview
		}
		s.sessions[sess.ID] = sess
		if sess.Kind == chat.KindPrivate {
			s.pairs[pairOf(sess.App, sess.Pair)] = sess.ID
		}
		s.maxSession = max(s.maxSession, sess.ID)
	}
	for _, m := range b.Members {
		ms := s.members[m.Session]
		if ms == nil {
			ms = make(map[string]chat.Member)
			s.members[m.Session] = ms
		}
		ms[m.UID] = m
		k := chat.UserKey{App: s.sessions[m.Session].App, UID: m.UID}
		set := s.userSessions[k]
		if set == nil {
			set = make(map[chat.SessionID]struct{})
			s.userSessions[k] = set
		}
		set[m.Session] = struct{}{}
	}
	for _, d := range b.DelMembers {
		ms := s.members[d.Session]
		if _, ok := ms[d.UID]; !ok {
			continue
		}
		delete(ms, d.UID)
		if len(ms) == 0 {
			delete(s.members, d.Session)
		}
		k := chat.UserKey{App: s.sessions[d.Session].App, UID: d.UID}
		delete(s.userSessions[k], d.Session)
		if len(s.userSessions[k]) == 0 {
			delete(s.userSessions, k)
		}
	}
	for _, m := range b.Messages {
		m.Content = clone(m.Content)
		s.putMessage(m)
	}
	for _, sm := range b.Summaries {
		sess, ok := s.sessions[sm.Session]
		if !ok || sm.Seq <= sess.LastSeq {
			continue
		}
		sess.LastSeq, sess.LastAt, sess.LastFrom, sess.LastType, sess.LastPreview = sm.Seq, sm.At, sm.From, sm.Type, sm.Preview
		s.sessions[sm.Session] = sess
	}
	for _, r := range b.Reads {
		m, ok := s.members[r.Session][r.UID]
		if !ok || r.Seq <= m.ReadSeq {
			continue
		}
		m.ReadSeq = r.Seq
		s.members[r.Session][r.UID] = m
	}
	for _, r := range b.Records {
		kind := s.records[r.Kind]
		if kind == nil {
			kind = make(map[string][]byte)
			s.records[r.Kind] = kind
		}
		kind[string(r.Key)] = append([]byte{}, r.Value...)
	}
	for _, k := range b.DelRecords {
		delete(s.records[k.Kind], string(k.Key))
	}
	for _, r := range b.Restrictions {
		s.restrictions[r.Key()] = r
	}
	for _, k := range b.DelRestrictions {
		delete(s.restrictions, k)
	}
	return nil
}

func checkRecord(kind string, key []byte) error { return chat.CheckRecord("memstore", kind, key) }

// Record returns the value of (kind, key); see chat.Store.
func (s *Store) Record(_ context.Context, kind string, key []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.records[kind][string(key)]
	if !ok {
		return nil, notFound("record " + kind)
	}
	return append([]byte{}, v...), nil
}

// Users lists users of app by uid, after the uid `after`; see chat.Store.
func (s *Store) Users(_ context.Context, app, after string, limit int) ([]chat.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []chat.User
	for k, u := range s.users {
		if k.App == app && k.UID > after {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// ScanRecords lists records of kind in key order; see chat.Store.
func (s *Store) ScanRecords(_ context.Context, kind string, prefix, after []byte, limit int, reverse bool) ([]chat.Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	keys := make([]string, 0, len(s.records[kind]))
	for k := range s.records[kind] {
		if chat.InRecordRange([]byte(k), prefix, after, reverse) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if reverse {
		slices.Reverse(keys)
	}
	if limit > 0 && len(keys) > limit {
		keys = keys[:limit]
	}
	out := make([]chat.Record, 0, len(keys))
	for _, k := range keys {
		out = append(out, chat.Record{Kind: kind, Key: []byte(k), Value: append([]byte{}, s.records[kind][k]...)})
	}
	return out, nil
}

// deleteToken removes a token and its user-index entry. s.mu is held.
func (s *Store) deleteToken(h [32]byte) {
	t, ok := s.tokens[h]
	if !ok {
		return
	}
	delete(s.tokens, h)
	k := chat.UserKey{App: t.App, UID: t.UID}
	delete(s.userTokens[k], h)
	if len(s.userTokens[k]) == 0 {
		delete(s.userTokens, k)
	}
}

// putMessage inserts or replaces m in its session's ascending slice. The
// common case, a new highest seq, is an append. s.mu is held.
func (s *Store) putMessage(m chat.Message) {
	list := s.msgs[m.Session]
	if n := len(list); n == 0 || list[n-1].Seq < m.Seq {
		s.msgs[m.Session] = append(list, m)
		return
	}
	i, found := slices.BinarySearchFunc(list, m.Seq, func(x chat.Message, seq uint64) int {
		switch {
		case x.Seq < seq:
			return -1
		case x.Seq > seq:
			return 1
		}
		return 0
	})
	if found {
		list[i] = m
		return
	}
	s.msgs[m.Session] = slices.Insert(list, i, m)
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

func notFound(what string) error {
	return fmt.Errorf("memstore: %s: %w", what, chat.ErrNotFound)
}

// App returns an app.
func (s *Store) App(_ context.Context, id string) (chat.App, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.apps[id]
	if !ok {
		return chat.App{}, notFound("app " + id)
	}
	return a, nil
}

// Apps returns every app, by ID.
func (s *Store) Apps(_ context.Context) ([]chat.App, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]chat.App, 0, len(s.apps))
	for _, a := range s.apps {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// User returns a user.
func (s *Store) User(_ context.Context, app, uid string) (chat.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[chat.UserKey{App: app, UID: uid}]
	if !ok {
		return chat.User{}, notFound("user " + uid)
	}
	u.Extra = clone(u.Extra)
	return u, nil
}

// Token returns a token by hash.
func (s *Store) Token(_ context.Context, hash [32]byte) (chat.Token, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.tokens[hash]
	if !ok {
		return chat.Token{}, notFound("token")
	}
	return t, nil
}

// Session returns a session.
func (s *Store) Session(_ context.Context, id chat.SessionID) (chat.Session, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sess, ok := s.sessions[id]
	if !ok {
		return chat.Session{}, notFound("session")
	}
	return sess, nil
}

// PrivateSession finds the private session of a pair, in either order.
func (s *Store) PrivateSession(_ context.Context, app, a, b string) (chat.SessionID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.pairs[pairOf(app, [2]string{a, b})]
	if !ok {
		return 0, notFound("private session")
	}
	return id, nil
}

// Members returns a session's members, by UID.
func (s *Store) Members(_ context.Context, id chat.SessionID) ([]chat.Member, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ms := s.members[id]
	out := make([]chat.Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out, nil
}

// Member returns one membership.
func (s *Store) Member(_ context.Context, id chat.SessionID, uid string) (chat.Member, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.members[id][uid]
	if !ok {
		return chat.Member{}, notFound("member " + uid)
	}
	return m, nil
}

// UserSessions lists the sessions a user is a member of, ascending.
func (s *Store) UserSessions(_ context.Context, app, uid string) ([]chat.SessionID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	set := s.userSessions[chat.UserKey{App: app, UID: uid}]
	out := make([]chat.SessionID, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	slices.Sort(out)
	return out, nil
}

// Messages returns up to limit messages with lo <= seq <= hi, ascending; see
// chat.Store.
func (s *Store) Messages(_ context.Context, id chat.SessionID, lo, hi uint64, limit int, newest bool) ([]chat.Message, error) {
	if lo > hi {
		return nil, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	list := s.msgs[id]
	i := sort.Search(len(list), func(i int) bool { return list[i].Seq >= lo })
	j := sort.Search(len(list), func(i int) bool { return list[i].Seq > hi })
	if limit > 0 && j-i > limit {
		if newest {
			i = j - limit
		} else {
			j = i + limit
		}
	}
	if i >= j {
		return nil, nil
	}
	out := make([]chat.Message, j-i)
	copy(out, list[i:j])
	for k := range out {
		out[k].Content = clone(out[k].Content)
	}
	return out, nil
}

// PruneMessages deletes app's messages created before `before`; see
// chat.Store.
func (s *Store) PruneMessages(_ context.Context, app string, before int64, from chat.SessionID, max int) (int, chat.SessionID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]chat.SessionID, 0, len(s.sessions))
	for id, sess := range s.sessions {
		if id >= from && sess.App == app {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	deleted := 0
	for _, id := range ids {
		list := s.msgs[id]
		n := 0
		for n < len(list) && list[n].CreatedAt < before {
			if max > 0 && deleted == max {
				s.msgs[id] = list[n:]
				return deleted, id, nil
			}
			n++
			deleted++
		}
		if n > 0 {
			s.msgs[id] = slices.Clone(list[n:])
		}
	}
	return deleted, 0, nil
}

// MaxSessionID is the largest session id stored, 0 when none.
func (s *Store) MaxSessionID(_ context.Context) (chat.SessionID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.maxSession, nil
}

// Restrictions lists every stored ban and mute.
func (s *Store) Restrictions(_ context.Context) ([]chat.Restriction, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]chat.Restriction, 0, len(s.restrictions))
	for _, r := range s.restrictions {
		out = append(out, r)
	}
	return out, nil
}

// CountUsers counts app's users.
func (s *Store) CountUsers(_ context.Context, app string) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for k := range s.users {
		if k.App == app {
			n++
		}
	}
	return n, nil
}

// CountGroups counts app's group sessions.
func (s *Store) CountGroups(_ context.Context, app string) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, x := range s.sessions {
		if x.App == app && x.Kind == chat.KindGroup {
			n++
		}
	}
	return n, nil
}

// Close does nothing; the store stays usable.
func (s *Store) Close() error { return nil }
