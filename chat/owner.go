package chat

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The domains' owner (docs/cluster.md). In a cluster (a shared store and
// a broker) customer service (service*.go) and consultations (consult*.go)
// keep their state in memory and run background work — the service tick
// that drains queues and ends agents' grace periods, the consultation
// clock — that must run exactly once. One node at a time owns them: the
// holder of the store's lease "domains" (SharedStore.TryLease, the holder
// "node/token" as for the webhook dispatcher, whlease.go).
//
//   - The owner loads both states from the store when it takes the lease
//     (reset, then svcLoad and consultTakeOver) and only then serves them
//     and runs their work. It renews the lease every domainsLeaseRenew; a
//     renewal that fails or is refused stops the work at once and drops
//     the states. A node that stops releases the lease, so the next owner
//     takes over within a second instead of after the ttl.
//   - The other nodes keep both states empty and run none of the work.
//     In Core.handle they send the client actions that use them
//     (service_*, consult_*, and a send or forward into a service or
//     consultation session) to the owner as "act" broker messages; the
//     owner runs them with the mirror of the origin connection (broker.go),
//     one connection's requests in order, and the replies travel back
//     through the mirror as any delivery does, so the client sees one
//     ordinary reply. An HTTP user-API call (Core.Do: not a connection the
//     owner has a mirror of) carries its identity and gets its reply in an
//     "act reply". While no owner is known, or the known one is presumed
//     dead, the client is answered `unavailable` at once; requests already
//     forwarded to an owner that dies are answered so too.
//   - Every node learns the owner from the store: each node reads the lease
//     once a renewal period (SharedStore.Lease; a free or expired lease is
//     taken instead), and caches the holder until the lease's end as read.
//     The store is the authority the owner itself renews against, so a
//     node never believes in an owner whose lease has ended, and the
//     HTTP API forwarding reads the same lease; an announcement over the
//     broker would only add a second source that can disagree with it.
//   - The owner sees agents' devices on every node: a user's first device
//     appearing and last one leaving, mirrors included, drive
//     svcAgentHook on it (broker.go); on the other nodes the hook finds no
//     agents and does nothing.
//   - Assignments are serialised by svcState.mu on the one owner, and the
//     owner's service and consultation commits name the lease and holder
//     (Batch.Fence): the store refuses them when the lease is no longer
//     this node's, in the commit's own transaction (ErrFenced).
//
// With one node (no broker) none of this exists: Core.owner is nil, the
// node loads and runs everything, and the hot paths test that nil.

// domainsLease names the owner's lease; the HTTP API forwarding reads it
// too.
const domainsLease = "domains"

// The lease's length and renewal period; variables for the tests.
var (
	domainsLeaseTTL   = 5 * time.Second
	domainsLeaseRenew = time.Second
)

// errOwnerChanging answers what must run on the owner while none is known.
var errOwnerChanging = Errf(CodeUnavailable, "the cluster's customer-service and consultation owner is changing; retry in a few seconds")

// errDomainsLost is logged when a renewal is refused.
var errDomainsLost = errors.New("refused: the lease passed to another node; this node stopped serving customer service and consultations")

type owner struct {
	c      *Core
	k      *cluster
	holder string // node/token
	fence  Fence  // the lease and holder its writes name

	// serving: this node holds the lease and has loaded the states.
	serving atomic.Bool
	// carry: the lease as read before this node took it, kept when the
	// load failed, for the next try (owner.run's goroutine only).
	carry *LeaseInfo
	// seen is the lease's holder as last read (nil: none known).
	seen atomic.Pointer[ownerSeen]

	mu      sync.Mutex
	pending map[uint64][]pendingAct // origin side: conn id → requests forwarded, not answered yet
	waiting atomic.Int32            // len of pending's lists, summed: deliveries look only when > 0
	calls   map[uint64]*pendingCall // origin side: HTTP calls forwarded, by forward id
	nextFwd uint64
}

// ownerSeen is the owner as a node last read it.
type ownerSeen struct {
	node  string
	until time.Time // the lease's end as read (this node's clock)
}

type pendingAct struct {
	id   []byte // the request's id (its reply starts {"reply_to":id,)
	node string // where it went
}

type pendingCall struct {
	cl   *Client
	id   []byte
	node string
}

func newOwner(c *Core) *owner {
	o := &owner{c: c, k: c.cluster, holder: c.cluster.node + "/" + newToken(),
		pending: map[uint64][]pendingAct{}, calls: map[uint64]*pendingCall{}}
	o.fence = Fence{Lease: domainsLease, Holder: o.holder}
	return o
}

// fenced names the domains lease in b when this node is a cluster's
// owner: the store commits it only while the lease is this node's.
func (c *Core) fenced(b *Batch) *Batch {
	if c.owner != nil {
		b.Fence = &c.owner.fence
	}
	return b
}

// holderNode is the node of a lease holder "node/token".
func holderNode(holder string) string {
	node, _, _ := strings.Cut(holder, "/")
	return node
}

// ---- the lease

// run takes the lease when it is free and holds it as long as it can,
// until ctx ends or Drain begins; meanwhile it reads who holds it.
func (o *owner) run(ctx context.Context) {
	c := o.c
	t := time.NewTicker(domainsLeaseRenew)
	defer t.Stop()
	for {
		if prev, ok := o.try(ctx); ok {
			if o.carry != nil { // the last load failed: the lease as it was before it
				prev, o.carry = *o.carry, nil
			}
			o.hold(ctx, prev, t.C)
		}
		select {
		case <-ctx.Done():
			return
		case <-c.drainReq:
			return
		case <-t.C:
		}
	}
}

// try reads the lease; when it is free or expired it takes it and reports
// true with what it read (the previous holder and how long ago its lease
// ended, for consultTakeOver). Otherwise it notes the holder.
func (o *owner) try(ctx context.Context) (LeaseInfo, bool) {
	c := o.c
	tctx, cancel := context.WithTimeout(ctx, domainsLeaseRenew)
	defer cancel()
	prev, err := c.shared.Lease(tctx, domainsLease)
	if err != nil {
		if ctx.Err() == nil {
			c.cfg.LogError("cluster: reading the domains lease", err)
		}
		return prev, false
	}
	if prev.Live() && prev.Holder != o.holder {
		o.seen.Store(&ownerSeen{node: holderNode(prev.Holder), until: time.Now().Add(prev.Left)})
		return prev, false
	}
	o.seen.Store(nil)
	return prev, o.renew(ctx)
}

// look notes the lease's live holder, if another node's: New calls it so
// that a node forwards to the owner from its first request, before its
// owner loop's first try has run (which would answer "owner is
// changing" meanwhile). An error is left to the loop.
func (o *owner) look(ctx context.Context) {
	tctx, cancel := context.WithTimeout(ctx, domainsLeaseRenew)
	defer cancel()
	if l, err := o.c.shared.Lease(tctx, domainsLease); err == nil && l.Live() && l.Holder != o.holder {
		o.seen.Store(&ownerSeen{node: holderNode(l.Holder), until: time.Now().Add(l.Left)})
	}
}

// renew takes or renews the lease; an error counts as refused. A renewal
// that hangs is cut at the renewal period, well before the lease can have
// passed to another node.
func (o *owner) renew(ctx context.Context) bool {
	tctx, cancel := context.WithTimeout(ctx, domainsLeaseRenew)
	defer cancel()
	ok, err := o.c.shared.TryLease(tctx, domainsLease, o.holder, domainsLeaseTTL)
	if err != nil && ctx.Err() == nil {
		o.c.cfg.LogError("cluster: the domains lease", err)
	}
	return ok && err == nil
}

// hold loads the states, serves them and runs their work while the lease
// is renewed at each tick. It returns when a renewal fails or is refused,
// when ctx ends or Drain begins; the work is stopped and the states
// dropped before the lease is released.
func (o *owner) hold(ctx context.Context, prev LeaseInfo, tick <-chan time.Time) {
	c := o.c
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := o.load(wctx, prev); err != nil {
		c.cfg.LogError("cluster: loading customer service and consultations on taking the domains lease", err)
		o.drop()
		// Not released: a release would erase the previous holder, and
		// the next load (here or on another node) would give the
		// consultations back the time used since their checkpoints.
		// This node retries with the same prev while its lease lasts.
		o.carry = &prev
		return
	}
	o.serving.Store(true)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.runService(wctx) }()
	go func() { defer wg.Done(); c.runConsultClock(wctx) }()
	graceful := false // a stop: Drain saved every consultation's checkpoint first
	for lost := false; !lost; {
		select {
		case <-ctx.Done():
			lost, graceful = true, true
		case <-c.drainReq:
			lost, graceful = true, true
		case <-tick:
			if !o.renew(ctx) {
				if ctx.Err() == nil {
					c.cfg.LogError("cluster: renewing the domains lease", errDomainsLost)
				}
				lost = true
			}
		}
	}
	o.serving.Store(false)
	stop()
	wg.Wait()
	o.drop()
	// A lost renewal lets the lease run out instead of releasing it: the
	// next owner then finds this holder and charges the consultations by
	// the wall clock (consultTakeOver), not by the restart rule, which
	// would give back the time used since their last checkpoints.
	if graceful {
		o.release(ctx)
	}
}

func (o *owner) release(ctx context.Context) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), domainsLeaseRenew)
	defer cancel()
	if err := o.c.shared.ReleaseLease(rctx, domainsLease, o.holder); err != nil {
		o.c.cfg.LogError("cluster: releasing the domains lease", err)
	}
}

// load resets both states and loads them from the store. The agents'
// connections are what this node sees now, mirrors included: the hooks
// of devices that came and went before the agents were loaded found
// none, and those after wait for st.mu.
func (o *owner) load(ctx context.Context, prev LeaseInfo) error {
	c := o.c
	st := c.svc
	st.mu.Lock()
	st.reset()
	err := c.svcLoad(ctx)
	if err == nil {
		for _, as := range st.agentsOf {
			for _, a := range as {
				if len(c.userRef(a.rec.App, a.rec.UID).online()) > 0 {
					a.connected = true
					delete(st.watch, a)
				}
			}
		}
	}
	st.mu.Unlock()
	if err != nil {
		return err
	}
	return c.consultTakeOver(ctx, prev) // consult_takeover.go
}

// drop forgets both states (this node no longer owns them).
func (o *owner) drop() {
	st := o.c.svc
	st.mu.Lock()
	st.reset()
	st.mu.Unlock()
	o.c.consultDrop()
}

// reset empties the service state. Called with st.mu held.
func (st *svcState) reset() {
	st.shops = make(map[string]*svcShop)
	st.convs = make(map[SessionID]*svcConv)
	st.customers = make(map[string]*svcConv)
	st.agentsOf = make(map[string][]*svcAgent)
	st.watch = make(map[*svcAgent]struct{})
	st.tail, st.head, st.order, st.autoAt, st.cannedSeq = 0, 0, 0, 0, 0
	st.live.Clear()
	st.agents.Clear()
}

// owns reports whether this node runs the domains' state now: always on
// one node, the lease holder (once loaded) in a cluster.
func (c *Core) owns() bool { return c.owner == nil || c.owner.serving.Load() }

// current is the owner's node as this node knows it: "" when none is
// known, its lease ended, or its node is presumed dead (broker.go).
func (o *owner) current() string {
	s := o.seen.Load()
	if s == nil || s.node == o.k.node || time.Now().After(s.until) {
		return ""
	}
	o.k.mu.RLock()
	_, alive := o.k.nodes[s.node]
	o.k.mu.RUnlock()
	if !alive {
		return ""
	}
	return s.node
}

// ---- forwarding (the origin's side)

// forward sends r to the owner when it must run there, and reports
// whether it took it (answered or forwarded). Called by handle on a
// cluster node that is not serving.
func (o *owner) forward(ctx context.Context, cl *Client, r *request, b []byte) bool {
	if !o.c.domainRequest(ctx, cl.id.App, r) {
		return false
	}
	node := o.current()
	if node == "" || fromNode(cl) {
		// A mirror's request came from another node that took this one
		// for the owner: it no longer is (or is not yet); its client
		// retries.
		cl.refuse(r.ID, errOwnerChanging)
		return true
	}
	k := o.k
	k.mu.RLock()
	conn, announced := k.ids[cl]
	k.mu.RUnlock()
	m := appendStr([]byte{bkAct}, k.node)
	if announced {
		m = binary.AppendUvarint(m, conn)
		if len(r.ID) > 0 {
			o.mu.Lock()
			o.pending[conn] = append(o.pending[conn], pendingAct{id: append([]byte(nil), r.ID...), node: node})
			o.waiting.Add(1)
			o.mu.Unlock()
		}
	} else {
		// Not a connection the owner knows (Core.Do): the call carries
		// its identity and waits for an act reply.
		o.mu.Lock()
		o.nextFwd++
		fwd := o.nextFwd
		o.calls[fwd] = &pendingCall{cl: cl, id: append([]byte(nil), r.ID...), node: node}
		o.mu.Unlock()
		m = binary.AppendUvarint(m, 0)
		m = binary.AppendUvarint(m, fwd)
		m = appendStr(appendStr(m, cl.id.App), cl.id.UID)
	}
	if err := k.b.Publish(node, append(m, b...)); err != nil {
		k.c.cfg.LogError("cluster: forwarding a request to the domains' owner "+node, err)
		o.answerPending(node)
		return true
	}
	// The owner may have been presumed dead between current() and the
	// entry above: its drop answered what was pending then, not this.
	// Answer it now (an entry is taken once, by whichever looks first).
	k.mu.RLock()
	_, alive := k.nodes[node]
	k.mu.RUnlock()
	if !alive {
		o.answerPending(node)
	}
	return true
}

// fromNode reports whether cl runs a request another node forwarded.
func fromNode(cl *Client) bool {
	switch cl.peer.(type) {
	case *mirrorPeer, *callPeer:
		return true
	}
	return false
}

// domainRequest reports whether r uses the domains' state: a customer
// service or consultation action, or a send or forward into a service or
// consultation session.
func (c *Core) domainRequest(ctx context.Context, app string, r *request) bool {
	switch a := r.Action; {
	case isServiceAction(a) || strings.HasPrefix(a, "consult_"):
		return true
	case a == "send":
		return c.domainSession(ctx, app, r.SessionID)
	case a == "forward":
		for _, sid := range r.ToSessions {
			if c.domainSession(ctx, app, sid) {
				return true
			}
		}
	}
	return false
}

// DomainSession reports whether a send into session sid of app must run
// on the domains' owner: this node is in a cluster and sid is a customer
// service or consultation session (a send there reopens a resolved
// conversation, starts a consultation's clock on the consultant's first
// reply, and its event carries the shop and the sender's role: the
// owner's state). The host API forwards such a send to the owner
// (httpapi/forward.go). On one node it is false at once, nothing read.
func (c *Core) DomainSession(ctx context.Context, app string, sid SessionID) bool {
	return c.owner != nil && c.domainSession(ctx, app, sid)
}

// domainSession reports whether sid is a service or consultation session
// of app (cached, else read; an error leaves the request to the local
// path, which answers it).
func (c *Core) domainSession(ctx context.Context, app string, sid SessionID) bool {
	if sid == 0 {
		return false
	}
	s, err := c.session(ctx, app, sid)
	return err == nil && (s.kind == KindService || s.kind == KindConsult)
}

// delivered notes a reply the owner sent to this node's connection conn:
// the request it answers is no longer pending. Cheap unless requests are
// pending.
func (o *owner) delivered(conn uint64, frame []byte) {
	if o.waiting.Load() == 0 {
		return
	}
	rest, ok := bytes.CutPrefix(frame, []byte(`{"reply_to":`))
	if !ok {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	list := o.pending[conn]
	for i, p := range list {
		if len(rest) > len(p.id) && bytes.HasPrefix(rest, p.id) && rest[len(p.id)] == ',' {
			if len(list) == 1 {
				delete(o.pending, conn)
			} else {
				o.pending[conn] = append(list[:i:i], list[i+1:]...)
			}
			o.waiting.Add(-1)
			return
		}
	}
}

// forget drops what is pending for this node's connection conn: it
// closed. Called with the cluster's mu held.
func (o *owner) forget(conn uint64) {
	if o.waiting.Load() == 0 {
		return
	}
	o.mu.Lock()
	o.waiting.Add(-int32(len(o.pending[conn])))
	delete(o.pending, conn)
	o.mu.Unlock()
}

// answerPending answers unavailable the requests forwarded to node that
// are still waiting: it died or restarted, or the forward failed. A late reply from it finds its client answered already, and
// reaches it as an extra frame the client ignores.
func (o *owner) answerPending(node string) {
	type answer struct {
		cl   *Client
		conn uint64 // a local connection's, resolved after o.mu: the cluster's mu is taken before o.mu (forget), never under it
		id   []byte
	}
	var out []answer
	o.mu.Lock()
	if o.waiting.Load() > 0 {
		for conn, list := range o.pending {
			keep := list[:0]
			for _, p := range list {
				if p.node != node {
					keep = append(keep, p)
					continue
				}
				o.waiting.Add(-1)
				out = append(out, answer{conn: conn, id: p.id})
			}
			if len(keep) == 0 {
				delete(o.pending, conn)
			} else {
				o.pending[conn] = keep
			}
		}
	}
	for fwd, p := range o.calls {
		if p.node == node {
			delete(o.calls, fwd)
			out = append(out, answer{cl: p.cl, id: p.id})
		}
	}
	o.mu.Unlock()
	for _, a := range out {
		if a.cl == nil {
			if a.cl = o.k.localConn(a.conn); a.cl == nil {
				continue // closed meanwhile
			}
		}
		a.cl.refuse(a.id, errOwnerChanging)
	}
}

// callReply hands an act reply to the HTTP call waiting for it.
func (o *owner) callReply(fwd uint64, frame []byte) {
	o.mu.Lock()
	p := o.calls[fwd]
	delete(o.calls, fwd)
	o.mu.Unlock()
	if p != nil {
		p.cl.reply(frame)
	}
}

// ---- the owner's side

// act runs a request forwarded by node: for its connection conn, with
// that connection's mirror, queued behind its earlier ones; for an HTTP
// call (conn 0), with a client of its own whose replies go back as an act
// reply.
func (o *owner) act(node string, r *brokerMsg) error {
	k := o.k
	conn := r.uvarint()
	if r.bad {
		return errBadBrokerMsg
	}
	if conn == 0 {
		fwd := r.uvarint()
		app, uid := r.str(), r.str()
		if r.bad {
			return errBadBrokerMsg
		}
		cl := &Client{core: o.c, peer: &callPeer{k: k, node: node, fwd: fwd}}
		cl.u, cl.id = o.c.userEntry(app, uid)
		cl.loggedIn.Store(true) // not registered: it receives no events, as Core.Do's
		cl.enqueue(r.b)
		return nil
	}
	k.mu.RLock()
	var m *Client
	if n := k.nodes[node]; n != nil {
		m = n.conns[conn]
	}
	k.mu.RUnlock()
	if m == nil {
		// Not heard of yet (this node just started) or gone: the origin
		// connection is told directly.
		p := &mirrorPeer{k: k, node: node, conn: conn}
		p.Send(appendErrorFull(nil, peekID(r.b), errOwnerChanging))
		return nil
	}
	m.enqueue(r.b)
	return nil
}

// callPeer is the Peer of a forwarded HTTP call on the owner: its replies
// go back to the origin node as act replies.
type callPeer struct {
	k    *cluster
	node string
	fwd  uint64
}

func (p *callPeer) Send(frame []byte) bool {
	m := binary.AppendUvarint([]byte{bkActReply}, p.fwd)
	return p.k.b.Publish(p.node, append(m, frame...)) == nil
}

func (p *callPeer) Close(int, string)  {}
func (p *callPeer) RemoteAddr() string { return "node " + p.node }
