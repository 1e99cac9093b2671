package wsproto

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

const rfcKey = "dGhlIHNhbXBsZSBub25jZQ=="

// request builds a request head from lines (CRLF-joined, blank line added).
func request(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\n\r\n")
}

var requestLine = regexp.MustCompile(`^\S+( \S+)? HTT[PX]/\d\.\d$`)

// upgradeLines is a valid upgrade request's lines; extra replaces or adds
// headers by name ("Name:" alone deletes it).
func upgradeLines(extra ...string) []string {
	base := []string{
		"GET /chat?app=1&x=%20y HTTP/1.1",
		"Host: server.example.com",
		"Upgrade: websocket",
		"Connection: Upgrade",
		"Sec-WebSocket-Key: " + rfcKey,
		"Origin: http://example.com",
		"Sec-WebSocket-Version: 13",
	}
	for _, e := range extra {
		if requestLine.MatchString(e) {
			base[0] = e // a request line
			continue
		}
		name, _, _ := strings.Cut(e, ":")
		replaced := false
		for i, l := range base {
			if i > 0 && strings.EqualFold(strings.SplitN(l, ":", 2)[0], name) {
				base[i] = e
				replaced = true
			}
		}
		if !replaced {
			base = append(base, e)
		}
	}
	out := base[:0]
	for _, l := range base {
		if !strings.HasSuffix(l, ":") {
			out = append(out, l)
		}
	}
	return out
}

func TestAcceptKeyRFCExample(t *testing.T) {
	if got := AcceptKey(rfcKey); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("AcceptKey = %q", got)
	}
	// Odd-length keys take the slow path and still agree with gobwas's
	// client check (base64(SHA-1(key+GUID))).
	if got := AcceptKey("abc"); len(got) != 28 || got == AcceptKey("abd") {
		t.Fatalf("AcceptKey(abc) = %q", got)
	}
}

// RFC 6455 §1.3 / §4.2.2: the example handshake.
func TestHandshakeRFCExample(t *testing.T) {
	b := request(
		"GET /chat HTTP/1.1",
		"Host: server.example.com",
		"Upgrade: websocket",
		"Connection: Upgrade",
		"Sec-WebSocket-Key: "+rfcKey,
		"Origin: http://example.com",
		"Sec-WebSocket-Protocol: chat, superchat",
		"Sec-WebSocket-Version: 13",
		"User-Agent: test/1.0",
		"X-Forwarded-For: 203.0.113.7, 10.0.0.1",
		"X-Real-IP: 203.0.113.7",
	)
	cfg := &HandshakeConfig{Subprotocols: []string{"superchat", "chat"}, Origins: []string{"http://example.com"}}
	r, n, err := ParseHandshake(b, cfg)
	if err != nil || n != len(b) {
		t.Fatalf("ParseHandshake: n=%d/%d err=%v", n, len(b), err)
	}
	want := Request{
		Path: "/chat", Host: "server.example.com", Origin: "http://example.com", Key: rfcKey,
		Protocol: "chat", UserAgent: "test/1.0", XForwardedFor: "203.0.113.7, 10.0.0.1", XRealIP: "203.0.113.7",
	}
	if r != want {
		t.Fatalf("Request\n got %+v\nwant %+v", r, want)
	}
	resp := string(AppendHandshakeResponse(nil, &r))
	wantResp := "HTTP/1.1 101 Switching Protocols\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" +
		"Sec-WebSocket-Protocol: chat\r\n\r\n"
	if resp != wantResp {
		t.Fatalf("response\n%q\nwant\n%q", resp, wantResp)
	}
	// The strings are copies: scribbling over the input leaves them intact.
	for i := range b {
		b[i] = 'X'
	}
	if r.Path != "/chat" || r.Key != rfcKey || r.Host != "server.example.com" {
		t.Fatalf("Request aliases the input: %+v", r)
	}
}

func TestHandshakeAccepts(t *testing.T) {
	cases := []struct {
		name      string
		req       []byte
		cfg       *HandshakeConfig
		wantPath  string
		wantQuery string
		wantHost  string
	}{
		{
			name:      "4.2.1/path-and-query",
			req:       request(upgradeLines()...),
			wantPath:  "/chat",
			wantQuery: "app=1&x=%20y",
			wantHost:  "server.example.com",
		},
		{
			name:     "4.2.1/nil-config",
			req:      request(upgradeLines("GET / HTTP/1.1")...),
			wantPath: "/",
			wantHost: "server.example.com",
		},
		{
			name:     "4.2.1/header-names-and-tokens-case-insensitive",
			req:      request("GET /ws HTTP/1.1", "hOsT: h:22886", "UPGRADE: WebSocket", "connection: keep-alive, UPGRADE", "sec-websocket-key:"+rfcKey, "SEC-WEBSOCKET-VERSION:   13  "),
			wantPath: "/ws",
			wantHost: "h:22886",
		},
		{
			name:     "4.2.1/upgrade-list",
			req:      request(upgradeLines("Upgrade: h2c, websocket")...),
			wantPath: "/chat", wantQuery: "app=1&x=%20y", wantHost: "server.example.com",
		},
		{
			name:     "4.2.1/connection-header-repeated",
			req:      request(upgradeLines("Connection: keep-alive", "Connection: Upgrade")...),
			wantPath: "/chat", wantQuery: "app=1&x=%20y", wantHost: "server.example.com",
		},
		{
			name:     "4.2.1/http-1.2-or-later",
			req:      request(upgradeLines("GET /a HTTP/1.2")...),
			wantPath: "/a", wantHost: "server.example.com",
		},
		{
			name:     "RFC7230-5.3.2/absolute-form-target",
			req:      request(upgradeLines("GET ws://server.example.com/abs?q=1 HTTP/1.1")...),
			wantPath: "/abs", wantQuery: "q=1", wantHost: "server.example.com",
		},
		{
			name:     "RFC7230-5.3.2/absolute-form-without-path",
			req:      request(upgradeLines("GET http://server.example.com HTTP/1.1")...),
			wantPath: "/", wantHost: "server.example.com",
		},
		{
			name:     "4.2.1/empty-query",
			req:      request(upgradeLines("GET /p? HTTP/1.1")...),
			wantPath: "/p", wantHost: "server.example.com",
		},
		{
			name:     "4.2.1/no-origin-with-allow-list",
			req:      request(upgradeLines("Origin:")...),
			cfg:      &HandshakeConfig{Origins: []string{"https://chat.example.com"}},
			wantPath: "/chat", wantQuery: "app=1&x=%20y", wantHost: "server.example.com",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, n, err := ParseHandshake(tc.req, tc.cfg)
			if err != nil || n != len(tc.req) {
				t.Fatalf("n=%d/%d err=%v", n, len(tc.req), err)
			}
			if r.Path != tc.wantPath || r.Query != tc.wantQuery || r.Host != tc.wantHost {
				t.Fatalf("path %q query %q host %q", r.Path, r.Query, r.Host)
			}
		})
	}
}

func TestHandshakeRejects(t *testing.T) {
	cases := []struct {
		name       string
		req        []byte
		cfg        *HandshakeConfig
		wantStatus int
		wantReason string // substring
	}{
		{name: "plain-http-browser", req: request("GET / HTTP/1.1", "Host: localhost:22886", "User-Agent: Mozilla/5.0", "Accept: text/html"), wantStatus: 426, wantReason: "this port speaks WebSocket"},
		{name: "plain-http-curl-post", req: request("POST /api HTTP/1.1", "Host: localhost", "Content-Length: 0"), wantStatus: 426, wantReason: "WebSocket"},
		{name: "plain-http-1.0", req: request("GET / HTTP/1.0"), wantStatus: 426},
		{name: "4.2.1/method-post", req: request(upgradeLines("POST /chat HTTP/1.1")...), wantStatus: 405},
		{name: "4.2.1/method-lowercase-get", req: request(upgradeLines("get /chat HTTP/1.1")...), wantStatus: 405},
		{name: "4.2.1/http-1.0", req: request(upgradeLines("GET /chat HTTP/1.0")...), wantStatus: 505},
		{name: "4.2.1/host-missing", req: request(upgradeLines("Host:")...), wantStatus: 400, wantReason: "Host"},
		{name: "4.2.1/host-empty", req: request(upgradeLines("Host: ")...), wantStatus: 400, wantReason: "Host"},
		{name: "RFC7230-5.4/host-repeated", req: request(append(upgradeLines(), "Host: evil.example")...), wantStatus: 400},
		{name: "4.2.1/upgrade-not-websocket", req: request(upgradeLines("Upgrade: h2c")...), wantStatus: 400, wantReason: "Upgrade"},
		{name: "4.2.1/upgrade-websocket-as-substring", req: request(upgradeLines("Upgrade: websocketx")...), wantStatus: 400},
		{name: "4.2.1/connection-missing", req: request(upgradeLines("Connection:")...), wantStatus: 400, wantReason: "Connection"},
		{name: "4.2.1/connection-keep-alive-only", req: request(upgradeLines("Connection: keep-alive")...), wantStatus: 400},
		{name: "4.2.1/version-missing", req: request(upgradeLines("Sec-WebSocket-Version:")...), wantStatus: 426, wantReason: "13"},
		{name: "4.2.1/version-8", req: request(upgradeLines("Sec-WebSocket-Version: 8")...), wantStatus: 426},
		{name: "4.2.1/version-list", req: request(upgradeLines("Sec-WebSocket-Version: 13, 8")...), wantStatus: 426},
		{name: "4.2.1/key-missing", req: request(upgradeLines("Sec-WebSocket-Key:")...), wantStatus: 400, wantReason: "Key"},
		{name: "4.2.1/key-not-base64", req: request(upgradeLines("Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==")...), wantStatus: 400},
		{name: "4.2.1/key-15-bytes", req: request(upgradeLines("Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA")...), wantStatus: 400},
		{name: "4.2.1/key-17-bytes", req: request(upgradeLines("Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=")...), wantStatus: 400},
		{name: "4.2.1/key-repeated", req: request(append(upgradeLines(), "Sec-WebSocket-Key: "+rfcKey)...), wantStatus: 400},
		{name: "10.2/origin-not-allowed", req: request(upgradeLines("Origin: https://evil.example")...),
			cfg: &HandshakeConfig{Origins: []string{"http://example.com"}}, wantStatus: 403, wantReason: "origin"},
		{name: "10.2/origin-port-differs", req: request(upgradeLines("Origin: http://example.com:8080")...),
			cfg: &HandshakeConfig{Origins: []string{"http://example.com"}}, wantStatus: 403},
		{name: "10.2/origin-null", req: request(upgradeLines("Origin: null")...),
			cfg: &HandshakeConfig{Origins: []string{"http://example.com"}}, wantStatus: 403},
		{name: "10.2/origin-repeated", req: request(append(upgradeLines(), "Origin: http://example.com")...), wantStatus: 400},
		{name: "malformed/no-request-target", req: request(upgradeLines("GET HTTP/1.1")...), wantStatus: 400},
		{name: "malformed/bad-version-token", req: request(upgradeLines("GET / HTTX/1.1")...), wantStatus: 400},
		{name: "malformed/asterisk-target", req: request(upgradeLines("GET * HTTP/1.1")...), wantStatus: 400},
		{name: "malformed/header-without-colon", req: request(upgradeLines("Bogus header")...), wantStatus: 400},
		{name: "malformed/obs-fold", req: request(append(upgradeLines(), " folded")...), wantStatus: 400},
		{name: "malformed/space-before-colon", req: request(upgradeLines("X-Test : 1")...), wantStatus: 400},
		{name: "malformed/control-char-in-value", req: request(upgradeLines("User-Agent: a\x00b")...), wantStatus: 400},
		{name: "malformed/tls-client-hello", req: []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}, wantStatus: 400},
		{name: "malformed/empty-request-line", req: []byte("\r\n\r\n"), wantStatus: 400},
		{name: "431/head-too-large", req: request(upgradeLines("X-Pad: " + repeat("p", 9000))...), wantStatus: 431},
		{name: "431/custom-limit", req: request(upgradeLines()...), cfg: &HandshakeConfig{MaxHeaderBytes: 100}, wantStatus: 431},
		{name: "431/incomplete-at-limit", req: []byte("GET / HTTP/1.1\r\nX: " + repeat("y", 200)), cfg: &HandshakeConfig{MaxHeaderBytes: 100}, wantStatus: 431},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, n, err := ParseHandshake(tc.req, tc.cfg)
			var he *HandshakeError
			if !errors.As(err, &he) {
				t.Fatalf("err = %v, want *HandshakeError %d", err, tc.wantStatus)
			}
			if he.Status != tc.wantStatus || !strings.Contains(he.Reason, tc.wantReason) || n != 0 {
				t.Fatalf("got %d %q n=%d, want %d containing %q", he.Status, he.Reason, n, tc.wantStatus, tc.wantReason)
			}
			checkErrorResponse(t, he)
		})
	}
}

// checkErrorResponse parses AppendHandshakeError's output with net/http.
func checkErrorResponse(t *testing.T, he *HandshakeError) {
	t.Helper()
	raw := AppendHandshakeError(nil, he)
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("net/http cannot read the error response: %v\n%s", err, raw)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != he.Status || string(body) != he.Reason+"\n" || !resp.Close ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("response %d close=%v body %q headers %v", resp.StatusCode, resp.Close, body, resp.Header)
	}
	if he.Status == 426 && (resp.Header.Get("Sec-WebSocket-Version") != "13" || resp.Header.Get("Upgrade") != "websocket") {
		t.Fatalf("426 without Sec-WebSocket-Version/Upgrade: %v", resp.Header)
	}
	if he.Status == 405 && resp.Header.Get("Allow") != "GET" {
		t.Fatalf("405 without Allow: %v", resp.Header)
	}
}

func TestHandshakeErrorResponseExact(t *testing.T) {
	got := string(AppendHandshakeError([]byte("prefix|"), &HandshakeError{Status: 426, Reason: "speak WebSocket"}))
	want := "prefix|HTTP/1.1 426 Upgrade Required\r\n" +
		"Connection: close\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Upgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"Content-Length: 16\r\n\r\n" +
		"speak WebSocket\n"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	for _, status := range []int{400, 403, 404, 405, 429, 431, 500, 503, 505, 599} {
		checkErrorResponse(t, &HandshakeError{Status: status, Reason: "r"})
	}
}

// A request arriving in two reads, cut at every byte, is ErrShortHandshake
// until the blank line is complete.
func TestHandshakeSplitAtEveryByte(t *testing.T) {
	b := request(upgradeLines("Sec-WebSocket-Protocol: a, b")...)
	for cut := 0; cut < len(b); cut++ {
		_, n, err := ParseHandshake(b[:cut], nil)
		if !errors.Is(err, ErrShortHandshake) || n != 0 {
			t.Fatalf("cut %d: n=%d err=%v", cut, n, err)
		}
	}
	r, n, err := ParseHandshake(b, nil)
	if err != nil || n != len(b) || r.Key != rfcKey {
		t.Fatalf("whole: n=%d err=%v", n, err)
	}
}

// A client may pipeline its first frame right behind the request.
func TestHandshakePipelinedFrame(t *testing.T) {
	head := request(upgradeLines()...)
	frame := encode(text("first"), ping("p"))
	buf := append(bytes.Clone(head), frame...)
	_, n, err := ParseHandshake(buf, nil)
	if err != nil || n != len(head) {
		t.Fatalf("n=%d want %d err=%v", n, len(head), err)
	}
	var r Reader
	got, err := readAll(t, &r, buf[n:], 0)
	if err != nil || len(got) != 2 || got[0] != mText("first") || got[1] != mPing("p") {
		t.Fatalf("frames after the head: %v err=%v", got, err)
	}
	// Frame bytes that happen to contain CRLFCRLF do not confuse the head.
	tricky := append(bytes.Clone(head), encode(wire{fin: true, op: OpBinary, payload: "\r\n\r\n", unmasked: true})...)
	if _, n, err := ParseHandshake(tricky, nil); err != nil || n != len(head) {
		t.Fatalf("tricky: n=%d err=%v", n, err)
	}
}

func TestHandshakeSubprotocols(t *testing.T) {
	cases := []struct {
		name    string
		offer   []string // Sec-WebSocket-Protocol header lines
		cfg     HandshakeConfig
		want    string
		wantHdr bool
	}{
		{name: "1.9/none-offered", cfg: HandshakeConfig{Subprotocols: []string{"chat"}}},
		{name: "1.9/none-supported", offer: []string{"x, y"}, cfg: HandshakeConfig{Subprotocols: []string{"chat"}}},
		{name: "1.9/client-order-wins", offer: []string{"b, a"}, cfg: HandshakeConfig{Subprotocols: []string{"a", "b"}}, want: "b", wantHdr: true},
		{name: "1.9/first-supported-skipping-unknown", offer: []string{"x,a , b"}, cfg: HandshakeConfig{Subprotocols: []string{"b", "a"}}, want: "a", wantHdr: true},
		{name: "1.9/across-repeated-headers", offer: []string{"x", "y, b"}, cfg: HandshakeConfig{Subprotocols: []string{"b"}}, want: "b", wantHdr: true},
		{name: "1.9/case-sensitive", offer: []string{"Chat"}, cfg: HandshakeConfig{Subprotocols: []string{"chat"}}},
		{name: "wechat/echo-first-unsupported", offer: []string{"wx-token-123, other"}, cfg: HandshakeConfig{EchoFirstProtocol: true}, want: "wx-token-123", wantHdr: true},
		{name: "wechat/echo-first-prefers-supported", offer: []string{"wx, chat"}, cfg: HandshakeConfig{EchoFirstProtocol: true, Subprotocols: []string{"chat"}}, want: "chat", wantHdr: true},
		{name: "wechat/echo-first-skips-empty-elements", offer: []string{" , tok"}, cfg: HandshakeConfig{EchoFirstProtocol: true}, want: "tok", wantHdr: true},
		{name: "wechat/echo-first-nothing-offered", cfg: HandshakeConfig{EchoFirstProtocol: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lines := upgradeLines()
			for _, o := range tc.offer {
				lines = append(lines, "Sec-WebSocket-Protocol: "+o)
			}
			r, _, err := ParseHandshake(request(lines...), &tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if r.Protocol != tc.want {
				t.Fatalf("Protocol %q, want %q", r.Protocol, tc.want)
			}
			resp := string(AppendHandshakeResponse(nil, &r))
			if strings.Contains(resp, "Sec-WebSocket-Protocol: "+tc.want+"\r\n") != tc.wantHdr ||
				!tc.wantHdr && strings.Contains(resp, "Sec-WebSocket-Protocol") {
				t.Fatalf("response %q", resp)
			}
		})
	}
}

func TestHandshakeOrigins(t *testing.T) {
	allow := []string{"https://chat.example.com", "http://localhost:8080"}
	cases := []struct {
		name    string
		origin  string // "" omits the header
		origins []string
		ok      bool
	}{
		{name: "10.2/any-when-list-empty", origin: "https://anything.example", ok: true},
		{name: "10.2/listed", origin: "https://chat.example.com", origins: allow, ok: true},
		{name: "10.2/listed-case-insensitive", origin: "HTTPS://Chat.Example.COM", origins: allow, ok: true},
		{name: "10.2/listed-with-port", origin: "http://localhost:8080", origins: allow, ok: true},
		{name: "10.2/wrong-scheme", origin: "http://chat.example.com", origins: allow},
		{name: "10.2/wrong-port", origin: "http://localhost:8081", origins: allow},
		{name: "10.2/suffix-attack", origin: "https://chat.example.com.evil.example", origins: allow},
		{name: "10.2/no-origin-header-is-not-a-browser", origins: allow, ok: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			line := "Origin:"
			if tc.origin != "" {
				line = "Origin: " + tc.origin
			}
			r, _, err := ParseHandshake(request(upgradeLines(line)...), &HandshakeConfig{Origins: tc.origins})
			if tc.ok {
				if err != nil || r.Origin != tc.origin {
					t.Fatalf("err %v origin %q", err, r.Origin)
				}
				return
			}
			var he *HandshakeError
			if !errors.As(err, &he) || he.Status != 403 {
				t.Fatalf("err %v, want 403", err)
			}
		})
	}
}

// Cross-check against an independent client: gobwas/ws's Dialer sends its
// upgrade request over a net.Pipe to a server built from this package's
// functions, accepts the response, then exchanges frames both ways.
func TestCrossCheckGobwasDialer(t *testing.T) {
	cases := []struct {
		name      string
		cfg       HandshakeConfig
		protocols []string
		header    http.Header
		wantProto string
		wantErr   error
	}{
		{name: "plain"},
		{name: "subprotocol", cfg: HandshakeConfig{Subprotocols: []string{"chat.v2", "chat.v1"}}, protocols: []string{"chat.v1", "chat.v2"}, wantProto: "chat.v1"},
		{name: "origin-allowed", cfg: HandshakeConfig{Origins: []string{"https://app.example"}}, header: http.Header{"Origin": {"https://app.example"}}},
		{name: "origin-rejected", cfg: HandshakeConfig{Origins: []string{"https://app.example"}}, header: http.Header{"Origin": {"https://evil.example"}}, wantErr: ws.StatusError(403)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			done := make(chan error, 1)
			go func() { done <- serveOnce(server, &tc.cfg) }()

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			d := ws.Dialer{
				Protocols: tc.protocols,
				Header:    ws.HandshakeHeaderHTTP(tc.header),
				NetDial: func(context.Context, string, string) (net.Conn, error) {
					return client, nil
				},
			}
			conn, br, hs, err := d.Dial(ctx, "ws://chat.example:22886/ws?token=abc")
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Dial err %v, want %v", err, tc.wantErr)
				}
				client.Close()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			if hs.Protocol != tc.wantProto {
				t.Fatalf("negotiated protocol %q, want %q", hs.Protocol, tc.wantProto)
			}
			var rd io.Reader = conn
			if br != nil {
				rd = io.MultiReader(br, conn)
			}
			if err := wsutil.WriteClientText(conn, []byte("héllo")); err != nil {
				t.Fatal(err)
			}
			got, err := wsutil.ReadServerText(struct {
				io.Reader
				io.Writer
			}{rd, conn})
			if err != nil || string(got) != "echo: héllo" {
				t.Fatalf("echo %q err %v", got, err)
			}
			conn.Close()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// serveOnce is a tiny server made of this package's functions: handshake,
// then echo one text message with an "echo: " prefix.
func serveOnce(c net.Conn, cfg *HandshakeConfig) error {
	defer c.Close()
	var buf []byte
	tmp := make([]byte, 512)
	var req Request
	for {
		n, err := c.Read(tmp)
		if err != nil {
			return err
		}
		buf = append(buf, tmp[:n]...)
		r, used, err := ParseHandshake(buf, cfg)
		if errors.Is(err, ErrShortHandshake) {
			continue
		}
		var he *HandshakeError
		if errors.As(err, &he) {
			_, err := c.Write(AppendHandshakeError(nil, he))
			if err != nil && !errors.Is(err, io.ErrClosedPipe) {
				return err
			}
			return nil
		}
		if err != nil {
			return err
		}
		req = r
		buf = buf[used:]
		break
	}
	if !strings.HasPrefix(req.Path, "/ws") || req.Query != "token=abc" || req.Host != "chat.example:22886" {
		return errors.New("unexpected request " + req.Path + "?" + req.Query + " host " + req.Host)
	}
	if _, err := c.Write(AppendHandshakeResponse(nil, &req)); err != nil {
		return err
	}
	var rd Reader
	for {
		m, n, ok, err := rd.Next(buf)
		if errors.Is(err, ErrShortFrame) {
			k, err := c.Read(tmp)
			if err != nil {
				return err
			}
			buf = append(buf, tmp[:k]...)
			continue
		}
		if err != nil {
			return err
		}
		buf = buf[n:]
		if ok && m.Kind == KindText {
			_, err := c.Write(AppendFrame(nil, OpText, append([]byte("echo: "), m.Payload...)))
			return err
		}
	}
}

// Requests written by net/http (another independent client) parse.
func TestHandshakeFromNetHTTP(t *testing.T) {
	req, err := http.NewRequest("GET", "http://127.0.0.1:22886/ws/path?a=b", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", rfcKey)
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Protocol", "chat")
	req.Header.Set("Origin", "https://app.example")
	var b bytes.Buffer
	if err := req.Write(&b); err != nil {
		t.Fatal(err)
	}
	r, n, err := ParseHandshake(b.Bytes(), &HandshakeConfig{Subprotocols: []string{"chat"}, Origins: []string{"https://app.example"}})
	if err != nil || n != b.Len() {
		t.Fatalf("n=%d/%d err=%v\n%s", n, b.Len(), err, b.Bytes())
	}
	if r.Path != "/ws/path" || r.Query != "a=b" || r.Host != "127.0.0.1:22886" || r.Protocol != "chat" || r.UserAgent == "" {
		t.Fatalf("request %+v", r)
	}
	// And net/http reads our 101 response as a protocol switch.
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(AppendHandshakeResponse(nil, &r))), req)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("resp %v err %v", resp, err)
	}
}

// RFC 9110 §5.3: several X-Forwarded-For lines are one list, in order, so
// the entry a proxy appended on its own line stays the right-most one.
func TestHandshakeForwardedForLines(t *testing.T) {
	cases := []struct {
		name  string
		lines []string
		want  string
	}{
		{name: "none", want: ""},
		{name: "one line", lines: []string{"X-Forwarded-For: 198.51.100.1, 10.0.0.1"}, want: "198.51.100.1, 10.0.0.1"},
		{name: "two lines", lines: []string{"X-Forwarded-For: 6.6.6.6", "x-forwarded-for: 198.51.100.1"}, want: "6.6.6.6, 198.51.100.1"},
		{name: "three lines", lines: []string{"X-Forwarded-For: a", "X-Forwarded-For: b, c", "X-Forwarded-For: d"}, want: "a, b, c, d"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _, err := ParseHandshake(request(append(upgradeLines(), tc.lines...)...), nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.XForwardedFor != tc.want {
				t.Fatalf("XForwardedFor = %q, want %q", r.XForwardedFor, tc.want)
			}
		})
	}
}
