package chat

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Client is one connection as the core sees it. Created by Accept; the
// transport calls HandleMessage for each text message and HandleClose once.
type Client struct {
	core *Core
	peer Peer

	mu      sync.Mutex // guards queue, running, closed
	queue   [][]byte   // requests waiting, each a private copy
	running bool       // a drain goroutine is working the queue
	closed  bool

	// Set once by login on the client's drain goroutine, read afterwards by
	// that goroutine and (via loggedIn) by others.
	loggedIn  atomic.Bool
	id        Identity
	u         *user
	tokenHash [32]byte
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
	if cl.loggedIn.Load() && cl.idle() && cl.core.sendFast(cl, payload) {
		return
	}
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		return
	}
	if len(cl.queue) >= cl.core.cfg.MaxQueue {
		cl.mu.Unlock()
		id := peekID(payload)
		cl.core.countError(CodeRateLimited)
		cl.reply(appendError(nil, id, CodeRateLimited, "too many requests in flight on this connection; wait for replies"))
		return
	}
	cl.queue = append(cl.queue, append([]byte(nil), payload...))
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
	ok := !cl.running && len(cl.queue) == 0 && !cl.closed
	cl.mu.Unlock()
	return ok
}

func (cl *Client) drain() {
	ctx := context.Background()
	for {
		cl.mu.Lock()
		if len(cl.queue) == 0 || cl.closed {
			cl.queue = nil
			cl.running = false
			cl.mu.Unlock()
			return
		}
		req := cl.queue[0]
		cl.queue[0] = nil
		cl.queue = cl.queue[1:]
		cl.mu.Unlock()
		cl.core.handle(ctx, cl, req)
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
func (cl *Client) reply(b []byte) {
	if !cl.peer.Send(b) {
		cl.core.stats.dropped.Add(1)
	}
}

func (cl *Client) replyErr(id []byte, err error) {
	e := cl.core.clientError(err)
	cl.core.countError(e.Code)
	cl.reply(appendError(nil, id, e.Code, e.Message))
}

// runSweeper closes connections that did not log in within LoginTimeout.
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
		}
	}
}
