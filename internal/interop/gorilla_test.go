package interop_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// gorillaClient drives github.com/gorilla/websocket.
type gorillaClient struct {
	c     *websocket.Conn
	z     bool
	r     *reader
	pongs chan string
}

func dialGorilla(t *testing.T, addr string, compress bool) wsClient {
	t.Helper()
	d := websocket.Dialer{
		HandshakeTimeout:  5 * time.Second,
		EnableCompression: compress,
		// A small write buffer makes NextWriter send a long message as
		// many frames.
		WriteBufferSize: 512,
	}
	c, resp, err := d.Dial("ws://"+addr+"/chat", nil)
	if err != nil {
		t.Fatalf("gorilla dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadLimit(1 << 20)
	g := &gorillaClient{c: c, z: resp.Header.Get("Sec-WebSocket-Extensions") != "", pongs: make(chan string, 8)}
	c.SetPongHandler(func(p string) error { g.pongs <- p; return nil })
	g.r = newReader(func() ([]byte, error) {
		for {
			typ, b, err := c.ReadMessage()
			if err != nil || typ == websocket.TextMessage {
				return b, err
			}
		}
	})
	return g
}

func (g *gorillaClient) negotiated() bool { return g.z }

func (g *gorillaClient) send(p []byte, fragment int) error {
	g.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if fragment == 0 {
		return g.c.WriteMessage(websocket.TextMessage, p)
	}
	w, err := g.c.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	for len(p) > 0 {
		n := min(fragment, len(p))
		if _, err := w.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return w.Close()
}

func (g *gorillaClient) next(timeout time.Duration) ([]byte, error) { return g.r.next(timeout) }

func (g *gorillaClient) ping(p string, timeout time.Duration) error {
	if err := g.c.WriteControl(websocket.PingMessage, []byte(p), time.Now().Add(timeout)); err != nil {
		return err
	}
	select {
	case got := <-g.pongs:
		if got != p {
			return errors.New("pong payload " + got + ", want " + p)
		}
		return nil
	case <-time.After(timeout):
		return errTimeout
	}
}

func (g *gorillaClient) closeNormal() (int, error) {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := g.c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
		return 0, err
	}
	return g.closeCode(5 * time.Second)
}

func (g *gorillaClient) closeCode(timeout time.Duration) (int, error) {
	err := g.r.wait(timeout)
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code, nil
	}
	return 0, err
}

func TestGorilla(t *testing.T) { runEchoSuite(t, dialGorilla) }
