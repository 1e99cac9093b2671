package bench

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Churn keeps Conns users (in pairs with private sessions) online while
// closing and reopening ChurnRate connections per second, each reopened
// connection calling sync from the last seq it had seen; meanwhile the
// online users send Rate messages/s to their pair. At the end every user
// must have seen every message of its session that was stored during the
// run, live or by sync: any (user, message) not seen is a missed message.
type Churn struct {
	Conns     int           // users, one connection each; even; zero means 200
	ChurnRate float64       // reconnects per second; zero means 20
	Rate      float64       // messages/s in total; zero means 200
	Offline   time.Duration // how long a user stays away between close and reconnect; zero means 100ms
}

// Name implements Scenario.
func (*Churn) Name() string { return "churn" }

// MarshalJSON renders the parameters for the report.
func (s *Churn) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Conns     int     `json:"conns"`
		ChurnRate float64 `json:"churn_rate"`
		Rate      float64 `json:"rate"`
		OfflineS  float64 `json:"offline_s"`
	}{s.Conns, s.ChurnRate, s.Rate, s.Offline.Seconds()})
}

func (s *Churn) check(*Options) error {
	if s.Conns == 0 {
		s.Conns = 200
	}
	if s.ChurnRate == 0 {
		s.ChurnRate = 20
	}
	if s.Rate == 0 {
		s.Rate = 200
	}
	if s.Offline == 0 {
		s.Offline = 100 * time.Millisecond
	}
	switch {
	case s.Conns < 2 || s.Conns%2 != 0:
		return errors.New("churn: --conns must be an even number of at least 2 (users are paired)")
	case s.ChurnRate < 0 || s.Rate < 0 || s.Offline < 0:
		return errors.New("churn: --churn-rate, --rate and --offline must be positive")
	}
	return nil
}

func (s *Churn) users() int { return s.Conns }

// sockets counts a reconnecting user twice: its old socket may still be
// closing when the new one opens.
func (s *Churn) sockets() int { return s.Conns + min(s.Conns, maxReconnecting) }

// maxReconnecting caps reconnects in progress at once.
const maxReconnecting = 256

// churnUser is one user's connection and what it has seen of its pair
// session. Its reader goroutines (old and new connection), the reconnect
// worker and the senders share it.
type churnUser struct {
	idx     int
	session uint64
	base    uint64 // the session's last seq when the run started

	mu     sync.Mutex // guards every field below
	conn   *wsConn    // nil while away
	busy   bool       // a reconnect is in progress
	seen   []uint64   // bitset: bit i is seq base+1+i
	prefix uint64     // every seq in (base, prefix] is seen
	count  int64      // bits set
}

// mark records seq as seen; it reports whether it was new.
func (u *churnUser) mark(seq uint64) bool {
	if seq <= u.base {
		return false
	}
	i := seq - u.base - 1
	w := int(i / 64)
	for w >= len(u.seen) {
		u.seen = append(u.seen, 0)
	}
	bit := uint64(1) << (i % 64)
	if u.seen[w]&bit != 0 {
		return false
	}
	u.seen[w] |= bit
	u.count++
	for u.has(u.prefix + 1) {
		u.prefix++
	}
	return true
}

// has reports whether seq was seen. Called with mu held.
func (u *churnUser) has(seq uint64) bool {
	if seq <= u.base {
		return true
	}
	i := seq - u.base - 1
	w := int(i / 64)
	return w < len(u.seen) && u.seen[w]&(uint64(1)<<(i%64)) != 0
}

// seenUpTo counts the seqs in (base, last] seen.
func (u *churnUser) seenUpTo(last uint64) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	var n int64
	for s := u.base + 1; s <= last; s++ {
		if u.has(s) {
			n++
		}
	}
	return n
}

// churnRun is the churn scenario's shared state.
type churnRun struct {
	e     *env
	s     *Churn
	users []*churnUser // by user index (= wsConn.user)

	reconnects  atomic.Int64
	syncCalls   atomic.Int64
	synced      atomic.Int64
	recovered   atomic.Int64
	seenTwice   atomic.Int64
	reconnFails counts
	syncErrs    counts
	reconnLat   *Recorder
	syncLat     *Recorder
}

func (ch *churnRun) observe(c *wsConn, session, seq uint64) {
	u := ch.users[c.user]
	if session != u.session {
		return
	}
	u.mu.Lock()
	isNew := u.mark(seq)
	u.mu.Unlock()
	if !isNew {
		ch.seenTwice.Add(1)
	}
}

func (ch *churnRun) ackedSeq(c *wsConn, session, seq uint64) { ch.observe(c, session, seq) }
func (ch *churnRun) seenSeq(c *wsConn, session, seq uint64)  { ch.observe(c, session, seq) }

func (s *Churn) run(e *env) error {
	conns := e.ramp(seq(0, s.Conns))
	ch := &churnRun{e: e, s: s, users: make([]*churnUser, s.Conns), reconnLat: NewRecorder(), syncLat: NewRecorder()}
	defer func() {
		var cs []*wsConn
		for _, u := range ch.users {
			u.mu.Lock()
			cs = append(cs, u.conn)
			u.mu.Unlock()
		}
		e.closeAll(cs)
	}()
	for i := range ch.users {
		ch.users[i] = &churnUser{idx: i}
	}
	if e.stopped() {
		for i, c := range conns {
			ch.users[i].conn = c
		}
		return nil
	}
	sess := e.openPairs(conns)
	var active []*churnUser // users of usable pairs
	for i, ps := range sess {
		for _, k := range []int{2 * i, 2*i + 1} {
			u := ch.users[k]
			u.conn = conns[k]
			if ps.ID != 0 {
				u.session, u.base, u.prefix = ps.ID, ps.LastSeq, ps.LastSeq
				active = append(active, u)
			}
		}
	}
	if len(active) == 0 {
		return errors.New("churn: no pair has both users connected")
	}
	e.tr.setObserver(ch)
	e.liveTraffic("run")

	// Reconnects: ChurnRate per second over the run, round-robin over a
	// shuffled order, skipping users already away.
	order := rand.Perm(len(active))
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxReconnecting)
	churnDone := make(chan struct{})
	go func() {
		defer close(churnDone)
		p := newPacer(e.clk.now(), s.ChurnRate, e.o.Duration, 0, 1)
		next := 0
		p.run(e.ctx, e.clk, func(_, _ int64) {
			for range len(active) {
				u := active[order[next%len(active)]]
				next++
				u.mu.Lock()
				free := !u.busy && u.conn != nil
				if free {
					u.busy = true
				}
				u.mu.Unlock()
				if free {
					sem <- struct{}{}
					wg.Go(func() {
						defer func() { <-sem }()
						ch.reconnect(u)
					})
					return
				}
			}
		})
	}()

	n := int64(len(active))
	sendFor := e.drive(s.Rate, len(active), func(k int64) (*wsConn, uint64) {
		u := active[k%n]
		u.mu.Lock()
		c := u.conn
		u.mu.Unlock()
		return c, u.session
	})
	<-churnDone
	e.prog.setPhase("reconnects finishing")
	wg.Wait()
	e.drainTraffic(func() int64 { return 0 })

	// The authoritative last seq of each session, then wait (up to the
	// drain) for every user to have seen everything up to it.
	last := ch.lastSeqs(active)
	e.prog.setPhase("checking")
	deadline := time.Now().Add(e.drainFor())
	for time.Now().Before(deadline) && !ch.complete(active, last) {
		time.Sleep(20 * time.Millisecond)
	}

	rep := &ChurnReport{
		Reconnects: ch.reconnects.Load(), ReconnectFailures: ch.reconnFails.snapshot(),
		ReconnectLatency: ch.reconnLat.Summary(), SyncCalls: ch.syncCalls.Load(), SyncLatency: ch.syncLat.Summary(),
		SyncErrors: ch.syncErrs.snapshot(), SyncedMessages: ch.synced.Load(), RecoveredBySync: ch.recovered.Load(),
		SeenTwice: ch.seenTwice.Load(),
	}
	for _, u := range active {
		l, ok := last[u.session]
		if !ok || l <= u.base {
			continue
		}
		rep.Expected += int64(l - u.base)
		rep.Missed += int64(l-u.base) - u.seenUpTo(l)
	}
	e.rep.Churn = rep
	e.rep.Messages = e.finishMessages(s.Rate, sendFor, 0, true)
	if n := ch.reconnFails.total(); n > 0 {
		e.problem(group3(n) + " reconnect attempts failed (" + joinCounts(rep.ReconnectFailures) + ")")
	}
	if n := ch.syncErrs.total(); n > 0 {
		e.problem(group3(n) + " sync calls failed (" + joinCounts(rep.SyncErrors) + ")")
	}
	if rep.Missed > 0 {
		e.problem(group3(rep.Missed) + " messages missed: neither delivered live nor returned by sync after a reconnect")
	}
	if len(last) < len(active)/2 && !e.stopped() {
		e.problem("could not read the last seq of " + strconv.Itoa(len(active)/2-len(last)) + " sessions")
	}
	e.sampleStatus(false)
	return nil
}

// reconnect closes u's connection, stays away for Offline, connects again
// and syncs the pair session from the last seq u saw in order.
func (ch *churnRun) reconnect(u *churnUser) {
	e := ch.e
	u.mu.Lock()
	old := u.conn
	u.conn = nil
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		u.busy = false
		u.mu.Unlock()
	}()
	t0 := time.Now()
	old.close(2 * time.Second)
	sleepCtx(e.ctx, ch.s.Offline)
	// Reconnect even when the run is ending: the final check needs
	// everyone back. Bounded by the connect timeout per attempt.
	ctx := context.WithoutCancel(e.ctx)
	var c *wsConn
	for attempt := range 3 {
		var err error
		c, err = e.open.open(ctx, u.idx)
		if err == nil {
			break
		}
		var ce *ConnectError
		if errors.As(err, &ce) {
			ch.reconnFails.add(ce.Key(), 1)
		} else {
			ch.reconnFails.add(err.Error(), 1)
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
	if c == nil {
		return
	}
	ch.reconnLat.Record(u.idx, time.Since(t0))
	ch.reconnects.Add(1)
	u.mu.Lock()
	u.conn = c
	after := u.prefix
	u.mu.Unlock()

	for {
		var page struct {
			Messages []struct {
				Seq uint64 `json:"seq"`
			} `json:"messages"`
			HasMore bool `json:"has_more"`
		}
		t1 := time.Now()
		err := c.callData(ctx, []byte(`{"action":"sync","session_id":`+strconv.FormatUint(u.session, 10)+
			`,"after":`+strconv.FormatUint(after, 10)+`,"limit":500}`), &page)
		ch.syncCalls.Add(1)
		if err != nil {
			if !errors.Is(err, errConnClosed) {
				ch.syncErrs.add(err.Error(), 1)
			}
			return
		}
		ch.syncLat.Record(u.idx, time.Since(t1))
		ch.synced.Add(int64(len(page.Messages)))
		u.mu.Lock()
		for _, m := range page.Messages {
			if u.mark(m.Seq) {
				ch.recovered.Add(1)
			} else {
				ch.seenTwice.Add(1)
			}
			after = max(after, m.Seq)
		}
		u.mu.Unlock()
		if !page.HasMore || len(page.Messages) == 0 {
			return
		}
	}
}

// lastSeqs asks one online member of each session for its last seq.
func (ch *churnRun) lastSeqs(active []*churnUser) map[uint64]uint64 {
	out := map[uint64]uint64{}
	var mu sync.Mutex // guards out
	ctx := context.WithoutCancel(ch.e.ctx)
	parallel(ctx, 32, len(active), func(ctx context.Context, k int) error {
		u := active[k]
		mu.Lock()
		_, done := out[u.session]
		mu.Unlock()
		if done {
			return nil
		}
		u.mu.Lock()
		c := u.conn
		u.mu.Unlock()
		if c == nil {
			return nil
		}
		var v struct {
			LastSeq uint64 `json:"last_seq"`
		}
		if c.callData(ctx, []byte(`{"action":"session","session_id":`+strconv.FormatUint(u.session, 10)+`}`), &v) != nil {
			return nil
		}
		mu.Lock()
		out[u.session] = max(out[u.session], v.LastSeq)
		mu.Unlock()
		return nil
	})
	return out
}

// complete reports whether every user has seen its session up to last.
func (ch *churnRun) complete(active []*churnUser, last map[uint64]uint64) bool {
	for _, u := range active {
		u.mu.Lock()
		ok := u.prefix >= last[u.session]
		u.mu.Unlock()
		if !ok {
			return false
		}
	}
	return true
}
