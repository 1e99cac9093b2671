package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"chatd/wsproto"
)

// fakeServer accepts connections on 127.0.0.1 and runs handle for each.
// It stands in for chatd where a test needs exact control of the frames.
func fakeServer(t *testing.T, handle func(c net.Conn)) endpoint {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				handle(c)
			})
		}
	})
	ap := netip.MustParseAddrPort(ln.Addr().String())
	return endpoint{addr: ap, host: ap.String(), path: "/chat", base: "http://" + ap.String()}
}

// readClient reads one client frame, checks it is masked and unmasks it.
func readClient(t *testing.T, c net.Conn) ws.Frame {
	f, err := ws.ReadFrame(c)
	if err != nil {
		t.Errorf("server read: %v", err)
		return f
	}
	if !f.Header.Masked {
		t.Errorf("client frame %v not masked", f.Header.OpCode)
	}
	return ws.UnmaskFrameInPlace(f)
}

func writeServer(t *testing.T, c net.Conn, f ws.Frame) {
	if err := ws.WriteFrame(c, f); err != nil {
		t.Errorf("server write: %v", err)
	}
}

// acceptLogin upgrades, reads the login action and accepts it after an
// unrelated event and a ping (which the client must answer).
func acceptLogin(t *testing.T, c net.Conn) (login map[string]any, ok bool) {
	hs, err := ws.Upgrade(c)
	if err != nil {
		t.Errorf("upgrade: %v", err)
		return nil, false
	}
	_ = hs
	f := readClient(t, c)
	if err := json.Unmarshal(f.Payload, &login); err != nil {
		t.Errorf("login frame %q: %v", f.Payload, err)
		return nil, false
	}
	writeServer(t, c, ws.NewTextFrame([]byte(`{"event":"presence","data":{"uid":"x"}}`)))
	writeServer(t, c, ws.NewPingFrame([]byte("hb")))
	pong := readClient(t, c)
	if pong.Header.OpCode != ws.OpPong || string(pong.Payload) != "hb" {
		t.Errorf("answer to ping: %v %q, want pong \"hb\"", pong.Header.OpCode, pong.Payload)
	}
	id, _ := login["id"].(float64)
	writeServer(t, c, ws.NewTextFrame([]byte(`{"reply_to":`+strconv.Itoa(int(id))+`,"ok":true,"data":{"uid":"u","server_time":1}}`)))
	return login, true
}

// fixedTokens is a tokenSource with one token per user and a scripted
// refresh.
type fixedTokens struct {
	refreshed atomic.Int64
}

func (f *fixedTokens) token(user int) (string, string) {
	return UserID(user), "tok-" + strconv.Itoa(user)
}
func (f *fixedTokens) refresh(context.Context, int) (string, error) {
	f.refreshed.Add(1)
	return "fresh", nil
}

func testOpener(ep endpoint, window int) (*opener, *traffic) {
	clk := newClock()
	tr := newTraffic(clk, "tag")
	return &opener{
		ds:      []*dialer{{ep: ep, timeout: 5 * time.Second}},
		cfg:     &connCfg{clk: clk, tr: tr, window: window, text: "hello", runTag: "tag", maxFrame: 1 << 20, callLimit: 5 * time.Second},
		app:     "app1",
		tokens:  &fixedTokens{},
		timeout: 5 * time.Second,
	}, tr
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestConnLoginEventsAndServerClose(t *testing.T) {
	big := strings.Repeat("y", 10_000) // larger than the initial read buffer
	serverDone := make(chan struct{})
	ep := fakeServer(t, func(c net.Conn) {
		defer close(serverDone)
		login, ok := acceptLogin(t, c)
		if !ok {
			return
		}
		if login["action"] != "login" || login["app"] != "app1" || login["token"] != "tok-3" {
			t.Errorf("login action %v", login)
		}
		// A message event split over two frames, then a large one.
		ev := `{"event":"message","data":{"session_id":9,"seq":4,"msg_id":"9-4","from":"bench-000001","type":"text","content":{"t":1,"r":"tag","text":"hi"},"created_at":5}}`
		writeServer(t, c, ws.NewFrame(ws.OpText, false, []byte(ev[:20])))
		writeServer(t, c, ws.NewFrame(ws.OpContinuation, true, []byte(ev[20:])))
		writeServer(t, c, ws.NewTextFrame([]byte(`{"event":"message","data":{"session_id":9,"seq":5,"msg_id":"9-5","from":"bench-000001","type":"text","content":{"t":2,"r":"tag","text":"`+big+`"},"created_at":5}}`)))
		// Own message (an echo), a message chatbench did not send and one
		// another chatbench run sent.
		writeServer(t, c, ws.NewTextFrame([]byte(`{"event":"message","data":{"session_id":9,"seq":6,"msg_id":"9-6","from":"bench-000003","type":"text","content":{"t":3,"r":"tag","text":"me"},"created_at":5}}`)))
		writeServer(t, c, ws.NewTextFrame([]byte(`{"event":"message","data":{"session_id":9,"seq":7,"msg_id":"9-7","from":"someone","type":"text","content":{"text":"hand typed"},"created_at":5}}`)))
		writeServer(t, c, ws.NewTextFrame([]byte(`{"event":"message","data":{"session_id":9,"seq":8,"msg_id":"9-8","from":"bench-000002","type":"text","content":{"t":4,"r":"other","text":"another run"},"created_at":5}}`)))
		writeServer(t, c, ws.NewCloseFrame(ws.NewCloseFrameBody(1008, "slow consumer")))
		reply := readClient(t, c)
		if reply.Header.OpCode != ws.OpClose {
			t.Errorf("client answered the close with %v", reply.Header.OpCode)
		}
	})
	o, tr := testOpener(ep, 8)
	c, err := o.open(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	<-c.done
	<-serverDone
	if got := tr.delivered.Load(); got != 2 {
		t.Errorf("delivered %d, want 2 (fragmented and large)", got)
	}
	if tr.echoes.Load() != 1 || tr.foreign.Load() != 2 {
		t.Errorf("echoes %d foreign %d, want 1 and 2 (hand typed, another run)", tr.echoes.Load(), tr.foreign.Load())
	}
	if got := tr.disconnects.snapshot(); got["closed by server: 1008 slow consumer"] != 1 {
		t.Errorf("disconnects %v, want the server's close code and reason", got)
	}
	if tr.online.Load() != 0 {
		t.Errorf("online %d after close", tr.online.Load())
	}
}

func TestConnSendWindowBacklogAndErrors(t *testing.T) {
	const window, total = 2, 6
	type sendFrame struct {
		ID      int    `json:"id"`
		Action  string `json:"action"`
		Session uint64 `json:"session_id"`
		Type    string `json:"type"`
		Content struct {
			T    int64  `json:"t"`
			Text string `json:"text"`
		} `json:"content"`
		CID string `json:"cid"`
	}
	ep := fakeServer(t, func(c net.Conn) {
		if _, ok := acceptLogin(t, c); !ok {
			return
		}
		cids := map[string]bool{}
		var queue []sendFrame
		answered := 0
		for answered < total {
			// The client may have at most `window` sends unanswered.
			for len(queue) < window && answered+len(queue) < total {
				f := readClient(t, c)
				var s sendFrame
				if err := json.Unmarshal(f.Payload, &s); err != nil {
					t.Errorf("send frame %q: %v", f.Payload, err)
					return
				}
				if s.Action != "send" || s.Session != 42 || s.Type != "text" || s.Content.Text != "hello" || cids[s.CID] {
					t.Errorf("send frame %+v", s)
				}
				cids[s.CID] = true
				queue = append(queue, s)
			}
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if f, err := ws.ReadFrame(c); err == nil {
				t.Errorf("client sent %q past its window of %d", f.Payload, window)
			}
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			s := queue[0]
			queue = queue[1:]
			id := strconv.Itoa(s.ID)
			if answered == 1 {
				writeServer(t, c, ws.NewTextFrame([]byte(`{"reply_to":`+id+`,"ok":false,"error":{"code":"rate_limited","message":"slow down"}}`)))
			} else {
				writeServer(t, c, ws.NewTextFrame([]byte(`{"reply_to":`+id+`,"ok":true,"data":{"session_id":42,"seq":`+strconv.Itoa(answered+1)+`,"msg_id":"42-1","created_at":1}}`)))
			}
			answered++
		}
		readClient(t, c) // the client's close
	})
	o, tr := testOpener(ep, window)
	c, err := o.open(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range total {
		if err := c.send(o.cfg.clk.now(), 42); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	waitFor(t, "all replies", func() bool { return tr.answered() == total })
	c.close(time.Second)
	if tr.acked.Load() != total-1 || tr.sent.Load() != total {
		t.Errorf("sent %d acked %d, want %d and %d", tr.sent.Load(), tr.acked.Load(), total, total-1)
	}
	if got := tr.errs.snapshot(); got["rate_limited"] != 1 {
		t.Errorf("errors %v, want rate_limited×1", got)
	}
	if got := tr.ack.Summary().Count; got != total-1 {
		t.Errorf("ack latencies recorded: %d", got)
	}
	if got := tr.lag.Summary().Count; got != total {
		t.Errorf("send lags recorded: %d", got)
	}
}

func TestConnCallAndLostRequests(t *testing.T) {
	ep := fakeServer(t, func(c net.Conn) {
		if _, ok := acceptLogin(t, c); !ok {
			return
		}
		f := readClient(t, c) // the call
		var req map[string]any
		json.Unmarshal(f.Payload, &req)
		if req["action"] != "sessions" {
			t.Errorf("call frame %q", f.Payload)
		}
		writeServer(t, c, ws.NewTextFrame([]byte(`{"reply_to":`+strconv.Itoa(int(req["id"].(float64)))+`,"ok":true,"data":{"sessions":[{"session_id":7}]}}`)))
		f = readClient(t, c) // a call that never gets its reply
		readClient(t, c)     // a send that never gets its reply
		// Drop the connection without a close frame.
	})
	o, tr := testOpener(ep, 8)
	c, err := o.open(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Sessions []struct {
			ID uint64 `json:"session_id"`
		} `json:"sessions"`
	}
	if err := c.callData(context.Background(), []byte(`{"action":"sessions"}`), &out); err != nil || len(out.Sessions) != 1 || out.Sessions[0].ID != 7 {
		t.Fatalf("call: %+v, %v", out, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- c.callData(context.Background(), []byte(`{"action":"sync","session_id":7}`), nil) }()
	time.Sleep(20 * time.Millisecond)
	c.send(o.cfg.clk.now(), 7)
	if err := <-errc; !errors.Is(err, errConnClosed) {
		t.Fatalf("pending call after the connection dropped: %v, want errConnClosed", err)
	}
	<-c.done
	if tr.lost.Load() != 1 {
		t.Errorf("lost %d, want the unanswered send", tr.lost.Load())
	}
	if got := tr.disconnects.snapshot(); got["closed by server without a close frame"] != 1 {
		t.Errorf("disconnects %v", got)
	}
	if err := c.send(o.cfg.clk.now(), 7); !errors.Is(err, errConnClosed) {
		t.Errorf("send on a closed connection: %v", err)
	}
}

func TestOpenFailures(t *testing.T) {
	tests := []struct {
		name      string
		handle    func(t *testing.T, c net.Conn)
		wantKey   string
		refreshes int64
		wantOK    bool
	}{
		{
			name: "upgrade refused",
			handle: func(t *testing.T, c net.Conn) {
				buf := make([]byte, 4096)
				c.Read(buf)
				c.Write([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"))
			},
			wantKey: "handshake: HTTP 503",
		},
		{
			name: "bad accept key",
			handle: func(t *testing.T, c net.Conn) {
				buf := make([]byte, 4096)
				c.Read(buf)
				c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: nope\r\n\r\n"))
			},
			wantKey: "handshake: wrong Sec-WebSocket-Accept",
		},
		{
			name: "login refused",
			handle: func(t *testing.T, c net.Conn) {
				ws.Upgrade(c)
				f := readClient(t, c)
				id := bytes.TrimSuffix(bytes.SplitN(bytes.TrimPrefix(f.Payload, []byte(`{"id":`)), []byte(","), 2)[0], nil)
				writeServer(t, c, ws.NewTextFrame([]byte(`{"reply_to":`+string(id)+`,"ok":false,"error":{"code":"forbidden","message":"no"}}`)))
			},
			wantKey: "login: forbidden",
		},
		{
			name: "unauthorized then a fresh token works",
			handle: func(t *testing.T, c net.Conn) {
				ws.Upgrade(c)
				for i := 0; ; i++ {
					f := readClient(t, c)
					var req map[string]any
					json.Unmarshal(f.Payload, &req)
					id := strconv.Itoa(int(req["id"].(float64)))
					if req["token"] == "fresh" {
						writeServer(t, c, ws.NewTextFrame([]byte(`{"reply_to":`+id+`,"ok":true,"data":{}}`)))
						readClient(t, c) // close
						return
					}
					writeServer(t, c, ws.NewTextFrame([]byte(`{"reply_to":`+id+`,"ok":false,"error":{"code":"unauthorized","message":"invalid or revoked token"}}`)))
					if i > 2 {
						return
					}
				}
			},
			refreshes: 1,
			wantOK:    true,
		},
		{
			name: "closed during login",
			handle: func(t *testing.T, c net.Conn) {
				ws.Upgrade(c)
				readClient(t, c)
				writeServer(t, c, ws.NewCloseFrame(ws.NewCloseFrameBody(4001, "login timeout")))
			},
			wantKey: "login: closed by server: 4001 login timeout",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := fakeServer(t, func(c net.Conn) { tt.handle(t, c) })
			o, _ := testOpener(ep, 8)
			c, err := o.open(context.Background(), 1)
			if tt.wantOK {
				if err != nil {
					t.Fatal(err)
				}
				c.close(time.Second)
			} else {
				var ce *ConnectError
				if !errors.As(err, &ce) || ce.Key() != tt.wantKey {
					t.Fatalf("open: %v, want ConnectError %q", err, tt.wantKey)
				}
			}
			if got := o.tokens.(*fixedTokens).refreshed.Load(); got != tt.refreshes || o.reissued.Load() != tt.refreshes {
				t.Errorf("refreshed %d tokens (reissued %d), want %d", got, o.reissued.Load(), tt.refreshes)
			}
		})
	}
}

func TestOpenDialFailures(t *testing.T) {
	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	o, _ := testOpener(endpoint{addr: ap, host: ap.String(), path: "/"}, 8)
	_, err = o.open(context.Background(), 0)
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Key() != "dial: connection refused" {
		t.Fatalf("open: %v, want dial: connection refused", err)
	}
}

func TestClassifyNetErr(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "deadline", err: context.DeadlineExceeded, want: "timeout"},
		{name: "canceled", err: context.Canceled, want: "canceled"},
		{name: "closed", err: net.ErrClosed, want: "closed locally"},
		{name: "wrapped other", err: errors.New("dial tcp 127.0.0.1:1: something odd"), want: "something odd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classifyNetErr(tt.err); got != tt.want {
				t.Errorf("classifyNetErr(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

// recordingConn is a net.Conn that keeps what is written.
type recordingConn struct {
	net.Conn
	mu     sync.Mutex // guards frames
	frames [][]byte
}

func (r *recordingConn) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.frames = append(r.frames, bytes.Clone(p))
	r.mu.Unlock()
	return len(p), nil
}
func (r *recordingConn) Close() error { return nil }

func TestConnBacklogKeepsOrderAndStaysBounded(t *testing.T) {
	clk := newClock()
	tr := newTraffic(clk, "tag")
	rc := &recordingConn{}
	c := newWSConn(rc, &connCfg{clk: clk, tr: tr, window: 1, text: "x", runTag: "t", maxFrame: 1 << 20}, 0, "u", 1)
	const n = 3000
	for i := range n {
		c.send(int64(i), 5) // intended time i: the order to check
	}
	if tr.sent.Load() != 1 || len(c.backlog) != n-1 {
		t.Fatalf("sent %d, backlog %d: want 1 written and %d queued", tr.sent.Load(), len(c.backlog), n-1)
	}
	for id := 1; id <= n; id++ {
		c.dispatch([]byte(`{"reply_to":` + strconv.Itoa(id) + `,"ok":true,"data":{"session_id":5,"seq":1}}`))
		if id == 2000 && len(c.backlog) >= n-1 {
			t.Fatalf("after 2000 acks the backlog slice still holds %d entries (head %d): not compacted", len(c.backlog), c.bhead)
		}
	}
	if tr.sent.Load() != n || tr.acked.Load() != n || len(c.backlog)-c.bhead != 0 {
		t.Fatalf("sent %d acked %d waiting %d", tr.sent.Load(), tr.acked.Load(), len(c.backlog)-c.bhead)
	}
	// Frames went out in intended-time order: "t":0, "t":1, …
	for i, f := range rc.frames {
		fr, n, err := wsproto.Parse(f, 1<<20)
		if err != nil || n != len(f) || !fr.Masked {
			t.Fatalf("frame %d: %v (masked %v, %d of %d bytes)", i, err, fr.Masked, n, len(f))
		}
		fr.Unmask()
		if want := `"content":{"t":` + strconv.Itoa(i) + `,`; !bytes.Contains(fr.Payload, []byte(want)) {
			t.Fatalf("frame %d is %q, want %s", i, fr.Payload, want)
		}
	}
}
