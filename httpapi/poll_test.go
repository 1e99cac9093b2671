package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pollReply is the data of GET /v1/events.
type pollReply struct {
	Events []struct {
		Event string          `json:"event"`
		Data  json.RawMessage `json:"data"`
	} `json:"events"`
	Cursor string `json:"cursor"`
	Resync bool   `json:"resync"`
}

// userReq builds a user-endpoint request with the token headers.
func userReq(t *testing.T, method, path, app, token string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, baseURL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(HeaderApp, app)
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}

func (h *harness) poll(app, token, cursor string, timeout int) pollReply {
	h.t.Helper()
	q := url.Values{"timeout": {strconv.Itoa(timeout)}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	a := do(h.t, h.remote, userReq(h.t, "GET", "/v1/events?"+q.Encode(), app, token, nil))
	if a.Status != 200 || !a.OK {
		h.t.Fatalf("poll: %d %s", a.Status, a.Body)
	}
	var r pollReply
	if err := json.Unmarshal(a.Data, &r); err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *harness) clientSend(app, token, to, text string) {
	h.t.Helper()
	body := `{"id":"1","action":"send","to":"` + to + `","type":"text","content":{"text":"` + text + `"}}`
	a := do(h.t, h.remote, userReq(h.t, "POST", "/v1/client", app, token, []byte(body)))
	if !a.OK {
		h.t.Fatalf("send: %s", a.Body)
	}
}

func texts(t *testing.T, r pollReply) []string {
	t.Helper()
	var out []string
	for _, e := range r.Events {
		var m struct {
			Content struct {
				Text string `json:"text"`
			} `json:"content"`
		}
		if e.Event != "message" {
			continue
		}
		if err := json.Unmarshal(e.Data, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m.Content.Text)
	}
	return out
}

// A long-poll returns at once when events follow the cursor, waits for
// the next one otherwise, and a timeout of 0 answers empty with the same
// cursor.
func TestLongPoll(t *testing.T) {
	h := newHarness(t, nil)
	app := h.app("shop")
	ta, tb := h.user(app, "alice"), h.user(app, "bob")

	start := h.poll("shop", ta, "", 0) // creates alice's device; no events yet
	if start.Cursor == "" || len(start.Events) != 0 || start.Resync {
		t.Fatalf("first poll: %+v", start)
	}
	h.clientSend("shop", tb, "alice", "one")
	h.clientSend("shop", tb, "alice", "two")
	r := h.poll("shop", ta, start.Cursor, 25)
	if got := texts(t, r); strings.Join(got, ",") != "one,two" {
		t.Fatalf("events after the cursor: %v", got)
	}
	empty := h.poll("shop", ta, r.Cursor, 0)
	if len(empty.Events) != 0 || empty.Cursor != r.Cursor || empty.Resync {
		t.Fatalf("poll with nothing new: %+v (cursor was %s)", empty, r.Cursor)
	}

	// A waiting poll is answered by the next event.
	got := make(chan pollReply, 1)
	go func() { got <- h.poll("shop", ta, r.Cursor, 60) }()
	waitFor(t, "the long-poll to wait", func() bool { return h.srv.polls.active.Load() == 1 })
	h.clientSend("shop", tb, "alice", "three")
	select {
	case w := <-got:
		if txt := texts(t, w); len(txt) != 1 || txt[0] != "three" {
			t.Fatalf("woken poll: %+v", w)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting long-poll was not answered by the new event")
	}

	// Alice's own sends over HTTP reach her event feed too (her other
	// devices see them, as over WebSocket).
	h.clientSend("shop", ta, "bob", "mine")
	if txt := texts(t, h.poll("shop", ta, r.Cursor, 0)); strings.Join(txt, ",") != "three,mine" {
		t.Fatalf("own send: %v", txt)
	}

	// A cursor from another device (e.g. before a restart) asks for a
	// resync; a malformed one is bad_request.
	other := "000000000000.5"
	if rs := h.poll("shop", ta, other, 0); !rs.Resync || rs.Cursor == other || len(rs.Events) != 0 {
		t.Fatalf("foreign cursor: %+v", rs)
	}
	a := do(t, h.remote, userReq(t, "GET", "/v1/events?cursor=..%2F..", "shop", ta, nil))
	if a.Status != 400 || a.Code != "bad_request" {
		t.Fatalf("bad cursor: %d %s", a.Status, a.Body)
	}
	a = do(t, h.remote, userReq(t, "GET", "/v1/events?timeout=9999", "shop", ta, nil))
	if a.Status != 400 || !strings.Contains(a.Msg, "timeout") {
		t.Fatalf("bad timeout: %d %s", a.Status, a.Body)
	}
	a = do(t, h.remote, userReq(t, "GET", "/v1/events", "shop", "not-a-token", nil))
	if a.Status != 401 {
		t.Fatalf("bad token: %d %s", a.Status, a.Body)
	}
}

// Waiting long-polls have their own cap (MaxPolls) and do not hold the
// API's connection slots: with the cap reached and every general slot's
// worth of polls waiting, the API still answers.
func TestLongPollCap(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxPolls = 2; c.MaxConns = 3 })
	app := h.app("shop")
	ta, tb := h.user(app, "alice"), h.user(app, "bob")
	c := h.poll("shop", ta, "", 0).Cursor
	// Every connection below closes after its answer, so the slots in use
	// are the ones the test means.
	nk := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(context.Context, string, string) (net.Conn, error) { return h.ln.DialWithLocalAddr(remotePeer) }}}
	h.local.CloseIdleConnections()
	h.remote.CloseIdleConnections()
	waitFor(t, "idle connections to close", func() bool { g, _ := h.srv.admission.inUse(); return g == 0 })
	done := make(chan answer, 2)
	for i := 0; i < 2; i++ {
		go func() { done <- do(t, nk, userReq(t, "GET", "/v1/events?timeout=60&cursor="+c, "shop", ta, nil)) }()
	}
	waitFor(t, "two waiting long-polls", func() bool { return h.srv.polls.active.Load() == 2 })
	if g, _ := h.srv.admission.inUse(); g != 0 {
		t.Fatalf("waiting long-polls hold %d connection slots", g)
	}
	a := do(t, nk, userReq(t, "GET", "/v1/events?timeout=60&cursor="+c, "shop", ta, nil))
	if a.Status != 503 || a.Code != "unavailable" || !strings.Contains(a.Msg, "long-polls") {
		t.Fatalf("poll over the cap: %d %s", a.Status, a.Body)
	}
	// The API is still served, and its send wakes both polls.
	body := `{"id":"1","action":"send","to":"alice","type":"text","content":{"text":"wake"}}`
	if a := do(t, nk, userReq(t, "POST", "/v1/client", "shop", tb, []byte(body))); !a.OK {
		t.Fatalf("send while polls wait: %s", a.Body)
	}
	for i := 0; i < 2; i++ {
		select {
		case a := <-done:
			var r pollReply
			json.Unmarshal(a.Data, &r)
			if txt := texts(t, r); len(txt) != 1 || txt[0] != "wake" {
				t.Fatalf("woken poll: %s", a.Body)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("waiting polls not woken")
		}
	}
	fams := scrape(t, h.local)
	if n := value(t, fams, "chatd_http_polls_refused_total"); n != 1 {
		t.Fatalf("chatd_http_polls_refused_total %v, want 1", n)
	}
	if n := value(t, fams, "chatd_http_event_devices"); n != 1 {
		t.Fatalf("chatd_http_event_devices %v, want 1 (alice)", n)
	}
}

// recv answers the new messages across sessions at once, and skips other
// events.
func TestRecv(t *testing.T) {
	h := newHarness(t, nil)
	app := h.app("shop")
	ta, tb, tc := h.user(app, "alice"), h.user(app, "bob"), h.user(app, "carol")
	recv := func(cursor string) (msgs []struct {
		From    string `json:"from"`
		Session uint64 `json:"session_id"`
		Content struct {
			Text string `json:"text"`
		} `json:"content"`
	}, next string, resync bool) {
		t.Helper()
		a := do(t, h.remote, userReq(t, "GET", "/v1/recv?cursor="+url.QueryEscape(cursor), "shop", ta, nil))
		if !a.OK {
			t.Fatalf("recv: %s", a.Body)
		}
		var r struct {
			Messages []struct {
				From    string `json:"from"`
				Session uint64 `json:"session_id"`
				Content struct {
					Text string `json:"text"`
				} `json:"content"`
			} `json:"messages"`
			Cursor string `json:"cursor"`
			Resync bool   `json:"resync"`
		}
		if err := json.Unmarshal(a.Data, &r); err != nil {
			t.Fatal(err)
		}
		return r.Messages, r.Cursor, r.Resync
	}
	msgs, c, _ := recv("")
	if len(msgs) != 0 || c == "" {
		t.Fatalf("first recv: %v %q", msgs, c)
	}
	h.clientSend("shop", tb, "alice", "from bob")
	h.clientSend("shop", tc, "alice", "from carol")
	msgs, c2, resync := recv(c)
	if resync || len(msgs) != 2 || msgs[0].From != "bob" || msgs[1].From != "carol" ||
		msgs[0].Content.Text != "from bob" || msgs[0].Session == msgs[1].Session {
		t.Fatalf("recv: %+v resync=%v", msgs, resync)
	}
	if msgs, c3, _ := recv(c2); len(msgs) != 0 || c3 != c2 {
		t.Fatalf("recv again: %+v %s", msgs, c3)
	}
}

// A browser page on an allowed origin gets its preflight answered and
// CORS headers on answers (errors included); other origins get neither.
func TestCORS(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CORSOrigins = []string{"https://shop.example"} })
	app := h.app("shop")
	ta := h.user(app, "alice")
	pre := func(origin string) *http.Response {
		req, _ := http.NewRequest("OPTIONS", baseURL+"/v1/events", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		req.Header.Set("Access-Control-Request-Headers", "authorization, x-chatd-app")
		resp, err := h.remote.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := pre("https://shop.example")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "X-Chatd-App") ||
		resp.Header.Get("Access-Control-Allow-Methods") != "GET" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := pre("https://evil.example"); resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin: %d %v", resp.StatusCode, resp.Header)
	}
	req := userReq(t, "GET", "/v1/recv", "shop", ta, nil)
	req.Header.Set("Origin", "https://shop.example")
	if a := do(t, h.remote, req); !a.OK || a.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Fatalf("answer: %d %v", a.Status, a.Header)
	}
	req = userReq(t, "GET", "/v1/recv", "shop", "bad-token", nil)
	req.Header.Set("Origin", "https://shop.example")
	if a := do(t, h.remote, req); a.Status != 401 || a.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Fatalf("error answer: %d %v", a.Status, a.Header)
	}
	// The app API is for host backends, never for pages.
	req, _ = http.NewRequest("OPTIONS", baseURL+"/api/v1/messages", nil)
	req.Header.Set("Origin", "https://shop.example")
	resp, err := h.remote.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight on the app API: %d %v", resp.StatusCode, resp.Header)
	}
}

// One user cannot take every waiting slot: past MaxPollsPerUser their
// next long-poll or stream is 429, while another user still gets in.
func TestLongPollPerUserCap(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxPollsPerUser = 1 })
	app := h.app("shop")
	ta, tb := h.user(app, "alice"), h.user(app, "bob")
	ca, cb := h.poll("shop", ta, "", 0).Cursor, h.poll("shop", tb, "", 0).Cursor
	done := make(chan pollReply, 2)
	go func() { done <- h.poll("shop", ta, ca, 60) }()
	waitFor(t, "alice's long-poll to wait", func() bool { return h.srv.polls.active.Load() == 1 })
	a := do(t, h.remote, userReq(t, "GET", "/v1/events?timeout=60&cursor="+ca, "shop", ta, nil))
	if a.Status != 429 || a.Code != "rate_limited" || !strings.Contains(a.Msg, "for this user") {
		t.Fatalf("alice's second long-poll: %d %s", a.Status, a.Body)
	}
	a = do(t, h.remote, userReq(t, "GET", "/v1/events/stream", "shop", ta, nil))
	if a.Status != 429 {
		t.Fatalf("alice's stream beside her long-poll: %d %s", a.Status, a.Body)
	}
	go func() { done <- h.poll("shop", tb, cb, 60) }()
	waitFor(t, "bob's long-poll to wait", func() bool { return h.srv.polls.active.Load() == 2 })
	h.clientSend("shop", ta, "bob", "to both")
	for i := 0; i < 2; i++ {
		select {
		case r := <-done:
			if txt := texts(t, r); len(txt) != 1 || txt[0] != "to both" {
				t.Fatalf("woken poll: %+v", r)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("polls not woken")
		}
	}
}
