package chat

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"time"
)

// A cluster of chatd nodes (docs/cluster.md): several cores on one
// shared store (shared.go), each with its own connections, joined by a
// Broker that carries what one node must tell the others.
//
// Remote devices are mirror clients. When a connection logs in on node A,
// A publishes "up" (its conn id, app, uid, platform, token tag); every
// other node adds a mirror *Client to that user's online set, whose Peer
// (mirrorPeer) publishes "deliver" (conn id + frame) to A on Send and
// "kick" on Close. Every fan-out of the core walks u.online() and calls
// the peers' Send, so messages, typing, presence, read receipts, service
// events … cross nodes without the domains knowing. A logout publishes
// "down". Mirrors are only ever added and removed here: they never run
// the login side effects (presence, webhooks, service agents, stats of
// connections), which belong to the node owning the connection, and the
// "first device"/"last device" tests those side effects hang on count the
// mirrors, so a user online on two nodes is announced once.
//
// A node starting says "hello"; the others answer with their connections.
// Each node sends a heartbeat every clusterBeat (on the core's clock,
// Config.Now); one not heard for clusterDead is presumed dead and its
// mirrors are dropped. A commit that changes sessions or members
// publishes "invalidate", and the other nodes reload those sessions'
// cached rosters from the store (finishCommit, refreshSessions).
//
// With Config.Broker nil none of this exists: Core.cluster is nil and the
// login, send and fan-out paths only test that.

// Broker carries messages between the nodes of a cluster. The core
// declares it; package cluster implements it on NATS.
type Broker interface {
	// Node is this node's id, unique in the cluster and stable while the
	// process runs.
	Node() string
	// Publish sends msg to node, or to every other node when node is "".
	// msg is borrowed: the broker copies what it keeps. Messages one node
	// publishes reach each receiver in the order published. It never
	// blocks for long (a full buffer is an error).
	Publish(node string, msg []byte) error
	// Subscribe calls fn with each message addressed to this node or
	// broadcast by another node, one at a time, in order. msg is fn's to
	// keep. fn must not block for long.
	Subscribe(fn func(msg []byte)) error
}

// clusterBeat is how often a node says it is alive; one not heard for
// clusterDead is presumed dead.
const (
	clusterBeat = time.Second
	clusterDead = 3 * clusterBeat
)

// upChunk is how many connections one "up" message lists at most (a
// hello's answer).
const upChunk = 500

// Broker message kinds: the first byte.
const (
	bkUp      = 'u' // node, then per connection: conn, login time (unix ms), platform, token tag (8 bytes), app, uid
	bkDown    = 'd' // node, conn, gone (1 byte): the owner has no device of the user left and announced no offline
	bkDeliver = 'm' // conn, frame (the rest)
	bkKick    = 'k' // conn, code, reason (the rest)
	bkHello   = 'h' // node, back (1 byte): "send me your connections" (and, with back, "ask me for mine")
	bkBeat    = 'b' // node
	bkBye     = 'x' // node: stopping
	bkInval   = 'i' // node, count, session ids
	bkSubs    = 's' // node, count, filters: its subscribers' (clusterstream.go)
	bkEvents  = 'e' // node, count, events (JSON) for this node's subscribers (clusterstream.go)
	bkCache   = 'c' // node, count, (cache kind, key) pairs: cached copies to drop (coherent.go)
	bkRequest = 'q' // node (origin), request id, flags, [first: topic, timeout ms], data (forward.go)
	bkReply   = 'r' // node (responder), request id, status, flags, data (forward.go)

	// The domains' owner (owner.go).
	bkAct      = 'a' // node, conn, frame (the rest); conn 0: forward id, app, uid, frame — an HTTP call
	bkActReply = 'y' // forward id, frame (the rest): the reply to an HTTP call's act
)

// cluster is a core's side of the broker.
//
// Owner: mu guards every map below, and is held across the online-set
// change of a device (local or mirror) and the publishing of its up or
// down, so that the other nodes see them in the order they happened.
// Taken under it: user.mu, Core.mu (userEntry) and the broker's own
// locks; it is never held while calling a Peer or the store.
type cluster struct {
	c    *Core
	b    Broker
	node string

	mu    sync.RWMutex
	next  uint64                 // the last conn id handed out
	local map[uint64]*Client     // this node's announced connections by conn id
	at    map[uint64]int64       // and when they logged in (unix ms): the device order (devices_cluster.go)
	ids   map[*Client]uint64     // and their conn ids
	nodes map[string]*remoteNode // the other nodes heard from
	// owed: users whose last local device left while mirrors remained
	// (nobody announced them offline yet; see removeMirror).
	owed map[*user]struct{}

	refreshing sync.WaitGroup // reloads of invalidated sessions in progress

	stream *clusterStream // the subscriber stream of the cluster (clusterstream.go)
	gens   cacheGens      // the caches' generations (coherent.go)
	fwd    forwarder      // requests to and from other nodes (forward.go)
}

// remoteNode is what a node knows of another.
type remoteNode struct {
	seen  int64              // unix ms of the last message from it (core's clock)
	conns map[uint64]*Client // its connections' mirrors by its conn ids
}

func newCluster(c *Core, b Broker) *cluster {
	k := &cluster{c: c, b: b, node: b.Node(), local: map[uint64]*Client{}, at: map[uint64]int64{}, ids: map[*Client]uint64{},
		nodes: map[string]*remoteNode{}, owed: map[*user]struct{}{}}
	k.stream = newClusterStream(k)
	c.bus.changed = k.stream.changed
	return k
}

// mirrorPeer is the Peer of a mirror: a connection on another node.
type mirrorPeer struct {
	k    *cluster
	node string
	conn uint64
	at   int64 // when it logged in (unix ms, its node's clock): the device order (devices_cluster.go)
}

// encBufs are the buffers deliveries are encoded in (the broker copies).
var encBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (p *mirrorPeer) Send(frame []byte) bool {
	bp := encBufs.Get().(*[]byte)
	m := binary.AppendUvarint(append((*bp)[:0], bkDeliver), p.conn)
	m = append(m, frame...)
	err := p.k.b.Publish(p.node, m)
	if cap(m) <= 64<<10 {
		*bp = m
		encBufs.Put(bp)
	}
	return err == nil
}

func (p *mirrorPeer) Close(code int, reason string) {
	m := binary.AppendUvarint([]byte{bkKick}, p.conn)
	m = binary.AppendUvarint(m, uint64(code))
	_ = p.k.b.Publish(p.node, append(m, reason...))
}

func (p *mirrorPeer) RemoteAddr() string { return "node " + p.node }

// isMirror reports whether cl is a connection on another node.
func isMirror(cl *Client) bool {
	_, ok := cl.peer.(*mirrorPeer)
	return ok
}

// appendStr appends s with its length.
func appendStr(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// appendUpConn appends one connection of an "up" message.
func appendUpConn(b []byte, id uint64, cl *Client, at int64) []byte {
	b = binary.AppendUvarint(b, id)
	b = binary.AppendUvarint(b, uint64(at))
	b = append(b, cl.platform)
	b = binary.LittleEndian.AppendUint64(b, cl.token)
	return appendStr(appendStr(b, cl.id.App), cl.id.UID)
}

func (k *cluster) publish(node string, m []byte) {
	if err := k.b.Publish(node, m); err != nil {
		k.c.cfg.LogError("cluster: publish to "+orAll(node), err)
	}
}

func orAll(node string) string {
	if node == "" {
		return "all nodes"
	}
	return "node " + node
}

// addLocal registers a logged-in connection of this node (u.add) and
// announces it; it reports whether it is the user's first device in the
// cluster (mirrors count).
func (k *cluster) addLocal(cl *Client) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	first := cl.u.add(cl)
	delete(k.owed, cl.u)
	if !cl.loggedIn.Load() {
		return first // closed meanwhile: its logout found nothing to announce
	}
	k.next++
	k.local[k.next] = cl
	k.at[k.next] = k.c.nowMS()
	k.ids[cl] = k.next
	k.publish("", appendUpConn(appendStr([]byte{bkUp}, k.node), k.next, cl, k.at[k.next]))
	return first
}

// removeLocal unregisters a connection of this node (u.remove) and
// announces it; it reports whether it was the user's last device in the
// cluster.
func (k *cluster) removeLocal(cl *Client) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	last := cl.u.remove(cl)
	gone := false
	if !last && !hasLocal(cl.u) {
		// Only mirrors remain: their nodes may be losing them right
		// now too, each seeing ours; removeMirror settles who tells.
		gone = true
		k.owed[cl.u] = struct{}{}
	}
	id, ok := k.ids[cl]
	if !ok {
		return last
	}
	delete(k.ids, cl)
	delete(k.local, id)
	delete(k.at, id)
	if o := k.c.owner; o != nil {
		o.forget(id) // owner.go
	}
	m := binary.AppendUvarint(appendStr([]byte{bkDown}, k.node), id)
	k.publish("", append(m, b2byte(gone)))
	return last
}

func hasLocal(u *user) bool {
	for _, o := range u.online() {
		if !isMirror(o) {
			return true
		}
	}
	return false
}

func b2byte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// dropMirror is logout of a mirror (a kick decided on this node: the
// owner is told by the mirror's Close, and then announces its down).
func (k *cluster) dropMirror(m *Client) {
	p := m.peer.(*mirrorPeer)
	k.mu.Lock()
	if n := k.nodes[p.node]; n != nil && n.conns[p.conn] == m {
		delete(n.conns, p.conn)
	}
	if m.u.remove(m) {
		k.c.stats.usersOnline.Add(-1)
		k.c.svcAgentHook(m.id.App, m.id.UID)
	}
	k.mu.Unlock()
}

// receive handles one broker message (Broker.Subscribe's fn).
func (k *cluster) receive(msg []byte) {
	if err := k.handle(msg); err != nil {
		k.c.cfg.LogError("cluster: a broker message", err)
	}
}

var errBadBrokerMsg = errors.New("malformed broker message")

// brokerMsg decodes a broker message.
type brokerMsg struct {
	b   []byte
	bad bool
}

func (r *brokerMsg) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *brokerMsg) bytes(n uint64) []byte {
	if uint64(len(r.b)) < n {
		r.bad, r.b = true, nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *brokerMsg) str() string { return string(r.bytes(r.uvarint())) }

func (r *brokerMsg) byte1() byte {
	if b := r.bytes(1); len(b) == 1 {
		return b[0]
	}
	return 0
}

// localConn returns this node's connection id (nil: gone meanwhile).
func (k *cluster) localConn(id uint64) *Client {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.local[id]
}

func (k *cluster) handle(msg []byte) error {
	if len(msg) == 0 {
		return errBadBrokerMsg
	}
	r := &brokerMsg{b: msg[1:]}
	switch msg[0] {
	case bkDeliver:
		id := r.uvarint()
		if r.bad {
			return errBadBrokerMsg
		}
		if cl := k.localConn(id); cl != nil {
			cl.reply(r.b)
		}
		if o := k.c.owner; o != nil {
			o.delivered(id, r.b) // a forwarded request's reply?
		}
		return nil
	case bkActReply:
		fwd := r.uvarint()
		if r.bad || k.c.owner == nil {
			return errBadBrokerMsg
		}
		k.c.owner.callReply(fwd, r.b)
		return nil
	case bkKick:
		id, code := r.uvarint(), r.uvarint()
		if r.bad {
			return errBadBrokerMsg
		}
		if cl := k.localConn(id); cl != nil {
			reason := string(r.b)
			k.c.logout(cl, reason)
			cl.peer.Close(int(code), reason)
		}
		return nil
	}
	node := r.str()
	if r.bad || node == "" || node == k.node {
		return errBadBrokerMsg
	}
	switch msg[0] {
	case bkUp:
		return k.addMirrors(node, r)
	case bkDown:
		id := r.uvarint()
		gone := r.byte1() == 1
		if r.bad {
			return errBadBrokerMsg
		}
		k.removeMirror(node, id, gone)
	case bkHello:
		back := r.byte1() == 1
		k.hello(node, back)
	case bkBeat:
		k.mu.Lock()
		n := k.nodes[node]
		if n != nil {
			n.seen = k.c.nowMS()
		} else {
			// Not known (new, or presumed dead and back): exchange
			// connections with it.
			k.nodes[node] = &remoteNode{seen: k.c.nowMS(), conns: map[uint64]*Client{}}
		}
		k.mu.Unlock()
		if n == nil {
			k.publish(node, append(appendStr([]byte{bkHello}, k.node), 1))
		}
	case bkBye:
		k.dropNode(node, true)
	case bkSubs:
		return k.stream.learn(node, r)
	case bkEvents:
		return k.stream.receive(node, r)
	case bkCache:
		return k.cacheInvalidated(r)
	case bkRequest:
		return k.serveRequest(node, r) // forward.go
	case bkReply:
		return k.takeReply(node, r)
	case bkAct:
		if k.c.owner == nil {
			return errBadBrokerMsg
		}
		return k.c.owner.act(node, r)
	case bkInval:
		n := r.uvarint()
		if r.bad || n > uint64(len(r.b)) {
			return errBadBrokerMsg
		}
		ids := make([]SessionID, 0, n)
		for range n {
			ids = append(ids, SessionID(r.uvarint()))
		}
		if r.bad {
			return errBadBrokerMsg
		}
		// Not on the broker's goroutine: a reload waits for the
		// session's mu, which a local change holds across a commit.
		k.refreshing.Add(1)
		go func() {
			defer k.refreshing.Done()
			k.c.refreshSessions(context.Background(), ids)
		}()
	default:
		return errBadBrokerMsg
	}
	return nil
}

// nodeLocked returns what is known of node, noting it as heard from now.
// Called with k.mu held.
func (k *cluster) nodeLocked(node string) *remoteNode {
	n := k.nodes[node]
	if n == nil {
		n = &remoteNode{conns: map[uint64]*Client{}}
		k.nodes[node] = n
	}
	n.seen = k.c.nowMS()
	return n
}

// addMirrors adds the mirrors of the connections an "up" lists.
func (k *cluster) addMirrors(node string, r *brokerMsg) error {
	c := k.c
	k.mu.Lock()
	defer k.mu.Unlock()
	n := k.nodeLocked(node)
	for len(r.b) > 0 {
		id, at := r.uvarint(), int64(r.uvarint())
		platform := r.byte1()
		tag := r.bytes(8)
		app, uid := r.str(), r.str()
		if r.bad || int(platform) >= len(platformNames) {
			return errBadBrokerMsg
		}
		if n.conns[id] != nil {
			continue // told twice (an up and a hello's answer)
		}
		m := &Client{core: c, peer: &mirrorPeer{k: k, node: node, conn: id, at: at}, platform: platform,
			token: binary.LittleEndian.Uint64(tag)}
		m.u, m.id = c.userEntry(app, uid)
		m.loggedIn.Store(true)
		n.conns[id] = m
		if m.u.add(m) {
			c.stats.usersOnline.Add(1)
			c.svcAgentHook(app, uid) // the domains' owner follows agents on every node (owner.go)
		}
		c.mirrorDevices(m) // devices_cluster.go: a newer login elsewhere may replace this node's
	}
	return nil
}

// removeMirror removes the mirror of node's connection id. When that was
// the user's last device in the cluster and this node owes the user's
// offline (its own last device left while the mirror was there), it
// announces it — unless the owner owes it too (gone), in which case the
// node with the lower id does: both saw the other's device when theirs
// left, and each learns of the other's down.
func (k *cluster) removeMirror(node string, id uint64, gone bool) {
	k.mu.Lock()
	n := k.nodeLocked(node)
	m := n.conns[id]
	if m == nil {
		k.mu.Unlock()
		return
	}
	delete(n.conns, id)
	tell := false
	if m.loggedIn.CompareAndSwap(true, false) && m.u.remove(m) {
		k.c.stats.usersOnline.Add(-1)
		k.c.svcAgentHook(m.id.App, m.id.UID)
		k.c.seenElsewhere(m.u) // presence.go: its last seen, before its node writes it
		if _, owed := k.owed[m.u]; owed {
			delete(k.owed, m.u)
			tell = gone && k.node < node
		}
	}
	k.mu.Unlock()
	if tell {
		k.c.wentOffline(m.id.App, m.u)
	}
}

// hello answers a node that asks for this node's connections: its old
// mirrors are dropped (it restarted, or it presumed this node dead), and
// it gets the list; with back, it is asked for its own.
func (k *cluster) hello(node string, back bool) {
	k.dropNode(node, false)
	if back {
		k.publish(node, append(appendStr([]byte{bkHello}, k.node), 0))
	}
	k.stream.helloTo(node) // after the hello back, which makes node forget this node's filters
	k.mu.Lock()
	defer k.mu.Unlock()
	k.nodeLocked(node)
	head := appendStr([]byte{bkUp}, k.node)
	m, count := head, 0
	for id, cl := range k.local {
		m = appendUpConn(m, id, cl, k.at[id])
		if count++; count == upChunk {
			k.publish(node, m)
			m, count = slices.Clone(head), 0
		}
	}
	if count > 0 {
		k.publish(node, m)
	}
}

// dropNode removes every mirror of node and forgets it: it stopped or is
// presumed dead (gone), or it asks for a fresh list (hello: it restarted,
// or it had presumed this node dead). When gone, the users it leaves with
// no device are announced offline by one node: the live node with the
// lowest id.
func (k *cluster) dropNode(node string, gone bool) {
	if gone {
		k.forwardGone(node) // forward.go
	}
	k.mu.Lock()
	n := k.nodes[node]
	if n == nil {
		k.mu.Unlock()
		return
	}
	delete(k.nodes, node)
	k.stream.forget(node)
	var offline []*Client
	for _, m := range n.conns {
		if m.loggedIn.CompareAndSwap(true, false) && m.u.remove(m) {
			k.c.stats.usersOnline.Add(-1)
			delete(k.owed, m.u)
			offline = append(offline, m)
		}
	}
	lowest := true
	for other := range k.nodes {
		if other < k.node {
			lowest = false
		}
	}
	k.mu.Unlock()
	for _, m := range offline {
		k.c.svcAgentHook(m.id.App, m.id.UID)
	}
	if o := k.c.owner; o != nil {
		o.answerPending(node) // it will not answer what was forwarded to it
	}
	if !gone || !lowest {
		return
	}
	for _, m := range offline {
		k.c.wentOffline(m.id.App, m.u)
	}
}

// tick sends the heartbeat and drops the nodes not heard for clusterDead.
func (k *cluster) tick() {
	k.publish("", appendStr([]byte{bkBeat}, k.node))
	k.stream.beat()
	limit := k.c.nowMS() - clusterDead.Milliseconds()
	var dead []string
	k.mu.RLock()
	for node, n := range k.nodes {
		if n.seen < limit {
			dead = append(dead, node)
		}
	}
	k.mu.RUnlock()
	for _, node := range dead {
		k.dropNode(node, true)
	}
}

// start subscribes and says hello: the other nodes answer with their
// connections (and ask for this node's). Called by New.
func (k *cluster) start() error {
	if err := k.b.Subscribe(k.receive); err != nil {
		return err
	}
	k.publish("", append(appendStr([]byte{bkHello}, k.node), 1))
	return nil
}

// run beats until ctx ends, and says bye.
func (k *cluster) run(ctx context.Context) {
	t := time.NewTicker(clusterBeat)
	defer t.Stop()
	go k.stream.run(ctx)
	for {
		select {
		case <-ctx.Done():
			k.publish("", appendStr([]byte{bkBye}, k.node))
			return
		case <-t.C:
			k.tick()
		}
	}
}

// invalidate tells the other nodes which sessions' cached state a
// committed batch changed: sessions, members, group settings.
func (k *cluster) invalidate(b *Batch) {
	k.invalidateCaches(b) // coherent.go
	var ids []SessionID
	for i := range b.Sessions {
		ids = append(ids, b.Sessions[i].ID)
	}
	for i := range b.Members {
		ids = append(ids, b.Members[i].Session)
	}
	for i := range b.DelMembers {
		ids = append(ids, b.DelMembers[i].Session)
	}
	for i := range b.Records {
		if r := &b.Records[i]; r.Kind == KindGroupConf && len(r.Key) == 8 {
			ids = append(ids, SessionID(binary.BigEndian.Uint64(r.Key)))
		}
	}
	if len(ids) == 0 {
		return
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	m := binary.AppendUvarint(appendStr([]byte{bkInval}, k.node), uint64(len(ids)))
	for _, id := range ids {
		m = binary.AppendUvarint(m, uint64(id))
	}
	k.publish("", m)
}

// refreshSessions reloads the cached state of the given sessions that
// this node holds (roster, group settings) from the store: another node
// changed them. Under each session's mu, like a local change, so a
// local change and a refresh never interleave.
func (c *Core) refreshSessions(ctx context.Context, ids []SessionID) {
	for _, id := range ids {
		c.mu.Lock()
		s := c.sessions[id]
		c.mu.Unlock()
		if s == nil {
			continue // not cached: loaded fresh when needed
		}
		s.mu.Lock()
		ms, err := c.store.Members(ctx, id)
		if err == nil {
			s.roster.Store(c.newRoster(s.app, ms))
			if s.kind == KindGroup {
				var cf *GroupConf
				if cf, err = c.loadGroupConf(ctx, id); err == nil {
					s.conf.Store(cf)
				}
			}
		}
		s.mu.Unlock()
		if err != nil {
			c.cfg.LogError("cluster: reload session "+itoa(uint64(id))+" changed on another node", err)
		}
	}
}

// wentOffline runs the side effects of a user's last device leaving the
// cluster: presence (debounced), the live stream, the presence webhook,
// customer service's agent presence.
func (c *Core) wentOffline(app string, u *user) {
	c.presenceChanged(app, u, false) // presence.go
	c.publish(Event{Topic: TopicOffline, App: app, UID: u.uid})
	c.presenceHook(app, u.uid, false) // webhook_presence.go
	c.svcAgentHook(app, u.uid)
}
