package chat

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Forwarding: a request/reply over the broker (docs/cluster.md,
// "Forwarding host calls"). Some work runs on one node only, the holder
// of a store lease (the webhook dispatcher, customer service and
// consultations); a node that receives a call for it sends the call to
// that node and waits for its answer.
//
// A request is one or more bkRequest messages to the target node, a reply
// one or more bkReply messages back: the broker keeps one node's messages
// in order, so a payload larger than the broker's message limit goes in
// pieces that the other side appends until the one marked last. A
// request carries its origin, an id the origin chose, and on its first
// piece a topic (which handler serves it) and how long the origin waits.
//
// The target serves each origin's requests concurrently, at most
// ForwardInFlight at a time (the next ones are answered busy at once),
// each on its own goroutine under the origin's deadline. The origin waits
// for the reply, its context, or the target's loss (a bye, or no
// heartbeat for clusterDead), whichever comes first. A reply that comes
// after its requester gave up is dropped.

// The pieces' flags.
const (
	fwdFirst = 1 << iota
	fwdLast
)

// Reply statuses.
const (
	fwdOK        = iota
	fwdBusy      // ForwardInFlight requests of the origin in progress
	fwdNoHandler // nothing serves the topic on the target
	fwdTooLarge  // the request is over ForwardMaxSize
	fwdFailed    // the handler returned an error: its message follows
)

// Forwarding's limits.
const (
	// ForwardInFlight is how many requests of one origin a node serves at
	// once.
	ForwardInFlight = 64
	// ForwardMaxSize bounds a request's and a reply's payload.
	ForwardMaxSize = 16 << 20
	// ForwardTimeout is how long a request waits when its context has no
	// deadline.
	ForwardTimeout = 30 * time.Second
	// defaultMaxPayload is the broker's message limit when it does not
	// say (NATS's default).
	defaultMaxPayload = 1 << 20
	// fwdHeadroom is what a piece's head takes at most: kind, node (64),
	// id, status, flags, topic (maxTopic), timeout.
	fwdHeadroom = 256
	maxTopic    = 64
)

// Forwarding's errors; Forward wraps them with the node's id.
var (
	// ErrForwardUnknown: the target is not a node this node hears
	// (stopped, silent for 3 s, or never there); nothing was sent.
	ErrForwardUnknown = errors.New("no such node in the cluster (stopped, silent for 3 s, or never there)")
	// ErrForwardGone: the target left the cluster (stopped, or silent for
	// 3 s) while this node waited for its answer. The request may have
	// run.
	ErrForwardGone = errors.New("the node left the cluster before it answered")
	// ErrForwardTimeout: no answer before the context ended. The request
	// may have run.
	ErrForwardTimeout = errors.New("the node did not answer in time")
	// ErrForwardBusy: the target serves ForwardInFlight requests of this
	// node already; nothing ran.
	ErrForwardBusy = errors.New("the node is serving too many forwarded requests from this node")
	// ErrForwardTooLarge: the payload is over ForwardMaxSize; nothing ran.
	ErrForwardTooLarge = fmt.Errorf("over the %d MiB a forwarded request or reply may carry", ForwardMaxSize>>20)
	// ErrForwardNoHandler: nothing serves the topic on the target (it is
	// starting, or runs another version); nothing ran.
	ErrForwardNoHandler = errors.New("the node does not serve this kind of request")
	// ErrForwardFailed: the target's handler returned an error.
	ErrForwardFailed = errors.New("the node failed the request")
	// ErrNoCluster: this node is not in a cluster (Config.Broker nil), or
	// the target is this node.
	ErrNoCluster = errors.New("no other node to forward to")
)

// ForwardHandler serves the requests of one topic on the target node:
// origin is the requesting node, req the payload (the handler's to
// keep). ctx ends at the origin's deadline. The reply is the handler's
// answer; an error is sent back as ErrForwardFailed with its message.
type ForwardHandler func(ctx context.Context, origin string, req []byte) ([]byte, error)

// forwarder is a cluster's side of forwarding.
//
// Owner: mu guards the maps; it is never held while calling the broker or
// a handler.
type forwarder struct {
	mu       sync.Mutex
	next     uint64                    // the last request id handed out
	waiting  map[uint64]*fwdCall       // this node's requests by id
	partial  map[fwdKey]*fwdPartial    // requests arriving in pieces
	inflight map[string]int            // per origin: requests being assembled or served
	handlers map[string]ForwardHandler // by topic
	leases   map[string]leaseSeen      // LeaseNode's cache
	busy     atomic.Int64              // busy answers given (tests, metrics)
	chunk    atomic.Int64              // a piece's data at most (0: from the broker)
}

// fwdCall is a request waiting for its reply.
type fwdCall struct {
	node   string
	status byte
	buf    []byte
	done   chan struct{} // closed once the last piece (or the node's loss) arrived
	gone   bool
}

type fwdKey struct {
	origin string
	id     uint64
}

// fwdPartial is a request whose pieces are arriving.
type fwdPartial struct {
	topic    string
	timeout  time.Duration
	deadline int64 // unix ms, core clock: dropped after it
	buf      []byte
}

// leaseSeen is a lease's holder as last read.
type leaseSeen struct {
	at     int64 // unix ms, core clock
	holder string
	left   time.Duration
}

// HandleForward sets the handler of topic's forwarded requests on this
// node (nil removes it). Without a cluster it does nothing.
func (c *Core) HandleForward(topic string, h ForwardHandler) {
	if c.cluster == nil {
		return
	}
	if topic == "" || len(topic) > maxTopic {
		panic("chat: HandleForward: topic must be 1-64 bytes")
	}
	f := &c.cluster.fwd
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.handlers == nil {
		f.handlers = map[string]ForwardHandler{}
	}
	if h == nil {
		delete(f.handlers, topic)
	} else {
		f.handlers[topic] = h
	}
}

// Node is this node's id in the cluster ("" on a single node).
func (c *Core) Node() string {
	if c.cluster == nil {
		return ""
	}
	return c.cluster.node
}

// chunkSize is the data one piece carries.
func (k *cluster) chunkSize() int {
	if n := k.fwd.chunk.Load(); n > 0 {
		return int(n)
	}
	max := int64(defaultMaxPayload)
	if mp, ok := k.b.(interface{ MaxPayload() int64 }); ok && mp.MaxPayload() > 2*fwdHeadroom {
		max = mp.MaxPayload()
	}
	return int(max) - fwdHeadroom
}

// Forward sends req to node's handler of topic and returns its reply.
// It waits until ctx ends (ForwardTimeout when ctx has no deadline). The
// errors wrap ErrForwardUnknown, ErrForwardGone, ErrForwardTimeout, ErrForwardBusy,
// ErrForwardTooLarge, ErrForwardNoHandler, ErrForwardFailed or
// ErrNoCluster (their comments say whether the request may have run).
func (c *Core) Forward(ctx context.Context, node, topic string, req []byte) ([]byte, error) {
	k := c.cluster
	if k == nil || node == k.node || node == "" {
		return nil, ErrNoCluster
	}
	if len(req) > ForwardMaxSize {
		return nil, fmt.Errorf("forward to node %s: %w", node, ErrForwardTooLarge)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ForwardTimeout)
		defer cancel()
	}
	dl, _ := ctx.Deadline()
	timeout := time.Until(dl)
	if timeout <= 0 {
		return nil, fmt.Errorf("forward to node %s: %w", node, ErrForwardTimeout)
	}
	k.mu.RLock()
	_, known := k.nodes[node]
	k.mu.RUnlock()
	if !known {
		return nil, fmt.Errorf("forward to node %s: %w", node, ErrForwardUnknown)
	}
	f := &k.fwd
	call := &fwdCall{node: node, done: make(chan struct{})}
	f.mu.Lock()
	if f.next == 0 {
		// Ids of this run of the process: a restarted node's requests
		// never take the ids of its last run's (still being assembled or
		// answered on other nodes).
		f.next = uint64(time.Now().UnixNano())
	}
	f.next++
	id := f.next
	if f.waiting == nil {
		f.waiting = map[uint64]*fwdCall{}
	}
	f.waiting[id] = call
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.waiting, id)
		f.mu.Unlock()
	}()

	head := binary.AppendUvarint(appendStr([]byte{bkRequest}, k.node), id)
	chunk := k.chunkSize()
	for off, first := 0, true; first || off < len(req); first = false {
		end := min(off+chunk, len(req))
		m := append([]byte(nil), head...)
		flags := byte(0)
		if first {
			flags |= fwdFirst
		}
		if end == len(req) {
			flags |= fwdLast
		}
		m = append(m, flags)
		if first {
			m = binary.AppendUvarint(appendStr(m, topic), uint64(timeout.Milliseconds()))
		}
		m = append(m, req[off:end]...)
		if err := k.b.Publish(node, m); err != nil {
			return nil, fmt.Errorf("forward to node %s: %w", node, err)
		}
		off = end
	}
	select {
	case <-call.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("forward to node %s: %w", node, ErrForwardTimeout)
	}
	if call.gone {
		return nil, fmt.Errorf("forward to node %s: %w", node, ErrForwardGone)
	}
	switch call.status {
	case fwdOK:
		return call.buf, nil
	case fwdBusy:
		return nil, fmt.Errorf("forward to node %s: %w", node, ErrForwardBusy)
	case fwdNoHandler:
		return nil, fmt.Errorf("forward to node %s: %w (topic %q)", node, ErrForwardNoHandler, topic)
	case fwdTooLarge:
		return nil, fmt.Errorf("forward to node %s: %w", node, ErrForwardTooLarge)
	default:
		return nil, fmt.Errorf("forward to node %s: %w: %s", node, ErrForwardFailed, call.buf)
	}
}

// takeReply handles a bkReply piece from node.
func (k *cluster) takeReply(node string, r *brokerMsg) error {
	id := r.uvarint()
	status, flags := r.byte1(), r.byte1()
	if r.bad {
		return errBadBrokerMsg
	}
	f := &k.fwd
	f.mu.Lock()
	defer f.mu.Unlock()
	call := f.waiting[id]
	if call == nil || call.node != node || call.gone {
		return nil // its requester gave up
	}
	select {
	case <-call.done:
		return nil // complete already: a duplicate
	default:
	}
	if len(call.buf)+len(r.b) > ForwardMaxSize {
		status, flags = fwdTooLarge, fwdLast
		call.buf = nil
	} else {
		call.buf = append(call.buf, r.b...)
	}
	call.status = status
	if flags&fwdLast != 0 {
		close(call.done)
	}
	return nil
}

// serveRequest handles a bkRequest piece from origin: it gathers the
// pieces and, on the last, serves the request on a goroutine of its own.
func (k *cluster) serveRequest(origin string, r *brokerMsg) error {
	id := r.uvarint()
	flags := r.byte1()
	var topic string
	var timeout uint64
	if flags&fwdFirst != 0 {
		topic, timeout = r.str(), r.uvarint()
	}
	if r.bad {
		return errBadBrokerMsg
	}
	f := &k.fwd
	key := fwdKey{origin, id}
	now := k.c.nowMS()
	f.mu.Lock()
	p := f.partial[key]
	if flags&fwdFirst != 0 {
		f.expireLocked(origin, now)
		if p != nil || f.inflight[origin] >= ForwardInFlight {
			f.mu.Unlock()
			f.busy.Add(1)
			k.reply(origin, id, fwdBusy, nil)
			return nil
		}
		if f.inflight == nil {
			f.inflight = map[string]int{}
			f.partial = map[fwdKey]*fwdPartial{}
		}
		f.inflight[origin]++
		d := time.Duration(timeout) * time.Millisecond
		p = &fwdPartial{topic: topic, timeout: d, deadline: now + d.Milliseconds()}
		f.partial[key] = p
	} else if p == nil {
		f.mu.Unlock()
		return nil // the rest of a request answered busy, or expired
	}
	if len(p.buf)+len(r.b) > ForwardMaxSize {
		delete(f.partial, key)
		f.doneLocked(origin)
		f.mu.Unlock()
		k.reply(origin, id, fwdTooLarge, nil)
		return nil
	}
	p.buf = append(p.buf, r.b...)
	if flags&fwdLast == 0 {
		f.mu.Unlock()
		return nil
	}
	delete(f.partial, key)
	h := f.handlers[p.topic]
	f.mu.Unlock()
	if h == nil {
		f.done(origin)
		k.reply(origin, id, fwdNoHandler, nil)
		return nil
	}
	go func() {
		defer f.done(origin)
		ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
		defer cancel()
		out, err := h(ctx, origin, p.buf)
		switch {
		case err != nil:
			k.reply(origin, id, fwdFailed, []byte(err.Error()))
		case len(out) > ForwardMaxSize:
			k.reply(origin, id, fwdTooLarge, nil)
		default:
			k.reply(origin, id, fwdOK, out)
		}
	}()
	return nil
}

// expireLocked drops origin's partial requests past their deadline (an
// origin that died between pieces). Called with f.mu held.
func (f *forwarder) expireLocked(origin string, now int64) {
	for key, p := range f.partial {
		if key.origin == origin && p.deadline < now {
			delete(f.partial, key)
			f.doneLocked(origin)
		}
	}
}

func (f *forwarder) done(origin string) {
	f.mu.Lock()
	f.doneLocked(origin)
	f.mu.Unlock()
}

func (f *forwarder) doneLocked(origin string) {
	if f.inflight[origin]--; f.inflight[origin] <= 0 {
		delete(f.inflight, origin)
	}
}

// reply sends a reply to origin, in pieces.
func (k *cluster) reply(origin string, id uint64, status byte, data []byte) {
	head := binary.AppendUvarint(appendStr([]byte{bkReply}, k.node), id)
	head = append(head, status)
	chunk := k.chunkSize()
	for off, first := 0, true; first || off < len(data); first = false {
		end := min(off+chunk, len(data))
		flags := byte(0)
		if end == len(data) {
			flags = fwdLast
		}
		m := append(append(append([]byte(nil), head...), flags), data[off:end]...)
		if err := k.b.Publish(origin, m); err != nil {
			k.c.cfg.LogError("cluster: the reply to a forwarded request of node "+origin, err)
			return
		}
		off = end
	}
}

// forwardGone fails this node's requests waiting on node (it stopped or
// is presumed dead) and forgets node's half-arrived requests.
func (k *cluster) forwardGone(node string) {
	f := &k.fwd
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, call := range f.waiting {
		if call.node != node || call.gone {
			continue
		}
		select {
		case <-call.done:
		default:
			call.gone = true
			close(call.done)
		}
	}
	for key := range f.partial {
		if key.origin == node {
			delete(f.partial, key)
			f.doneLocked(node)
		}
	}
	for name, l := range f.leases {
		if h, _, _ := strings.Cut(l.holder, "/"); h == node {
			delete(f.leases, name)
		}
	}
}

// leaseCacheMS is how long LeaseNode trusts what it read.
const leaseCacheMS = 1000

// LeaseNode says which node holds the store lease name, for forwarding
// the lease's work to it: node is the holder's node id (a holder string
// is "node/token"), self whether that is this node. It reads the store at
// most once a second per lease (ForgetLeaseNode reads again at the next
// call). On a single node (no broker) self is always true and nothing is
// read.
//
// A lease nobody holds (never taken, or released) gives self: the work
// is this node's as much as any node's. A lease whose holder stopped
// renewing it (expired, not yet taken over) gives an unavailable error
// naming the lease, unless the holder was this node.
func (c *Core) LeaseNode(ctx context.Context, name string) (node string, self bool, err error) {
	k := c.cluster
	if k == nil {
		return "", true, nil
	}
	f := &k.fwd
	now := c.nowMS()
	f.mu.Lock()
	l, ok := f.leases[name]
	f.mu.Unlock()
	if !ok || now-l.at >= leaseCacheMS || now < l.at {
		info, err := c.shared.Lease(ctx, name)
		if err != nil {
			return "", false, c.clientError("reading the holder of the lease \""+name+"\"", err)
		}
		l = leaseSeen{at: now, holder: info.Holder, left: info.Left}
		f.mu.Lock()
		if f.leases == nil {
			f.leases = map[string]leaseSeen{}
		}
		f.leases[name] = l
		f.mu.Unlock()
	}
	if l.holder == "" {
		return k.node, true, nil
	}
	node, _, _ = strings.Cut(l.holder, "/")
	if node == k.node {
		return node, true, nil
	}
	if l.left-time.Duration(now-l.at)*time.Millisecond <= 0 {
		return "", false, Errf(CodeUnavailable, "the lease \""+name+"\" is moving: its holder, node "+node+
			", stopped renewing it and no node has taken it over yet; retry in a few seconds")
	}
	return node, false, nil
}

// ForgetLeaseNode drops what LeaseNode read of name: the next call reads
// the store (a forward to the node it named failed).
func (c *Core) ForgetLeaseNode(name string) {
	if k := c.cluster; k != nil {
		k.fwd.mu.Lock()
		delete(k.fwd.leases, name)
		k.fwd.mu.Unlock()
	}
}
