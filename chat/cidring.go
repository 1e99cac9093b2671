package chat

import (
	"context"
	"hash/maphash"
	"time"
)

// The CID check: a send whose CID its sender already used in the same
// session returns that original message instead of storing a second copy.
//
// What is guaranteed (docs/protocol.md): the original is recognised while
// it is among the newest cidPerSender messages its sender sent with a CID
// into that session and it is younger than cidMaxAge — whatever the other
// members send meanwhile, and across restarts. (An older original may still
// be recognised while it is in memory; that is not promised.)
//
// How: the journal keeps, per session that got a send with a CID, each
// sender's newest CIDs (cidSession). It learns every committed message, so
// in a running process the check is a lookup. After a restart (or after a
// session's state was evicted) the state is rebuilt lazily: when a sender
// sends with a CID and its list is not known to be complete, the journal
// reads the session's stored messages newest first, cidScanPage at a time,
// from where the last read stopped, until that sender has cidPerSender
// CIDs or a message older than cidMaxAge (or seq 1) is reached. So a
// rebuild reads at most the session's messages of the last cidMaxAge, each
// once, whichever senders ask: 0.6–1.3 µs a message from storage.Bolt
// (its BenchmarkCIDRebuildScan), during which the journal commits nothing.
//
// There is no store-wide CID index: a random-keyed index made every
// checkpoint rewrite pages across its whole tree.
const (
	// cidPerSender is how many of a sender's newest CIDs per session are
	// kept: far more sends than a client has unacknowledged.
	cidPerSender = 512
	// cidMaxAge is how old an original may be and still be promised: a
	// device that was offline overnight can still retry its outbox.
	cidMaxAge = 24 * time.Hour
	// cidScanPage is how many stored messages one read of a rebuild takes.
	cidScanPage = 1024
	// maxCIDEntries bounds the CIDs held in memory over all sessions (16
	// bytes each, plus the lists' slack: under 64 MiB); maxCIDSessions
	// bounds the sessions. Past either, the least recently used of a few
	// sampled sessions is dropped and rebuilt from the store when next
	// needed.
	maxCIDEntries  = 1 << 21
	maxCIDSessions = 1 << 16
	// cidEvictSample is how many sessions an eviction compares.
	cidEvictSample = 8
)

// cidEnt is one message with a CID: its seq and its CID's hash.
type cidEnt struct{ seq, h uint64 }

// cidList holds a sender's newest CIDs in one session, at most
// cidPerSender, as a ring growing by doubling. Owned by the journal.
type cidList struct {
	buf  []cidEnt // len is 0 or a power of two
	head int      // index of the oldest
	n    int
}

// grow doubles buf (up to cidPerSender), keeping the order.
func (l *cidList) grow() {
	nb := make([]cidEnt, max(4, 2*len(l.buf)))
	for i := 0; i < l.n; i++ {
		nb[i] = l.buf[(l.head+i)&(len(l.buf)-1)]
	}
	l.buf, l.head = nb, 0
}

// pushNew adds e as the newest, dropping the oldest when full. It reports
// whether the list got longer.
func (l *cidList) pushNew(e cidEnt) bool {
	if l.n == cidPerSender {
		l.buf[l.head] = e
		l.head = (l.head + 1) & (len(l.buf) - 1)
		return false
	}
	if l.n == len(l.buf) {
		l.grow()
	}
	l.buf[(l.head+l.n)&(len(l.buf)-1)] = e
	l.n++
	return true
}

// pushOld adds e as the oldest unless the list is full. It reports whether
// it did.
func (l *cidList) pushOld(e cidEnt) bool {
	if l.n == cidPerSender {
		return false
	}
	if l.n == len(l.buf) {
		l.grow()
	}
	l.head = (l.head - 1) & (len(l.buf) - 1)
	l.buf[l.head] = e
	l.n++
	return true
}

// candidates calls fn with each seq whose hash is h, newest first, until fn
// returns true.
func (l *cidList) candidates(h uint64, fn func(seq uint64) bool) {
	for i := l.n - 1; i >= 0; i-- {
		if e := l.buf[(l.head+i)&(len(l.buf)-1)]; e.h == h && fn(e.seq) {
			return
		}
	}
}

// cidSession is what the journal knows of one session's CIDs: every
// message with a CID and seq in (scanHi, last] is in its sender's list,
// unless that list already held cidPerSender newer ones.
type cidSession struct {
	last    uint64 // the newest seq recorded or read
	scanHi  uint64 // a rebuild reads on from here down (^0: nothing read yet)
	done    bool   // nothing at or below scanHi is needed: seq 1 or cidMaxAge reached
	used    uint64 // the journal's tick when last used, for eviction
	entries int    // CIDs held, over all senders
	senders map[string]*cidList
}

// complete reports whether from's list holds everything promised.
func (s *cidSession) complete(from string) bool {
	if s.done {
		return true
	}
	l := s.senders[from]
	return l != nil && l.n == cidPerSender
}

func (s *cidSession) list(from string) *cidList {
	l := s.senders[from]
	if l == nil {
		l = &cidList{}
		s.senders[from] = l
	}
	return l
}

// cidSeed keys the CID hashes for this process.
var cidSeed = maphash.MakeSeed()

// cidHash hashes a CID (the list is already the sender's).
func cidHash(cid string) uint64 { return maphash.String(cidSeed, cid) }

// cidState is the journal's CID memory, over all sessions. Owned by the
// journal goroutine.
type cidState struct {
	sessions map[SessionID]*cidSession
	entries  int    // sum of the sessions' entries
	tick     uint64 // counts uses, for eviction
}

// record notes a committed message (its seq above what s has seen).
func (cs *cidState) record(s *cidSession, m *Message) {
	if m.Seq <= s.last {
		return
	}
	s.last = m.Seq
	if m.CID == "" || m.From == "" {
		return
	}
	if s.list(m.From).pushNew(cidEnt{seq: m.Seq, h: cidHash(m.CID)}) {
		s.entries++
		cs.entries++
	}
}

// cidSession returns the CID state of session sid, complete for sender
// from: created, and read from the store as far as needed (see above).
func (c *Core) cidSession(ctx context.Context, cs *cidState, sid SessionID, from string) (*cidSession, error) {
	cs.tick++
	s := cs.sessions[sid]
	if s == nil {
		cs.evict(sid)
		s = &cidSession{scanHi: ^uint64(0), senders: make(map[string]*cidList)}
		cs.sessions[sid] = s
	}
	s.used = cs.tick
	if s.complete(from) {
		return s, nil
	}
	cutoff := c.cfg.Now().Add(-cidMaxAge).UnixMilli()
	for !s.complete(from) {
		ms, err := c.store.Messages(ctx, sid, 1, s.scanHi, cidScanPage, true)
		if err != nil {
			cs.drop(sid)
			return nil, err
		}
		if len(ms) > 0 && s.scanHi == ^uint64(0) {
			s.last = ms[len(ms)-1].Seq
		}
		for i := len(ms) - 1; i >= 0; i-- {
			m := &ms[i]
			if m.CreatedAt < cutoff {
				s.done = true
				break
			}
			s.scanHi = m.Seq - 1
			if m.CID != "" && m.From != "" && s.list(m.From).pushOld(cidEnt{seq: m.Seq, h: cidHash(m.CID)}) {
				s.entries++
				cs.entries++
			}
		}
		if len(ms) < cidScanPage || s.scanHi == 0 {
			s.done = true
		}
	}
	if cs.entries > maxCIDEntries {
		cs.evict(sid)
	}
	return s, nil
}

// evict makes room for one more session (not keep) by dropping the least
// recently used of a few sampled ones while over a bound.
func (cs *cidState) evict(keep SessionID) {
	for len(cs.sessions) > 0 && (len(cs.sessions) >= maxCIDSessions || cs.entries >= maxCIDEntries) {
		var victim SessionID
		var oldest uint64 = ^uint64(0)
		n := 0
		for sid, s := range cs.sessions { // map order: a random sample
			if sid != keep && s.used < oldest {
				victim, oldest = sid, s.used
			}
			if n++; n == cidEvictSample {
				break
			}
		}
		if oldest == ^uint64(0) {
			return
		}
		cs.drop(victim)
	}
}

func (cs *cidState) drop(sid SessionID) {
	if s := cs.sessions[sid]; s != nil {
		cs.entries -= s.entries
		delete(cs.sessions, sid)
	}
}

// findCID looks for the stored message of m's session that m's sender sent
// with m's CID (see the guarantee above).
func (c *Core) findCID(ctx context.Context, j *journalState, m *Message) (Message, bool, error) {
	s, err := c.cidSession(ctx, &j.cid, m.Session, m.From)
	if err != nil {
		return Message{}, false, err
	}
	l := s.senders[m.From]
	if l == nil {
		return Message{}, false, nil
	}
	var found Message
	var ok bool
	l.candidates(cidHash(m.CID), func(seq uint64) bool {
		ms, e := c.store.Messages(ctx, m.Session, seq, seq, 1, false)
		if e != nil {
			err = e
			return true
		}
		if len(ms) == 1 && ms[0].From == m.From && ms[0].CID == m.CID {
			found, ok = ms[0], true
			return true
		}
		return false // a hash collision: keep looking
	})
	return found, ok, err
}
