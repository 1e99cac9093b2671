package interop_test

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatd/chat"
	"chatd/reactor"
	"chatd/wsproto"
)

// The echo server's limits and timers. Its pings come every
// pingInterval of silence and a client that answers none is dropped after
// idleTimeout, so a client that stays open across several idle timeouts
// proves that its library answers the server's pings.
const (
	messageLimit = 64 << 10
	pingInterval = 150 * time.Millisecond
	idleTimeout  = 600 * time.Millisecond
)

// echoSizes are the message sizes every client sends: the frame length
// boundaries (125/126, 65535/65536) up to the message limit.
var echoSizes = []int{0, 1, 125, 126, 127, 1000, 4096, 65535, messageLimit}

// payload is an ASCII text of n bytes (compressible, valid UTF-8).
func payload(n int) []byte {
	return []byte(strings.Repeat("interop chatd 0123456789 ", n/25+1)[:n])
}

// echoAcceptor is a chat.Acceptor that sends every text message back.
type echoAcceptor struct{}

func (echoAcceptor) Accept(p chat.Peer) chat.Handler { return &echoHandler{p: p} }

type echoHandler struct{ p chat.Peer }

// HandleMessage echoes a copy: the payload is borrowed.
func (h *echoHandler) HandleMessage(b []byte) { h.p.Send(bytes.Clone(b)) }
func (h *echoHandler) HandleClose()           {}

// startEcho runs a reactor with the echo acceptor on 127.0.0.1:0 until the
// test ends.
func startEcho(t *testing.T, compression bool) *reactor.Server {
	t.Helper()
	s, err := reactor.New(reactor.Config{
		Addr:         "127.0.0.1:0",
		Loops:        2,
		MaxMessage:   messageLimit,
		PingInterval: pingInterval,
		IdleTimeout:  idleTimeout,
		Handshake:    wsproto.HandshakeConfig{Compression: compression},
	}, echoAcceptor{}, zerolog.New(os.Stderr).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("reactor: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("reactor not ready in 10s")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("reactor Run: %v", err)
		}
	})
	return s
}

// wsClient is what the suite needs from a client library.
type wsClient interface {
	// negotiated reports whether permessage-deflate was agreed.
	negotiated() bool
	// send writes one text message; fragment > 0 splits it into frames of
	// about that many bytes, as the library does it.
	send(p []byte, fragment int) error
	// next returns the next text message (the library answers the
	// server's pings meanwhile).
	next(timeout time.Duration) ([]byte, error)
	// ping sends a ping with payload p and waits for the matching pong.
	ping(p string, timeout time.Duration) error
	// closeNormal starts the close handshake with 1000 and returns the
	// code the server answered with.
	closeNormal() (int, error)
	// closeCode waits for the server to close the connection and returns
	// the close code it sent.
	closeCode(timeout time.Duration) (int, error)
}

// clientFactory dials the echo server at addr.
type clientFactory func(t *testing.T, addr string, compress bool) wsClient

// runEchoSuite runs one client library through the interop matrix against
// echo servers with and without compression.
func runEchoSuite(t *testing.T, dial clientFactory) {
	modes := []struct {
		name           string
		server, client bool
	}{
		{name: "compression-on", server: true, client: true},
		{name: "compression-off", server: false, client: false},
		{name: "client-offers-server-declines", server: false, client: true},
		{name: "server-offers-client-does-not", server: true, client: false},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			s := startEcho(t, m.server)
			addr := s.Addr()
			wantZ := m.server && m.client

			t.Run("echo-0-to-limit", func(t *testing.T) {
				c := dial(t, addr, m.client)
				if c.negotiated() != wantZ {
					t.Fatalf("permessage-deflate negotiated=%v, want %v", c.negotiated(), wantZ)
				}
				for _, n := range echoSizes {
					p := payload(n)
					if err := c.send(p, 0); err != nil {
						t.Fatalf("send %d bytes: %v", n, err)
					}
					got, err := c.next(10 * time.Second)
					if err != nil || !bytes.Equal(got, p) {
						t.Fatalf("echo of %d bytes: got %d bytes, err %v", n, len(got), err)
					}
				}
				if code, err := c.closeNormal(); err != nil || code != 1000 {
					t.Fatalf("close: code %d err %v", code, err)
				}
			})
			t.Run("fragmented", func(t *testing.T) {
				c := dial(t, addr, m.client)
				for _, n := range []int{1000, 20000, messageLimit} {
					p := payload(n)
					before := s.Stats().FramesIn
					if err := c.send(p, 512); err != nil {
						t.Fatalf("send %d bytes in fragments: %v", n, err)
					}
					got, err := c.next(10 * time.Second)
					if err != nil || !bytes.Equal(got, p) {
						t.Fatalf("echo of %d fragmented bytes: got %d, err %v", n, len(got), err)
					}
					// Uncompressed, the library must have sent about one
					// frame per 512 bytes (compressed, the text shrinks
					// to a few frames).
					if frames := s.Stats().FramesIn - before; !wantZ && frames < uint64(n/512) {
						t.Fatalf("%d bytes arrived in %d frames: not fragmented", n, frames)
					}
				}
				if code, err := c.closeNormal(); err != nil || code != 1000 {
					t.Fatalf("close: code %d err %v", code, err)
				}
			})
			t.Run("ping-pong", func(t *testing.T) {
				c := dial(t, addr, m.client)
				for i := range 3 {
					if err := c.ping("p"+strconv.Itoa(i), 5*time.Second); err != nil {
						t.Fatalf("client ping %d: %v", i, err)
					}
				}
				// Silent for three idle timeouts: the server pings, the
				// library answers, the connection stays.
				time.Sleep(3 * idleTimeout)
				if err := c.send([]byte("still here"), 0); err != nil {
					t.Fatalf("send after idling: %v", err)
				}
				if got, err := c.next(5 * time.Second); err != nil || string(got) != "still here" {
					t.Fatalf("echo after idling: %q %v (the library did not answer the server's pings?)", got, err)
				}
				if code, err := c.closeNormal(); err != nil || code != 1000 {
					t.Fatalf("close: code %d err %v", code, err)
				}
			})
			t.Run("over-limit-closed-1009", func(t *testing.T) {
				c := dial(t, addr, m.client)
				// The server refuses the message on its header and
				// closes while the library may still be writing the
				// payload, so the write may fail (broken pipe); what
				// matters is that the 1009 close frame arrives.
				sendErr := c.send(payload(messageLimit+1), 0)
				code, err := c.closeCode(5 * time.Second)
				if code != 1009 {
					t.Fatalf("close code %d (%v), want 1009 (send: %v)", code, err, sendErr)
				}
			})
			if wantZ {
				if st := s.Stats(); st.FramesCompressed == 0 || st.Deflates == 0 {
					t.Fatalf("compression negotiated but the server sent nothing compressed: %+v", st)
				}
			} else if st := s.Stats(); st.FramesCompressed != 0 {
				t.Fatalf("%d compressed frames without the extension", st.FramesCompressed)
			}
		})
	}
}

// reader runs a library's blocking read in a goroutine and hands over
// text messages and the final error.
type reader struct {
	msgs chan []byte
	done chan struct{}
	err  error // set before done is closed
}

func newReader(read func() ([]byte, error)) *reader {
	r := &reader{msgs: make(chan []byte, 16), done: make(chan struct{})}
	go func() {
		for {
			b, err := read()
			if err != nil {
				r.err = err
				close(r.done)
				return
			}
			r.msgs <- b
		}
	}()
	return r
}

func (r *reader) next(timeout time.Duration) ([]byte, error) {
	select {
	case b := <-r.msgs:
		return b, nil
	case <-r.done:
		return nil, r.err
	case <-time.After(timeout):
		return nil, errTimeout
	}
}

// wait returns the error that ended the reads (skipping messages).
func (r *reader) wait(timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		select {
		case <-r.msgs:
		case <-r.done:
			return r.err
		case <-deadline:
			return errTimeout
		}
	}
}

type timeoutError struct{}

func (timeoutError) Error() string { return "interop: timed out" }

var errTimeout error = timeoutError{}
