package chat

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

// Client is one connection as the core sees it. Created by Accept; the
// transport calls HandleMessage for each text message and HandleClose once.
//
// The core holds one Client per connection, so it is kept to 96 bytes (a
// malloc size class; TestClientSize pins it): the request queue is pooled
// and attached only while requests wait, and the token is remembered by an
// 8-byte tag instead of its whole hash.
type Client struct {
	core *Core
	peer Peer

	mu    sync.Mutex // guards queue, running, closed
	queue *reqQueue  // requests waiting; nil when none (see reqQueue)

	// Set once by login on the client's drain goroutine, read afterwards by
	// that goroutine and (via loggedIn) by others.
	id Identity // strings shared with the user registry
	u  *user
	// token is tokenTag of the hash of the token the client logged in
	// with; kick compares it (see tokenTag).
	token uint64

	loggedIn atomic.Bool
	platform uint8 // set by login (devices.go); fits the padding: Client stays 96 bytes
	running  bool  // a drain goroutine is working the queue; guarded by mu
	closed   bool  // guarded by mu
}

// tokenTag is what a Client keeps of its token's hash: the first 8 bytes.
// Revoking a token kicks the connections whose tag matches, so a collision
// (two tokens of one user sharing 64 bits of SHA-256, about 2^-64) could
// only close one connection too many, never leave a revoked one open.
func tokenTag(h *[32]byte) uint64 { return binary.LittleEndian.Uint64(h[:8]) }

// usesToken reports whether the client logged in with the token whose hash
// is h (up to tokenTag's collisions).
func (cl *Client) usesToken(h *[32]byte) bool { return cl.token == tokenTag(h) }

// reqQueue is a client's waiting requests, each a private copy, oldest at
// b[head]. A Client takes one from queuePool when a request has to wait and
// its drain returns it once empty, so an idle client holds none and a
// burst reuses the same backing array.
type reqQueue struct {
	b    [][]byte
	head int // b[:head] have been taken (and cleared)
	// done is the func of a Drain whose marker (a nil request) is in b.
	done func()
}

var queuePool = sync.Pool{New: func() any { return &reqQueue{b: make([][]byte, 0, 8)} }}

// queueKeep is the largest backing array a pooled queue keeps.
const queueKeep = 1024

// waiting is the number of requests in q; q may be nil.
func (q *reqQueue) waiting() int {
	if q == nil {
		return 0
	}
	return len(q.b) - q.head
}

// push appends req, first sliding the waiting requests to the front when
// more than half the array has been taken.
func (q *reqQueue) push(req []byte) {
	if q.head > 0 && q.head*2 >= len(q.b) && len(q.b) == cap(q.b) {
		n := copy(q.b, q.b[q.head:])
		clear(q.b[n:])
		q.b, q.head = q.b[:n], 0
	}
	q.b = append(q.b, req)
}

// pop removes and returns the oldest request; q must not be empty.
func (q *reqQueue) pop() []byte {
	req := q.b[q.head]
	q.b[q.head] = nil
	q.head++
	return req
}

// putQueue empties q (dropping its requests) and pools it.
func putQueue(q *reqQueue) {
	if cap(q.b) > queueKeep {
		return
	}
	clear(q.b)
	q.b, q.head = q.b[:0], 0
	q.done = nil
	queuePool.Put(q)
}

var _ Acceptor = (*Core)(nil)
var _ Handler = (*Client)(nil)

// Accept attaches a new connection. It must log in within Config.LoginTimeout.
func (c *Core) Accept(p Peer) Handler {
	cl := &Client{core: c, peer: p}
	c.stats.clients.Add(1)
	c.unauthMu.Lock()
	c.unauth[cl] = time.Now().UnixNano()
	c.unauthMu.Unlock()
	return cl
}

// HandleMessage queues one request. It copies payload and never blocks: the
// request runs on the client's drain goroutine, in arrival order.
func (cl *Client) HandleMessage(payload []byte) {
	if cl.loggedIn.Load() {
		var now int64 // one clock reading for the request and send checks
		if e := cl.core.allowRequest(cl.u, &now); e != nil {
			cl.refuse(peekID(payload), e)
			return
		}
		if cl.idle() && cl.core.sendFast(cl, payload, &now) {
			return
		}
	}
	cl.enqueue(append([]byte(nil), payload...))
}

// enqueue queues req (the client's to keep) to run on a drain goroutine
// after the ones queued before it: a connection's requests, or, on the
// domains' owner, those another node forwarded for its connection's
// mirror (owner.go).
func (cl *Client) enqueue(req []byte) {
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		return
	}
	if cl.queue.waiting() >= cl.core.cfg.MaxQueue {
		cl.mu.Unlock()
		id := peekID(req)
		cl.core.countError(CodeRateLimited)
		cl.reply(appendError(nil, id, CodeRateLimited, "too many requests in flight on this connection; wait for replies"))
		return
	}
	if cl.queue == nil {
		cl.queue = queuePool.Get().(*reqQueue)
	}
	cl.queue.push(req)
	start := !cl.running
	cl.running = true
	cl.mu.Unlock()
	if start {
		cl.core.startDrain(cl)
	}
}

// workerIdle is how long a drain worker waits for another client before
// it exits.
const workerIdle = 2 * time.Second

// startDrain hands cl to an idle drain worker, or starts one. It never
// blocks. Reusing workers matters in bursts: a fresh goroutine per login
// grew its stack through the store read (runtime.copystack was 11 % of the
// server's CPU during a 13k/s connect ramp) and left the grown stacks to
// the garbage collector.
func (c *Core) startDrain(cl *Client) {
	select {
	case c.idle <- cl:
	default:
		go c.drainWorker(cl)
	}
}

// drainWorker drains cl, then serves further clients handed over through
// Core.idle until none comes for workerIdle.
func (c *Core) drainWorker(cl *Client) {
	var t *time.Timer
	for {
		cl.drain()
		cl = nil // not kept alive while waiting
		if t == nil {
			t = time.NewTimer(workerIdle)
		} else {
			t.Reset(workerIdle)
		}
		select {
		case cl = <-c.idle:
		case <-t.C:
			return
		}
	}
}

// idle reports whether the client has no request queued or running, so one
// can run right now without overtaking another. Only the connection's loop
// calls HandleMessage, so nothing is queued between this check and its use.
func (cl *Client) idle() bool {
	cl.mu.Lock()
	ok := !cl.running && cl.queue == nil && !cl.closed
	cl.mu.Unlock()
	return ok
}

// drain runs the queued requests in order until the queue is empty or the
// client closed, then detaches and pools the queue. The queue is non-nil
// exactly while running is set: both change together under mu.
func (cl *Client) drain() {
	ctx := context.Background()
	for {
		cl.mu.Lock()
		q := cl.queue
		if q.waiting() == 0 || cl.closed {
			cl.queue = nil
			cl.running = false
			cl.mu.Unlock()
			if q != nil {
				putQueue(q)
			}
			return
		}
		req := q.pop()
		var done func()
		if req == nil { // a Drain's marker
			done, q.done = q.done, nil
		}
		cl.mu.Unlock()
		if req == nil {
			cl.drained(ctx, done)
			continue
		}
		cl.core.handle(ctx, cl, req)
	}
}

// Drain calls done, once, when every request handed to HandleMessage
// before it has been answered: the requests queued before it have run,
// and the sends among them (and any that went straight to the journal)
// have had their acks or errors given to the peer. It reports false, and
// never calls done, when the client has nothing in progress (nothing
// queued or running, and not logged in, so no send can be waiting for the
// journal). done runs on a drain goroutine and must not block.
//
// The reactor calls it when the client's WebSocket close frame arrives,
// so that the replies to what the client sent before closing go out ahead
// of the server's close frame. Call it at most once per client, from the
// goroutine that calls HandleMessage.
func (cl *Client) Drain(done func()) bool {
	cl.mu.Lock()
	if cl.closed || !cl.running && !cl.loggedIn.Load() {
		cl.mu.Unlock()
		return false
	}
	if cl.queue == nil {
		cl.queue = queuePool.Get().(*reqQueue)
	}
	cl.queue.push(nil) // the marker: drain calls done when it gets there
	cl.queue.done = done
	start := !cl.running
	cl.running = true
	cl.mu.Unlock()
	if start {
		cl.core.startDrain(cl)
	}
	return true
}

// drained runs a Drain's done once the requests before its marker have
// run. Their sends (and those HandleMessage gave the journal directly,
// earlier still) may still be waiting for their commit; an empty write
// queued behind them comes back only after they are answered, because the
// journal answers ops in commit order. It commits nothing, so it costs no
// disk write.
func (cl *Client) drained(ctx context.Context, done func()) {
	if cl.loggedIn.Load() { // only a logged-in client sends
		_ = cl.core.write(ctx, &Batch{})
	}
	if done != nil {
		done()
	}
}

// HandleClose detaches the connection.
func (cl *Client) HandleClose() {
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		return
	}
	cl.closed = true
	cl.mu.Unlock()
	c := cl.core
	c.stats.clients.Add(-1)
	c.unauthMu.Lock()
	delete(c.unauth, cl)
	c.unauthMu.Unlock()
	if cl.loggedIn.Load() {
		c.logout(cl, "closed")
	}
}

// reply sends one encoded reply or event to this connection.
func (cl *Client) reply(b []byte) { cl.send(b, false) }

// send is reply, written directly to an idle socket when now is set (see
// NowSender).
func (cl *Client) send(b []byte, now bool) {
	if !sendTo(cl.peer, b, now) {
		cl.core.stats.dropped.Add(1)
	}
}

// replyErr answers request id of action with err (see clientError).
func (cl *Client) replyErr(id []byte, action string, err error) {
	cl.refuse(id, cl.core.clientError(action, err))
}

// refuse answers request id with e (and counts it).
func (cl *Client) refuse(id []byte, e *Error) {
	cl.core.countError(e.Code)
	cl.reply(appendErrorFull(nil, id, e))
}

// runSweeper closes connections that did not log in within LoginTimeout,
// and connections whose token has expired (tokenexpiry.go), and forgets
// refilled group-rate budgets (limits_group.go). Expiry is judged by the
// core's clock (Config.Now), so tests can move it.
func (c *Core) runSweeper(ctx context.Context) {
	every := c.cfg.LoginTimeout / 4
	every = min(max(every, 50*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			limit := now.Add(-c.cfg.LoginTimeout).UnixNano()
			var late []*Client
			c.unauthMu.Lock()
			for cl, at := range c.unauth {
				if at <= limit {
					late = append(late, cl)
					delete(c.unauth, cl)
				}
			}
			c.unauthMu.Unlock()
			for _, cl := range late {
				cl.peer.Close(CloseLoginTimeout, "login timeout")
			}
			c.closeExpired()
			c.groupLimits.prune(c.nowMS())
			c.sweepHTTPDevices(c.nowMS())
			c.sweepPresence(ctx)
			c.pruneTyping()
		}
	}
}
