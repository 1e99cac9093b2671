package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp/fasthttputil"

	"chatd/chat"
	"chatd/chat/memstore"
	"chatd/httpapi/apiclient"
)

// streamLine is one decoded line of a live stream: an event or a control
// line (hello, heartbeat, dropped, bye).
type streamLine struct {
	chat.Event
	Count      uint64   `json:"count"`
	Filters    []string `json:"filters"`
	ServerTime int64    `json:"server_time"`
	Reason     string   `json:"reason"`
	Buffer     int      `json:"buffer"`
	Raw        string   `json:"-"`
}

// liveStream is a client of GET /admin/v1/subscribe.
type liveStream struct {
	t     *testing.T
	resp  *http.Response
	sse   bool
	lines chan streamLine
	end   chan error // the reader's final error (io.EOF on a clean end)
}

// subscribePath is the request path for filters.
func subscribePath(filters ...string) string {
	if len(filters) == 0 {
		return "/admin/v1/subscribe"
	}
	return "/admin/v1/subscribe?" + url.Values{"filter": filters}.Encode()
}

// streamClient is an http.Client on the harness's listener without an
// overall timeout (a stream is one long response).
func streamClient(ln *fasthttputil.InmemoryListener, from net.Addr) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) { return ln.DialWithLocalAddr(from) },
	}}
}

// openStream subscribes with the admin key and checks the answer is a
// stream; reading starts with start.
func openStream(t *testing.T, hc *http.Client, sse bool, filters ...string) *liveStream {
	t.Helper()
	req := rawReq(t, reqOpts{method: "GET", path: subscribePath(filters...), key: testAdminKey})
	if sse {
		req.Header.Set("Accept", "text/event-stream")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	wantType := "application/x-ndjson"
	if sse {
		wantType = "text/event-stream; charset=utf-8"
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != wantType || resp.Header.Get("Cache-Control") != "no-cache" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("subscribe: %d %q %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"), b)
	}
	ls := &liveStream{t: t, resp: resp, sse: sse, lines: make(chan streamLine, 1<<16), end: make(chan error, 1)}
	t.Cleanup(func() { resp.Body.Close() })
	return ls
}

// start reads the stream in the background.
func (ls *liveStream) start() *liveStream {
	go func() {
		sc := bufio.NewScanner(ls.resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			l := sc.Text()
			if ls.sse {
				if l == "" || strings.HasPrefix(l, "retry: ") {
					continue
				}
				d, ok := strings.CutPrefix(l, "data: ")
				if !ok {
					ls.end <- errors.New("SSE line without data: " + l)
					return
				}
				l = d
			}
			var sl streamLine
			if err := json.Unmarshal([]byte(l), &sl); err != nil {
				ls.end <- errors.New("line is not JSON: " + l)
				return
			}
			sl.Raw = l
			ls.lines <- sl
		}
		err := sc.Err()
		if err == nil {
			err = io.EOF
		}
		ls.end <- err
	}()
	return ls
}

// next returns the next line, failing after timeout.
func (ls *liveStream) next(timeout time.Duration) streamLine {
	ls.t.Helper()
	select {
	case l := <-ls.lines:
		return l
	case err := <-ls.end:
		ls.t.Fatalf("stream ended: %v", err)
	case <-time.After(timeout):
		ls.t.Fatalf("no stream line in %v", timeout)
	}
	return streamLine{}
}

// until collects lines up to and including the first one for which stop
// is true, skipping heartbeats and serverInfo.
func (ls *liveStream) until(stop func(streamLine) bool) []streamLine {
	ls.t.Helper()
	var out []streamLine
	for {
		l := ls.next(10 * time.Second)
		if l.Topic == "heartbeat" || l.Topic == chat.TopicServerInfo {
			continue
		}
		out = append(out, l)
		if stop(l) {
			return out
		}
	}
}

// hello reads and checks the first line.
func (ls *liveStream) hello(filters ...string) streamLine {
	ls.t.Helper()
	l := ls.next(5 * time.Second)
	if l.Topic != "hello" || strings.Join(l.Filters, " ") != strings.Join(filters, " ") || l.ServerTime == 0 || l.Buffer <= 0 {
		ls.t.Fatalf("first line %s, want a hello with filters %q", l.Raw, filters)
	}
	return l
}

func marker(l streamLine) bool { return l.Detail == "marker" }

func TestSubscribeFilters(t *testing.T) {
	for _, sse := range []bool{false, true} {
		t.Run("sse="+strconv.FormatBool(sse), func(t *testing.T) {
			h := newHarness(t, nil)
			hc := streamClient(h.ln, loopbackPeer)
			shop := h.app("shop")
			for _, uid := range []string{"u1", "u2", "u3"} {
				h.user(shop, uid)
			}
			u1 := openStream(t, hc, sse, "all;uid=u1").start()
			u2 := openStream(t, hc, sse, "all;uid=u2").start()
			msgs := openStream(t, hc, sse, "message", "serverInfo").start() // OR-ed
			other := openStream(t, hc, sse, "message;app=other").start()
			all := openStream(t, hc, sse).start() // no filter: all
			u1.hello("all;uid=u1")
			u2.hello("all;uid=u2")
			msgs.hello("message", "serverInfo")
			other.hello("message;app=other")
			all.hello("all")

			ctx := context.Background()
			send := func(from, to, text string) {
				t.Helper()
				if _, err := shop.Send(ctx, apiclient.SendInput{From: from, To: to, Type: "text", Content: json.RawMessage(`{"text":"` + text + `"}`)}); err != nil {
					t.Fatal(err)
				}
			}
			send("u1", "u3", "from u1")
			h.core.Publish(chat.Event{Topic: chat.TopicServerInfo, Info: &chat.ServerInfo{Conns: 7}})
			send("u3", "u2", "to u2")
			// The marker matches every stream; everything before it has
			// been delivered when it arrives.
			h.core.Publish(chat.Event{Topic: chat.TopicMessage, App: "other", UID: "u1", Members: []string{"u1", "u2"}, Detail: "marker"})

			type seen struct{ fromU1, toU2, session bool }
			collect := func(ls *liveStream) seen {
				var s seen
				for _, l := range ls.until(marker) {
					switch {
					case l.Topic == chat.TopicMessage && l.Message != nil && l.UID == "u1":
						s.fromU1 = true
						if l.App != "shop" || l.Session == 0 || string(l.Message.Content) != `{"text":"from u1"}` || strings.Join(l.Members, ",") != "u1,u3" {
							t.Errorf("message event %s", l.Raw)
						}
					case l.Topic == chat.TopicMessage && l.Message != nil && l.UID == "u3":
						s.toU2 = true
					case l.Topic == chat.TopicSession:
						s.session = true
					}
				}
				return s
			}
			tests := []struct {
				name string
				ls   *liveStream
				want seen
			}{
				{name: "all;uid=u1", ls: u1, want: seen{fromU1: true, session: true}},
				{name: "all;uid=u2", ls: u2, want: seen{toU2: true, session: true}},
				{name: "message + serverInfo", ls: msgs, want: seen{fromU1: true, toU2: true}},
				{name: "message;app=other", ls: other, want: seen{}},
			}
			for _, tc := range tests {
				if got := collect(tc.ls); got != tc.want {
					t.Errorf("%s saw %+v, want %+v", tc.name, got, tc.want)
				}
			}
			// serverInfo: skipped by until, so look for it explicitly on a
			// fresh publish.
			h.core.Publish(chat.Event{Topic: chat.TopicServerInfo, Info: &chat.ServerInfo{Conns: 9}})
			if l := msgs.next(5 * time.Second); l.Topic != chat.TopicServerInfo || l.Info == nil || l.Info.Conns != 9 {
				t.Fatalf("message+serverInfo stream got %s, want the serverInfo", l.Raw)
			}
			if l := all.until(func(l streamLine) bool { return marker(l) }); len(l) < 5 {
				t.Fatalf("the all stream saw %d lines before the marker, want sessions, messages, marker", len(l))
			}
		})
	}
}

func TestSubscribeWireFormat(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.StreamHeartbeat = 30 * time.Millisecond })
	t.Run("ndjson over HTTP/1.1 is chunked, with heartbeats", func(t *testing.T) {
		c, err := h.ln.DialWithLocalAddr(loopbackPeer)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		raw := rawRequest(t, "HTTP/1.1", subscribePath("message"))
		if _, err := c.Write([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		head := readHead(t, br)
		for _, want := range []string{"HTTP/1.1 200 OK\r\n", "Transfer-Encoding: chunked\r\n", "Connection: close\r\n", "X-Accel-Buffering: no\r\n"} {
			if !strings.Contains(head, want) {
				t.Fatalf("head lacks %q:\n%s", want, head)
			}
		}
		size, _ := br.ReadString('\n')
		n, err := strconv.ParseInt(strings.TrimSpace(size), 16, 64)
		if err != nil || n <= 0 {
			t.Fatalf("chunk size line %q", size)
		}
		chunk := make([]byte, n+2)
		if _, err := io.ReadFull(br, chunk); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(chunk), `{"topic":"hello"`) || !strings.HasSuffix(string(chunk), "}\n\r\n") {
			t.Fatalf("first chunk %q", chunk)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			l, err := br.ReadString('\n')
			if err != nil || time.Now().After(deadline) {
				t.Fatalf("no heartbeat (last %q, %v)", l, err)
			}
			if strings.HasPrefix(l, `{"topic":"heartbeat","time":`) {
				break
			}
		}
	})
	t.Run("HTTP/1.0 gets a body that ends with the connection", func(t *testing.T) {
		c, err := h.ln.DialWithLocalAddr(loopbackPeer)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(rawRequest(t, "HTTP/1.0", subscribePath("all")))); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		head := readHead(t, br)
		if !strings.HasPrefix(head, "HTTP/1.0 200 OK\r\n") || strings.Contains(head, "chunked") {
			t.Fatalf("head:\n%s", head)
		}
		l, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(l, `{"topic":"hello"`) {
			t.Fatalf("first line %q %v", l, err)
		}
	})
}

// rawRequest is a signed GET for path as raw HTTP.
func rawRequest(t *testing.T, proto, path string) string {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	nonce := apiclient.NewNonce()
	sig := apiclient.Sign(testAdminKey, "GET", path, ts, nonce, nil)
	return "GET " + path + " " + proto + "\r\nHost: chatd.test\r\n" + HeaderTimestamp + ": " + ts + "\r\n" +
		HeaderNonce + ": " + nonce + "\r\n" + HeaderSignature + ": " + sig + "\r\n\r\n"
}

func readHead(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var head strings.Builder
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading head: %v (so far %q)", err, head.String())
		}
		head.WriteString(l)
		if l == "\r\n" {
			return head.String()
		}
	}
}

func TestSubscribeStuckSubscriber(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.SubscriberBuffer = 8 })
	shop := h.app("shop")
	h.user(shop, "alice")
	h.user(shop, "bob")
	ls := openStream(t, streamClient(h.ln, loopbackPeer), false, "message;app=shop")
	// Nothing reads the stream: the in-memory pipe and the client's buffers
	// fill, the stream's write blocks, its 8-event buffer fills.

	const flood = 5000
	start := time.Now()
	for i := 0; i < flood; i++ {
		h.core.Publish(chat.Event{Topic: chat.TopicMessage, App: "shop", UID: "flood", Detail: strconv.Itoa(i)})
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("publishing %d events to a stuck subscriber took %v", flood, d)
	}
	// The core is not slowed down: a real send is acknowledged at once.
	start = time.Now()
	if _, err := shop.Send(context.Background(), apiclient.SendInput{From: "alice", To: "bob", Type: "text", Content: json.RawMessage(`{"text":"still fast"}`)}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("send acknowledged after %v while a subscriber is stuck", d)
	}

	// The subscriber wakes up. Dropped lines mark where events went
	// missing (some may have been written before the stream blocked);
	// markers are published until one gets through, so the subscriber
	// has caught up. Events received plus events reported dropped are
	// then exactly the events published.
	ls.start()
	ls.hello("message;app=shop")
	var received, dropped, published uint64 = 0, 0, flood + 1
	count := func(l streamLine) {
		switch l.Topic {
		case "dropped":
			dropped += l.Count
		case chat.TopicMessage:
			received++
		}
	}
	for caughtUp := false; !caughtUp; {
		published++
		h.core.Publish(chat.Event{Topic: chat.TopicMessage, App: "shop", UID: "flood", Detail: "marker"})
		wait := time.After(200 * time.Millisecond)
	read:
		for {
			select {
			case l := <-ls.lines:
				count(l)
				caughtUp = caughtUp || marker(l)
			case err := <-ls.end:
				t.Fatalf("stream ended: %v", err)
			case <-wait:
				break read
			}
		}
	}
	published++
	h.core.Publish(chat.Event{Topic: chat.TopicMessage, App: "shop", UID: "flood", Detail: "final"})
	for _, l := range ls.until(func(l streamLine) bool { return l.Detail == "final" }) {
		count(l)
	}
	if dropped == 0 || received+dropped != published {
		t.Fatalf("received %d + dropped %d, want the %d published, some dropped", received, dropped, published)
	}
	if got := value(t, scrape(t, h.local), "chatd_subscriber_events_dropped_total"); got != float64(dropped) {
		t.Fatalf("chatd_subscriber_events_dropped_total = %v, want %d", got, dropped)
	}
	// Still live after catching up.
	h.core.Publish(chat.Event{Topic: chat.TopicMessage, App: "shop", UID: "late", Detail: "marker"})
	if l := ls.until(marker); len(l) != 1 || l[0].UID != "late" {
		t.Fatalf("after catching up: %+v", l)
	}
}

func TestSubscribeClientGoesAway(t *testing.T) {
	h := newHarness(t, nil)
	ls := openStream(t, streamClient(h.ln, loopbackPeer), false, "all").start()
	ls.hello("all")
	if n := h.core.Subscribers(); n != 1 {
		t.Fatalf("subscribers %d", n)
	}
	ls.resp.Body.Close()
	// Noticed from the read side at once, without waiting for a
	// heartbeat write to fail.
	deadline := time.Now().Add(3 * time.Second)
	for h.core.Subscribers() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("subscription still open 3s after the client hung up")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSubscribeRefused(t *testing.T) {
	tests := []struct {
		name     string
		anywhere bool
		remote   bool
		unsigned bool
		path     string
		status   int
		code     string
		msg      string
	}{
		{name: "unsigned", unsigned: true, path: subscribePath("all"), status: 401, code: "unauthorized", msg: "missing X-Chatd-Signature"},
		{name: "remote peer", remote: true, path: subscribePath("all"), status: 403, code: "forbidden", msg: "admin API is loopback-only"},
		{name: "unknown topic", path: subscribePath("all", "mesage"), status: 400, code: "bad_request", msg: `filter "mesage": unknown topic "mesage"`},
		{name: "bad condition", path: subscribePath("all;usr=1"), status: 400, code: "bad_request", msg: `filter "all;usr=1": unknown condition "usr"`},
		{name: "empty filter", path: "/admin/v1/subscribe?filter=", status: 400, code: "bad_request", msg: "empty filter"},
		{name: "unknown parameter", path: "/admin/v1/subscribe?topic=all", status: 400, code: "bad_request", msg: `unknown query parameter "topic"`},
		{name: "too many filters", path: subscribePath(strings.Split(strings.Repeat("all ", maxFilters+1), " ")[:maxFilters+1]...), status: 400, code: "bad_request", msg: "too many filters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.AdminFromAnywhere = tc.anywhere })
			hc := h.local
			if tc.remote {
				hc = h.remote
			}
			key := testAdminKey
			if tc.unsigned {
				key = ""
			}
			a := do(t, hc, rawReq(t, reqOpts{method: "GET", path: tc.path, key: key}))
			if a.Status != tc.status || a.Code != tc.code || !strings.Contains(a.Msg, tc.msg) {
				t.Fatalf("%d %s %q, want %d %s containing %q", a.Status, a.Code, a.Msg, tc.status, tc.code, tc.msg)
			}
		})
	}
	t.Run("remote peer with AdminFromAnywhere", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.AdminFromAnywhere = true })
		openStream(t, streamClient(h.ln, remotePeer), false, "all").start().hello("all")
	})
	t.Run("raw semicolon in the query", func(t *testing.T) {
		h := newHarness(t, nil)
		req := rawReq(t, reqOpts{method: "GET", path: "/admin/v1/subscribe?filter=all;uid=u1&filter=message", key: testAdminKey})
		resp, err := streamClient(h.ln, loopbackPeer).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		ls := &liveStream{t: t, resp: resp, lines: make(chan streamLine, 16), end: make(chan error, 1)}
		defer resp.Body.Close()
		ls.start().hello("all;uid=u1", "message")
	})
	t.Run("server stopping", func(t *testing.T) {
		h := newHarness(t, nil)
		h.srv.streams.stop() // what Serve does first when its context ends
		a := do(t, h.local, rawReq(t, reqOpts{method: "GET", path: subscribePath("all"), key: testAdminKey}))
		if a.Status != 503 || a.Code != "unavailable" || a.Msg != "server is shutting down" {
			t.Fatalf("%d %s %q", a.Status, a.Code, a.Msg)
		}
	})
	t.Run("too many streams", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.MaxSubscribers = 1 })
		openStream(t, streamClient(h.ln, loopbackPeer), false, "all").start().hello("all")
		a := do(t, h.local, rawReq(t, reqOpts{method: "GET", path: subscribePath("all"), key: testAdminKey}))
		if a.Status != 503 || a.Code != "unavailable" || !strings.Contains(a.Msg, "too many live streams (at most 1)") {
			t.Fatalf("%d %s %q", a.Status, a.Code, a.Msg)
		}
	})
}

func TestSubscribeEndsAtShutdown(t *testing.T) {
	core, err := chat.New(chat.Config{}, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	coreCtx, stopCore := context.WithCancel(context.Background())
	coreDone := make(chan error, 1)
	go func() { coreDone <- core.Run(coreCtx) }()
	defer func() { stopCore(); <-coreDone }()
	srv, err := New(Config{AdminKey: testAdminKey, SubscriberBuffer: 8}, core, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ln := fasthttputil.NewInmemoryListener()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	<-srv.Ready()
	hc := streamClient(ln, loopbackPeer)

	live := openStream(t, hc, false, "all").start()
	live.hello("all")
	stuck := openStream(t, hc, false, "all") // never read: its write blocks
	for i := 0; i < 5000; i++ {
		core.Publish(chat.Event{Topic: chat.TopicMessage, App: "shop", UID: "flood"})
	}

	start := time.Now()
	cancel()
	// The reading stream is told, and its body ends cleanly (the chunked
	// terminator, not a cut connection).
	var endErr error
	select {
	case endErr = <-live.end:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end")
	}
	if endErr != io.EOF {
		t.Fatalf("stream end: %v, want a clean EOF", endErr)
	}
	var last streamLine
	for len(live.lines) > 0 {
		last = <-live.lines
	}
	if last.Topic != "bye" || last.Reason != "server shutting down" {
		t.Fatalf("last line %s, want the bye", last.Raw)
	}
	// Serve waits for both streams, the stuck one included, and not for
	// long.
	select {
	case err := <-served:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return with a stuck stream open")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("shutdown took %v with a stuck stream", d)
	}
	if n := core.Subscribers(); n != 0 {
		t.Fatalf("%d subscriptions left after shutdown", n)
	}
	stuck.resp.Body.Close()
}
