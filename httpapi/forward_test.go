package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatd/chat"
	"chatd/chat/memstore"
	"chatd/httpapi/apiclient"
	"chatd/internal/metrics/metricstest"
)

// Every endpoint says where it runs in a cluster; customer service and
// consultations on the "domains" lease's holder, redelivery on the
// "webhooks" one's.
func TestRouteClasses(t *testing.T) {
	for id := epNone + 1; id < epCount; id++ {
		ep := endpoints[id]
		on := routeRuns[id]
		if on == 0 {
			t.Errorf("%s (endpoint %d) has no class in routeRuns (forward.go): say which node runs it", ep.pattern, id)
			continue
		}
		p := strings.ToLower(ep.pattern)
		if (strings.Contains(p, "service") || strings.Contains(p, "consult")) && on != onDomains {
			t.Errorf("%s is a customer-service or consultation route: it must run on the domains holder", ep.pattern)
		}
	}
	if routeRuns[epWebhookRedeliver] != onWebhooks {
		t.Errorf("a redelivery must run on the webhook dispatcher's node")
	}
	if routeRuns[epMessages] != onDomainsSession {
		t.Errorf("a send into a service or consultation session must run on the domains holder (appSend)")
	}
}

// fwdHub is an in-process chat.Broker: each node receives on one
// goroutine, in the order each sender published. Its messages are
// limited to 4 KiB, so that forwarded calls travel in pieces.
type fwdHub struct {
	mu    sync.Mutex
	nodes map[string]*fwdHubNode
}

type fwdHubNode struct {
	h    *fwdHub
	name string
	in   chan []byte
	cut  atomic.Bool // neither sends nor receives: a frozen or unreachable node
}

func (h *fwdHub) join(name string) *fwdHubNode {
	n := &fwdHubNode{h: h, name: name, in: make(chan []byte, 4096)}
	h.mu.Lock()
	h.nodes[name] = n
	h.mu.Unlock()
	return n
}

func (n *fwdHubNode) Node() string      { return n.name }
func (n *fwdHubNode) MaxPayload() int64 { return 4096 }
func (n *fwdHubNode) Subscribe(fn func([]byte)) error {
	go func() {
		for m := range n.in {
			fn(m)
		}
	}()
	return nil
}

func (n *fwdHubNode) Publish(node string, msg []byte) error {
	if int64(len(msg)) > n.MaxPayload() {
		return errors.New("fwdHub: message over the payload limit")
	}
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	if n.cut.Load() {
		return nil
	}
	for name, to := range n.h.nodes {
		if name == n.name || to.cut.Load() || node != "" && node != name {
			continue
		}
		select {
		case to.in <- append([]byte(nil), msg...):
		default:
			return errors.New("fwdHub: receiver full")
		}
	}
	return nil
}

// fwdNode is one node of a test cluster: a core on the shared store, its
// server on a real loopback listener.
type fwdNode struct {
	name string
	core *chat.Core
	srv  *Server
	hub  *fwdHubNode
	url  string
}

type fwdCluster struct {
	t     *testing.T
	st    *memstore.Shared
	hub   *fwdHub
	nodes map[string]*fwdNode
	ctx   context.Context
}

func newFwdCluster(t *testing.T) *fwdCluster {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &fwdCluster{t: t, st: memstore.NewShared(), hub: &fwdHub{nodes: map[string]*fwdHubNode{}},
		nodes: map[string]*fwdNode{}, ctx: ctx}
}

// node starts a node on the wall clock and waits until it and every
// other node hear each other.
func (fc *fwdCluster) node(name string, mutate func(*Config)) *fwdNode {
	fc.t.Helper()
	return fc.nodeClock(name, time.Now, mutate)
}

// nodeClock starts a node whose core reads the clock now (its lease
// cache and its dead-node rule age by it).
func (fc *fwdCluster) nodeClock(name string, now func() time.Time, mutate func(*Config)) *fwdNode {
	t := fc.t
	t.Helper()
	hn := fc.hub.join(name)
	core, err := chat.New(chat.Config{SharedStore: true, Broker: hn, Now: now, LogError: func(string, error) {}}, fc.st)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(fc.ctx)
	coreDone, srvDone := make(chan error, 1), make(chan error, 1)
	go func() { coreDone <- core.Run(ctx) }()
	cfg := Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, Version: "v-test"}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(cfg, core, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	go func() { srvDone <- srv.Run(ctx) }()
	<-srv.Ready()
	t.Cleanup(func() {
		cancel()
		<-srvDone
		<-coreDone
	})
	n := &fwdNode{name: name, core: core, srv: srv, hub: hn, url: "http://" + srv.Addr()}
	for _, o := range fc.nodes {
		fc.hear(n, o)
		fc.hear(o, n)
	}
	fc.nodes[name] = n
	return n
}

// hear waits until a's forwarded requests reach b.
func (fc *fwdCluster) hear(a, b *fwdNode) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := a.core.Forward(context.Background(), b.name, "nothing", nil)
		if errors.Is(err, chat.ErrForwardNoHandler) {
			return
		}
		if time.Now().After(deadline) {
			fc.t.Fatalf("node %s does not reach node %s: %v", a.name, b.name, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// owns waits until n is the domains' owner: every node runs the owner
// loop (chat/owner.go), which takes the "domains" lease when it is free,
// so the first node started takes it, and the nodes started after it
// leave it to n while n renews it. Owning is the lease naming n and n
// having loaded the state: a customer-service call of app sent to n
// itself succeeds (not refused unavailable by the not-owner guard).
func (fc *fwdCluster) owns(n *fwdNode, app, secret string) {
	t := fc.t
	t.Helper()
	waitFor(t, "node "+n.name+" owns the domains", func() bool {
		l, err := fc.st.Lease(context.Background(), "domains")
		if err != nil || !l.Live() || !strings.HasPrefix(l.Holder, n.name+"/") {
			return false
		}
		return send(t, signed(t, n, app, secret, "POST", "/api/v1/service", []byte(`{"action":"shops"}`))).status == 200
	})
}

// gone waits until a no longer counts b among the cluster's nodes.
func (fc *fwdCluster) gone(a, b *fwdNode) {
	waitFor(fc.t, "node "+a.name+" drops node "+b.name, func() bool {
		_, err := a.core.Forward(context.Background(), b.name, "nothing", nil)
		return errors.Is(err, chat.ErrForwardUnknown)
	})
}

// app creates an app through n (admin: loopback) and returns its secret.
func (fc *fwdCluster) app(n *fwdNode, id string) (secret string) {
	fc.t.Helper()
	admin := &apiclient.Client{BaseURL: n.url, AdminKey: testAdminKey}
	a, err := admin.CreateApp(context.Background(), id, "App "+id)
	if err != nil {
		fc.t.Fatal(err)
	}
	return a.Secret
}

// signed builds a request to n signed with the app's secret.
func signed(t *testing.T, n *fwdNode, app, secret, method, uri string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, n.url+uri, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), apiclient.NewNonce()
	req.Header.Set(HeaderApp, app)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, apiclient.Sign(secret, method, uri, ts, nonce, body))
	return req
}

// raw sends req and returns the answer as received.
type rawAnswer struct {
	status int
	ctype  string
	body   string
}

func send(t *testing.T, req *http.Request) rawAnswer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawAnswer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
}

// A customer-service or consultation call sent to a node that does not
// hold the "domains" lease is answered by the holder: the same status,
// type and body as the holder gives it directly, successes and errors
// alike, a body in pieces included; the holder served each.
func TestForwardDomainsCalls(t *testing.T) {
	fc := newFwdCluster(t)
	a := fc.node("a", nil)
	secret := fc.app(a, "shop")
	fc.owns(a, "shop", secret)
	b := fc.node("b", nil)
	call := func(n *fwdNode, method, uri, body string) rawAnswer {
		return send(t, signed(t, n, "shop", secret, method, uri, []byte(body)))
	}
	if got := call(b, "POST", "/api/v1/service", `{"action":"shop_put","shop":"acme","name":"ACME"}`); got.status != 200 {
		t.Fatalf("shop_put through b: %+v", got)
	}
	if a.srv.fwd.served.Load() != 1 || b.srv.fwd.sent.Load() != 1 {
		t.Fatalf("a served %d forwarded calls, b sent %d; want 1 and 1", a.srv.fwd.served.Load(), b.srv.fwd.sent.Load())
	}
	pad := strings.Repeat("x", 10000) // over the hub's 4 KiB: the call goes in pieces
	for _, c := range []struct{ method, uri, body string }{
		{"POST", "/api/v1/service", `{"action":"shop","shop":"acme"}`},
		{"POST", "/api/v1/service", `{"action":"shops"}`},
		{"POST", "/api/v1/service", `{"action":"shop","shop":"nope"}`},                   // 404
		{"POST", "/api/v1/service", `{"action":"shop","shop":"acme","x":"` + pad + `"}`}, // in pieces
		{"GET", "/api/v1/consultations/999", ""},                                         // 404
		{"GET", "/api/v1/consultations/abc", ""},                                         // 400
		{"GET", "/api/v1/consult-records?consultant=nobody", ""},
		{"GET", "/api/v1/consultants/nobody", ""},
	} {
		direct := call(a, c.method, c.uri, c.body)
		forwarded := call(b, c.method, c.uri, c.body)
		if direct != forwarded {
			t.Errorf("%s %s %.40s:\n  holder a:  %+v\n  through b: %+v", c.method, c.uri, c.body, direct, forwarded)
		}
	}
	if n := a.srv.fwd.served.Load(); n != 9 {
		t.Errorf("a served %d forwarded calls, want 9", n)
	}
	if n := b.srv.fwd.served.Load(); n != 0 {
		t.Errorf("b served %d forwarded calls, want none", n)
	}
	// A route any node serves is not forwarded.
	if got := call(b, "GET", "/api/v1/app", ""); got.status != 200 || a.srv.fwd.served.Load() != 9 {
		t.Errorf("app settings through b: %+v (a served %d)", got, a.srv.fwd.served.Load())
	}
	for n, want := range map[*fwdNode][3]float64{a: {0, 9, 0}, b: {9, 0, 0}} {
		req, _ := http.NewRequest("GET", n.url+"/metrics", nil)
		fams, err := metricstest.Parse([]byte(send(t, req).body))
		if err != nil {
			t.Fatal(err)
		}
		for i, way := range []string{"sent", "served", "failed"} {
			if v := value(t, fams, "chatd_http_forwarded_total", "way", way); v != want[i] {
				t.Errorf("node %s: chatd_http_forwarded_total{way=%q} %v, want %v", n.name, way, v, want[i])
			}
		}
	}
}

// A forwarded call is checked on the holder as if sent to it: a bad
// signature is refused by the node it reached (nothing forwarded), and a
// signed call replayed through another node meets the holder's nonce
// cache.
func TestForwardAuth(t *testing.T) {
	fc := newFwdCluster(t)
	a := fc.node("a", nil)
	secret := fc.app(a, "shop")
	fc.owns(a, "shop", secret)
	b := fc.node("b", nil)
	body := []byte(`{"action":"shops"}`)
	bad := signed(t, b, "shop", "not-the-secret", "POST", "/api/v1/service", body)
	if got := send(t, bad); got.status != 401 || !strings.Contains(got.body, "bad signature") {
		t.Fatalf("bad signature through b: %+v", got)
	}
	if n := a.srv.fwd.served.Load(); n != 0 {
		t.Fatalf("a served %d calls that b refused", n)
	}
	req := signed(t, a, "shop", secret, "POST", "/api/v1/service", body)
	if got := send(t, req); got.status != 200 {
		t.Fatalf("direct: %+v", got)
	}
	replay, _ := http.NewRequest("POST", b.url+"/api/v1/service", bytes.NewReader(body))
	replay.Header = req.Header.Clone()
	if got := send(t, replay); got.status != 401 || !strings.Contains(got.body, "nonce already used") {
		t.Fatalf("the same signed call replayed through b: %+v, want the holder's 401 nonce already used", got)
	}
}

// A redelivery sent to a node without the webhook dispatcher runs on the
// node that has it.
func TestForwardRedelivery(t *testing.T) {
	fc := newFwdCluster(t)
	a, b := fc.node("a", nil), fc.node("b", nil)
	var got atomic.Int32
	sender := senderFunc(func() { got.Add(1) })
	whCtx, stop := context.WithCancel(context.Background())
	whDone := make(chan error, 1)
	go func() {
		whDone <- a.core.RunWebhooks(whCtx, chat.WebhookConfig{Sender: sender, Tick: 5 * time.Millisecond})
	}()
	t.Cleanup(func() { stop(); <-whDone })
	waitFor(t, "a holds the webhooks lease", func() bool {
		l, _ := fc.st.Lease(context.Background(), "webhooks")
		return strings.HasPrefix(l.Holder, "a/")
	})
	secret := fc.app(b, "shop")
	ctx := context.Background()
	// The endpoint and the message through a: endpoints are cached per
	// node (docs/cluster.md, "Not yet").
	shopA := &apiclient.Client{BaseURL: a.url, App: "shop", Secret: secret}
	shopB := &apiclient.Client{BaseURL: b.url, App: "shop", Secret: secret}
	url := "https://hooks.example.com/chat"
	if _, err := shopA.CreateWebhookEndpoint(ctx, apiclient.WebhookEndpointInput{URL: &url, Events: []string{"message.created"}}); err != nil {
		t.Fatal(err)
	}
	for _, uid := range []string{"alice", "bob"} {
		if _, err := shopA.PushUser(ctx, apiclient.PushUserInput{UID: uid}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := shopA.Send(ctx, apiclient.SendInput{From: "alice", To: "bob", Type: "text", Content: []byte(`{"text":"hi"}`)}); err != nil {
		t.Fatal(err)
	}
	var id string
	waitFor(t, "the delivery is delivered", func() bool {
		ds, err := shopB.WebhookDeliveries(ctx, 0, "", "delivered", false)
		if err != nil || len(ds) == 0 {
			return false
		}
		id = ds[0].ID
		return true
	})
	n, err := shopB.RedeliverWebhooks(ctx, apiclient.Redeliver{DeliveryIDs: []string{id}})
	if err != nil || n != 1 {
		t.Fatalf("redeliver through b: %d, %v", n, err)
	}
	waitFor(t, "the delivery is sent again", func() bool { return got.Load() == 2 })
	if a.srv.fwd.served.Load() != 1 {
		t.Errorf("a served %d forwarded calls, want the redelivery", a.srv.fwd.served.Load())
	}
}

// The holder moved between the origin's look and the call's arrival: the
// node that gets the forwarded call answers unavailable and does not
// forward it again. The move is a real one: the owner a drains (a
// stopping node releases the lease) and b's owner loop takes the lease,
// while b's clock stands still, so that what b read of the lease before
// never ages and b still forwards to a.
func TestForwardOnce(t *testing.T) {
	ctx := context.Background()
	fc := newFwdCluster(t)
	a := fc.node("a", nil)
	secret := fc.app(a, "shop")
	fc.owns(a, "shop", secret)
	frozen := time.Now()
	b := fc.nodeClock("b", func() time.Time { return frozen }, nil)
	if node, self, err := b.core.LeaseNode(ctx, "domains"); node != "a" || self || err != nil {
		t.Fatalf("b sees the domains lease at %q %v %v", node, self, err)
	}
	if err := a.core.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b takes the domains lease", func() bool {
		l, err := fc.st.Lease(ctx, "domains")
		return err == nil && l.Live() && strings.HasPrefix(l.Holder, "b/")
	})
	// a read the lease for its own calls in the last second (owns): it
	// must not take itself for the holder on that.
	a.core.ForgetLeaseNode("domains")
	shops := []byte(`{"action":"shops"}`)
	got := send(t, signed(t, b, "shop", secret, "POST", "/api/v1/service", shops))
	if got.status != 503 || !strings.Contains(got.body, `"unavailable"`) || !strings.Contains(got.body, "forwarded once") ||
		!strings.Contains(got.body, "node b holds it now") {
		t.Fatalf("a call forwarded to a node that no longer holds the lease: %+v", got)
	}
	if a.srv.fwd.served.Load() != 1 || a.srv.fwd.sent.Load() != 0 || b.srv.fwd.served.Load() != 0 {
		t.Fatalf("a served %d and forwarded %d, b served %d: want 1, 0, 0 (no second hop)",
			a.srv.fwd.served.Load(), a.srv.fwd.sent.Load(), b.srv.fwd.served.Load())
	}
	// Once b looks again, it serves the call itself (once it has loaded
	// the state; until then it answers unavailable).
	b.core.ForgetLeaseNode("domains")
	waitFor(t, "b serves the call itself", func() bool {
		return send(t, signed(t, b, "shop", secret, "POST", "/api/v1/service", shops)).status == 200
	})
	if a.srv.fwd.served.Load() != 1 {
		t.Fatalf("a served %d forwarded calls, want still 1", a.srv.fwd.served.Load())
	}
}

// A holder that cannot answer gives 503 unavailable naming what is
// moving: one gone silent (cut from the broker, still renewing the lease
// in the store) when the wait ends; the same holder, once the origin
// counts it out of the cluster by the dead-node rule, at once. A call
// over the size a forwarded call may carry is 413. The origin a's clock
// stands still until the test moves it past the rule's 3 s, so that a
// keeps counting the silent b in the cluster for as long as the test
// needs, then drops it.
func TestForwardHolderGone(t *testing.T) {
	old := forwardTimeout
	forwardTimeout = 200 * time.Millisecond
	t.Cleanup(func() { forwardTimeout = old })
	fc := newFwdCluster(t)
	b := fc.node("b", nil)
	secret := fc.app(b, "shop")
	fc.owns(b, "shop", secret)
	start := time.Now()
	var skew atomic.Int64
	a := fc.nodeClock("a", func() time.Time { return start.Add(time.Duration(skew.Load())) },
		func(c *Config) { c.MaxBody = chat.ForwardMaxSize + 1<<20 })
	call := func(body string) rawAnswer {
		return send(t, signed(t, a, "shop", secret, "POST", "/api/v1/service", []byte(body)))
	}
	if got := call(strings.Repeat(" ", chat.ForwardMaxSize+1)); got.status != 413 || !strings.Contains(got.body, `"too_large"`) {
		t.Fatalf("a call over the forwarding limit: %d %.300s", got.status, got.body)
	}

	b.hub.cut.Store(true) // frozen: still in a's list of nodes, answers nothing
	got := call(`{"action":"shops"}`)
	if got.status != 503 || !strings.Contains(got.body, `"unavailable"`) || !strings.Contains(got.body, "did not answer") {
		t.Fatalf("holder silent: %+v", got)
	}

	skew.Store(int64(4 * time.Second)) // past the 3 s without a heartbeat after which a node is dead
	fc.gone(a, b)
	if l, err := fc.st.Lease(context.Background(), "domains"); err != nil || !l.Live() || !strings.HasPrefix(l.Holder, "b/") {
		t.Fatalf("the domains lease %+v %v: b renews it still", l, err)
	}
	got = call(`{"action":"shops"}`)
	if got.status != 503 || !strings.Contains(got.body, `"unavailable"`) ||
		!strings.Contains(got.body, "customer service and consultations run on node b") || !strings.Contains(got.body, "left the cluster") {
		t.Fatalf("holder not in the cluster: %+v", got)
	}
}

// senderFunc is a chat.WebhookSender that accepts every delivery.
type senderFunc func()

func (f senderFunc) Send(context.Context, string, chat.WebhookHeaders, []byte) (int, error) {
	f()
	return 200, nil
}

func (f senderFunc) Call(context.Context, string, chat.WebhookHeaders, []byte) (int, []byte, error) {
	return 200, nil, nil
}
