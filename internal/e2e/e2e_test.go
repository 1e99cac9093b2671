package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"chatd/chat"
	"chatd/httpapi/apiclient"
)

func TestOneToOneGroupAndDevices(t *testing.T) {
	s := start(t, t.TempDir(), options{})
	app := s.app("shop")
	ta, tb := pushUser(t, app, "alice"), pushUser(t, app, "bob")
	a1, a2 := login(t, s.WSAddr, "shop", ta), login(t, s.WSAddr, "shop", ta)
	b := login(t, s.WSAddr, "shop", tb)

	t.Run("two users exchange messages", func(t *testing.T) {
		r := a1.do(`"action":"send","to":"bob","type":"text","content":{"text":"hello bob"}`)
		if !r.OK {
			t.Fatalf("send: %+v", r.Error)
		}
		got := decode[message](t, b.next("message"))
		if got.From != "alice" || got.Content.Text != "hello bob" || got.Seq != 1 {
			t.Fatalf("bob got %+v", got)
		}
		r = b.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"hi alice"}`, got.Session))
		if decode[ack](t, r).Seq != 2 {
			t.Fatalf("reply: %s", r.raw)
		}
		if m := decode[message](t, a1.next("message")); m.Content.Text != "hi alice" {
			t.Fatalf("alice got %+v", m)
		}
	})
	t.Run("a user's other device sees her own message", func(t *testing.T) {
		if m := decode[message](t, a2.next("message")); m.Content.Text != "hello bob" || m.From != "alice" {
			t.Fatalf("second device got %+v", m)
		}
		a1.quiet("message", 200*time.Millisecond) // "hi alice" was already taken; nothing else, no echo of its own
	})
	t.Run("a group receives one message each", func(t *testing.T) {
		members := map[string]*client{}
		var uids []string
		for i := 0; i < 5; i++ {
			uid := fmt.Sprintf("g%d", i)
			members[uid] = login(t, s.WSAddr, "shop", pushUser(t, app, uid))
			uids = append(uids, `"`+uid+`"`)
		}
		owner := members["g0"]
		g := owner.do(`"action":"group_create","name":"team","uids":[` + strings.Join(uids[1:], ",") + `]`)
		if !g.OK {
			t.Fatalf("group_create: %+v", g.Error)
		}
		sid := decode[struct {
			ID uint64 `json:"session_id"`
		}](t, g).ID
		if r := members["g2"].do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"hi team"}`, sid)); !r.OK {
			t.Fatalf("group send: %+v", r.Error)
		}
		for uid, c := range members {
			if uid == "g2" {
				continue
			}
			if m := decode[message](t, c.next("message")); m.Content.Text != "hi team" {
				t.Fatalf("%s got %+v", uid, m)
			}
		}
		for uid, c := range members {
			c.quiet("message", 100*time.Millisecond) // exactly one each, none to the sender
			_ = uid
		}
	})
}

func TestCIDRetryCreatesNoSecondMessage(t *testing.T) {
	s := start(t, t.TempDir(), options{})
	app := s.app("shop")
	ta := pushUser(t, app, "alice")
	pushUser(t, app, "bob")
	a := login(t, s.WSAddr, "shop", ta)
	first := decode[ack](t, a.do(`"action":"send","to":"bob","type":"text","content":{"text":"once"},"cid":"m-1"`))
	// The client lost the reply and retries, even on a new connection.
	a2 := login(t, s.WSAddr, "shop", ta)
	retry := decode[ack](t, a2.do(`"action":"send","to":"bob","type":"text","content":{"text":"once"},"cid":"m-1"`))
	if retry.Seq != first.Seq || retry.Session != first.Session || !retry.Duplicate {
		t.Fatalf("retry %+v, original %+v", retry, first)
	}
	ms, err := app.History(context.Background(), first.Session, 0, 50)
	if err != nil || len(ms) != 1 {
		t.Fatalf("history has %d messages (%v), want 1", len(ms), err)
	}
}

func TestRestartKeepsHistoryUnreadAndSeqs(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir, options{})
	a0, err := s.Admin.CreateApp(context.Background(), "shop", "Shop")
	if err != nil {
		t.Fatal(err)
	}
	app := s.AppClient(a0.ID, a0.Secret)
	ta, tb := pushUser(t, app, "alice"), pushUser(t, app, "bob")
	a := login(t, s.WSAddr, "shop", ta)
	var sid uint64
	for i := 1; i <= 5; i++ {
		sid = decode[ack](t, a.do(fmt.Sprintf(`"action":"send","to":"bob","type":"text","content":{"text":"m%d"}`, i))).Session
	}
	b := login(t, s.WSAddr, "shop", tb)
	b.do(fmt.Sprintf(`"action":"read","session_id":%d,"seq":2`, sid))
	s.Stop()

	s2 := start(t, dir, options{})
	// Tokens, apps and users survived too.
	b = login(t, s2.WSAddr, "shop", tb)
	type sessions struct {
		Sessions []struct {
			ID      uint64 `json:"session_id"`
			LastSeq uint64 `json:"last_seq"`
			Unread  uint64 `json:"unread"`
		} `json:"sessions"`
	}
	ls := decode[sessions](t, b.do(`"action":"sessions"`))
	if len(ls.Sessions) != 1 || ls.Sessions[0].ID != sid || ls.Sessions[0].LastSeq != 5 || ls.Sessions[0].Unread != 3 {
		t.Fatalf("after restart: %+v", ls)
	}
	h := decode[struct {
		Messages []message `json:"messages"`
	}](t, b.do(fmt.Sprintf(`"action":"history","session_id":%d`, sid)))
	if len(h.Messages) != 5 || h.Messages[4].Content.Text != "m5" {
		t.Fatalf("history after restart: %+v", h)
	}
	// Seqs continue where they stopped.
	if r := decode[ack](t, b.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"after"}`, sid))); r.Seq != 6 {
		t.Fatalf("first seq after restart = %d, want 6", r.Seq)
	}
	// A new session gets a new id, not a reused one.
	pushUser(t, s2.AppClient(a0.ID, a0.Secret), "carol")
	if r := decode[ack](t, b.do(`"action":"send","to":"carol","type":"text","content":{"text":"x"}`)); r.Session == sid {
		t.Fatal("session id reused after restart")
	}
}

// rawUpgrade performs a handshake on a raw socket and returns it.
func rawUpgrade(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, _, _, err := ws.Dial(context.Background(), "ws://"+addr+"/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// readClose reads frames until a close frame and returns its code.
func readClose(t *testing.T, conn net.Conn) ws.StatusCode {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := ws.ReadFrame(conn)
		if err != nil {
			t.Fatalf("reading close frame: %v", err)
		}
		if f.Header.OpCode == ws.OpClose {
			code, _ := ws.ParseCloseFrameData(f.Payload)
			return code
		}
	}
}

func TestBadInputIsRefusedAndOthersKeepChatting(t *testing.T) {
	s := start(t, t.TempDir(), options{maxMessage: 4096})
	app := s.app("shop")
	ta, tb := pushUser(t, app, "alice"), pushUser(t, app, "bob")
	pushUser(t, app, "carol")
	a := login(t, s.WSAddr, "shop", ta)
	b := login(t, s.WSAddr, "shop", tb)

	t.Run("plain HTTP on the WebSocket port", func(t *testing.T) {
		resp, err := http.Get("http://" + s.WSAddr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUpgradeRequired || !strings.Contains(strings.ToLower(string(body)), "websocket") {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
	})
	handshakes := []struct {
		name   string
		req    string
		status string
	}{
		{name: "wrong version", status: "426", req: "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"},
		{name: "bad key", status: "400", req: "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n"},
		{name: "POST", status: "405", req: "POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"},
	}
	for _, tc := range handshakes {
		t.Run("handshake "+tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", s.WSAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.Write([]byte(tc.req))
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "HTTP/1.1 "+tc.status) {
				t.Fatalf("status line %q (%v), want %s", line, err, tc.status)
			}
		})
	}
	frames := []struct {
		name  string
		frame ws.Frame
		mask  bool
		code  ws.StatusCode
	}{
		{name: "unmasked frame", frame: ws.NewTextFrame([]byte(`{"action":"ping"}`)), mask: false, code: ws.StatusProtocolError},
		{name: "invalid UTF-8", frame: ws.NewTextFrame([]byte{'"', 0xff, 0xfe, '"'}), mask: true, code: ws.StatusInvalidFramePayloadData},
		{name: "over the size limit", frame: ws.NewTextFrame(bytes.Repeat([]byte("x"), 5000)), mask: true, code: ws.StatusMessageTooBig},
		{name: "binary message", frame: ws.NewBinaryFrame([]byte{1, 2, 3}), mask: true, code: ws.StatusUnsupportedData},
	}
	for _, tc := range frames {
		t.Run(tc.name, func(t *testing.T) {
			conn := rawUpgrade(t, s.WSAddr)
			f := tc.frame
			if tc.mask {
				f = ws.MaskFrameInPlace(f)
			}
			if err := ws.WriteFrame(conn, f); err != nil {
				t.Fatal(err)
			}
			if code := readClose(t, conn); code != tc.code {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
		})
	}
	actions := []struct {
		name     string
		loggedIn bool
		req      string
		code     chat.Code
		msg      string
	}{
		{name: "action before login", req: `{"id":"x","action":"sessions"}`, code: chat.CodeUnauthorized, msg: "log in first"},
		{name: "wrong token", req: `{"id":"x","action":"login","app":"shop","token":"nope"}`, code: chat.CodeUnauthorized, msg: "invalid or revoked token"},
		{name: "bad JSON", loggedIn: true, req: `{"id":"x","action":`, code: chat.CodeBadRequest, msg: "bad JSON"},
		{name: "unknown action", loggedIn: true, req: `{"id":"x","action":"fly"}`, code: chat.CodeBadRequest, msg: `unknown action "fly"`},
	}
	for _, tc := range actions {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s.WSAddr)
			if tc.loggedIn {
				c.do(`"action":"login","app":"shop","token":"` + ta + `"`)
			}
			c.send(tc.req)
			f := c.waitReply("x")
			if f.OK || f.Error == nil || f.Error.Code != tc.code || !strings.Contains(f.Error.Message, tc.msg) {
				t.Fatalf("got %s, want %s %q", f.raw, tc.code, tc.msg)
			}
		})
	}
	t.Run("send to a session the user is not in", func(t *testing.T) {
		c := login(t, s.WSAddr, "shop", pushUser(t, app, "dave"))
		sid := decode[ack](t, c.do(`"action":"send","to":"carol","type":"text","content":{"text":"psst"}`)).Session
		f := a.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"me too"}`, sid))
		if f.OK || f.Error.Code != chat.CodeForbidden {
			t.Fatalf("got %s", f.raw)
		}
	})
	t.Run("forged and replayed admin signatures", func(t *testing.T) {
		forged := &apiclient.Client{BaseURL: "http://" + s.HTTPAddr, AdminKey: "not-the-key", HTTP: http.DefaultClient}
		_, err := forged.CreateApp(context.Background(), "evil", "evil")
		if ae, ok := err.(*apiclient.APIError); !ok || ae.Status != 401 || ae.Code != "unauthorized" || !strings.Contains(ae.Message, "bad signature") {
			t.Fatalf("forged: %v", err)
		}
		body := []byte(`{"id":"replayed","name":"r"}`)
		req, _ := http.NewRequest("POST", "http://"+s.HTTPAddr+"/admin/v1/apps", bytes.NewReader(body))
		apiclient.SignRequest(req, adminKey, body, time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("first signed request: %v %v", resp, err)
		}
		resp.Body.Close()
		again, _ := http.NewRequest("POST", req.URL.String(), bytes.NewReader(body))
		again.Header = req.Header.Clone()
		resp, err = http.DefaultClient.Do(again)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.Contains(string(msg), "nonce already used") {
			t.Fatalf("replay: %d %s", resp.StatusCode, msg)
		}
	})
	// Through all of that, alice and bob kept chatting on their connections.
	if r := a.do(`"action":"send","to":"bob","type":"text","content":{"text":"still here"}`); !r.OK {
		t.Fatalf("send after attacks: %+v", r.Error)
	}
	if m := decode[message](t, b.next("message")); m.Content.Text != "still here" {
		t.Fatalf("bob got %+v", m)
	}
}

func TestConnectionFloodPastCapIsRefused(t *testing.T) {
	const capConns = 60
	s := start(t, t.TempDir(), options{maxConns: capConns})
	app := s.app("shop")
	ta, tb := pushUser(t, app, "alice"), pushUser(t, app, "bob")
	a := login(t, s.WSAddr, "shop", ta)
	b := login(t, s.WSAddr, "shop", tb)

	// 300 connection attempts from four source addresses, at once.
	var upgraded, refused atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var held []net.Conn
	for i := 0; i < 300; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			d := ws.Dialer{
				Timeout: 5 * time.Second,
				NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
					nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%4))}}
					return nd.DialContext(ctx, network, addr)
				},
			}
			conn, _, _, err := d.Dial(context.Background(), "ws://"+s.WSAddr+"/")
			if err != nil {
				refused.Add(1)
				return
			}
			upgraded.Add(1)
			mu.Lock()
			held = append(held, conn)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	if up := upgraded.Load(); up > capConns-2 || refused.Load() < 300-capConns {
		t.Fatalf("cap %d: %d upgraded, %d refused", capConns, up, refused.Load())
	}
	// Existing users keep chatting during the flood.
	if r := a.do(`"action":"send","to":"bob","type":"text","content":{"text":"during flood"}`); !r.OK {
		t.Fatalf("send during flood: %+v", r.Error)
	}
	b.next("message")
	// The server is up and, once the flood lets go, accepts again.
	mu.Lock()
	for _, c := range held {
		c.Close()
	}
	mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, _, _, err := ws.Dial(context.Background(), "ws://"+s.WSAddr+"/")
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server does not accept after the flood: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if h, err := s.Admin.Health(context.Background()); err != nil || h.Status != "ok" {
		t.Fatalf("health after flood: %+v %v", h, err)
	}
}
