package chat

import (
	"strings"
	"sync"
	"sync/atomic"
)

// Event topics of the live stream (chatctl subscribe).
const (
	TopicMessage    = "message"
	TopicOnline     = "online"
	TopicOffline    = "offline"
	TopicLogin      = "login"
	TopicLogout     = "logout"
	TopicSession    = "session"
	TopicGroup      = "group"
	TopicError      = "error"
	TopicServerInfo = "serverInfo"
	TopicService    = "service"    // customer service (service.go); filter by shop
	TopicModeration = "moderation" // ban, unban, mute, unmute, kick (Type); Until for ban and mute
	TopicConsult    = "consult"    // consultation changes, counts and warnings (consult_service.go)
)

// Topics lists every topic.
var Topics = []string{TopicMessage, TopicOnline, TopicOffline, TopicLogin, TopicLogout,
	TopicSession, TopicGroup, TopicError, TopicServerInfo, TopicModeration, TopicWebhook, TopicConsult, TopicService}

// Event is one item on the live stream. Fields not used by a topic are zero.
type Event struct {
	Topic   string        `json:"topic"`
	Time    int64         `json:"time"` // unix ms
	App     string        `json:"app,omitempty"`
	UID     string        `json:"uid,omitempty"` // the actor: sender, the user logging in…
	Session SessionID     `json:"session_id,omitempty"`
	Type    string        `json:"type,omitempty"`    // message type, group op, session kind
	Members []string      `json:"members,omitempty"` // recipients / uids affected
	Message *Message      `json:"message,omitempty"`
	Error   *Error        `json:"error,omitempty"`
	Info    *ServerInfo   `json:"info,omitempty"`
	Service *ServiceEvent `json:"service,omitempty"` // topic service
	Detail  string        `json:"detail,omitempty"`
	Until   int64         `json:"until,omitempty"` // moderation: end of a ban or mute (unix ms; absent: for ever)

	// Consult is topic consult's body.
	Consult *ConsultEvent `json:"consult,omitempty"`

	// Node is the cluster node the event happened on (its cluster_node);
	// empty on a single node (clusterstream.go).
	Node string `json:"node,omitempty"`
}

// ServerInfo is the periodic serverInfo event's body. The process wiring
// fills it (it knows the transports and the runtime) and publishes it.
type ServerInfo struct {
	Version        string  `json:"version"`
	StartedAt      int64   `json:"started_at"`
	UptimeSeconds  int64   `json:"uptime_seconds"`
	Conns          int     `json:"conns"`
	UsersOnline    int     `json:"users_online"`
	MsgsInPerSec   float64 `json:"msgs_in_per_sec"`
	MsgsOutPerSec  float64 `json:"msgs_out_per_sec"` // deliveries
	BytesInPerSec  float64 `json:"bytes_in_per_sec"`
	BytesOutPerSec float64 `json:"bytes_out_per_sec"`
	JournalDepth   int     `json:"journal_depth"`
	LastCommitMS   float64 `json:"last_commit_ms"`
	HeapBytes      uint64  `json:"heap_bytes"`
	RSSBytes       uint64  `json:"rss_bytes"`
	Goroutines     int     `json:"goroutines"`
	GCCount        uint32  `json:"gc_count"`
	GCPauseMS      float64 `json:"gc_pause_ms"` // newest pause
}

// Filter selects events: a topic ("all" or one of Topics) and conditions
// that must all hold. Conditions: uid (actor or among Members), app, session
// (alias room_id) and type.
type Filter struct {
	Topic   string
	App     string
	UID     string
	Session SessionID
	Type    string
	Shop    string // topic service: the shop
}

// ParseFilter parses "topic;key=value;key=value".
func ParseFilter(s string) (Filter, error) {
	parts := strings.Split(s, ";")
	f := Filter{Topic: strings.TrimSpace(parts[0])}
	if f.Topic != "all" && !validTopic(f.Topic) {
		return f, Errf(CodeBadRequest, "unknown topic \""+clip(f.Topic, 32)+"\"; topics are all, "+strings.Join(Topics, ", "))
	}
	for _, p := range parts[1:] {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		k, v, ok := strings.Cut(p, "=")
		if !ok || v == "" {
			return f, Errf(CodeBadRequest, "condition \""+clip(p, 32)+"\" is not key=value")
		}
		switch strings.TrimSpace(k) {
		case "uid":
			f.UID = v
		case "app":
			f.App = v
		case "session", "room_id":
			n, err := parseUint(v)
			if err != nil {
				return f, Errf(CodeBadRequest, "session must be a number")
			}
			f.Session = SessionID(n)
		case "type":
			f.Type = v
		case "shop":
			f.Shop = v
		default:
			return f, Errf(CodeBadRequest, "unknown condition \""+clip(k, 32)+"\"; conditions are uid, app, session (room_id), type, shop")
		}
	}
	return f, nil
}

func validTopic(t string) bool {
	for _, x := range Topics {
		if x == t {
			return true
		}
	}
	return false
}

func parseUint(s string) (uint64, error) {
	var n uint64
	if s == "" {
		return 0, Errf(CodeBadRequest, "empty number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, Errf(CodeBadRequest, "not a number")
		}
		n = n*10 + uint64(s[i]-'0')
	}
	return n, nil
}

// Match reports whether e passes f.
func (f *Filter) Match(e *Event) bool {
	if f.Topic != "all" && f.Topic != e.Topic {
		return false
	}
	if f.App != "" && f.App != e.App {
		return false
	}
	if f.Session != 0 && f.Session != e.Session {
		return false
	}
	if f.Type != "" && f.Type != e.Type {
		return false
	}
	if f.Shop != "" && (e.Service == nil || f.Shop != e.Service.Shop) {
		return false
	}
	if f.UID != "" && f.UID != e.UID {
		found := false
		for _, m := range e.Members {
			if m == f.UID {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Subscription receives the events matching any of its filters. Events it is
// too slow to take are dropped and counted, never waited for.
type Subscription struct {
	C       <-chan Event
	c       chan Event
	filters []Filter
	dropped atomic.Uint64
	bus     *Bus
}

// Dropped returns how many events were dropped since the last call and
// resets the count.
func (s *Subscription) Dropped() uint64 { return s.dropped.Swap(0) }

// Close unsubscribes.
func (s *Subscription) Close() { s.bus.remove(s) }

// Bus fans core events out to subscribers. Publishing costs one atomic load
// when nobody listens.
type Bus struct {
	// n counts the listeners: the local subscriptions, plus one while
	// another node of the cluster has subscribers (remote).
	n      atomic.Int32
	remote atomic.Bool
	mu     sync.RWMutex // guards subs
	subs   map[*Subscription]struct{}
	// changed, when set (a cluster: clusterstream.go), is called after a
	// subscription is added or removed, with no lock held.
	changed func()
}

func newBus() *Bus { return &Bus{subs: make(map[*Subscription]struct{})} }

func (b *Bus) active() bool { return b.n.Load() > 0 }

func (b *Bus) remove(s *Subscription) {
	b.mu.Lock()
	_, ok := b.subs[s]
	if ok {
		delete(b.subs, s)
		b.n.Add(-1)
	}
	b.mu.Unlock()
	if ok && b.changed != nil {
		b.changed()
	}
}

// setRemote notes whether another node has subscribers (counted as one
// listener, so that the emitters build their events).
func (b *Bus) setRemote(on bool) {
	if b.remote.Swap(on) != on {
		if on {
			b.n.Add(1)
		} else {
			b.n.Add(-1)
		}
	}
}

// local returns the number of this node's subscriptions.
func (b *Bus) local() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.subs)
}

// Subscribe registers filters (OR-ed). buf bounds the events waiting for the
// subscriber; zero means 1024.
func (c *Core) Subscribe(filters []Filter, buf int) *Subscription {
	if buf <= 0 {
		buf = 1024
	}
	ch := make(chan Event, buf)
	s := &Subscription{C: ch, c: ch, filters: filters, bus: c.bus}
	c.bus.mu.Lock()
	c.bus.subs[s] = struct{}{}
	c.bus.n.Add(1)
	c.bus.mu.Unlock()
	if c.bus.changed != nil {
		c.bus.changed()
	}
	return s
}

// Publish sends e to every matching subscriber (the wiring publishes
// serverInfo this way).
func (c *Core) Publish(e Event) { c.publish(e) }

func (c *Core) publish(e Event) {
	if !c.bus.active() {
		return
	}
	if e.Time == 0 {
		e.Time = c.nowMS()
	}
	if c.cluster != nil {
		e.Node = c.cluster.node
		c.cluster.stream.forward(&e) // to the other nodes' subscribers (clusterstream.go)
	}
	c.bus.deliver(&e)
}

// deliver sends e to this node's matching subscribers.
func (b *Bus) deliver(e *Event) {
	b.mu.RLock()
	for s := range b.subs {
		for i := range s.filters {
			if s.filters[i].Match(e) {
				select {
				case s.c <- *e:
				default:
					s.dropped.Add(1)
				}
				break
			}
		}
	}
	b.mu.RUnlock()
}
