package httpapi

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatd/chat"
	"chatd/chat/memstore"
)

// tcpHarness is one server on a real loopback listener (127.0.0.1:0), for
// tests that need TCP: raw bytes, peer addresses, deadlines.
type tcpHarness struct {
	srv  *Server
	addr string
	log  *syncBuffer
}

func newTCPHarness(t *testing.T, mutate func(*Config)) *tcpHarness {
	t.Helper()
	core, err := chat.New(chat.Config{}, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	coreDone := make(chan error, 1)
	go func() { coreDone <- core.Run(ctx) }()
	cfg := Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, Version: "v-tcp"}
	if mutate != nil {
		mutate(&cfg)
	}
	h := &tcpHarness{log: &syncBuffer{}}
	h.srv, err = New(cfg, core, zerolog.New(h.log).Level(zerolog.DebugLevel))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	srvDone := make(chan error, 1)
	go func() { srvDone <- h.srv.Run(ctx) }()
	select {
	case <-h.srv.Ready():
	case err := <-srvDone:
		cancel()
		t.Fatalf("Run: %v", err)
	}
	h.addr = h.srv.Addr()
	t.Cleanup(func() {
		cancel()
		for _, c := range []chan error{srvDone, coreDone} {
			select {
			case err := <-c:
				if err != nil {
					t.Errorf("shutdown: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("shutdown timed out")
			}
		}
	})
	return h
}

// dial connects to the server from the loopback address from ("" for the
// default source address).
func (h *tcpHarness) dial(t *testing.T, from string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", h.addr)
	if err != nil {
		t.Fatalf("dial from %q: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSmugglingShapeRefused sends a request with both Content-Length and
// Transfer-Encoding: chunked, followed on the same connection by a second
// request hidden where a proxy going by Content-Length would see body. The
// server must answer 400 and close, never serve the hidden request.
func TestSmugglingShapeRefused(t *testing.T) {
	h := newTCPHarness(t, nil)
	tests := []struct {
		name    string
		headers string
	}{
		{name: "CL then TE", headers: "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"},
		{name: "TE then CL", headers: "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"},
		{name: "odd case", headers: "content-LENGTH: 5\r\ntransfer-encoding: chunked\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := h.dial(t, "")
			c.SetDeadline(time.Now().Add(5 * time.Second))
			raw := "POST /api/v1/users HTTP/1.1\r\nHost: chatd.test\r\n" + tt.headers + "\r\n" +
				"0\r\n\r\n" +
				"GET /healthz HTTP/1.1\r\nHost: chatd.test\r\n\r\n"
			if _, err := io.WriteString(c, raw); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("first answer: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 400 || !strings.Contains(string(body), "both Content-Length and Transfer-Encoding") {
				t.Fatalf("first answer %d %s, want 400 naming both headers", resp.StatusCode, body)
			}
			if !resp.Close {
				t.Fatalf("first answer keeps the connection open (Connection: %q)", resp.Header.Get("Connection"))
			}
			if resp, err := http.ReadResponse(br, nil); err == nil {
				t.Fatalf("the hidden request was served: %d", resp.StatusCode)
			}
		})
	}
	// A well-formed chunked request on its own is still served.
	c := h.dial(t, "")
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST /api/v1/users HTTP/1.1\r\nHost: chatd.test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("plain chunked request: %d, want 401 (unsigned)", resp.StatusCode)
	}
}
