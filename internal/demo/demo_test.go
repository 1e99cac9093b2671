package demo_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"chatd/chat"
	"chatd/internal/demo"
	"chatd/internal/teststack"
)

var client = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}}

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// envelope is the HTTP API's answer.
type envelope struct {
	OK    bool            `json:"ok"`
	Data  json.RawMessage `json:"data"`
	Error *chat.Error     `json:"error"`
}

func post(t *testing.T, url, host, body string) (int, envelope) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e envelope
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	return resp.StatusCode, e
}

// Every embedded file is served under /demo/ with its content type and
// revalidation headers; /demo/ is the chat page, /demo redirects there,
// a matching If-None-Match gets 304, an unknown file 404.
func TestServesEmbeddedPages(t *testing.T) {
	s := teststack.Start(t, t.TempDir(), teststack.Options{Demo: true})
	base := "http://" + s.HTTPAddr + "/demo/"
	want := map[string]string{".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	names := demo.Names()
	for _, must := range []string{"index.html", "chat.js", "demo.css"} {
		if !strings.Contains(strings.Join(names, " "), must) {
			t.Fatalf("embedded assets %v lack %s", names, must)
		}
	}
	for _, name := range names {
		a, _ := demo.Lookup(name)
		resp, body := get(t, base+name, nil)
		ct := want[name[strings.LastIndexByte(name, '.'):]]
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ct || !bytes.Equal(body, a.Body) {
			t.Fatalf("GET %s: %d %q (%d bytes), want 200 %q (%d bytes)", name, resp.StatusCode, resp.Header.Get("Content-Type"), len(body), ct, len(a.Body))
		}
		if resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("ETag") != a.ETag ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Content-Security-Policy") == "" {
			t.Fatalf("GET %s headers: %v", name, resp.Header)
		}
		resp, body = get(t, base+name, map[string]string{"If-None-Match": a.ETag})
		if resp.StatusCode != 304 || len(body) != 0 {
			t.Fatalf("GET %s If-None-Match its ETag: %d, %d bytes", name, resp.StatusCode, len(body))
		}
	}
	idx, _ := demo.Lookup("index.html")
	resp, body := get(t, base, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, idx.Body) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /demo/: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.Contains(body, []byte(`<script src="chat.js"`)) {
		t.Fatalf("/demo/ is not the chat page:\n%s", body)
	}
	resp, _ = get(t, "http://"+s.HTTPAddr+"/demo", nil)
	if resp.StatusCode != 308 || !strings.HasSuffix(resp.Header.Get("Location"), s.HTTPAddr+"/demo/") {
		t.Fatalf("GET /demo: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body = get(t, base+"nope.js", nil)
	if resp.StatusCode != 404 || !bytes.Contains(body, []byte(`"code":"not_found"`)) {
		t.Fatalf("GET an unknown file: %d %s", resp.StatusCode, body)
	}
}

// With the setting off, every /demo path is an unknown path.
func TestDemoOffAnswers404(t *testing.T) {
	s := teststack.Start(t, t.TempDir(), teststack.Options{})
	for _, p := range []string{"/demo/", "/demo", "/demo/index.html", "/demo/chat.js"} {
		resp, body := get(t, "http://"+s.HTTPAddr+p, nil)
		if resp.StatusCode != 404 || !bytes.Contains(body, []byte("no such endpoint")) {
			t.Fatalf("GET %s with the demo off: %d %s", p, resp.StatusCode, body)
		}
	}
	code, e := post(t, "http://"+s.HTTPAddr+"/demo/api/setup", "", "")
	if code != 404 || e.Error == nil || e.Error.Code != chat.CodeNotFound {
		t.Fatalf("POST /demo/api/setup with the demo off: %d %+v", code, e)
	}
}

// setup creates the demo app, users and shop (twice is the same), token
// logs a demo user in, and the answers name the real WebSocket address.
func TestSetupAndToken(t *testing.T) {
	s := teststack.Start(t, t.TempDir(), teststack.Options{Demo: true})
	api := "http://" + s.HTTPAddr + "/demo/api/"

	code, e := post(t, api+"token", "", `{"uid":"alice"}`)
	if code != 404 || e.Error == nil || !strings.Contains(e.Error.Message, "setup") {
		t.Fatalf("token before setup: %d %+v", code, e)
	}
	var first demo.Setup
	for i := range 2 {
		code, e = post(t, api+"setup", "", "")
		if code != 200 || !e.OK {
			t.Fatalf("setup #%d: %d %+v", i+1, code, e)
		}
		var st demo.Setup
		if err := json.Unmarshal(e.Data, &st); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = st
		}
	}
	if first.App != demo.App || first.WSURL != "ws://"+s.WSAddr+"/" || len(first.Users) != len(demo.Users) || first.Shop.ID != demo.Shop.ID {
		t.Fatalf("setup answer %+v (ws %s)", first, s.WSAddr)
	}
	ctx := t.Context()
	for _, u := range demo.Users {
		if got, err := s.Core.User(ctx, demo.App, u.UID); err != nil || got.Nickname != u.Nickname {
			t.Fatalf("user %s: %+v %v", u.UID, got, err)
		}
	}
	if _, err := s.Core.ServiceHost(ctx, demo.App, []byte(`{"action":"shop","shop":"`+demo.Shop.ID+`"}`)); err != nil {
		t.Fatalf("the demo shop: %v", err)
	}
	agents, err := s.Core.ServiceHost(ctx, demo.App, []byte(`{"action":"agents","shop":"`+demo.Shop.ID+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(agents); !bytes.Contains(b, []byte(`"sam"`)) || !bytes.Contains(b, []byte(`"kim"`)) {
		t.Fatalf("demo shop agents: %s", b)
	}

	code, e = post(t, api+"token", "", `{"uid":"bob"}`)
	if code != 200 {
		t.Fatalf("token: %d %+v", code, e)
	}
	var tok demo.Token
	if err := json.Unmarshal(e.Data, &tok); err != nil {
		t.Fatal(err)
	}
	if tok.UID != "bob" || tok.App != demo.App || tok.WSURL != first.WSURL || tok.Token == "" {
		t.Fatalf("token answer %+v", tok)
	}
	if id, err := s.Core.Login(ctx, demo.App, tok.Token); err != nil || id.UID != "bob" {
		t.Fatalf("the token does not log bob in: %+v %v", id, err)
	}

	for _, c := range []struct{ name, call, body, code string }{
		{name: "not a demo user", call: "token", body: `{"uid":"mallory"}`, code: "bad_request"},
		{name: "no uid", call: "token", body: ``, code: "bad_request"},
		{name: "unknown field", call: "token", body: `{"uid":"bob","admin":true}`, code: "bad_request"},
		{name: "unknown call", call: "nope", body: `{}`, code: "not_found"},
	} {
		_, e := post(t, api+c.call, "", c.body)
		if e.OK || e.Error == nil || string(e.Error.Code) != c.code || e.Error.Message == "" {
			t.Errorf("%s: %+v, want %s", c.name, e.Error, c.code)
		}
	}
	resp, _ := get(t, api+"setup", nil)
	if resp.StatusCode != 405 {
		t.Fatalf("GET /demo/api/setup: %d, want 405", resp.StatusCode)
	}
}

// A page loaded through a name other than a loopback one (DNS
// rebinding) is refused even from this machine.
func TestBackendRefusesForeignHost(t *testing.T) {
	s := teststack.Start(t, t.TempDir(), teststack.Options{Demo: true})
	code, e := post(t, "http://"+s.HTTPAddr+"/demo/api/setup", "attacker.example:22887", "")
	if code != 403 || e.Error == nil || e.Error.Code != chat.CodeForbidden || !strings.Contains(e.Error.Message, "Host") {
		t.Fatalf("setup with Host attacker.example: %d %+v", code, e)
	}
	if _, err := s.Core.App(t.Context(), demo.App); err == nil {
		t.Fatal("the refused setup created the demo app")
	}
}

func TestAllowed(t *testing.T) {
	for _, c := range []struct {
		name, peer, host string
		ok               bool
	}{
		{name: "ipv4 loopback", peer: "127.0.0.1", host: "127.0.0.1:22887", ok: true},
		{name: "other 127/8", peer: "127.0.0.2", host: "127.0.0.1:22887", ok: true},
		{name: "ipv6 loopback", peer: "::1", host: "[::1]:22887", ok: true},
		{name: "mapped loopback", peer: "::ffff:127.0.0.1", host: "localhost:22887", ok: true},
		{name: "localhost without port", peer: "127.0.0.1", host: "localhost", ok: true},
		{name: "sub.localhost", peer: "127.0.0.1", host: "app.localhost:8080", ok: true},
		{name: "lan peer", peer: "192.168.1.20", host: "127.0.0.1:22887"},
		{name: "public peer", peer: "203.0.113.7", host: "localhost:22887"},
		{name: "public ipv6 peer", peer: "2001:db8::1", host: "[::1]:22887"},
		{name: "no peer", peer: "", host: "127.0.0.1:22887"},
		{name: "rebinding name", peer: "127.0.0.1", host: "attacker.example:22887"},
		{name: "lan host name", peer: "127.0.0.1", host: "10.0.0.5:22887"},
		{name: "empty host", peer: "127.0.0.1", host: ""},
	} {
		var peer netip.Addr
		if c.peer != "" {
			peer = netip.MustParseAddr(c.peer)
		}
		e := demo.Allowed(peer, c.host)
		if (e == nil) != c.ok {
			t.Errorf("%s: Allowed(%s, %q) = %v, want ok=%v", c.name, c.peer, c.host, e, c.ok)
		}
		if e != nil && (e.Code != chat.CodeForbidden || e.Code.HTTPStatus() != 403 || e.Message == "") {
			t.Errorf("%s: %+v, want forbidden with a message", c.name, e)
		}
	}
}
