//go:build linux

package bench

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"chatd/internal/teststack"
)

// fastRun is a fast connector started by a test, with the recorders it
// reports to.
type fastRun struct {
	h        fastHolder
	st       *rampStats
	tr       *traffic
	lat      *Recorder
	reissued *atomic.Int64
}

// startFastTest starts a fast connector for users 0…n-1 against ep (app
// "app1", two loops, eight attempts at once, 5s per attempt); mod adjusts
// the options. The connector is closed when the test ends.
func startFastTest(t *testing.T, ctx context.Context, ep endpoint, n int, tokens tokenSource, mod func(*fastOptions)) *fastRun {
	t.Helper()
	clk := newClock()
	r := &fastRun{st: &rampStats{}, tr: newTraffic(clk, "tag"), lat: NewRecorder(), reissued: new(atomic.Int64)}
	o := fastOptions{
		ep: ep, app: "app1", tokens: tokens, timeout: 5 * time.Second, maxFrame: 1 << 20, loops: 2, inflight: 8,
		clk: clk, tr: r.tr, lat: r.lat, reissued: r.reissued, stats: r.st,
	}
	if mod != nil {
		mod(&o)
	}
	h, err := startFast(ctx, o, seq(0, n))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.close(0) })
	r.h = h
	return r
}

// waitRamp waits for the ramp to end and returns how long it took.
func (r *fastRun) waitRamp(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-r.h.rampDone():
	case <-time.After(30 * time.Second):
		t.Fatal("the ramp did not end within 30s")
	}
	if err := r.h.err(); err != nil {
		t.Errorf("connector error: %v", err)
	}
	return time.Since(start)
}

// refusingTokens is a tokenSource whose refresh fails.
type refusingTokens struct{ fixedTokens }

func (r *refusingTokens) refresh(context.Context, int) (string, error) {
	r.refreshed.Add(1)
	return "", errors.New("admin API down")
}

// loginID reads a client login frame and returns its request id.
func loginID(t *testing.T, c net.Conn) (id string, login map[string]any) {
	f := readClient(t, c)
	if err := json.Unmarshal(f.Payload, &login); err != nil {
		t.Errorf("login frame %q: %v", f.Payload, err)
		return "0", nil
	}
	n, _ := login["id"].(float64)
	return strconv.Itoa(int(n)), login
}

func TestFastConnectorFailuresByCause(t *testing.T) {
	const n = 3
	tests := []struct {
		name      string
		handle    func(t *testing.T, c net.Conn)
		tokens    tokenSource
		timeout   time.Duration
		inflight  int    // attempts at once; zero means 8
		wantKey   string // "" when every attempt must succeed
		refreshes int64  // per connection
	}{
		{
			name: "upgrade refused",
			handle: func(t *testing.T, c net.Conn) {
				c.Read(make([]byte, 4096))
				c.Write([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"))
			},
			wantKey: "handshake: HTTP 503",
		},
		{
			name: "bad accept key",
			handle: func(t *testing.T, c net.Conn) {
				c.Read(make([]byte, 4096))
				c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: nope\r\n\r\n"))
			},
			wantKey: "handshake: wrong Sec-WebSocket-Accept",
		},
		{
			name:    "closed before answering",
			handle:  func(t *testing.T, c net.Conn) { c.Read(make([]byte, 4096)) },
			wantKey: "handshake: closed by server",
		},
		{
			name: "response head too long",
			handle: func(t *testing.T, c net.Conn) {
				c.Read(make([]byte, 4096))
				c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\n"))
				for range 100 {
					c.Write([]byte("X-Filler: " + strings.Repeat("f", 40) + "\r\n"))
				}
				c.Read(make([]byte, 1)) // until the client gives up
			},
			wantKey: "handshake: response header too long",
		},
		{
			name: "no answer in time",
			handle: func(t *testing.T, c net.Conn) {
				c.Read(make([]byte, 4096))
				c.Read(make([]byte, 1)) // until the client gives up
			},
			timeout:  300 * time.Millisecond,
			inflight: 1, // one after the other: each timeout makes room for the next
			wantKey:  "handshake: timeout",
		},
		{
			name: "login refused",
			handle: func(t *testing.T, c net.Conn) {
				ws.Upgrade(c)
				id, _ := loginID(t, c)
				writeServer(t, c, ws.NewTextFrame([]byte(`{"reply_to":`+id+`,"ok":false,"error":{"code":"forbidden","message":"no"}}`)))
				c.Read(make([]byte, 64))
			},
			wantKey: "login: forbidden",
		},
		{
			name: "closed during login",
			handle: func(t *testing.T, c net.Conn) {
				ws.Upgrade(c)
				readClient(t, c)
				writeServer(t, c, ws.NewCloseFrame(ws.NewCloseFrameBody(4001, "login timeout")))
				if f := readClient(t, c); f.Header.OpCode != ws.OpClose {
					t.Errorf("client answered the close with %v", f.Header.OpCode)
				}
			},
			wantKey: "login: closed by server: 4001 login timeout",
		},
		{
			name: "masked server frame",
			handle: func(t *testing.T, c net.Conn) {
				ws.Upgrade(c)
				readClient(t, c)
				f := ws.NewTextFrame([]byte(`{"reply_to":1,"ok":true}`))
				f.Header.Masked, f.Header.Mask = true, [4]byte{9, 9, 9, 9}
				f = ws.MaskFrameInPlace(f)
				writeServer(t, c, f)
				c.Read(make([]byte, 64))
			},
			wantKey: "login: masked server frame",
		},
		{
			name: "events, a ping and a fragmented reply before login succeeds",
			handle: func(t *testing.T, c net.Conn) {
				ws.Upgrade(c)
				id, login := loginID(t, c)
				if login["action"] != "login" || login["app"] != "app1" || !strings.HasPrefix(login["token"].(string), "tok-") {
					t.Errorf("login action %v", login)
				}
				writeServer(t, c, ws.NewTextFrame([]byte(`{"event":"presence","data":{"uid":"x"}}`)))
				writeServer(t, c, ws.NewTextFrame([]byte(`{"reply_to":99,"ok":true}`)))
				writeServer(t, c, ws.NewPingFrame([]byte("hb")))
				if pong := readClient(t, c); pong.Header.OpCode != ws.OpPong || string(pong.Payload) != "hb" {
					t.Errorf("answer to ping: %v %q, want pong \"hb\"", pong.Header.OpCode, pong.Payload)
				}
				reply := `{"reply_to":` + id + `,"ok":true,"data":{"uid":"u"}}`
				writeServer(t, c, ws.NewFrame(ws.OpText, false, []byte(reply[:10])))
				writeServer(t, c, ws.NewPingFrame(nil)) // a control frame between fragments
				writeServer(t, c, ws.NewFrame(ws.OpContinuation, true, []byte(reply[10:])))
				readClient(t, c) // pong
				readClient(t, c) // close at the end of the test
			},
		},
		{
			name: "unauthorized, then a fresh token works",
			handle: func(t *testing.T, c net.Conn) {
				ws.Upgrade(c)
				for {
					id, req := loginID(t, c)
					if req == nil {
						return
					}
					if req["token"] == "fresh" {
						if id != "2" {
							t.Errorf("second login has id %s, want 2", id)
						}
						writeServer(t, c, ws.NewTextFrame([]byte(`{"reply_to":`+id+`,"ok":true,"data":{}}`)))
						readClient(t, c) // close
						return
					}
					writeServer(t, c, ws.NewTextFrame([]byte(`{"reply_to":`+id+`,"ok":false,"error":{"code":"unauthorized","message":"invalid or revoked token"}}`)))
				}
			},
			refreshes: 1,
		},
		{
			name: "unauthorized, issuing a new token fails",
			handle: func(t *testing.T, c net.Conn) {
				ws.Upgrade(c)
				id, _ := loginID(t, c)
				writeServer(t, c, ws.NewTextFrame([]byte(`{"reply_to":`+id+`,"ok":false,"error":{"code":"unauthorized","message":"invalid or revoked token"}}`)))
				c.Read(make([]byte, 64))
			},
			tokens:    &refusingTokens{},
			wantKey:   "login: unauthorized; issuing a new token failed",
			refreshes: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := fakeServer(t, func(c net.Conn) { tt.handle(t, c) })
			tokens := tt.tokens
			if tokens == nil {
				tokens = &fixedTokens{}
			}
			r := startFastTest(t, context.Background(), ep, n, tokens, func(o *fastOptions) {
				if tt.timeout > 0 {
					o.timeout = tt.timeout
				}
				if tt.inflight > 0 {
					o.inflight = tt.inflight
				}
			})
			r.waitRamp(t)
			wantOK, wantFailed := int64(n), int64(0)
			var wantFailures map[string]int64
			if tt.wantKey != "" {
				wantOK, wantFailed, wantFailures = 0, n, map[string]int64{tt.wantKey: n}
			}
			if r.st.ok.Load() != wantOK || r.st.failed.Load() != wantFailed {
				t.Errorf("ok %d failed %d, want %d and %d (failures %v)", r.st.ok.Load(), r.st.failed.Load(), wantOK, wantFailed, r.st.failures.snapshot())
			}
			if got := r.st.failures.snapshot(); !equalCounts(got, wantFailures) {
				t.Errorf("failures %v, want %v", got, wantFailures)
			}
			if got := r.lat.Summary().Count; got != wantOK {
				t.Errorf("latency count %d, want %d", got, wantOK)
			}
			if got := r.tr.online.Load(); got != wantOK {
				t.Errorf("online %d, want %d", got, wantOK)
			}
			refreshed := tokens.(interface{ count() int64 }).count()
			if refreshed != tt.refreshes*n {
				t.Errorf("refreshed %d tokens, want %d", refreshed, tt.refreshes*n)
			}
			if want := tt.refreshes * n * int64(btoi(tt.wantKey == "")); r.reissued.Load() != want {
				t.Errorf("reissued %d, want %d", r.reissued.Load(), want)
			}
			r.h.close(2 * time.Second)
			if r.tr.online.Load() != 0 || r.tr.disconnects.total() != 0 {
				t.Errorf("after close: online %d, disconnects %v", r.tr.online.Load(), r.tr.disconnects.snapshot())
			}
		})
	}
}

func (f *fixedTokens) count() int64 { return f.refreshed.Load() }

func equalCounts(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestFastConnectorHoldsAnswersPingsAndCloses(t *testing.T) {
	// Connection 0 is closed by the server with a close frame, 1 without
	// one; 2 and 3 stay until chatbench closes them.
	var next atomic.Int32
	closedByClient := make(chan string, 4)
	pinged := make(chan struct{}, 4)
	ep := fakeServer(t, func(c net.Conn) {
		if _, ok := acceptLogin(t, c); !ok {
			return
		}
		for range 2 {
			writeServer(t, c, ws.NewPingFrame([]byte("keepalive")))
			if pong := readClient(t, c); pong.Header.OpCode != ws.OpPong || string(pong.Payload) != "keepalive" {
				t.Errorf("answer to ping: %v %q", pong.Header.OpCode, pong.Payload)
			}
		}
		pinged <- struct{}{}
		switch next.Add(1) {
		case 1:
			writeServer(t, c, ws.NewCloseFrame(ws.NewCloseFrameBody(1001, "going away")))
			if f := readClient(t, c); f.Header.OpCode != ws.OpClose {
				t.Errorf("client answered the close with %v", f.Header.OpCode)
			}
		case 2:
			// An event, then the end of the stream without a close frame:
			// both usually reach the client in one epoll event.
			writeServer(t, c, ws.NewTextFrame([]byte(`{"event":"presence","data":{"uid":"x"}}`)))
		default:
			f := readClient(t, c)
			code, _ := ws.ParseCloseFrameData(f.Payload)
			op := "not close"
			if f.Header.OpCode == ws.OpClose {
				op = "close"
			}
			closedByClient <- op + " " + strconv.Itoa(int(code))
			writeServer(t, c, ws.NewCloseFrame(ws.NewCloseFrameBody(1000, "")))
		}
	})
	r := startFastTest(t, context.Background(), ep, 4, &fixedTokens{}, nil)
	r.waitRamp(t)
	if r.st.ok.Load() != 4 {
		t.Fatalf("ok %d, failures %v", r.st.ok.Load(), r.st.failures.snapshot())
	}
	for range 4 {
		<-pinged
	}
	waitFor(t, "two connections closed by the server", func() bool { return r.tr.online.Load() == 2 })
	want := map[string]int64{"closed by server: 1001 going away": 1, "closed by server without a close frame": 1}
	waitFor(t, "both disconnects counted", func() bool { return r.tr.disconnects.total() == 2 })
	if got := r.tr.disconnects.snapshot(); !equalCounts(got, want) {
		t.Errorf("disconnects %v, want %v", got, want)
	}
	start := time.Now()
	r.h.close(10 * time.Second)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("close took %v: it should end once the server answered, not wait the full 10s", took)
	}
	for range 2 {
		if got := <-closedByClient; got != "close 1000" {
			t.Errorf("chatbench closed with %q, want a close frame with 1000", got)
		}
	}
	if r.tr.online.Load() != 0 || r.tr.disconnects.total() != 2 {
		t.Errorf("after close: online %d, disconnects %v (a close chatbench asked for is not a drop)", r.tr.online.Load(), r.tr.disconnects.snapshot())
	}
}

func TestFastConnectorDialRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	r := startFastTest(t, context.Background(), endpoint{addr: ap, host: ap.String(), path: "/"}, 5, &fixedTokens{}, func(o *fastOptions) {
		o.srcs = []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}
	})
	r.waitRamp(t)
	if got := r.st.failures.snapshot(); !equalCounts(got, map[string]int64{"dial: connection refused": 5}) {
		t.Errorf("failures %v", got)
	}
}

func TestFastConnectorInterruptAbandonsAttempts(t *testing.T) {
	ep := fakeServer(t, func(c net.Conn) {
		c.Read(make([]byte, 4096))
		c.Read(make([]byte, 1)) // never answers
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := startFastTest(t, ctx, ep, 50, &fixedTokens{}, nil)
	time.AfterFunc(200*time.Millisecond, cancel)
	if took := r.waitRamp(t); took > 3*time.Second {
		t.Errorf("ramp took %v after an interrupt at 200ms", took)
	}
	if r.st.ok.Load() != 0 || r.st.failed.Load() != 0 {
		t.Errorf("ok %d failed %d: an interrupted attempt is neither", r.st.ok.Load(), r.st.failed.Load())
	}
}

func TestFastConnectorPacesAttempts(t *testing.T) {
	ep := fakeServer(t, func(c net.Conn) {
		if _, ok := acceptLogin(t, c); ok {
			c.Read(make([]byte, 64))
		}
	})
	r := startFastTest(t, context.Background(), ep, 10, &fixedTokens{}, func(o *fastOptions) { o.rate = 50 })
	// Attempt 9 is due 180ms after the first.
	if took := r.waitRamp(t); took < 170*time.Millisecond {
		t.Errorf("10 attempts at 50/s took %v, want at least 180ms", took)
	}
	if r.st.ok.Load() != 10 {
		t.Errorf("ok %d, failures %v", r.st.ok.Load(), r.st.failures.snapshot())
	}
}

// countingTokens hands out the tokens a test provisioned and counts
// refreshes, which return another refused token.
type countingTokens struct {
	toks      []string
	refreshed atomic.Int64
}

func (c *countingTokens) token(user int) (string, string) { return UserID(user), c.toks[user] }
func (c *countingTokens) refresh(context.Context, int) (string, error) {
	c.refreshed.Add(1)
	return "still-not-a-token", nil
}
func (c *countingTokens) count() int64 { return c.refreshed.Load() }

func TestFastConnectAgainstInProcessChatd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chatd: skipped with -short")
	}
	options := func(s *teststack.Server, dir string) Options {
		return Options{
			Target:          Target{WS: s.WSAddr, HTTP: s.HTTPAddr, AdminKey: teststack.AdminKey},
			StatePath:       dir + "/chatbench.json",
			Duration:        500 * time.Millisecond,
			Drain:           time.Millisecond,
			Deadline:        time.Minute,
			DialConcurrency: 32,
		}
	}
	t.Run("connect scenario holds and closes every connection", func(t *testing.T) {
		dir := t.TempDir()
		s := teststack.Start(t, dir, teststack.Options{})
		rep := runScenario(t, options(s, dir), &Connect{Conns: 300, Settle: 100 * time.Millisecond})
		c := rep.Conns
		if c.Attempted != 300 || c.Connected != 300 || c.Failed != 0 || c.Failures != nil || c.RatePerS <= 0 || c.Latency.Count != 300 {
			t.Errorf("conns %+v", c)
		}
		if rep.Server.ConnsPeak < 300 || rep.Server.Error != "" {
			t.Errorf("server figures %+v", rep.Server)
		}
		if p := paramsLine(rep.Params); strings.Contains(p, "portable") {
			t.Errorf("params %q: the fast connector is the default", p)
		}
		waitFor(t, "the server to see every connection closed", func() bool { return s.WS.Stats().Conns == 0 })
		if st := s.WS.Stats(); st.Handshakes != 300 || st.ClosedPeer != 300 || st.ClosedIdle+st.ClosedProtocol+st.ClosedHandshakeTimeout != 0 {
			t.Errorf("server stats %+v: want 300 upgrades, each closed by chatbench", st)
		}
	})
	t.Run("portable client on request", func(t *testing.T) {
		dir := t.TempDir()
		s := teststack.Start(t, dir, teststack.Options{})
		rep := runScenario(t, options(s, dir), &Connect{Conns: 50, Settle: time.Millisecond, Portable: true})
		if rep.Conns.Connected != 50 || !strings.Contains(paramsLine(rep.Params), "portable true") {
			t.Errorf("conns %+v params %q", rep.Conns, paramsLine(rep.Params))
		}
	})
	t.Run("server at its connection cap refuses upgrades", func(t *testing.T) {
		dir := t.TempDir()
		s := teststack.Start(t, dir, teststack.Options{MaxConns: 40})
		rep, err := Run(context.Background(), options(s, dir), &Connect{Conns: 60, Settle: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		c := rep.Conns
		if c.Connected != 40 || c.Failed != 20 || !equalCounts(c.Failures, map[string]int64{"handshake: HTTP 503": 20}) {
			t.Errorf("conns %+v: want 40 held and 20 refused with HTTP 503", c)
		}
		if rep.OK || len(rep.Problems) == 0 || !strings.Contains(rep.Problems[0], "20 of 60 connections failed") {
			t.Errorf("ok %v problems %q", rep.OK, rep.Problems)
		}
	})
	t.Run("refused tokens fail at login", func(t *testing.T) {
		dir := t.TempDir()
		s := teststack.Start(t, dir, teststack.Options{})
		if _, err := s.Admin.CreateApp(context.Background(), "app1", "fast"); err != nil {
			t.Fatal(err)
		}
		ap := netip.MustParseAddrPort(s.WSAddr)
		tokens := &countingTokens{toks: []string{"bogus-0", "bogus-1", "bogus-2", "bogus-3"}}
		r := startFastTest(t, context.Background(), endpoint{addr: ap, host: s.WSAddr, path: "/"}, 4, tokens, nil)
		r.waitRamp(t)
		if got := r.st.failures.snapshot(); !equalCounts(got, map[string]int64{"login: unauthorized": 4}) {
			t.Errorf("failures %v, want 4 × login: unauthorized", got)
		}
		if tokens.count() != 4 || r.reissued.Load() != 4 {
			t.Errorf("refreshed %d, reissued %d: want one new token tried per connection", tokens.count(), r.reissued.Load())
		}
	})
}
