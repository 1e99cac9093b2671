package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/rs/zerolog"

	"chatd/chat"
	"chatd/httpapi"
	"chatd/httpapi/apiclient"
	"chatd/reactor"
	"chatd/storage"
)

const adminKey = "e2e-admin-key-0123456789abcdef"

// server is one in-process chatd: store → core → HTTP API → reactor.
type server struct {
	t        *testing.T
	dir      string
	core     *chat.Core
	ws       *reactor.Server
	wsAddr   string
	httpAddr string
	admin    *apiclient.Client
	stopOnce sync.Once
	stopFn   func()
}

type options struct {
	maxConns     int
	maxMessage   int
	loginTimeout time.Duration
}

func start(t *testing.T, dir string, o options) *server {
	t.Helper()
	st, err := storage.Open(dir+"/chat.db", storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	core, err := chat.New(chat.Config{LoginTimeout: o.loginTimeout}, st)
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.Nop()
	hs, err := httpapi.New(httpapi.Config{Addr: "127.0.0.1:0", AdminKey: adminKey}, core, log)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := reactor.New(reactor.Config{Addr: "127.0.0.1:0", Loops: 2, MaxConns: o.maxConns, MaxMessage: o.maxMessage}, core, log)
	if err != nil {
		t.Fatal(err)
	}
	coreCtx, stopCore := context.WithCancel(context.Background())
	netCtx, stopNet := context.WithCancel(context.Background())
	coreDone, httpDone, wsDone := make(chan error, 1), make(chan error, 1), make(chan error, 1)
	go func() { coreDone <- core.Run(coreCtx) }()
	go func() { httpDone <- hs.Run(netCtx) }()
	go func() { wsDone <- rs.Run(netCtx) }()
	for _, ready := range []<-chan struct{}{hs.Ready(), rs.Ready()} {
		select {
		case <-ready:
		case err := <-wsDone:
			t.Fatalf("reactor: %v", err)
		case err := <-httpDone:
			t.Fatalf("httpapi: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("server not ready in 10s")
		}
	}
	s := &server{t: t, dir: dir, core: core, ws: rs, wsAddr: rs.Addr(), httpAddr: hs.Addr()}
	s.admin = &apiclient.Client{BaseURL: "http://" + s.httpAddr, AdminKey: adminKey, HTTP: &http.Client{Timeout: 10 * time.Second}}
	s.stopFn = func() {
		stopNet()
		for name, ch := range map[string]chan error{"reactor": wsDone, "httpapi": httpDone} {
			if err := <-ch; err != nil {
				t.Errorf("%s Run: %v", name, err)
			}
		}
		stopCore()
		if err := <-coreDone; err != nil {
			t.Errorf("core Run: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("store close: %v", err)
		}
	}
	t.Cleanup(s.stop)
	return s
}

func (s *server) stop() { s.stopOnce.Do(s.stopFn) }

// app creates an app and returns a client signed with its secret.
func (s *server) app(id string) *apiclient.Client {
	s.t.Helper()
	a, err := s.admin.CreateApp(context.Background(), id, id)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.appClient(a.ID, a.Secret)
}

func (s *server) appClient(id, secret string) *apiclient.Client {
	return &apiclient.Client{BaseURL: "http://" + s.httpAddr, App: id, Secret: secret, HTTP: &http.Client{Timeout: 10 * time.Second}}
}

func pushUser(t *testing.T, app *apiclient.Client, uid string) string {
	t.Helper()
	r, err := app.PushUser(context.Background(), apiclient.PushUserInput{UID: uid, Nickname: strings.ToUpper(uid), IssueToken: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Token == "" {
		t.Fatal("no token issued")
	}
	return r.Token
}

// client is a real WebSocket client with a reader goroutine.
type client struct {
	t      *testing.T
	conn   net.Conn
	frames chan frame
	mu     sync.Mutex
	n      int
}

type frame struct {
	ReplyTo json.RawMessage `json:"reply_to"`
	OK      bool            `json:"ok"`
	Event   string          `json:"event"`
	Data    json.RawMessage `json:"data"`
	Error   *chat.Error     `json:"error"`
	raw     []byte
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	conn, _, _, err := ws.Dial(context.Background(), "ws://"+addr+"/")
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := &client{t: t, conn: conn, frames: make(chan frame, 4096)}
	go c.read()
	t.Cleanup(func() { conn.Close() })
	return c
}

func (c *client) read() {
	for {
		b, op, err := wsutil.ReadServerData(c.conn)
		if err != nil {
			close(c.frames) // waiters report the connection as closed
			return
		}
		if op != ws.OpText {
			continue
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			c.t.Errorf("server sent invalid JSON %q", b)
			continue
		}
		f.raw = b
		c.frames <- f
	}
}

func (c *client) send(raw string) {
	c.t.Helper()
	if err := wsutil.WriteClientText(c.conn, []byte(raw)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// do sends a request (fields without braces or id) and waits for its reply;
// events arriving meanwhile are kept for next().
func (c *client) do(fields string) frame {
	c.t.Helper()
	c.mu.Lock()
	c.n++
	id := fmt.Sprintf("q%d", c.n)
	c.mu.Unlock()
	c.send(`{"id":"` + id + `",` + fields + `}`)
	return c.waitReply(id)
}

func (c *client) waitReply(id string) frame {
	c.t.Helper()
	var held []frame
	defer func() {
		// put back what is not ours, in order, ahead of anything newer
		if len(held) > 0 {
			rest := make([]frame, 0, len(c.frames))
			for len(c.frames) > 0 {
				rest = append(rest, <-c.frames)
			}
			for _, f := range append(held, rest...) {
				c.frames <- f
			}
		}
	}()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				c.t.Fatalf("connection closed waiting for reply %s", id)
			}
			if string(f.ReplyTo) == `"`+id+`"` {
				return f
			}
			held = append(held, f)
		case <-timeout:
			c.t.Fatalf("no reply to %s in 10s", id)
		}
	}
}

// next waits for the next event with this name, skipping other events.
func (c *client) next(name string) frame {
	c.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				c.t.Fatalf("connection closed waiting for %s event", name)
			}
			if f.Event == name {
				return f
			}
		case <-timeout:
			c.t.Fatalf("no %s event in 10s", name)
		}
	}
}

// quiet asserts that no event with this name arrives within d.
func (c *client) quiet(name string, d time.Duration) {
	c.t.Helper()
	timeout := time.After(d)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return
			}
			if f.Event == name {
				c.t.Fatalf("unexpected %s event: %s", name, f.raw)
			}
		case <-timeout:
			return
		}
	}
}

func login(t *testing.T, addr, app, token string) *client {
	t.Helper()
	c := dial(t, addr)
	if f := c.do(`"action":"login","app":"` + app + `","token":"` + token + `"`); !f.OK {
		t.Fatalf("login: %+v", f.Error)
	}
	return c
}

func decode[T any](t *testing.T, f frame) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(f.Data, &v); err != nil {
		t.Fatalf("decode %s: %v", f.Data, err)
	}
	return v
}

type ack struct {
	Session   uint64 `json:"session_id"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
}

type message struct {
	Session uint64 `json:"session_id"`
	Seq     uint64 `json:"seq"`
	From    string `json:"from"`
	Content struct {
		Text string `json:"text"`
	} `json:"content"`
}
