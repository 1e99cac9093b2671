package memstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"chatd/chat"
)

var _ chat.SharedStore = (*Shared)(nil)

// Shared is a Store that several cores in one process may write at once,
// as chatd nodes share the cluster's PostgreSQL: it adds the row locks and
// the session-id counter of chat.SharedStore. For the core's cluster
// tests; it passes chat/storetest's shared suite like the PostgreSQL store.
type Shared struct {
	*Store
	rows sync.Map // chat.SessionID → *sync.Mutex: the per-session "row lock"

	idMu   sync.Mutex
	nextID chat.SessionID // the highest id reserved or claimed

	leaseMu sync.Mutex
	leases  map[string]lease // name → its holder and end

	blobMu sync.Mutex
	blobs  map[string]*blob // app\x00id → the bytes of an upload (blobs.go)
}

// NewShared returns an empty shared store.
func NewShared() *Shared { return &Shared{Store: New()} }

func (s *Shared) row(id chat.SessionID) *sync.Mutex {
	if m, ok := s.rows.Load(id); ok {
		return m.(*sync.Mutex)
	}
	m, _ := s.rows.LoadOrStore(id, &sync.Mutex{})
	return m.(*sync.Mutex)
}

// ApplyLocked implements chat.SharedStore.
func (s *Shared) ApplyLocked(ctx context.Context, sessions []chat.SessionID, b *chat.Batch, build func(last map[chat.SessionID]uint64) error) error {
	return s.ApplyLockedSince(ctx, sessions, nil, b, func(last map[chat.SessionID]uint64, _ []chat.Message) error { return build(last) })
}

// ApplyLockedSince implements chat.SharedStore.
func (s *Shared) ApplyLockedSince(ctx context.Context, sessions []chat.SessionID, since map[chat.SessionID]uint64, b *chat.Batch,
	build func(last map[chat.SessionID]uint64, appended []chat.Message) error) error {
	for i, id := range sessions {
		if i > 0 && sessions[i-1] >= id {
			panic("memstore: ApplyLocked: sessions not ascending and unique")
		}
	}
	for _, id := range sessions {
		m := s.row(id)
		m.Lock()
		defer m.Unlock()
	}
	last := make(map[chat.SessionID]uint64, len(sessions))
	s.mu.RLock()
	for _, id := range sessions {
		if ms := s.msgs[id]; len(ms) > 0 {
			last[id] = ms[len(ms)-1].Seq
		}
		if sum := s.sessions[id].LastSeq; sum > last[id] {
			last[id] = sum // messages pruned by retention: the summary still counts them
		}
	}
	var appended []chat.Message
	for _, id := range sessions {
		after, ok := since[id]
		if !ok {
			continue
		}
		n := 0
		for _, m := range s.msgs[id] {
			if m.Seq > after && m.CID != "" && n <= chat.MaxCatchUp {
				appended = append(appended, chat.Message{Session: id, Seq: m.Seq, From: m.From, CID: m.CID})
				n++
			}
		}
	}
	s.mu.RUnlock()
	if err := build(last, appended); err != nil {
		return err
	}
	if b.Empty() {
		return nil
	}
	return s.Apply(ctx, b)
}

// Apply implements chat.Store, checking a fenced batch's lease
// (chat.Batch.Fence) under the leases' lock, which a lease changing hands
// waits for.
func (s *Shared) Apply(ctx context.Context, b *chat.Batch) error {
	if b.Fence == nil {
		return s.Store.Apply(ctx, b)
	}
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if l, ok := s.leases[b.Fence.Lease]; !ok || l.holder != b.Fence.Holder || !time.Now().Before(l.until) {
		return fmt.Errorf("memstore: lease %q is not %s's: %w", b.Fence.Lease, b.Fence.Holder, chat.ErrFenced)
	}
	return s.Store.Apply(ctx, b)
}

// ReserveSessionIDs implements chat.SharedStore.
func (s *Shared) ReserveSessionIDs(ctx context.Context, n int) (chat.SessionID, error) {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	s.catchUpIDs(ctx)
	first := s.nextID + 1
	s.nextID += chat.SessionID(n)
	return first, nil
}

// ClaimSessionID implements chat.SharedStore.
func (s *Shared) ClaimSessionID(ctx context.Context, id chat.SessionID) (bool, chat.SessionID, error) {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	s.catchUpIDs(ctx)
	if id <= s.nextID {
		return false, s.nextID + 1, nil
	}
	s.nextID = id
	return true, id, nil
}

// catchUpIDs keeps the counter above sessions written without it (a store
// filled before it was shared).
func (s *Shared) catchUpIDs(ctx context.Context) {
	if max, _ := s.MaxSessionID(ctx); max > s.nextID {
		s.nextID = max
	}
}

type lease struct {
	holder string
	until  time.Time
}

// TryLease implements chat.SharedStore on the wall clock.
func (s *Shared) TryLease(_ context.Context, name, holder string, ttl time.Duration) (bool, error) {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	now := time.Now()
	l, ok := s.leases[name]
	if ok && l.holder != holder && now.Before(l.until) {
		return false, nil
	}
	if s.leases == nil {
		s.leases = map[string]lease{}
	}
	s.leases[name] = lease{holder: holder, until: now.Add(ttl)}
	return true, nil
}

// ReleaseLease implements chat.SharedStore.
func (s *Shared) ReleaseLease(_ context.Context, name, holder string) error {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if l, ok := s.leases[name]; ok && l.holder == holder {
		delete(s.leases, name)
	}
	return nil
}

// Lease implements chat.SharedStore.
func (s *Shared) Lease(_ context.Context, name string) (chat.LeaseInfo, error) {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	l, ok := s.leases[name]
	if !ok {
		return chat.LeaseInfo{}, nil
	}
	return chat.LeaseInfo{Holder: l.holder, Left: time.Until(l.until)}, nil
}
