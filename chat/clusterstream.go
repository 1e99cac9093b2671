package chat

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// The subscriber stream of the cluster (docs/cluster.md): an event
// published on one node's bus reaches the subscribers (chatctl subscribe)
// of every node.
//
// It crosses NATS only where someone listens. Each node announces the
// filters of its subscriptions ("s": node, then the distinct filters),
// when they change and with every heartbeat while it has any; a node's
// announcement expires when it is not repeated for clusterDead, so a lost
// "no more subscribers" costs a few seconds of useless forwarding, never
// a stuck stream. While another node has subscribers the bus counts one
// more listener (Bus.remote), so the emitters build their events; publish
// then hands each event that some other node's filter matches to the
// forwarder (a bounded queue: a full one drops and counts, it never
// waits), whose one goroutine sends each node the events its filters
// match, in batches ("e": node, count, then each event's JSON), in the
// order they were published. The receiving node sets nothing but delivers
// them to its own subscribers (Bus.deliver), never forwarding them again.
//
// With nobody subscribed anywhere, publishing costs the bus's one atomic
// load, as on a single node. Delivery is at most once, like everything on
// NATS: an event lost between nodes is not resent (the stream was never
// durable).

// Limits of the forwarding.
const (
	streamQueue      = 4096      // events waiting for the forwarder
	streamBatch      = 256       // events in one "e" message at most
	streamBatchBytes = 256 << 10 // bytes of one "e" message, roughly
	maxAnnounced     = 64        // distinct filters announced; more are announced as "all"
)

// clusterStream is a node's side of the cluster's subscriber stream.
//
// Owner: mu guards announced and nodes and is held across an
// announcement's publish, so that announcements go out in order; Bus.mu
// is taken under it (reading the subscriptions' filters). remote is an
// immutable snapshot of nodes, read lock-free by publish.
type clusterStream struct {
	k       *cluster
	q       chan Event
	dropped atomic.Uint64 // events not forwarded: the queue was full
	pending atomic.Int64  // events queued or being sent (tests wait for none)
	remote  atomic.Pointer[[]*remoteFilters]

	mu        sync.Mutex
	announced []byte                    // the last "s" this node sent (nil: none yet)
	has       bool                      // announced lists filters: this node has subscribers
	nodes     map[string]*remoteFilters // the other nodes with subscribers
}

// remoteFilters are another node's subscriptions' filters (immutable
// once published in remote, but for seen, written under mu).
type remoteFilters struct {
	node    string
	filters []Filter
	seen    int64 // unix ms of its last announcement (core's clock)
}

func newClusterStream(k *cluster) *clusterStream {
	return &clusterStream{k: k, q: make(chan Event, streamQueue), nodes: map[string]*remoteFilters{}}
}

func (r *remoteFilters) match(e *Event) bool {
	for i := range r.filters {
		if r.filters[i].Match(e) {
			return true
		}
	}
	return false
}

// forward queues e for the other nodes whose subscribers' filters match
// it. Called by publish (only while the bus has listeners).
func (s *clusterStream) forward(e *Event) {
	p := s.remote.Load()
	if p == nil {
		return
	}
	for _, r := range *p {
		if r.match(e) {
			s.pending.Add(1)
			select {
			case s.q <- *e:
			default:
				s.pending.Add(-1)
				s.dropped.Add(1)
			}
			return
		}
	}
}

// run forwards the queued events until ctx ends.
func (s *clusterStream) run(ctx context.Context) {
	batch := make([]Event, 0, streamBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-s.q:
			batch = append(batch[:0], e)
		}
	more:
		for len(batch) < streamBatch {
			select {
			case e := <-s.q:
				batch = append(batch, e)
			default:
				break more
			}
		}
		s.send(batch)
		s.pending.Add(-int64(len(batch)))
	}
}

// send sends each node with subscribers the events of batch its filters
// match, each encoded once.
func (s *clusterStream) send(batch []Event) {
	p := s.remote.Load()
	if p == nil {
		return
	}
	enc := make([][]byte, len(batch))
	head := appendStr([]byte{bkEvents}, s.k.node)
	for _, r := range *p {
		var docs [][]byte
		size := 0
		flush := func() {
			if len(docs) == 0 {
				return
			}
			m := binary.AppendUvarint(slices.Clone(head), uint64(len(docs)))
			for _, d := range docs {
				m = append(binary.AppendUvarint(m, uint64(len(d))), d...)
			}
			s.k.publish(r.node, m)
			docs, size = docs[:0], 0
		}
		for i := range batch {
			if !r.match(&batch[i]) {
				continue
			}
			if enc[i] == nil {
				b, err := json.Marshal(&batch[i])
				if err != nil {
					s.k.c.cfg.LogError("cluster: encode a "+batch[i].Topic+" event for another node's subscribers", err)
					enc[i] = []byte{}
					continue
				}
				enc[i] = b
			}
			if len(enc[i]) == 0 {
				continue
			}
			if size > 0 && size+len(enc[i]) > streamBatchBytes {
				flush()
			}
			docs = append(docs, enc[i])
			size += len(enc[i])
		}
		flush()
	}
}

// receive delivers another node's events ("e") to this node's subscribers.
func (s *clusterStream) receive(node string, r *brokerMsg) error {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		return errBadBrokerMsg
	}
	bus := s.k.c.bus
	if bus.local() == 0 {
		return nil // the last subscriber left meanwhile
	}
	for range n {
		doc := r.bytes(r.uvarint())
		if r.bad {
			return errBadBrokerMsg
		}
		var e Event
		if err := json.Unmarshal(doc, &e); err != nil {
			return err
		}
		e.Node = node
		bus.deliver(&e)
	}
	return nil
}

// ---- announcements

// appendFilter encodes one filter of an "s" message.
func appendFilter(b []byte, f *Filter) []byte {
	for _, v := range [...]string{f.Topic, f.App, f.UID, f.Type, f.Shop} {
		b = appendStr(b, v)
	}
	return binary.AppendUvarint(b, uint64(f.Session))
}

// announcement encodes this node's subscriptions' distinct filters as an
// "s" message (no filter: no subscriber). More than maxAnnounced are
// announced as "all": the receiving node filters again anyway, so a wider
// announcement costs traffic, never a wrong delivery.
func (s *clusterStream) announcement() (m []byte, n int) {
	bus := s.k.c.bus
	set := map[Filter]struct{}{}
	bus.mu.RLock()
	for sub := range bus.subs {
		for _, f := range sub.filters {
			set[f] = struct{}{}
		}
	}
	bus.mu.RUnlock()
	var encs [][]byte
	if _, all := set[Filter{Topic: "all"}]; all || len(set) > maxAnnounced {
		encs = [][]byte{appendFilter(nil, &Filter{Topic: "all"})}
	} else {
		for f := range set {
			encs = append(encs, appendFilter(nil, &f))
		}
		slices.SortFunc(encs, bytes.Compare) // the same set encodes the same
	}
	m = binary.AppendUvarint(appendStr([]byte{bkSubs}, s.k.node), uint64(len(encs)))
	for _, e := range encs {
		m = append(m, e...)
	}
	return m, len(encs)
}

// changed announces the subscriptions when their filters changed
// (Bus.changed).
func (s *clusterStream) changed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, n := s.announcement()
	if bytes.Equal(m, s.announced) || s.announced == nil && n == 0 {
		return
	}
	s.announced, s.has = m, n > 0
	s.k.publish("", m)
}

// beat repeats a non-empty announcement (so that a node that restarted,
// or missed one, learns it), forgets the nodes whose announcements were
// not repeated for clusterDead, and reports dropped events. Called by
// tick.
func (s *clusterStream) beat() {
	limit := s.k.c.nowMS() - clusterDead.Milliseconds()
	s.mu.Lock()
	if s.has {
		s.k.publish("", s.announced)
	}
	expired := false
	for node, r := range s.nodes {
		if r.seen < limit {
			delete(s.nodes, node)
			expired = true
		}
	}
	if expired {
		s.publishLocked()
	}
	s.mu.Unlock()
	if n := s.dropped.Swap(0); n > 0 {
		s.k.c.cfg.LogError("cluster: live stream", errString(strconv.FormatUint(n, 10)+
			" events for other nodes' subscribers dropped: the forwarding queue was full"))
	}
}

// helloTo sends this node's announcement to a node that (re)joined.
func (s *clusterStream) helloTo(node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.has {
		s.k.publish(node, s.announced)
	}
}

// learn takes another node's announcement ("s").
func (s *clusterStream) learn(node string, r *brokerMsg) error {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		return errBadBrokerMsg
	}
	fs := make([]Filter, 0, n)
	for range n {
		f := Filter{Topic: r.str(), App: r.str(), UID: r.str(), Type: r.str(), Shop: r.str()}
		f.Session = SessionID(r.uvarint())
		if r.bad {
			return errBadBrokerMsg
		}
		fs = append(fs, f)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.nodes[node]
	switch {
	case len(fs) == 0:
		if old == nil {
			return nil
		}
		delete(s.nodes, node)
	case old != nil && slices.Equal(old.filters, fs):
		old.seen = s.k.c.nowMS() // a repetition
		return nil
	default:
		s.nodes[node] = &remoteFilters{node: node, filters: fs, seen: s.k.c.nowMS()}
	}
	s.publishLocked()
	return nil
}

// forget drops a node's filters (it stopped, died or restarted).
func (s *clusterStream) forget(node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.nodes[node]; ok {
		delete(s.nodes, node)
		s.publishLocked()
	}
}

// publishLocked swaps remote for the current nodes and tells the bus
// whether anyone elsewhere listens. Called with mu held.
func (s *clusterStream) publishLocked() {
	if len(s.nodes) == 0 {
		s.remote.Store(nil)
		s.k.c.bus.setRemote(false)
		return
	}
	l := make([]*remoteFilters, 0, len(s.nodes))
	for _, r := range s.nodes {
		l = append(l, r)
	}
	slices.SortFunc(l, func(a, b *remoteFilters) int { return strings.Compare(a.node, b.node) })
	s.remote.Store(&l)
	s.k.c.bus.setRemote(true)
}

type errString string

func (e errString) Error() string { return string(e) }
