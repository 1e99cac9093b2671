package bench

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync/atomic"
	"time"
)

// ---- connect

// Connect opens Conns connections (upgrade + login each), holds them for
// the run's Duration, and reports the connect+login rate, failures by
// cause, and the server's memory per connection: the growth of the
// server's own RSS figure (heap where RSS is not reported) from before the
// ramp to Settle after the last login, divided by the connections.
//
// On Linux the connections are opened and held by the fast connector
// (raw sockets on a few epoll loops, see fastconnect.go), so that the rate
// measured is the server's and not chatbench's; elsewhere, or with
// Portable, by the portable client that the other scenarios use.
type Connect struct {
	Conns    int           // connections to open; zero means 1,000
	Settle   time.Duration // idle time before the "after" memory sample; zero means 2s
	Portable bool          // use the portable client (a goroutine per connection) even on Linux
	// Friends, when not zero (even), makes each user friends with the
	// Friends/2 users on either side of it (a ring), through the host's
	// contacts import before the ramp, so that every login is announced to
	// the user's online friends: the report then counts the server's
	// presence events (presence.go). Run longer than the server's
	// presence_debounce for them to show.
	Friends int
}

// Name implements Scenario.
func (*Connect) Name() string { return "connect" }

// MarshalJSON renders the parameters for the report.
func (s *Connect) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Conns    int     `json:"conns"`
		SettleS  float64 `json:"settle_s"`
		Portable bool    `json:"portable,omitempty"`
		Friends  int     `json:"friends,omitempty"`
	}{s.Conns, s.Settle.Seconds(), s.Portable, s.Friends})
}

func (s *Connect) check(o *Options) error {
	if o.Trace != "" {
		return errors.New("connect: --trace follows messages; the connect scenario sends none")
	}
	if s.Conns == 0 {
		s.Conns = 1000
	}
	if s.Settle == 0 {
		s.Settle = 2 * time.Second
	}
	if s.Conns < 1 || s.Settle < 0 {
		return errors.New("connect: --conns must be at least 1 and --settle not negative")
	}
	if s.Friends < 0 || s.Friends%2 != 0 || s.Friends >= s.Conns {
		return errors.New("connect: --friends must be even and less than --conns (each user befriends the friends/2 users on either side)")
	}
	return nil
}

func (s *Connect) users() int   { return s.Conns }
func (s *Connect) sockets() int { return s.Conns }

func (s *Connect) run(e *env) error {
	var pres *presenceCount
	if s.Friends > 0 {
		var err error
		if pres, err = e.befriendRing(s.Conns, s.Friends); err != nil {
			return err
		}
		defer pres.finish(e)
	}
	users := seq(0, s.Conns)
	cpu0, hasCPU := cpuTime()
	t0 := time.Now()
	if fastSupported && !s.Portable && len(e.tgt.wsAll) > 1 {
		// The fast connector dials one address; spreading over several
		// nodes is the portable client's job.
		e.rep.Notes = append(e.rep.Notes, "several WebSocket addresses: connections opened with the portable client (the fast connector dials one address)")
	}
	if fastSupported && !s.Portable && len(e.tgt.wsAll) == 1 {
		h, err := e.rampFast(users)
		if err != nil {
			return err
		}
		defer func() {
			e.prog.set("closing", func(b []byte) []byte { return append(b, "closing connections"...) })
			h.close(time.Second)
		}()
	} else {
		conns := e.ramp(users)
		defer e.closeAll(conns)
	}
	e.noteRampCPU(cpu0, hasCPU, t0, e.rep.Conns.Connected)
	rampEnd := time.Now()
	before := e.rep.Server
	e.prog.set("settle", func(b []byte) []byte {
		b = append(b, "holding "...)
		b = appendInt(b, e.tr.online.Load())
		return append(b, " connections idle before measuring memory"...)
	})
	if !sleepCtx(e.ctx, s.Settle) {
		return nil
	}
	if st, ok := e.sampleStatus(false); ok && e.rep.Conns.Connected > 0 {
		n := e.rep.Conns.Connected
		switch {
		case st.RSSBytes > 0 && before.RSSBefore > 0:
			e.rep.Server.BytesPerConn = (int64(st.RSSBytes) - int64(before.RSSBefore)) / n
		case st.HeapBytes > 0:
			e.rep.Server.BytesPerConn = (int64(st.HeapBytes) - int64(before.HeapBefore)) / n
		}
		if st.Conns < int(n) {
			e.problem("the server reports " + strconv.Itoa(st.Conns) + " connections; chatbench holds " + group3(n))
		}
	}
	e.prog.set("hold", func(b []byte) []byte {
		b = append(b, "holding "...)
		b = appendInt(b, e.tr.online.Load())
		b = append(b, " connections"...)
		if d := e.tr.disconnects.total(); d > 0 {
			b = append(b, ", dropped "...)
			b = appendInt(b, d)
		}
		return b
	})
	sleepCtx(e.ctx, time.Until(rampEnd.Add(e.o.Duration)))
	e.sampleStatus(false)
	if n := e.tr.disconnects.total(); n > 0 {
		e.problem(group3(n) + " connections dropped by the server while held (" + joinCounts(e.tr.disconnects.snapshot()) + ")")
	}
	return nil
}

// ---- p2p

// P2P pairs users (2i, 2i+1) in private sessions and sends Rate messages/s
// in total, open-loop, alternating over every user of every pair, for the
// run's Duration. Every message has one recipient device.
type P2P struct {
	Pairs int     `json:"pairs"` // zero means 1,000
	Rate  float64 `json:"rate"`  // messages/s in total; zero means 10,000
}

// Name implements Scenario.
func (*P2P) Name() string { return "p2p" }

func (s *P2P) check(*Options) error {
	if s.Pairs == 0 {
		s.Pairs = 1000
	}
	if s.Rate == 0 {
		s.Rate = 10000
	}
	if s.Pairs < 1 || s.Rate < 0 {
		return errors.New("p2p: --pairs must be at least 1 and --rate positive")
	}
	return nil
}

func (s *P2P) users() int   { return 2 * s.Pairs }
func (s *P2P) sockets() int { return 2 * s.Pairs }

func (s *P2P) run(e *env) error {
	conns := e.ramp(seq(0, 2*s.Pairs))
	defer e.closeAll(conns)
	if e.stopped() {
		return nil
	}
	sess := e.openPairs(conns)
	type sender struct {
		c       *wsConn
		session uint64
	}
	var senders []sender
	for i, ps := range sess {
		if ps.ID != 0 {
			senders = append(senders, sender{conns[2*i], ps.ID}, sender{conns[2*i+1], ps.ID})
		}
	}
	if len(senders) == 0 {
		return errors.New("p2p: no pair has both users connected")
	}
	e.liveTraffic("run")
	n := int64(len(senders))
	sendFor := e.drive(s.Rate, len(senders), func(k int64) (*wsConn, uint64) {
		sd := senders[k%n]
		return sd.c, sd.session
	})
	e.drainTraffic(e.tr.acked.Load)
	e.rep.Messages = e.finishMessages(s.Rate, sendFor, e.tr.acked.Load(), false)
	e.sampleStatus(false)
	return nil
}

// ---- group

// Group makes Groups groups of Members users each (all online, one
// connection per user) and sends Rate messages/s in total, open-loop,
// round-robin over the groups and, within a group, over its members. Every
// message is delivered to the Members−1 other members.
type Group struct {
	Groups  int     `json:"groups"`  // zero means 1
	Members int     `json:"members"` // per group; zero means 100
	Rate    float64 `json:"rate"`    // messages/s over all groups; zero means about 50,000 deliveries/s
}

// Name implements Scenario.
func (*Group) Name() string { return "group" }

func (s *Group) check(*Options) error {
	if s.Groups == 0 {
		s.Groups = 1
	}
	if s.Members == 0 {
		s.Members = 100
	}
	if s.Groups < 1 || s.Members < 2 || s.Rate < 0 {
		return errors.New("group: --groups must be at least 1, --members at least 2, --rate positive")
	}
	if s.Rate == 0 {
		s.Rate = max(1, float64(int(50000/float64(s.Members-1))))
	}
	return nil
}

func (s *Group) users() int   { return s.Groups * s.Members }
func (s *Group) sockets() int { return s.Groups * s.Members }

// groupAcks counts acknowledged messages per group session (an observer).
type groupAcks struct {
	index map[uint64]int // session → group index; read-only during the run
	acked []atomic.Int64 // per group index
}

func (g *groupAcks) ackedSeq(_ *wsConn, session, _ uint64) {
	if i, ok := g.index[session]; ok {
		g.acked[i].Add(1)
	}
}

func (g *groupAcks) seenSeq(*wsConn, uint64, uint64) {}

func (s *Group) run(e *env) error {
	key := func(g int) string { return "m" + strconv.Itoa(s.Members) + "-g" + strconv.Itoa(g) }
	sess := make([]uint64, s.Groups)
	e.prog.set("groups", func(b []byte) []byte { return append(b, "creating groups"...) })
	for g := range s.Groups {
		id, err := e.prov.ensureGroup(e.ctx, key(g), g*s.Members, s.Members)
		if err != nil {
			return err
		}
		sess[g] = id
	}
	e.prov.st.Save(e.prov.path)

	conns := e.ramp(seq(0, s.Groups*s.Members))
	defer e.closeAll(conns)
	if e.stopped() {
		return nil
	}
	// Check each recorded group still exists (the server's data may have
	// been reset under the state file) and recreate it if not.
	online := make([][]*wsConn, s.Groups)
	for g := range s.Groups {
		for j := range s.Members {
			if c := conns[g*s.Members+j]; c != nil {
				online[g] = append(online[g], c)
			}
		}
		if len(online[g]) == 0 {
			continue
		}
		err := online[g][0].callData(e.ctx, []byte(`{"action":"session","session_id":`+strconv.FormatUint(sess[g], 10)+`}`), nil)
		var se *ServerError
		if errors.As(err, &se) && (se.Code == "not_found" || se.Code == "forbidden") {
			e.prov.forgetGroup(key(g))
			id, err := e.prov.ensureGroup(e.ctx, key(g), g*s.Members, s.Members)
			if err != nil {
				return err
			}
			sess[g] = id
			e.prov.st.Save(e.prov.path)
		} else if err != nil {
			return errors.New("group: check session " + strconv.FormatUint(sess[g], 10) + ": " + err.Error())
		}
	}
	acks := &groupAcks{index: map[uint64]int{}, acked: make([]atomic.Int64, s.Groups)}
	for g, id := range sess {
		acks.index[id] = g
	}
	e.tr.setObserver(acks)
	expected := func() int64 {
		var n int64
		for g := range s.Groups {
			if len(online[g]) > 0 {
				n += acks.acked[g].Load() * int64(len(online[g])-1)
			}
		}
		return n
	}
	e.liveTraffic("run")
	G := int64(s.Groups)
	sendFor := e.drive(s.Rate, s.Groups*s.Members, func(k int64) (*wsConn, uint64) {
		g := k % G
		m := online[g]
		if len(m) == 0 {
			return nil, 0
		}
		return m[(k/G)%int64(len(m))], sess[g]
	})
	e.drainTraffic(expected)
	e.rep.Messages = e.finishMessages(s.Rate, sendFor, expected(), false)
	e.sampleStatus(false)
	return nil
}

// ---- helpers

// seq returns [from, to).
func seq(from, to int) []int {
	s := make([]int, 0, max(to-from, 0))
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// sleepCtx sleeps for d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
