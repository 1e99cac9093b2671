package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"chatd/chat"
	"chatd/httpapi/apiclient"
)

// devConn is a logged-in connection read by the test itself: it keeps the
// events and the server's close frame, in order.
type devConn struct {
	conn   interface{ Close() error }
	events chan frame
	closed chan wsutil.ClosedError
}

func loginDevice(t *testing.T, addr, token, platform string) *devConn {
	t.Helper()
	conn, _, _, err := ws.Dial(context.Background(), "ws://"+addr+"/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req := `{"id":"l","action":"login","app":"shop","token":"` + token + `","platform":"` + platform + `"}`
	if err := wsutil.WriteClientText(conn, []byte(req)); err != nil {
		t.Fatal(err)
	}
	b, _, err := wsutil.ReadServerData(conn)
	if err != nil || !strings.Contains(string(b), `"ok":true`) {
		t.Fatalf("login on %s: %q %v", platform, b, err)
	}
	d := &devConn{conn: conn, events: make(chan frame, 64), closed: make(chan wsutil.ClosedError, 1)}
	go func() {
		for {
			b, _, err := wsutil.ReadServerData(conn)
			if err != nil {
				var ce wsutil.ClosedError
				errors.As(err, &ce)
				d.closed <- ce
				return
			}
			var f frame
			if json.Unmarshal(b, &f) == nil && f.Event != "" {
				d.events <- f
			}
		}
	}()
	return d
}

// wantKicked checks that d gets a kicked event naming the new platform,
// then close 4003, with no event after the kicked one.
func (d *devConn) wantKicked(t *testing.T, platform, policy string) {
	t.Helper()
	select {
	case f := <-d.events:
		var k chat.KickedEvent
		if f.Event != "kicked" || json.Unmarshal(f.Data, &k) != nil || k.Reason != "logged_in_elsewhere" || k.Platform != platform || k.Policy != policy {
			t.Fatalf("want a kicked event from %s, got %s", platform, f.raw)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no kicked event")
	}
	select {
	case ce := <-d.closed:
		if ce.Code != 4003 || ce.Reason != "logged in elsewhere" {
			t.Fatalf("closed with %d %q, want 4003", ce.Code, ce.Reason)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not closed after the kicked event")
	}
}

func (d *devConn) wantOpen(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case ce := <-d.closed:
		t.Fatalf("closed: %d %q", ce.Code, ce.Reason)
	case f := <-d.events:
		if f.Event == "kicked" {
			t.Fatalf("kicked: %s", f.raw)
		}
	case <-time.After(within):
	}
}

func setDevices(t *testing.T, app *apiclient.Client, policy string) error {
	t.Helper()
	var st struct {
		Devices string `json:"devices"`
	}
	err := app.Do(context.Background(), "POST", "/api/v1/app", map[string]string{"devices": policy}, &st)
	if err == nil && st.Devices != policy {
		t.Fatalf("settings answer %+v, want devices %s", st, policy)
	}
	return err
}

func TestDevicePolicies(t *testing.T) {
	s := start(t, t.TempDir(), options{})
	app := s.app("shop")
	ta := pushUser(t, app, "alice")
	tb := pushUser(t, app, "bob")

	c := dial(t, s.WSAddr)
	mustFail(t, c.do(`"action":"login","app":"shop","token":"`+ta+`","platform":"fridge"`), chat.CodeBadRequest, "unknown platform")
	var ae *apiclient.APIError
	if err := setDevices(t, app, "two"); !errors.As(err, &ae) || ae.Code != "bad_request" {
		t.Fatalf("unknown device policy: %v", err)
	}

	t.Run("multi", func(t *testing.T) {
		w, i := loginDevice(t, s.WSAddr, ta, "web"), loginDevice(t, s.WSAddr, ta, "ios")
		w2 := loginDevice(t, s.WSAddr, ta, "web")
		for _, d := range []*devConn{w, i, w2} {
			d.wantOpen(t, 100*time.Millisecond)
		}
	})
	t.Run("single", func(t *testing.T) {
		if err := setDevices(t, app, "single"); err != nil {
			t.Fatal(err)
		}
		old := loginDevice(t, s.WSAddr, ta, "web")
		other := loginDevice(t, s.WSAddr, tb, "web") // another user is not affected
		loginDevice(t, s.WSAddr, ta, "android")
		old.wantKicked(t, "android", "single")
		other.wantOpen(t, 100*time.Millisecond)
	})
	t.Run("one_per_platform", func(t *testing.T) {
		if err := setDevices(t, app, "one_per_platform"); err != nil {
			t.Fatal(err)
		}
		web := loginDevice(t, s.WSAddr, ta, "web")
		ios := loginDevice(t, s.WSAddr, ta, "ios")
		web.wantOpen(t, 100*time.Millisecond)
		web2 := loginDevice(t, s.WSAddr, ta, "web")
		web.wantKicked(t, "web", "one_per_platform")
		ios.wantOpen(t, 100*time.Millisecond)
		web2.wantOpen(t, 50*time.Millisecond)
	})
}
