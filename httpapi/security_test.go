package httpapi

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatd/chat"
	"chatd/chat/memstore"
)

// tcpHarness is one server on a real loopback listener (127.0.0.1:0), for
// tests that need TCP: raw bytes, peer addresses, deadlines.
type tcpHarness struct {
	srv  *Server
	addr string
	log  *syncBuffer
}

func newTCPHarness(t *testing.T, mutate func(*Config)) *tcpHarness {
	t.Helper()
	core, err := chat.New(chat.Config{}, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	coreDone := make(chan error, 1)
	go func() { coreDone <- core.Run(ctx) }()
	cfg := Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, Version: "v-tcp"}
	if mutate != nil {
		mutate(&cfg)
	}
	h := &tcpHarness{log: &syncBuffer{}}
	h.srv, err = New(cfg, core, zerolog.New(h.log).Level(zerolog.DebugLevel))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	srvDone := make(chan error, 1)
	go func() { srvDone <- h.srv.Run(ctx) }()
	select {
	case <-h.srv.Ready():
	case err := <-srvDone:
		cancel()
		t.Fatalf("Run: %v", err)
	}
	h.addr = h.srv.Addr()
	t.Cleanup(func() {
		cancel()
		for _, c := range []chan error{srvDone, coreDone} {
			select {
			case err := <-c:
				if err != nil {
					t.Errorf("shutdown: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("shutdown timed out")
			}
		}
	})
	return h
}

// dial connects to the server from the loopback address from ("" for the
// default source address).
func (h *tcpHarness) dial(t *testing.T, from string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", h.addr)
	if err != nil {
		t.Fatalf("dial from %q: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSmugglingShapeRefused sends a request with both Content-Length and
// Transfer-Encoding: chunked, followed on the same connection by a second
// request hidden where a proxy going by Content-Length would see body. The
// server must answer 400 and close, never serve the hidden request.
func TestSmugglingShapeRefused(t *testing.T) {
	h := newTCPHarness(t, nil)
	tests := []struct {
		name    string
		headers string
	}{
		{name: "CL then TE", headers: "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"},
		{name: "TE then CL", headers: "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"},
		{name: "odd case", headers: "content-LENGTH: 5\r\ntransfer-encoding: chunked\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := h.dial(t, "")
			c.SetDeadline(time.Now().Add(5 * time.Second))
			raw := "POST /api/v1/users HTTP/1.1\r\nHost: chatd.test\r\n" + tt.headers + "\r\n" +
				"0\r\n\r\n" +
				"GET /healthz HTTP/1.1\r\nHost: chatd.test\r\n\r\n"
			if _, err := io.WriteString(c, raw); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("first answer: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 400 || !strings.Contains(string(body), "both Content-Length and Transfer-Encoding") {
				t.Fatalf("first answer %d %s, want 400 naming both headers", resp.StatusCode, body)
			}
			if !resp.Close {
				t.Fatalf("first answer keeps the connection open (Connection: %q)", resp.Header.Get("Connection"))
			}
			if resp, err := http.ReadResponse(br, nil); err == nil {
				t.Fatalf("the hidden request was served: %d", resp.StatusCode)
			}
		})
	}
	// A well-formed chunked request on its own is still served.
	c := h.dial(t, "")
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST /api/v1/users HTTP/1.1\r\nHost: chatd.test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("plain chunked request: %d, want 401 (unsigned)", resp.StatusCode)
	}
}

// slowConn is an attacker's connection that trickles a request one byte
// every interval until the server cuts it, then reports how long it
// lasted and what it was answered.
type slowConn struct {
	done   chan struct{}
	lasted time.Duration
	status int // the answer's status, 0 if none
	sent   int // bytes trickled
}

// trickle writes head at once (may be empty), then the bytes of tail one
// at a time every interval (repeating tail), until a write fails or the
// server answers and closes.
func trickle(c net.Conn, head, tail string, interval time.Duration) *slowConn {
	sc := &slowConn{done: make(chan struct{})}
	start := time.Now()
	answered := make(chan int, 1)
	go func() {
		// The reader sees the server's answer (a 408, say) and its close.
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		st := 0
		if err == nil {
			st = resp.StatusCode
			io.Copy(io.Discard, resp.Body)
			c.Read(make([]byte, 1)) // then EOF
		}
		answered <- st
	}()
	go func() {
		defer close(sc.done)
		if head != "" {
			io.WriteString(c, head)
		}
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case st := <-answered:
				sc.status, sc.lasted = st, time.Since(start)
				c.Close()
				return
			case <-tick.C:
			}
			// Bounded: the test's own guard, far beyond any deadline here.
			if time.Since(start) > 15*time.Second {
				c.Close()
				sc.status, sc.lasted = <-answered, time.Since(start)
				return
			}
			if _, err := c.Write([]byte{tail[i%len(tail)]}); err == nil {
				sc.sent++
			}
		}
	}()
	return sc
}

// TestSlowlorisKeepsHealthAndAdmin floods the listener with connections
// that trickle their requests, from several loopback addresses, and checks
// that the flood cannot take the HTTP API down: each address holds at most
// its share of slots, the slow connections are cut at their deadlines
// however steadily they trickle, and throughout, /healthz and the admin
// API answer the operator's address.
func TestSlowlorisKeepsHealthAndAdmin(t *testing.T) {
	const (
		maxConns = 4
		perIP    = 2
		reserved = 2
		// Long enough for the operator's calls below to run while the
		// flood holds every general slot, short enough to wait for.
		hdrTimeout = 2 * time.Second
		bodyTimout = 2 * time.Second
		interval   = 50 * time.Millisecond
	)
	h := newTCPHarness(t, func(c *Config) {
		c.MaxConns, c.MaxConnsPerIP, c.ReservedConns = maxConns, perIP, reserved
		c.ReservedPeers = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		c.HeaderTimeout, c.BodyTimeout = hdrTimeout, bodyTimout
	})
	// The attack: two addresses, each filling its share of the general
	// lane, one with slow headers and one with a slow body.
	slowHeader := "GET /healthz HTTP/1.1\r\nHost: chatd.test\r\nX-Pad: "
	slowBodyHead := "POST /api/v1/users HTTP/1.1\r\nHost: chatd.test\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
	var slow []*slowConn
	for i := 0; i < perIP; i++ {
		slow = append(slow, trickle(h.dial(t, "127.0.0.2"), "", slowHeader+strings.Repeat("a", 1000), interval))
		slow = append(slow, trickle(h.dial(t, "127.0.0.3"), slowBodyHead, `{"uid":"aaaa"}`, interval))
	}
	waitFor(t, "the general lane to fill", func() bool { g, _ := h.srv.admission.inUse(); return g == maxConns })

	// One more from an address at its cap: refused at once with 429.
	if st, msg := refusedStatus(t, h.dial(t, "127.0.0.2")); st != 429 || !strings.Contains(msg, "too many connections from 127.0.0.2") {
		t.Fatalf("connection over the per-address cap: %d %q", st, msg)
	}
	// A new address while the general lane is full: 503 at once.
	if st, msg := refusedStatus(t, h.dial(t, "127.0.0.4")); st != 503 || !strings.Contains(msg, "server busy") {
		t.Fatalf("connection with every general slot taken: %d %q", st, msg)
	}

	// The operator's address still gets /healthz and the admin API ...
	op := opClient(h, "127.0.0.1")
	// A reserved connection is closed after its answer; the client may
	// be quicker to open the next than the server to close the last.
	lanesFree := func() {
		waitFor(t, "the reserved lane to be free", func() bool { _, r := h.srv.admission.inUse(); return r == 0 })
	}
	for i := 0; i < 3; i++ {
		lanesFree()
		if a := do(t, op, mustReq(t, "GET", baseURL+"/healthz")); a.Status != 200 {
			t.Fatalf("/healthz during the flood: %d %s", a.Status, a.Body)
		}
		lanesFree()
		req := rawReq(t, reqOpts{method: "GET", path: "/admin/v1/status", key: testAdminKey})
		if a := do(t, op, req); a.Status != 200 {
			t.Fatalf("admin status during the flood: %d %s", a.Status, a.Body)
		}
	}
	lanesFree()
	fams := scrape(t, op)
	for _, m := range []struct {
		name, label, value string
		want               float64
	}{
		{name: "chatd_http_connections", label: "lane", value: "general", want: maxConns},
		{name: "chatd_http_connections_refused_total", label: "reason", value: "per_ip", want: 1},
		{name: "chatd_http_connections_refused_total", label: "reason", value: "busy", want: 1},
	} {
		if v := value(t, fams, m.name, m.label, m.value); v != m.want {
			t.Errorf("%s{%s=%q} = %v, want %v", m.name, m.label, m.value, v, m.want)
		}
	}
	// ... but not the app API, which is what the general lane is for.
	lanesFree()
	if a := do(t, op, mustReq(t, "GET", baseURL+"/api/v1/users/alice")); a.Status != 503 || a.Code != "unavailable" {
		t.Fatalf("app API on the reserved lane: %d %s", a.Status, a.Body)
	}

	if g, _ := h.srv.admission.inUse(); g != maxConns {
		t.Fatalf("the flood ended before the operator's calls were done (%d general slots held): raise the deadlines", g)
	}

	// Every slow connection is cut at its deadline though it never
	// stopped sending: 2 s for the header (or the body after it), far
	// less than the trickle would take (50 s for the header).
	for i, sc := range slow {
		select {
		case <-sc.done:
		case <-time.After(20 * time.Second):
			t.Fatalf("slow connection %d still open", i)
		}
		t.Logf("slow connection %d: cut after %v, %d bytes trickled, answer %d", i, sc.lasted.Round(time.Millisecond), sc.sent, sc.status)
		if sc.lasted > hdrTimeout+3*time.Second {
			t.Errorf("slow connection %d lasted %v (%d bytes trickled): deadlines were extended", i, sc.lasted, sc.sent)
		}
		if sc.status != 0 && sc.status != 408 {
			t.Errorf("slow connection %d answered %d, want 408 or a close", i, sc.status)
		}
	}
	// With the flood gone, every slot is free again and the app API is
	// served to anyone.
	waitFor(t, "the slots to be released", func() bool { g, r := h.srv.admission.inUse(); return g == 0 && r == 0 })
	if a := do(t, opClient(h, "127.0.0.4"), mustReq(t, "GET", baseURL+"/api/v1/users/alice")); a.Status != 401 {
		t.Fatalf("app API after the flood: %d %s, want 401 (unsigned)", a.Status, a.Body)
	}
}

// refusedStatus reads the answer the server writes to a connection it
// refuses before reading anything.
func refusedStatus(t *testing.T, c net.Conn) (int, string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("refused connection: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !resp.Close {
		t.Fatalf("refusal keeps the connection open")
	}
	return resp.StatusCode, string(b)
}

// opClient is an HTTP client whose connections come from the address
// from, one request per connection.
// It dials the server whatever host the URL names (use baseURL).
func opClient(h *tcpHarness, from string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	return &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, h.addr)
			},
			DisableKeepAlives: true,
		},
		Timeout: 10 * time.Second,
	}
}

func mustReq(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// waitFor polls cond (bounded) until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStreamFreesItsSlot: a live stream runs on a hijacked connection and
// has its own cap, so it gives its connection slot back; with one general
// slot, requests are still served while a stream is open.
func TestStreamFreesItsSlot(t *testing.T) {
	h := newTCPHarness(t, func(c *Config) {
		c.MaxConns = 1
		c.ReservedPeers = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")} // nobody here
	})
	ls := openStream(t, opClient(h, "127.0.0.1"), false, "all")
	ls.start().hello("all")
	waitFor(t, "the stream's slot to be released", func() bool { g, _ := h.srv.admission.inUse(); return g == 0 })
	if a := do(t, opClient(h, "127.0.0.1"), mustReq(t, "GET", baseURL+"/healthz")); a.Status != 200 {
		t.Fatalf("/healthz with a stream open: %d %s", a.Status, a.Body)
	}
}

// TestSlowSecondRequestIsCut: on a kept-alive connection the header
// deadline starts again at the next request's first byte, and trickling
// does not extend it either.
func TestSlowSecondRequestIsCut(t *testing.T) {
	const hdrTimeout = 500 * time.Millisecond
	h := newTCPHarness(t, func(c *Config) { c.HeaderTimeout = hdrTimeout })
	c := h.dial(t, "127.0.0.5")
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: chatd.test\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("first request: %d, close %v", resp.StatusCode, resp.Close)
	}
	// Idle well past the header deadline: the idle timeout applies, not it.
	time.Sleep(2 * hdrTimeout)
	c.SetDeadline(time.Time{})
	// Now a second request, one byte every 50 ms (its header alone would
	// take 50 s): the connection is cut at the header deadline.
	sc := trickle(&prefixedConn{Conn: c, r: br}, "", "GET /healthz HTTP/1.1\r\nX-Pad: "+strings.Repeat("b", 1000), 50*time.Millisecond)
	select {
	case <-sc.done:
	case <-time.After(20 * time.Second):
		t.Fatal("slow second request still open")
	}
	if sc.lasted > hdrTimeout+2*time.Second || sc.status != 408 {
		t.Fatalf("slow second request: cut after %v (%d bytes), answer %d; want 408 at about %v", sc.lasted, sc.sent, sc.status, hdrTimeout)
	}
}

// prefixedConn reads what a bufio.Reader already buffered from its conn
// before reading the conn itself.
type prefixedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *prefixedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
