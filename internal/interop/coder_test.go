package interop_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// coderClient drives github.com/coder/websocket.
type coderClient struct {
	c *websocket.Conn
	z bool
	r *reader
}

func dialCoder(t *testing.T, addr string, compress bool) wsClient {
	t.Helper()
	opts := &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled}
	if compress {
		// Offers plain "permessage-deflate"; chatd answers with no
		// context takeover both ways, which the library adopts.
		opts.CompressionMode = websocket.CompressionContextTakeover
		opts.CompressionThreshold = 64
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+addr+"/chat", opts)
	if err != nil {
		t.Fatalf("coder dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	c.SetReadLimit(1 << 20)
	k := &coderClient{c: c, z: resp.Header.Get("Sec-WebSocket-Extensions") != ""}
	k.r = newReader(func() ([]byte, error) {
		for {
			typ, b, err := c.Read(context.Background())
			if err != nil || typ == websocket.MessageText {
				return b, err
			}
		}
	})
	return k
}

func (k *coderClient) negotiated() bool { return k.z }

func (k *coderClient) send(p []byte, fragment int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if fragment == 0 {
		return k.c.Write(ctx, websocket.MessageText, p)
	}
	// Without compression each Write is one frame; with it the library
	// compresses the stream and frames what the compressor flushes.
	w, err := k.c.Writer(ctx, websocket.MessageText)
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

func (k *coderClient) next(timeout time.Duration) ([]byte, error) { return k.r.next(timeout) }

func (k *coderClient) ping(p string, timeout time.Duration) error {
	// The library picks the ping payload itself and matches the pong.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return k.c.Ping(ctx)
}

func (k *coderClient) closeNormal() (int, error) {
	if err := k.c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		return 0, err
	}
	code, err := k.closeCode(5 * time.Second)
	if err != nil && errors.Is(err, net.ErrClosed) {
		// coder's Close returns nil only after it has read the server's
		// close frame itself; our reader goroutine then loses the race and
		// sees the closed socket instead. The handshake was verified by the
		// library; the code it carried is not exposed, and the server
		// echoes the client's 1000 (asserted with the other clients).
		return int(websocket.StatusNormalClosure), nil
	}
	return code, err
}

func (k *coderClient) closeCode(timeout time.Duration) (int, error) {
	err := k.r.wait(timeout)
	if code := websocket.CloseStatus(err); code != -1 {
		return int(code), nil
	}
	if errors.Is(err, io.EOF) {
		return 0, err
	}
	return 0, err
}

func TestCoder(t *testing.T) { runEchoSuite(t, dialCoder) }
