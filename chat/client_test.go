package chat

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// The core holds a Client per connection and a user per user seen: they
// stay within their malloc size classes (see the comments on the types).
func TestClientSize(t *testing.T) {
	cases := []struct {
		name string
		size uintptr
		max  uintptr
	}{
		{name: "Client", size: unsafe.Sizeof(Client{}), max: 96},
		{name: "user", size: unsafe.Sizeof(user{}), max: 48}, // 32 + the two rate-limit buckets
	}
	for _, tc := range cases {
		if tc.size > tc.max {
			t.Errorf("%s is %d bytes, want at most %d", tc.name, tc.size, tc.max)
		}
	}
}

// reqQueue is FIFO across its compaction, and its array stays bounded by
// the requests waiting, however many pass through.
func TestReqQueue(t *testing.T) {
	cases := []struct {
		name    string
		rounds  int // push `burst`, then pop `take`, this many times
		burst   int
		take    int
		maxCap  int
		waiting int // left at the end
	}{
		{name: "push-pop-one", rounds: 1000, burst: 1, take: 1, maxCap: 8, waiting: 0},
		{name: "steady-backlog", rounds: 1000, burst: 3, take: 3, maxCap: 8, waiting: 0},
		{name: "backlog-of-five", rounds: 500, burst: 2, take: 2, maxCap: 16, waiting: 5},
		{name: "growing", rounds: 20, burst: 3, take: 1, maxCap: 128, waiting: 40},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := &reqQueue{b: make([][]byte, 0, 8)}
			next, want := 0, 0
			push := func() {
				q.push([]byte(strconv.Itoa(next)))
				next++
			}
			pop := func() {
				if got := string(q.pop()); got != strconv.Itoa(want) {
					t.Fatalf("pop = %s, want %d", got, want)
				}
				want++
			}
			for range tc.waiting - tc.rounds*(tc.burst-tc.take) {
				push()
			}
			for range tc.rounds {
				for range tc.burst {
					push()
				}
				for range tc.take {
					pop()
				}
				if cap(q.b) > tc.maxCap {
					t.Fatalf("cap %d with %d waiting, want at most %d", cap(q.b), q.waiting(), tc.maxCap)
				}
			}
			if q.waiting() != tc.waiting {
				t.Fatalf("waiting %d, want %d", q.waiting(), tc.waiting)
			}
			for q.waiting() > 0 {
				pop()
			}
			for i := range q.head {
				if q.b[i] != nil {
					t.Fatalf("taken slot %d still holds a request", i)
				}
			}
		})
	}
}

// recPeer records the connection's replies and its close code.
type recPeer struct {
	mu      sync.Mutex
	replies int
	code    int
}

func (p *recPeer) Send([]byte) bool {
	p.mu.Lock()
	p.replies++
	p.mu.Unlock()
	return true
}

func (p *recPeer) Close(code int, _ string) {
	p.mu.Lock()
	if p.code == 0 {
		p.code = code
	}
	p.mu.Unlock()
}

func (p *recPeer) RemoteAddr() string { return "127.0.0.1:1" }

func (p *recPeer) state() (replies, code int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.replies, p.code
}

// A logged-in Client keeps the registry's strings (not the token's fresh
// copies), every device of a user shares its registry entry, and revoking
// one token closes only the device that logged in with it.
func TestLoginSharesRegistry(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c, err := New(Config{}, newNullStore())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if _, err := c.PushUser(ctx, "shop", UserInput{UID: "alice"}); err != nil {
		t.Fatal(err)
	}
	login := func() (*Client, *recPeer, string) {
		t.Helper()
		g, err := c.IssueToken(ctx, "shop", "alice", 0)
		if err != nil {
			t.Fatal(err)
		}
		p := &recPeer{}
		cl := c.Accept(p).(*Client)
		cl.HandleMessage([]byte(`{"id":"1","action":"login","app":"shop","token":"` + g.Token + `"}`))
		for deadline := time.Now().Add(5 * time.Second); ; {
			if replies, _ := p.state(); replies == 1 && cl.loggedIn.Load() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("login did not complete")
			}
			time.Sleep(time.Millisecond)
		}
		return cl, p, g.Token
	}
	a, pa, tokA := login()
	b, pb, _ := login()

	c.mu.Lock()
	reg := c.users["shop"]
	c.mu.Unlock()
	if reg == nil || reg.users.get("alice") != a.u || a.u != b.u {
		t.Fatalf("registry entry %+v; clients' users %p %p", reg, a.u, b.u)
	}
	for _, cl := range []*Client{a, b} {
		if cl.id.App != "shop" || cl.id.UID != "alice" ||
			unsafe.StringData(cl.id.App) != unsafe.StringData(reg.app) ||
			unsafe.StringData(cl.id.UID) != unsafe.StringData(a.u.uid) {
			t.Fatalf("client identity %+v does not share the registry's strings", cl.id)
		}
	}
	if got := len(a.u.online()); got != 2 {
		t.Fatalf("%d devices online, want 2", got)
	}

	n, err := c.RevokeToken(ctx, "shop", tokA)
	if err != nil || n != 1 {
		t.Fatalf("RevokeToken: kicked %d, %v; want 1", n, err)
	}
	if _, code := pa.state(); code != CloseKicked {
		t.Errorf("device with the revoked token: close code %d, want %d", code, CloseKicked)
	}
	if _, code := pb.state(); code != 0 {
		t.Errorf("device with another token closed with %d", code)
	}
	if on := a.u.online(); len(on) != 1 || on[0] != b {
		t.Errorf("online after revoke: %v, want only the other device", on)
	}
	if replies, _ := pb.state(); replies != 1 {
		t.Errorf("other device got %d replies, want its login reply only", replies)
	}
}
