package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"chatd/chat"
	"chatd/chat/memstore"
)

// hub is an in-process chat.Broker for the nodes of a test cluster: each
// node's messages go, in order, to a queue per receiver, handled by one
// goroutine per receiver (as NATS does). cut disconnects a node (a dead
// one); pause holds deliveries so that two nodes act before hearing each
// other; flush waits until every queued message has been handled.
type hub struct {
	mu      sync.Mutex
	cond    *sync.Cond
	nodes   map[string]*hubNode
	pending int // messages queued or being handled
	paused  bool
	sent    map[byte]int // messages published, by kind (the first byte)
}

type hubNode struct {
	h    *hub
	name string
	q    []([]byte) // guarded by h.mu
	fn   func([]byte)
	cut  bool // guarded by h.mu
}

func newHub() *hub {
	h := &hub{nodes: map[string]*hubNode{}, sent: map[byte]int{}}
	h.cond = sync.NewCond(&h.mu)
	return h
}

func (h *hub) join(name string) *hubNode {
	n := &hubNode{h: h, name: name}
	h.mu.Lock()
	h.nodes[name] = n
	h.mu.Unlock()
	return n
}

func (n *hubNode) Node() string { return n.name }

func (n *hubNode) Publish(node string, msg []byte) error {
	h := n.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if n.cut {
		return nil // sent into the void
	}
	h.sent[msg[0]]++
	for name, to := range h.nodes {
		if name == n.name || to.cut || to.fn == nil || node != "" && node != name {
			continue
		}
		to.q = append(to.q, append([]byte(nil), msg...))
		h.pending++
	}
	h.cond.Broadcast()
	return nil
}

func (n *hubNode) Subscribe(fn func([]byte)) error {
	h := n.h
	h.mu.Lock()
	n.fn = fn
	h.mu.Unlock()
	go func() {
		h.mu.Lock()
		for {
			for len(n.q) == 0 || h.paused {
				h.cond.Wait()
			}
			m := n.q[0]
			n.q = n.q[1:]
			h.mu.Unlock()
			fn(m)
			h.mu.Lock()
			h.pending--
			h.cond.Broadcast()
		}
	}()
	return nil
}

// flush waits until every message published so far (and those their
// handling published) has been handled.
func (h *hub) flush() {
	h.mu.Lock()
	for h.pending > 0 {
		h.cond.Wait()
	}
	h.mu.Unlock()
}

func (h *hub) setPaused(p bool) {
	h.mu.Lock()
	h.paused = p
	h.cond.Broadcast()
	h.mu.Unlock()
}

// cut disconnects node: what it publishes and what is sent to it is lost.
func (h *hub) cut(node string) {
	h.mu.Lock()
	n := h.nodes[node]
	n.cut = true
	h.pending -= len(n.q)
	n.q = nil
	h.cond.Broadcast()
	h.mu.Unlock()
}

// clusterEnv is a test cluster: nodes on one shared memstore, joined by a
// hub, on one fake clock.
type clusterEnv struct {
	t     *testing.T
	hub   *hub
	st    *memstore.Shared
	clock *fakeClock
	app   chat.App
	nodes map[string]*env
	// presence, when set, is the nodes' presence debounce (otherwise
	// presence is off: -1).
	presence time.Duration
}

func newCluster(t *testing.T) *clusterEnv {
	return &clusterEnv{t: t, hub: newHub(), st: memstore.NewShared(),
		clock: newFakeClock(), nodes: map[string]*env{}}
}

// node starts a node; the first one creates the app "shop".
func (ce *clusterEnv) node(name string) *env {
	t := ce.t
	t.Helper()
	debounce := time.Duration(-1) // no presence announcements, unless a test wants them
	if ce.presence > 0 {
		debounce = ce.presence
	}
	core, err := chat.New(chat.Config{SharedStore: true, Broker: ce.hub.join(name), Now: ce.clock.now, PresenceDebounce: debounce}, ce.st)
	if err != nil {
		t.Fatal(err)
	}
	e := runEnv(t, core, ce.st)
	if len(ce.nodes) == 0 {
		if ce.app, err = core.CreateApp(context.Background(), "shop", "Shop"); err != nil {
			t.Fatal(err)
		}
	}
	e.app = ce.app
	ce.nodes[name] = e
	ce.hub.flush() // its hello answered
	return e
}

// login logs uid in on node e (pushing the user and a token), and waits
// until every node knows the connection.
func (ce *clusterEnv) login(e *env, uid string) *device {
	ce.t.Helper()
	d := e.login(e.user(uid))
	ce.hub.flush()
	return d
}

func (ce *clusterEnv) sendOK(d *device, fields string) ack {
	ce.t.Helper()
	f := d.do(fields)
	if !f.OK {
		ce.t.Fatalf("%s: %+v", fields, f.Error)
	}
	return data[ack](ce.t, f)
}

// Users on different nodes chat live: 1:1 both ways (and the sender's
// other device on the other node), in a group, and typing crosses.
func TestClusterEventsCrossNodes(t *testing.T) {
	ce := newCluster(t)
	a, b := ce.node("a"), ce.node("b")
	alice := ce.login(a, "alice")
	bob := ce.login(b, "bob")
	alice2 := ce.login(b, "alice") // alice's second device, on b
	carol := ce.login(a, "carol")

	if l, m := a.core.OnlineDevicesForTest("shop", "alice"); l != 1 || m != 1 {
		t.Fatalf("node a sees alice on %d local + %d mirrored devices, want 1 + 1", l, m)
	}

	p := ce.sendOK(alice, `"action":"send","to":"bob","type":"text","content":{"text":"hi bob"}`)
	for name, d := range map[string]*device{"bob on b": bob, "alice's device on b": alice2} {
		ev := data[msgEvent](t, d.wait(t, event("message")))
		if ev.Seq != 1 || ev.From != "alice" || string(ev.Content) != `{"text":"hi bob"}` {
			t.Errorf("%s got %+v", name, ev)
		}
	}
	ce.sendOK(bob, fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"hi alice"}`, p.Session))
	for _, d := range []*device{alice, alice2} {
		if ev := data[msgEvent](t, d.wait(t, event("message"))); ev.Seq != 2 || ev.From != "bob" {
			t.Fatalf("alice got %+v, want bob's reply seq 2", ev)
		}
	}

	// Typing, from b to a.
	if f := bob.do(fmt.Sprintf(`"action":"typing","session_id":%d`, p.Session)); !f.OK {
		t.Fatalf("typing: %+v", f.Error)
	}
	var ty struct {
		UID     string `json:"uid"`
		Session uint64 `json:"session_id"`
	}
	if ty = data[struct {
		UID     string `json:"uid"`
		Session uint64 `json:"session_id"`
	}](t, alice.wait(t, event("typing"))); ty.UID != "bob" || ty.Session != p.Session {
		t.Fatalf("typing on a = %+v", ty)
	}

	// A group with members on both nodes.
	g, err := a.core.CreateGroup(context.Background(), "shop", chat.GroupInput{Owner: "alice", Name: "g", Members: []string{"bob", "carol"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{alice, bob, alice2, carol} {
		d.wait(t, event("group")) // the creation's event
	}
	ce.sendOK(bob, fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"from b"}`, g.ID))
	for name, d := range map[string]*device{"alice on a": alice, "carol on a": carol, "alice on b": alice2} {
		if ev := data[msgEvent](t, d.wait(t, event("message"))); ev.Session != uint64(g.ID) || ev.From != "bob" {
			t.Errorf("%s got %+v", name, ev)
		}
	}
	ce.sendOK(carol, fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"from a"}`, g.ID))
	for name, d := range map[string]*device{"bob on b": bob, "alice on b": alice2, "alice on a": alice} {
		if ev := data[msgEvent](t, d.wait(t, event("message"))); ev.From != "carol" || ev.Seq != 2 {
			t.Errorf("%s got %+v", name, ev)
		}
	}
	ce.hub.flush()
	for name, d := range map[string]*device{"bob": bob, "carol": carol} {
		if n := d.count("message"); n != 0 {
			t.Errorf("%s got %d extra message events (a delivery twice?)", name, n)
		}
	}

	// A logout on b removes the mirror on a.
	alice2.h.HandleClose()
	ce.hub.flush()
	if l, m := a.core.OnlineDevicesForTest("shop", "alice"); l != 1 || m != 0 {
		t.Fatalf("after alice's device on b closed, a sees %d + %d devices, want 1 + 0", l, m)
	}
}

// The device policy `single` closes the user's device on the other node
// (kicked event, close 4003), and the user stays online on the new one.
func TestClusterSingleDeviceKicksAcrossNodes(t *testing.T) {
	ce := newCluster(t)
	a, b := ce.node("a"), ce.node("b")
	if _, err := a.core.SetSettings(context.Background(), "shop", chat.SettingsInput{Devices: chat.DevicesSingle}); err != nil {
		t.Fatal(err)
	}
	old := ce.login(a, "dave")
	now := ce.login(b, "dave")
	k := old.wait(t, event("kicked"))
	if r := data[chat.KickedEvent](t, k); r.Reason != "logged_in_elsewhere" || r.Policy != chat.DevicesSingle {
		t.Fatalf("kicked = %+v", r)
	}
	ce.hub.flush()
	// Closed by its own node after the kicked event (devices_cluster.go).
	waitClosed(t, old.fakePeer, chat.CloseReplaced)
	ce.hub.flush()
	for name, e := range map[string]*env{"a": a, "b": b} {
		l, m := e.core.OnlineDevicesForTest("shop", "dave")
		if l+m != 1 {
			t.Errorf("node %s sees dave on %d + %d devices, want 1", name, l, m)
		}
	}
	ce.sendOK(ce.login(a, "fred"), `"action":"send","to":"dave","type":"text","content":{"text":"still there?"}`)
	now.wait(t, event("message"))
}

// A member added on node a gets node b's next group message: b reloads
// the group's roster when a's commit invalidates it.
func TestClusterInvalidationReachesNewMember(t *testing.T) {
	ce := newCluster(t)
	a, b := ce.node("a"), ce.node("b")
	bob := ce.login(b, "bob")
	erin := ce.login(a, "erin")
	b.user("alice")
	ctx := context.Background()
	g, err := b.core.CreateGroup(ctx, "shop", chat.GroupInput{Owner: "bob", Name: "g", Members: []string{"alice"}})
	if err != nil {
		t.Fatal(err)
	}
	ce.sendOK(bob, fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"before"}`, g.ID)) // b caches the roster
	if _, err := a.core.HostAddMembers(ctx, "shop", g.ID, []string{"erin"}); err != nil {
		t.Fatal(err)
	}
	ce.hub.flush()
	b.core.ClusterSettleForTest()
	ce.sendOK(bob, fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"after"}`, g.ID))
	ev := data[msgEvent](t, erin.wait(t, event("message")))
	if string(ev.Content) != `{"text":"after"}` || ev.Seq != 2 {
		t.Fatalf("erin got %+v, want b's message seq 2", ev)
	}
	// And a removal: b stops delivering to her.
	if _, err := a.core.HostRemoveMembers(ctx, "shop", g.ID, []string{"erin"}); err != nil {
		t.Fatal(err)
	}
	ce.hub.flush()
	b.core.ClusterSettleForTest()
	ce.sendOK(bob, fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"gone"}`, g.ID))
	ce.hub.flush()
	if n := erin.count("message"); n != 0 {
		t.Fatalf("erin got %d messages after her removal", n)
	}
}

// A node not heard for three heartbeats (by the core's clock) is presumed
// dead: its mirrors are dropped, and its users left without a device are
// announced offline once. A node starting late learns the others'
// connections (hello).
func TestClusterDeadNodeAndLateJoin(t *testing.T) {
	ce := newCluster(t)
	a, b := ce.node("a"), ce.node("b")
	ce.login(b, "bob")
	ce.login(a, "alice")
	c := ce.node("c") // late: learns bob on b and alice on a
	for _, uid := range []string{"alice", "bob"} {
		if l, m := c.core.OnlineDevicesForTest("shop", uid); l != 0 || m != 1 {
			t.Fatalf("late node c sees %s on %d + %d devices, want 0 + 1", uid, l, m)
		}
	}
	offA := a.core.Subscribe([]chat.Filter{mustFilter(t, "offline")}, 16)
	defer offA.Close()
	offC := c.core.Subscribe([]chat.Filter{mustFilter(t, "offline")}, 16)
	defer offC.Close()

	ce.hub.cut("b")
	tick := func() {
		a.core.ClusterTickForTest()
		c.core.ClusterTickForTest()
		ce.hub.flush()
	}
	ce.clock.add(2 * time.Second) // the live nodes keep beating
	tick()
	if _, m := a.core.OnlineDevicesForTest("shop", "bob"); m != 1 {
		t.Fatalf("a dropped b's mirrors before 3 heartbeats passed")
	}
	ce.clock.add(1500 * time.Millisecond) // b silent for 3.5 s, a and c for 1.5
	tick()
	for name, e := range map[string]*env{"a": a, "c": c} {
		if l, m := e.core.OnlineDevicesForTest("shop", "bob"); l+m != 0 {
			t.Errorf("node %s still sees bob of the dead node b on %d + %d devices", name, l, m)
		}
		if _, m := e.core.OnlineDevicesForTest("shop", "alice"); name == "c" && m != 1 {
			t.Errorf("node c lost alice (on a) too")
		}
	}
	// a (the live node with the lowest id) announces bob offline; c not.
	ev := <-offA.C
	if ev.UID != "bob" {
		t.Fatalf("offline on a: %+v", ev)
	}
	for {
		select {
		case ev := <-offC.C:
			if ev.Node == "c" { // the stream covers the cluster: a's announcement may be here too
				t.Fatalf("node c announced %+v too", ev)
			}
			continue
		default:
		}
		break
	}
}

func mustFilter(t *testing.T, s string) chat.Filter {
	t.Helper()
	f, err := chat.ParseFilter(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// A user online on two nodes is announced online once and offline once:
// the live stream and the user.online/user.offline webhook events, also
// when both devices leave at the same moment (each node saw the other's
// device as it left its own).
func TestClusterPresenceOnce(t *testing.T) {
	ce := newCluster(t)
	a := ce.node("a")
	ctx := context.Background()
	url := "https://hooks.example.com/chat"
	if _, err := a.core.CreateWebhookEndpoint(ctx, "shop", chat.WebhookEndpointInput{URL: &url,
		Events: []string{chat.WebhookUserOnline, chat.WebhookUserOffline}}); err != nil {
		t.Fatal(err)
	}
	b := ce.node("b") // loads the endpoint
	var subs []*chat.Subscription
	for _, e := range []*env{a, b} {
		s := e.core.Subscribe([]chat.Filter{mustFilter(t, "online"), mustFilter(t, "offline")}, 64)
		defer s.Close()
		subs = append(subs, s)
	}
	count := func() map[string]int {
		out := map[string]int{}
		for i, s := range subs {
			for {
				select {
				case ev := <-s.C:
					if ev.Node == []string{"a", "b"}[i] { // each stream covers the cluster: count each node's own
						out[ev.Topic+" "+ev.UID]++
					}
					continue
				default:
				}
				break
			}
		}
		return out
	}

	for round, together := range []bool{false, true} {
		uid := fmt.Sprintf("user%d", round)
		d1 := ce.login(a, uid)
		d2 := ce.login(b, uid)
		if got := count(); got["online "+uid] != 1 {
			t.Fatalf("round %d: online announced %d times, want 1 (%v)", round, got["online "+uid], got)
		}
		if together {
			ce.hub.setPaused(true) // neither node hears the other's logout first
		}
		d1.h.HandleClose()
		if !together {
			ce.hub.flush()
			if got := count(); got["offline "+uid] != 0 {
				t.Fatalf("round %d: offline announced while a device is left (%v)", round, got)
			}
		}
		d2.h.HandleClose()
		ce.hub.setPaused(false)
		ce.hub.flush()
		if got := count(); got["offline "+uid] != 1 {
			t.Fatalf("round %d (together %v): offline announced %d times, want 1 (%v)", round, together, got["offline "+uid], got)
		}
		for _, e := range []*env{a, b} {
			if l, m := e.core.OnlineDevicesForTest("shop", uid); l+m != 0 {
				t.Fatalf("round %d: %d + %d devices left", round, l, m)
			}
		}
	}

	// The webhook events, from both nodes' commits, once each.
	for _, e := range []*env{a, b} {
		_ = e.core.Drain(ctx) // flush the queued presence events
	}
	recs, err := ce.st.ScanRecords(ctx, "wh.ev", nil, nil, 1000, false)
	if err != nil {
		t.Fatal(err)
	}
	hooks := map[string]int{}
	for _, r := range recs {
		var ev struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			t.Fatal(err)
		}
		var d struct {
			UID    string `json:"uid"`
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(ev.Data, &d)
		if d.Reason == chat.OfflineServerStopped {
			continue // Drain's
		}
		hooks[ev.Type+" "+d.UID]++
	}
	want := map[string]int{"user.online user0": 1, "user.offline user0": 1, "user.online user1": 1, "user.offline user1": 1}
	for k, n := range want {
		if hooks[k] != n {
			t.Errorf("webhook %s: %d events, want %d (all: %v)", k, hooks[k], n, hooks)
		}
	}
}

// Presence webhooks in a cluster: a node's graceful stop writes offline
// only for its users with no device on another node; a node restarting
// after a crash writes "restart" offline, once it has heard the others,
// for every recorded user with no device anywhere — including one whose
// online another node recorded.
func TestClusterPresenceWebhooksStopAndRestart(t *testing.T) {
	ce := newCluster(t)
	a := ce.node("a")
	ctx := context.Background()
	url := "https://hooks.example.com/chat"
	if _, err := a.core.CreateWebhookEndpoint(ctx, "shop", chat.WebhookEndpointInput{URL: &url,
		Events: []string{chat.WebhookUserOnline, chat.WebhookUserOffline}}); err != nil {
		t.Fatal(err)
	}
	b := ce.node("b")
	ax := ce.login(a, "x") // x's online is recorded by a
	ce.login(b, "x")
	ay := ce.login(a, "y")
	ce.login(b, "z")
	// Their user.online events are committed (by a goroutine of each
	// node's, after the logins' replies) before b dies: a login whose
	// online had not committed when its node died is announced neither
	// online nor offline.
	waitOnlineSet(t, ce.st, "shop", "x", "y", "z")
	// events lists the user.online or user.offline events written, by
	// user: their reasons.
	events := func(typ string) map[string]string {
		recs, err := ce.st.ScanRecords(ctx, "wh.ev", nil, nil, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, r := range recs {
			var ev struct {
				Type string `json:"type"`
				Data struct {
					UID    string `json:"uid"`
					Reason string `json:"reason"`
				} `json:"data"`
			}
			if err := json.Unmarshal(r.Value, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Type == typ {
				out[ev.Data.UID] += ev.Data.Reason + " "
			}
		}
		return out
	}
	offline := func() map[string]string { return events(chat.WebhookUserOffline) }
	if err := a.core.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(offline()); got != "map[y:server_stopping ]" {
		t.Fatalf("after a's stop: offline events %s, want y's only (x is still on b)", got)
	}
	ax.h.HandleClose() // the transports close a's connections after its Drain
	ay.h.HandleClose()
	ce.hub.flush()
	a.stop()
	ce.hub.flush()
	b.stop()        // b dies: no stop of its own, x and z stay recorded online
	ce.hub.cut("b") // and a dead process answers no hello (b's new run must not hear the old one)
	b2 := ce.node("b")
	deadline := time.Now().Add(15 * time.Second) // the sweep waits clusterDead (real time)
	for fmt.Sprint(offline()) != "map[x:restart  y:server_stopping  z:restart ]" {
		if time.Now().After(deadline) {
			t.Fatalf("after b's restart: offline events %v", offline())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if recs, _ := ce.st.ScanRecords(ctx, "wh.on", nil, nil, 0, false); len(recs) != 0 {
		t.Fatalf("%d users still recorded online", len(recs))
	}
	// Each offline follows the user's one online.
	if got := fmt.Sprint(events(chat.WebhookUserOnline)); got != "map[x:  y:  z: ]" {
		t.Fatalf("online events %s, want one each for x, y and z", got)
	}
	_ = b2
}
