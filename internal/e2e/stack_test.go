package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"chatd/chat"
	"chatd/httpapi/apiclient"
	"chatd/internal/teststack"
)

const adminKey = teststack.AdminKey

// server is one in-process chatd (internal/teststack) and its test.
type server struct {
	*teststack.Server
	t *testing.T
}

type options struct {
	maxConns     int
	maxMessage   int
	loginTimeout time.Duration
	now          func() time.Time // the core's clock (nil: time.Now)
	limits       chat.Limits
}

func start(t *testing.T, dir string, o options) *server {
	t.Helper()
	ts := teststack.Start(t, dir, teststack.Options{MaxConns: o.maxConns, MaxMessage: o.maxMessage, LoginTimeout: o.loginTimeout,
		Now: o.now, Limits: o.limits})
	return &server{Server: ts, t: t}
}

// app creates an app and returns a client signed with its secret.
func (s *server) app(id string) *apiclient.Client {
	s.t.Helper()
	a, err := s.Admin.CreateApp(context.Background(), id, id)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.AppClient(a.ID, a.Secret)
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
	// closeCode is the code of the server's close frame, once read.
	closeCode atomic.Int32
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
		var ce wsutil.ClosedError
		if errors.As(err, &ce) {
			c.closeCode.Store(int32(ce.Code))
		}
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
