package e2e_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// httpUser is a client with no WebSocket: POST /v1/client to act, and
// GET /v1/events (long-poll) or /v1/events/stream (SSE) to receive.
type httpUser struct {
	t      *testing.T
	base   string
	app    string
	token  string
	hc     *http.Client
	cursor string
}

func (u *httpUser) req(method, path string, body []byte) *http.Request {
	req, err := http.NewRequest(method, u.base+path, bytes.NewReader(body))
	if err != nil {
		u.t.Fatal(err)
	}
	req.Header.Set("X-Chatd-App", u.app)
	req.Header.Set("Authorization", "Bearer "+u.token)
	return req
}

func (u *httpUser) action(fields string) json.RawMessage {
	u.t.Helper()
	resp, err := u.hc.Do(u.req("POST", "/v1/client", []byte(`{"id":"h",`+fields+`}`)))
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		OK    bool            `json:"ok"`
		Data  json.RawMessage `json:"data"`
		Error any             `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || !r.OK {
		u.t.Fatalf("%s: %v %v", fields, err, r.Error)
	}
	return r.Data
}

type wireEvent struct {
	Event string  `json:"event"`
	Data  message `json:"data"`
}

// poll long-polls once from u.cursor and moves it on.
func (u *httpUser) poll(timeout int) (evs []wireEvent, resync bool) {
	u.t.Helper()
	q := url.Values{"timeout": {fmt.Sprint(timeout)}, "cursor": {u.cursor}}
	resp, err := u.hc.Do(u.req("GET", "/v1/events?"+q.Encode(), nil))
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		OK   bool `json:"ok"`
		Data struct {
			Events []wireEvent `json:"events"`
			Cursor string      `json:"cursor"`
			Resync bool        `json:"resync"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || !r.OK {
		u.t.Fatalf("poll: %v %+v", err, r)
	}
	u.cursor = r.Data.Cursor
	return r.Data.Events, r.Data.Resync
}

// A client with no WebSocket and a WebSocket client exchange messages
// both ways: the HTTP client receives by long-poll.
func TestHTTPClientLongPollWithWebSocketPeer(t *testing.T) {
	s := start(t, t.TempDir(), options{})
	app := s.app("shop")
	ta, tb := pushUser(t, app, "alice"), pushUser(t, app, "bob")
	bob := login(t, s.WSAddr, "shop", tb)
	alice := &httpUser{t: t, base: "http://" + s.HTTPAddr, app: "shop", token: ta, hc: &http.Client{Timeout: 30 * time.Second}}
	if evs, resync := alice.poll(0); len(evs) != 0 || resync || alice.cursor == "" {
		t.Fatalf("first poll: %v %v %q", evs, resync, alice.cursor)
	}
	// HTTP → WebSocket.
	alice.action(`"action":"send","to":"bob","type":"text","content":{"text":"hi bob, from HTTP"}`)
	m := decode[message](t, bob.next("message"))
	if m.From != "alice" || m.Content.Text != "hi bob, from HTTP" {
		t.Fatalf("bob got %+v", m)
	}
	alice.poll(0) // her own send, seen by her event feed; moved past

	// WebSocket → HTTP, while the long-poll waits.
	got := make(chan []wireEvent, 1)
	go func() { evs, _ := alice.poll(25); got <- evs }()
	time.Sleep(50 * time.Millisecond) // usually already waiting; either way the event is not missed
	if r := bob.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"hi alice, from WS"}`, m.Session)); !r.OK {
		t.Fatalf("bob send: %+v", r.Error)
	}
	select {
	case evs := <-got:
		if len(evs) != 1 || evs[0].Event != "message" || evs[0].Data.From != "bob" || evs[0].Data.Content.Text != "hi alice, from WS" {
			t.Fatalf("alice's long-poll got %+v", evs)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("long-poll not answered")
	}
	// A read receipt from bob's WebSocket is delivered over HTTP too.
	if r := bob.do(fmt.Sprintf(`"action":"read","session_id":%d,"seq":2`, m.Session)); !r.OK {
		t.Fatalf("read: %+v", r.Error)
	}
	evs, _ := alice.poll(25)
	if len(evs) != 1 || evs[0].Event != "read" {
		t.Fatalf("read receipt over long-poll: %+v", evs)
	}
}

// sseReader reads one Server-Sent Events stream.
type sseReader struct {
	resp *http.Response
	br   *bufio.Reader
}

type sseMsg struct {
	id, event, data string
}

func openSSE(t *testing.T, base, app, token, lastID string) *sseReader {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/events/stream?app="+app+"&access_token="+url.QueryEscape(token), nil)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	return &sseReader{resp: resp, br: bufio.NewReader(resp.Body)}
}

// next returns the next message (comments and retry lines skipped).
func (r *sseReader) next(t *testing.T) sseMsg {
	t.Helper()
	var m sseMsg
	for {
		line, err := r.br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream read: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if m.data != "" || m.event != "" {
				return m
			}
		case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "retry:"):
		case strings.HasPrefix(line, "id: "):
			m.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			m.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			m.data = line[6:]
		}
	}
}

// The HTTP client receives by Server-Sent Events; the stream drops, more
// messages are sent meanwhile, and a reconnect with Last-Event-ID gets
// exactly the ones it missed: nothing lost, nothing twice.
func TestHTTPClientSSEResume(t *testing.T) {
	s := start(t, t.TempDir(), options{})
	app := s.app("shop")
	ta, tb := pushUser(t, app, "alice"), pushUser(t, app, "bob")
	bob := login(t, s.WSAddr, "shop", tb)
	base := "http://" + s.HTTPAddr
	alice := &httpUser{t: t, base: base, app: "shop", token: ta, hc: &http.Client{Timeout: 30 * time.Second}}

	st := openSSE(t, base, "shop", ta, "")
	sendWS := func(text string) {
		t.Helper()
		if r := bob.do(`"action":"send","to":"alice","type":"text","content":{"text":"` + text + `"}`); !r.OK {
			t.Fatalf("bob send: %+v", r.Error)
		}
	}
	textOf := func(m sseMsg) string {
		var ev wireEvent
		if err := json.Unmarshal([]byte(m.data), &ev); err != nil {
			t.Fatalf("event data %q: %v", m.data, err)
		}
		return ev.Data.Content.Text
	}
	// The stream registered alice's device before answering its head, so
	// the send below cannot fall before it.
	sendWS("s1")
	sendWS("s2")
	m1, m2 := st.next(t), st.next(t)
	if textOf(m1) != "s1" || textOf(m2) != "s2" || m1.id == "" || m1.id == m2.id {
		t.Fatalf("stream: %+v %+v", m1, m2)
	}
	// HTTP → WebSocket while the stream runs.
	alice.action(`"action":"send","to":"bob","type":"text","content":{"text":"back over HTTP"}`)
	if m := decode[message](t, bob.next("message")); m.Content.Text != "back over HTTP" {
		t.Fatalf("bob got %+v", m)
	}
	if own := st.next(t); textOf(own) != "back over HTTP" {
		t.Fatalf("own send on the stream: %+v", own)
	}
	// Drop after s1: the client saw s1 only (as if s2 were lost in the
	// drop), then more is sent while it is away.
	st.resp.Body.Close()
	sendWS("s3")
	sendWS("s4")
	st2 := openSSE(t, base, "shop", ta, m1.id)
	defer st2.resp.Body.Close()
	var got []string
	for len(got) < 4 {
		got = append(got, textOf(st2.next(t)))
	}
	if strings.Join(got, ",") != "s2,back over HTTP,s3,s4" {
		t.Fatalf("after resume: %v", got)
	}
	// A stale Last-Event-ID (from another device) gets a resync event.
	st3 := openSSE(t, base, "shop", ta, "000000000000.1")
	defer st3.resp.Body.Close()
	if m := st3.next(t); m.event != "resync" || !strings.Contains(m.data, `"cursor"`) || m.id == "" {
		t.Fatalf("stale id: %+v", m)
	}
}
