//go:build linux

package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"chatd/chat"
	"chatd/httpapi/apiclient"
	"chatd/internal/teststack"
)

// TestStuckSubscriberEndToEnd: a live-stream client that stops reading
// (with a small TCP receive buffer) while real WebSocket traffic flows.
// The core never waits for it, and when it reads again it learns exactly
// how many events it missed.
func TestStuckSubscriberEndToEnd(t *testing.T) {
	// A live-stream buffer of 64 events.
	srv := teststack.Start(t, t.TempDir(), teststack.Options{SubscriberBuffer: 64})
	wsAddr, httpAddr, core := srv.WSAddr, srv.HTTPAddr, srv.Core
	admin := &apiclient.Client{BaseURL: "http://" + httpAddr, AdminKey: adminKey, HTTP: &http.Client{Timeout: 10 * time.Second}}
	a, err := admin.CreateApp(context.Background(), "shop", "Shop")
	if err != nil {
		t.Fatal(err)
	}
	shop := &apiclient.Client{BaseURL: "http://" + httpAddr, App: a.ID, Secret: a.Secret, HTTP: &http.Client{Timeout: 10 * time.Second}}
	alice := login(t, wsAddr, "shop", pushUser(t, shop, "alice"))
	pushUser(t, shop, "bob")

	// The subscriber: a raw connection with a 4 KiB receive buffer.
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return serr
	}}
	conn, err := d.Dial("tcp", httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	path := "/admin/v1/subscribe?" + url.Values{"filter": {"message;app=shop"}}.Encode()
	req, _ := http.NewRequest("GET", "http://"+httpAddr+path, nil)
	apiclient.SignRequest(req, adminKey, nil, time.Now())
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for core.Subscribers() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("subscription not registered")
		}
		time.Sleep(5 * time.Millisecond)
	}

	// 3000 real messages, pipelined 200 at a time (under the core's
	// per-connection queue limit); the subscriber reads nothing.
	const flood, window = 3000, 200
	start := time.Now()
	for w := 0; w < flood; w += window {
		for i := w; i < w+window; i++ {
			alice.send(fmt.Sprintf(`{"id":"f%d","action":"send","to":"bob","type":"text","content":{"text":"m%d"}}`, i, i))
		}
		for i := w; i < w+window; i++ {
			if f := alice.waitReply("f" + strconv.Itoa(i)); !f.OK {
				t.Fatalf("send %d: %s", i, f.raw)
			}
		}
	}
	t.Logf("%d sends acknowledged in %v with a stuck subscriber", flood, time.Since(start))
	start = time.Now()
	if f := alice.do(`"action":"send","to":"bob","type":"text","content":{"text":"one more"}`); !f.OK {
		t.Fatalf("send: %s", f.raw)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a send took %v while a subscriber is stuck", d)
	}
	published := uint64(flood + 1)

	// Read again: chunked NDJSON. Markers are sent until one arrives (the
	// subscriber has caught up); received + dropped must equal published.
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1<<14)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var received, dropped uint64
	var sawHello bool
	handle := func(l string) (text string) {
		var e struct {
			chat.Event
			Count uint64 `json:"count"`
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q", l)
		}
		switch e.Topic {
		case "hello":
			sawHello = true
		case "dropped":
			dropped += e.Count
		case chat.TopicMessage:
			received++
			var c struct{ Text string }
			json.Unmarshal(e.Message.Content, &c)
			return c.Text
		}
		return ""
	}
	readFor := func(d time.Duration, stop string) bool {
		timeout := time.After(d)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("stream ended")
				}
				if handle(l) == stop && stop != "" {
					return true
				}
			case <-timeout:
				return false
			}
		}
	}
	for n := 0; ; n++ {
		if n == 50 {
			t.Fatal("the subscriber never caught up")
		}
		published++
		alice.do(`"action":"send","to":"bob","type":"text","content":{"text":"marker"}`)
		if readFor(300*time.Millisecond, "marker") {
			break
		}
	}
	// Everything dropped has been reported once the last marker is through
	// and the buffer drained; a final message closes the count.
	published++
	alice.do(`"action":"send","to":"bob","type":"text","content":{"text":"final"}`)
	if !readFor(10*time.Second, "final") {
		t.Fatal("final message not received")
	}
	if !sawHello || dropped == 0 || received+dropped != published {
		t.Fatalf("hello %v, received %d + dropped %d, want %d with some dropped", sawHello, received, dropped, published)
	}
	t.Logf("received %d, dropped %d", received, dropped)
	if !strings.Contains(resp.Header.Get("Content-Type"), "ndjson") {
		t.Fatalf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
}
