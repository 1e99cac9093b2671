package bench

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// counts is a set of named counters: error codes, failure causes. Rare
// enough events that one mutex is fine.
type counts struct {
	mu sync.Mutex // guards m
	m  map[string]int64
}

func (c *counts) add(key string, n int64) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]int64{}
	}
	c.m[key] += n
	c.mu.Unlock()
}

// snapshot returns a copy (nil when empty, so reports omit it).
func (c *counts) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) == 0 {
		return nil
	}
	return maps.Clone(c.m)
}

func (c *counts) total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, v := range c.m {
		n += v
	}
	return n
}

// observer is told every seq a connection learns about; churn uses it to
// prove that no message was missed. Called from reader goroutines.
type observer interface {
	// ackedSeq: c's own send was stored as seq.
	ackedSeq(c *wsConn, session, seq uint64)
	// seenSeq: c received seq live.
	seenSeq(c *wsConn, session, seq uint64)
}

// traffic is a run's message accounting, shared by all its connections
// (whose reader goroutines update it concurrently: atomics, sharded
// recorders and mutex-guarded counts).
type traffic struct {
	clk clock
	tag string // this run's tag: messages carrying another are foreign

	scheduled atomic.Int64 // sends the schedule asked for
	skipped   atomic.Int64 // scheduled while the sender was offline (churn)
	sent      atomic.Int64 // written to a socket
	acked     atomic.Int64 // answered ok (duplicates excluded)
	dups      atomic.Int64 // answered ok but "duplicate": a cid collision
	unsent    atomic.Int64 // backlogged, never written (connection ended)
	lost      atomic.Int64 // written, connection ended before the reply
	errs      counts       // answered with an error, by code

	delivered atomic.Int64 // this run's message events from another user
	echoes    atomic.Int64 // this run's message events of the connection's own user (sent over HTTP)
	foreign   atomic.Int64 // message events not sent by this run (another client, another chatbench)

	online      atomic.Int64 // connections logged in and not yet ended
	disconnects counts       // connections the server ended, by cause

	firstSend    atomic.Int64 // run time the schedule started, ns
	lastAck      atomic.Int64 // run time of the latest ack, ns
	lastDelivery atomic.Int64 // run time of the latest delivery, ns

	ack      *Recorder // intended send time → ack
	delivery *Recorder // intended send time → delivery
	lag      *Recorder // intended send time → written to the socket

	// obs, when set, is told every seq; published with setObserver once
	// the observer is fully built, read by reader goroutines.
	obs atomic.Pointer[observerBox]

	trace *msgTrace // --trace: set before the run starts, then read-only; nil: none
}

type observerBox struct{ o observer }

// setObserver publishes o to the reader goroutines.
func (t *traffic) setObserver(o observer) { t.obs.Store(&observerBox{o}) }

func newTraffic(clk clock, runTag string) *traffic {
	return &traffic{clk: clk, tag: runTag, ack: NewRecorder(), delivery: NewRecorder(), lag: NewRecorder()}
}

func storeMax(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

func (t *traffic) onAck(c *wsConn, at, sent int64, session, seq uint64, dup bool) {
	now := t.clk.now()
	if dup {
		t.dups.Add(1)
		return
	}
	if t.trace != nil {
		t.trace.acked(session, seq, at, sent)
	}
	t.acked.Add(1)
	t.ack.Record(c.user, time.Duration(now-at))
	storeMax(&t.lastAck, now)
	if b := t.obs.Load(); b != nil {
		b.o.ackedSeq(c, session, seq)
	}
}

func (t *traffic) onSendFailed(_ *wsConn, code string) {
	if code == "closed" {
		t.lost.Add(1)
		return
	}
	t.errs.add(code, 1)
}

func (t *traffic) onMessage(c *wsConn, m *msgFields) {
	if b := t.obs.Load(); b != nil {
		b.o.seenSeq(c, m.session, m.seq)
	}
	switch {
	case !m.hasT || string(m.tag) != t.tag:
		t.foreign.Add(1)
	case string(m.from) == string(c.uid):
		t.echoes.Add(1)
	default:
		now := t.clk.now()
		t.delivered.Add(1)
		t.delivery.Record(c.user, time.Duration(now-m.t))
		if t.trace != nil {
			t.trace.received(m.session, m.seq, now)
		}
		storeMax(&t.lastDelivery, now)
	}
}

func (t *traffic) onDisconnect(_ *wsConn, cause string, expected bool, unsent int) {
	t.online.Add(-1)
	t.unsent.Add(int64(unsent))
	if !expected {
		t.disconnects.add(cause, 1)
	}
}

// answered is how many sent messages got a reply of any kind.
func (t *traffic) answered() int64 {
	return t.acked.Load() + t.dups.Load() + t.errs.total()
}
