package chat_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"chatd/chat"
)

func httpSend(t *testing.T, e *env, from, to, text string) {
	t.Helper()
	if _, err := e.core.Send(context.Background(), "shop", chat.SendInput{From: from, To: to, Type: "text",
		Content: []byte(`{"text":"` + text + `"}`)}); err != nil {
		t.Fatal(err)
	}
}

// An HTTP device exists only while the user reads events: it makes the
// user online, records every event a WebSocket device gets, evicts past
// its bound (a cursor behind the eviction is told to resync, never served
// with a gap), and is removed HTTPEventsKeep after its last read (the
// user goes offline, and an old cursor resyncs).
func TestHTTPDeviceRingAndExpiry(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	e := newEnv(t, chat.Config{HTTPEventsMax: 3, HTTPEventsKeep: time.Minute, LoginTimeout: 200 * time.Millisecond,
		Now: func() time.Time { return time.Unix(0, now.Load()) }})
	e.user("alice")
	e.user("bob")
	alice := chat.Identity{App: "shop", UID: "alice"}
	if n := e.core.HTTPDevices(); n != 0 {
		t.Fatalf("devices before any read: %d", n)
	}
	before := e.core.Stats().UsersOnline

	d := e.core.HoldHTTPDevice(alice)
	start, wait, err := d.Read("", 0)
	if err != nil || start.Resync || len(start.Events) != 0 || wait == nil {
		t.Fatalf("first read: %+v %v", start, err)
	}
	if got := e.core.Stats().UsersOnline; got != before+1 {
		t.Fatalf("users online %d, want %d", got, before+1)
	}
	httpSend(t, e, "bob", "alice", "m1")
	select {
	case <-wait:
	case <-time.After(5 * time.Second):
		t.Fatal("the wait channel was not closed by the event")
	}
	r, _, _ := d.Read(start.Cursor, 0)
	if len(r.Events) != 1 || !strings.Contains(string(r.Events[0]), `"m1"`) {
		t.Fatalf("read: %q", r.Events)
	}
	// Four more: the ring keeps 3, so start.Cursor's events are partly gone.
	for _, m := range []string{"m2", "m3", "m4", "m5"} {
		httpSend(t, e, "bob", "alice", m)
	}
	rs, w, err := d.Read(r.Cursor, 0)
	if err != nil || !rs.Resync || len(rs.Events) != 0 || w != nil {
		t.Fatalf("read behind the ring: %+v %v", rs, err)
	}
	// The fresh cursor reads on from there.
	httpSend(t, e, "bob", "alice", "m6")
	r2, _, _ := d.Read(rs.Cursor, 0)
	if len(r2.Events) != 1 || !strings.Contains(string(r2.Events[0]), `"m6"`) {
		t.Fatalf("after resync: %q", r2.Events)
	}
	// A cursor ahead of the ring was never given out.
	ep, _, _ := strings.Cut(r2.Cursor, ".")
	if _, _, err := d.Read(ep+".999", 0); err == nil {
		t.Fatal("a cursor ahead of the ring was accepted")
	}

	// Held, the device outlives HTTPEventsKeep; released, it goes.
	now.Add(int64(2 * time.Minute))
	time.Sleep(300 * time.Millisecond) // a few sweeps (every 50 ms) that must not remove it
	if e.core.HTTPDevices() != 1 {
		t.Fatal("a held device was swept")
	}
	d.Release()
	if e.core.HTTPDevices() != 1 {
		t.Fatal("device removed at once on release")
	}
	now.Add(int64(time.Minute))
	deadline := time.Now().Add(5 * time.Second)
	for e.core.HTTPDevices() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the idle device was not swept")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := e.core.Stats().UsersOnline; got != before {
		t.Fatalf("users online after the sweep %d, want %d", got, before)
	}
	d2 := e.core.HoldHTTPDevice(alice)
	defer d2.Release()
	if r, _, _ := d2.Read(r2.Cursor, 0); !r.Resync {
		t.Fatalf("cursor of a swept device: %+v", r)
	}
}

// Revoking the user's tokens closes the device: readers are woken and
// told to resync.
func TestHTTPDeviceKicked(t *testing.T) {
	e := newEnv(t, chat.Config{})
	e.user("alice")
	d := e.core.HoldHTTPDevice(chat.Identity{App: "shop", UID: "alice"})
	defer d.Release()
	r, wait, _ := d.Read("", 0)
	if _, err := e.core.RevokeUserTokens(context.Background(), "shop", "alice"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wait:
	case <-time.After(5 * time.Second):
		t.Fatal("reader not woken by the revocation")
	}
	if rs, _, _ := d.Read(r.Cursor, 0); !rs.Resync || !d.Closed() {
		t.Fatalf("read after revocation: %+v", rs)
	}
	if e.core.HTTPDevices() != 0 {
		t.Fatal("revoked device still registered")
	}
}
