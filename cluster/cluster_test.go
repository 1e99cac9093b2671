package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/chat"
	"chatd/chat/memstore"
	"chatd/cluster"
)

// waitFor polls cond until it holds; the deadline only bounds a broken
// test, it is not what the test checks.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openNode starts a node's embedded NATS server on a free loopback port,
// routed to the given ones.
func openNode(t *testing.T, id string, routes ...string) *cluster.Broker {
	t.Helper()
	b, err := cluster.Open(cluster.Config{Name: "test", Node: id, Listen: "127.0.0.1:0", Routes: routes,
		Logf: func(f string, a ...any) { t.Logf(f, a...) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// inbox collects what a broker receives.
type inbox struct {
	mu   sync.Mutex
	msgs []string
}

func (in *inbox) add(m []byte) { in.mu.Lock(); in.msgs = append(in.msgs, string(m)); in.mu.Unlock() }
func (in *inbox) list() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.msgs...)
}
func (in *inbox) has(m string) bool {
	for _, x := range in.list() {
		if x == m {
			return true
		}
	}
	return false
}

// Three embedded servers routed together: a message to a node reaches it
// alone, a broadcast every other node (not the sender), and one node's
// messages arrive in the order it sent them, across the two subjects.
func TestBrokerThreeNodes(t *testing.T) {
	n1 := openNode(t, "n1")
	n2 := openNode(t, "n2", n1.RouteURL())
	n3 := openNode(t, "n3", n1.RouteURL())
	nodes := []*cluster.Broker{n1, n2, n3}
	waitFor(t, "a full mesh of routes", func() bool {
		return n1.Routes() == 2 && n2.Routes() == 2 && n3.Routes() == 2
	})
	boxes := make([]*inbox, 3)
	for i, n := range nodes {
		boxes[i] = &inbox{}
		if err := n.Subscribe(boxes[i].add); err != nil {
			t.Fatal(err)
		}
	}
	// Subscriptions travel the routes on their own time: wait until each
	// node hears each other's broadcast.
	for i, n := range nodes {
		ready := fmt.Sprintf("ready %d", i)
		waitFor(t, "node "+n.Node()+"'s broadcasts to arrive", func() bool {
			if err := n.Publish("", []byte(ready)); err != nil {
				t.Fatal(err)
			}
			for j, b := range boxes {
				if j != i && !b.has(ready) {
					return false
				}
			}
			return true
		})
		if boxes[i].has(ready) {
			t.Fatalf("node %s heard its own broadcast", n.Node())
		}
	}

	// n1 → n2 alone, then a broadcast marker: n3 gets the marker and not
	// the addressed message, which (same publisher) came before it.
	must(t, n1.Publish("n2", []byte("for n2")))
	must(t, n1.Publish("", []byte("marker")))
	waitFor(t, "the marker", func() bool { return boxes[1].has("marker") && boxes[2].has("marker") })
	if !boxes[1].has("for n2") {
		t.Fatal("n2 did not get the message addressed to it")
	}
	if boxes[2].has("for n2") || boxes[0].has("for n2") {
		t.Fatal("a message addressed to n2 reached another node")
	}

	// Order across subjects: 500 messages from n3, alternately to n1 and
	// to everyone.
	for k := range 500 {
		to := ""
		if k%2 == 0 {
			to = "n1"
		}
		must(t, n3.Publish(to, fmt.Appendf(nil, "seq %d", k)))
	}
	waitFor(t, "n3's 500 messages at n1", func() bool { return boxes[0].has("seq 499") })
	k := 0
	for _, m := range boxes[0].list() {
		if strings.HasPrefix(m, "seq ") {
			if m != fmt.Sprintf("seq %d", k) {
				t.Fatalf("n1 got %q, want seq %d: out of order", m, k)
			}
			k++
		}
	}
	if k != 500 {
		t.Fatalf("n1 got %d of n3's messages, want 500", k)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesBadConfig(t *testing.T) {
	refused(t, []badConfig{
		{name: "no node", cfg: cluster.Config{Listen: "127.0.0.1:0"}, want: "node id"},
		{name: "dot in node", cfg: cluster.Config{Node: "a.b", Listen: "127.0.0.1:0"}, want: "node id"},
		{name: "neither listen nor url", cfg: cluster.Config{Node: "a"}, want: "nats_listen"},
		{name: "bad listen", cfg: cluster.Config{Node: "a", Listen: "nowhere"}, want: "route address"},
		{name: "bad route", cfg: cluster.Config{Node: "a", Listen: "127.0.0.1:0", Routes: []string{"nats://"}}, want: "route"},
	})
}

// badConfig is a Config that Open refuses with an error mentioning want.
type badConfig struct {
	name string
	cfg  cluster.Config
	want string
}

func refused(t *testing.T, cases []badConfig) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := cluster.Open(tc.cfg)
			if err == nil {
				b.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// peer is a connection as the core sees it: it records what it is sent.
type peer struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (p *peer) Send(b []byte) bool {
	p.mu.Lock()
	p.msgs = append(p.msgs, bytes.Clone(b))
	p.mu.Unlock()
	return true
}
func (p *peer) Close(int, string)  {}
func (p *peer) RemoteAddr() string { return "127.0.0.1:1" }

// got reports whether a frame containing s arrived.
func (p *peer) got(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.msgs {
		if bytes.Contains(m, []byte(s)) {
			return true
		}
	}
	return false
}

// chatNode is a core on the shared store, joined through a NATS broker.
func chatNode(t *testing.T, st chat.Store, b *cluster.Broker) *chat.Core {
	t.Helper()
	core, err := chat.New(chat.Config{SharedStore: true, Broker: b}, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { core.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return core
}

// login connects a peer to core as uid.
func login(t *testing.T, core *chat.Core, uid string) *peer {
	t.Helper()
	ctx := context.Background()
	if _, err := core.PushUser(ctx, "shop", chat.UserInput{UID: uid}); err != nil {
		t.Fatal(err)
	}
	g, err := core.IssueToken(ctx, "shop", uid, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{}
	core.Accept(p).HandleMessage([]byte(`{"id":"login","action":"login","app":"shop","token":"` + g.Token + `"}`))
	waitFor(t, uid+"'s login", func() bool { return p.got(`"reply_to":"login","ok":true`) })
	return p
}

// Chat cores on NATS: a node that joins late learns the connections of
// the nodes already running, so a message sent on it reaches users
// connected to them; and their messages reach it.
func TestLateNodeGetsTheOthersConnections(t *testing.T) {
	st := memstore.NewShared()
	ba := openNode(t, "a")
	bb := openNode(t, "b", ba.RouteURL())
	a := chatNode(t, st, ba)
	b := chatNode(t, st, bb)
	if _, err := a.CreateApp(context.Background(), "shop", "Shop"); err != nil {
		t.Fatal(err)
	}
	alice := login(t, a, "alice")
	bob := login(t, b, "bob")

	bc := openNode(t, "c", ba.RouteURL())
	c := chatNode(t, st, bc)
	carol := login(t, c, "carol")
	ctx := context.Background()
	for _, to := range []struct {
		uid string
		p   *peer
	}{{"alice", alice}, {"bob", bob}} {
		n := 0
		waitFor(t, "a message sent on c to reach "+to.uid, func() bool {
			n++
			text, _ := json.Marshal(map[string]string{"text": fmt.Sprintf("probe %d", n)})
			if _, err := c.Send(ctx, "shop", chat.SendInput{From: "carol", To: to.uid, Type: "text", Content: text}); err != nil {
				t.Fatal(err)
			}
			return to.p.got(`"from":"carol"`)
		})
	}
	// And back: alice on a to carol on c.
	n := 0
	waitFor(t, "a message from a to reach c", func() bool {
		n++
		text, _ := json.Marshal(map[string]string{"text": fmt.Sprintf("back %d", n)})
		if _, err := a.Send(ctx, "shop", chat.SendInput{From: "alice", To: "carol", Type: "text", Content: text}); err != nil {
			t.Fatal(err)
		}
		return carol.got(`"from":"alice"`)
	})
}

// A request forwarded over NATS (chat.Core.Forward) bigger than NATS's
// message limit goes in pieces both ways and comes back whole.
func TestForwardOverNATS(t *testing.T) {
	st := memstore.NewShared()
	ba := openNode(t, "a")
	bb := openNode(t, "b", ba.RouteURL())
	if max := ba.MaxPayload(); max != 1<<20 {
		t.Fatalf("MaxPayload %d, want NATS's default 1 MiB", max)
	}
	a := chatNode(t, st, ba)
	b := chatNode(t, st, bb)
	b.HandleForward("echo", func(_ context.Context, origin string, req []byte) ([]byte, error) {
		return append([]byte(origin+":"), bytes.ToUpper(req)...), nil
	})
	req := bytes.Repeat([]byte("abcdefgh"), 3<<20/8) // 3 MiB
	var got []byte
	waitFor(t, "b to answer a", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		got, err = a.Forward(ctx, "b", "echo", req)
		return err == nil
	})
	if want := append([]byte("a:"), bytes.ToUpper(req)...); !bytes.Equal(got, want) {
		t.Fatalf("answer of %d bytes, want %d", len(got), len(want))
	}
}
