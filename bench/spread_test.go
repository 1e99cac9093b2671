package bench

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Several WebSocket addresses: user i's connection goes to address i mod
// n, so the two users of a pair are on different nodes.
func TestResolveTargetSpreadsUsers(t *testing.T) {
	ctx := context.Background()
	r, err := resolveTarget(ctx, Target{WSAddrs: []string{"127.0.0.1:1001", "ws://127.0.0.1:1002/chat", "127.0.0.2:1003"}, HTTP: "127.0.0.1:2"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.wsAll) != 3 || r.ws != r.wsAll[0] || !r.loopback {
		t.Fatalf("wsAll %v, ws %v, loopback %v", r.wsAll, r.ws, r.loopback)
	}
	want := []string{"127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.2:1003", "127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.2:1003"}
	for u, w := range want {
		if got := r.wsFor(u).addr.String(); got != w {
			t.Errorf("user %d → %s, want %s", u, got, w)
		}
	}
	if p := r.wsFor(1).path; p != "/chat" {
		t.Errorf("path of the second address %q, want /chat", p)
	}
	for _, n := range []int{2, 3, 4} {
		r, err := resolveTarget(ctx, Target{WSAddrs: []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"}[:n], HTTP: "127.0.0.1:9"}, false)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 50 {
			if r.wsFor(2*i) == r.wsFor(2*i+1) {
				t.Errorf("n=%d: pair %d on one address %v", n, i, r.wsFor(2*i).addr)
			}
		}
	}

	// One address, as --ws or as a one-item list: every user on it.
	for _, tg := range []Target{{WS: "127.0.0.1:1001", HTTP: "127.0.0.1:2"}, {WSAddrs: []string{"127.0.0.1:1001"}, HTTP: "127.0.0.1:2"}} {
		r, err := resolveTarget(ctx, tg, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.wsAll) != 1 || r.wsFor(7) != r.ws || r.ws.addr.String() != "127.0.0.1:1001" {
			t.Errorf("%+v: wsAll %v", tg, r.wsAll)
		}
	}

	bad := []struct {
		t    Target
		want string
	}{
		{Target{WSAddrs: []string{"127.0.0.1:1", "192.0.2.1:2"}, HTTP: "127.0.0.1:2"}, "--allow-remote"},
		{Target{WSAddrs: []string{"127.0.0.1:1", "[::1]:2"}, HTTP: "127.0.0.1:2"}, "different IP families"},
		{Target{WSAddrs: []string{"127.0.0.1:1", "wss://127.0.0.1:2"}, HTTP: "127.0.0.1:2"}, "TLS is not supported"},
	}
	for _, b := range bad {
		if _, err := resolveTarget(ctx, b.t, false); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%v: error %v, want %q", b.t.WSAddrs, err, b.want)
		}
	}
}

// TestOpenSpreadsOverAddresses: an opener over three fake servers; each
// server sees the logins of the users i with i mod 3 its index.
func TestOpenSpreadsOverAddresses(t *testing.T) {
	got := loginsPerServer(t, 3, 1, 6)
	want := [][]string{{"tok-0", "tok-3"}, {"tok-1", "tok-4"}, {"tok-2", "tok-5"}}
	for k := range 3 {
		if strings.Join(got[k], ",") != strings.Join(want[k], ",") {
			t.Errorf("server %d saw %v, want %v", k, got[k], want[k])
		}
	}
}

// loginsPerServer opens users 0..users-1 (one at a time) with an opener
// over n fake servers placing units of unit users, and returns the tokens
// each server saw log in, sorted (a server records a login as its
// handler gets to it, which may be after the next user's).
func loginsPerServer(t *testing.T, n, unit, users int) [][]string {
	t.Helper()
	var mu sync.Mutex
	seen := make([][]string, n)
	var eps []endpoint
	for k := range n {
		eps = append(eps, fakeServer(t, func(c net.Conn) {
			login, ok := acceptLogin(t, c)
			if !ok {
				return
			}
			tok, _ := login["token"].(string)
			mu.Lock()
			seen[k] = append(seen[k], tok)
			mu.Unlock()
			readClient(t, c) // the close frame
		}))
	}
	o, _ := testOpener(eps[0], 4)
	o.ds = wsDialers(resolved{wsAll: eps}, nil, o.timeout)
	o.unit = unit
	for u := range users {
		c, err := o.open(context.Background(), u)
		if err != nil {
			t.Fatalf("user %d: %v", u, err)
		}
		c.close(0)
	}
	waitFor(t, "every login seen", func() bool {
		mu.Lock()
		defer mu.Unlock()
		total := 0
		for _, s := range seen {
			total += len(s)
		}
		return total == users
	})
	mu.Lock()
	defer mu.Unlock()
	for _, s := range seen {
		slices.Sort(s)
	}
	return seen
}
