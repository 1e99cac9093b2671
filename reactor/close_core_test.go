package reactor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"chatd/chat"
	"chatd/chat/memstore"
)

// slowCommits holds every commit for a while, so that a send's ack is
// still due when the client's close arrives.
type slowCommits struct{ chat.Store }

func (s slowCommits) Apply(ctx context.Context, b *chat.Batch) error {
	time.Sleep(50 * time.Millisecond)
	return s.Store.Apply(ctx, b)
}

// With the real core, which answers on its own goroutines, a client that
// sends a large message, a request and its close frame in one write (as
// Autobahn 7.1.6 does) gets the send's ack (after the commit) and the
// other reply before the server's close frame, then the TCP close.
func TestClientCloseWithCore(t *testing.T) {
	core, err := chat.New(chat.Config{}, slowCommits{memstore.New()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- core.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("core Run: %v", err)
		}
	})
	if _, err := core.CreateApp(ctx, "shop", "Shop"); err != nil {
		t.Fatal(err)
	}
	for _, uid := range []string{"alice", "bob"} {
		if _, err := core.PushUser(ctx, "shop", chat.UserInput{UID: uid}); err != nil {
			t.Fatal(err)
		}
	}
	g, err := core.IssueToken(ctx, "shop", "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, Config{CloseTimeout: longCloseTimeout}, core)
	c := dial(t, s.Addr())
	c.sendText(t, `{"id":"login","action":"login","app":"shop","token":"`+g.Token+`"}`)
	if r := c.readText(t); !strings.Contains(r, `"ok":true`) {
		t.Fatalf("login: %s", r)
	}

	text := strings.Repeat("BAsd7&jh23", 3000) // 30 KB
	var out []byte
	out = append(out, clientFrame(true, ws.OpText, []byte(`{"id":"s1","action":"send","to":"bob","type":"text","content":{"text":"`+text+`"}}`), true)...)
	out = append(out, clientFrame(true, ws.OpText, []byte(`{"id":"q1","action":"sessions"}`), true)...)
	out = append(out, clientFrame(true, ws.OpClose, closePayload(1000, ""), true)...)
	out = append(out, clientFrame(true, ws.OpPing, nil, true)...)
	c.SetWriteDeadline(time.Now().Add(promptly))
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	frames, code := readToClose(t, c)
	var replies []string
	for _, f := range frames {
		if f.Header.OpCode != ws.OpText {
			t.Fatalf("frame with opcode %d before the close; the ping after it must not be answered", f.Header.OpCode)
		}
		replies = append(replies, trim(string(f.Payload)))
	}
	all := strings.Join(replies, " | ")
	for _, id := range []string{`"reply_to":"s1","ok":true`, `"reply_to":"q1","ok":true`} {
		if !strings.Contains(all, id) {
			t.Fatalf("no %s before the close frame; got %q", id, replies)
		}
	}
	if code != 1000 {
		t.Fatalf("close code %d, want 1000", code)
	}
	expectEOF(t, c, c.r, promptly)
}

// The core's Client is what the reactor waits for on a client's close.
var _ drainer = (*chat.Client)(nil)
