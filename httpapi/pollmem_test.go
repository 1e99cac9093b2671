package httpapi

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatd/chat"
	"chatd/chat/memstore"
	"chatd/internal/metrics"
)

// TestLongPollMemory measures what waiting long-polls cost the server: n
// real TCP clients on loopback each park a GET /v1/events, and the heap,
// goroutine stacks and RSS are compared with before. fasthttp cannot park
// a request without its goroutine, so each waiter is one goroutine plus
// its hijacked connection. n is 500 by default; CHATD_MEASURE_POLLS=5000
// runs the figure docs/operations.md records (it needs about 2n file
// descriptors). Every client is closed at the end; nothing outlives it.
func TestLongPollMemory(t *testing.T) {
	n := 500
	if v := os.Getenv("CHATD_MEASURE_POLLS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	core, err := chat.New(chat.Config{}, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	coreDone := make(chan error, 1)
	go func() { coreDone <- core.Run(ctx) }()
	srv, err := New(Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, MaxPolls: n, MaxConns: n + 16, MaxConnsPerIP: n + 16}, core, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(ctx) }()
	defer func() {
		cancel()
		<-srvDone
		<-coreDone
	}()
	<-srv.Ready()
	if _, err := core.CreateApp(ctx, "shop", "Shop"); err != nil {
		t.Fatal(err)
	}
	// One user per waiter: every one has its own HTTP device.
	tokens := make([]string, n)
	for i := range tokens {
		uid := "u" + strconv.Itoa(i)
		if _, err := core.PushUser(ctx, "shop", chat.UserInput{UID: uid}); err != nil {
			t.Fatal(err)
		}
		g, err := core.IssueToken(ctx, "shop", uid, 0)
		if err != nil {
			t.Fatal(err)
		}
		tokens[i] = g.Token
	}
	// Each user's starting cursor, so that the measured polls wait.
	cursors := make([]string, n)
	for i, tok := range tokens {
		cursors[i] = firstCursor(t, srv.Addr(), tok)
	}

	settle := func() runtime.MemStats {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms
	}
	before, rssBefore, gBefore := settle(), metrics.RSS(), runtime.NumGoroutine()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		req := "GET /v1/events?timeout=120&cursor=" + cursors[i] + " HTTP/1.1\r\nHost: chatd\r\nX-Chatd-App: shop\r\nAuthorization: Bearer " + tokens[i] + "\r\n\r\n"
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for srv.polls.active.Load() < int64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d long-polls waiting", srv.polls.active.Load(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	after, rssAfter, gAfter := settle(), metrics.RSS(), runtime.NumGoroutine()
	heap := int64(after.HeapInuse) - int64(before.HeapInuse)
	stack := int64(after.StackInuse) - int64(before.StackInuse)
	rss := int64(rssAfter) - int64(rssBefore)
	t.Logf("%d waiting long-polls: heap +%d KiB (%d B each), stacks +%d KiB (%d B each), goroutines +%d, RSS +%d KiB (%d B each; client sockets included)",
		n, heap>>10, heap/int64(n), stack>>10, stack/int64(n), gAfter-gBefore, rss>>10, rss/int64(n))
	// The bound docs/operations.md promises: under 32 KiB of heap and
	// stack per waiting long-poll.
	if per := (heap + stack) / int64(n); per > 32<<10 {
		t.Errorf("a waiting long-poll costs %d bytes of heap and stack, over 32 KiB", per)
	}
	// One goroutine each, plus idle fasthttp workers (kept for a few
	// seconds) and the like.
	if g := gAfter - gBefore; g > n+300 {
		t.Errorf("%d goroutines for %d long-polls", g, n)
	}
}

// firstCursor starts a user's event feed and returns its cursor.
func firstCursor(t *testing.T, addr, token string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/events", nil)
	req.Header.Set(HeaderApp, "shop")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString(0)
	i := strings.Index(line, `"cursor":"`)
	if i < 0 {
		t.Fatalf("no cursor in %q", line)
	}
	rest := line[i+len(`"cursor":"`):]
	return rest[:strings.IndexByte(rest, '"')]
}
