package chat_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"chatd/chat"
)

// TestClusterSingleDeviceSimultaneous: under `single`, two logins of one
// user on two nodes at the same moment (neither node has heard of the
// other's yet) end with exactly one device: the newer login's, on both
// nodes' view, whichever order they hear of each other.
func TestClusterSingleDeviceSimultaneous(t *testing.T) {
	ce := newCluster(t)
	a, b := ce.node("a"), ce.node("b")
	if _, err := a.core.SetSettings(context.Background(), "shop", chat.SettingsInput{Devices: chat.DevicesSingle}); err != nil {
		t.Fatal(err)
	}
	ce.settle()
	for round, newerOn := range []*env{a, b} {
		uid := []string{"dave", "erin"}[round]
		olderOn := b
		if newerOn == b {
			olderOn = a
		}
		ta, tb := olderOn.user(uid), newerOn.user(uid)
		ce.hub.setPaused(true) // neither node hears the other's login
		older := olderOn.login(ta)
		ce.clock.add(time.Millisecond)
		newer := newerOn.login(tb)
		ce.hub.setPaused(false)
		ce.hub.flush()
		if r := data[chat.KickedEvent](t, older.wait(t, event("kicked"))); r.Policy != chat.DevicesSingle || r.Reason != "logged_in_elsewhere" {
			t.Fatalf("round %d: the older device got kicked %+v", round, r)
		}
		waitClosed(t, older.fakePeer, chat.CloseReplaced)
		ce.hub.flush()
		newer.mu.Lock()
		code := newer.closed
		newer.mu.Unlock()
		if code != 0 {
			t.Fatalf("round %d: the newer login was closed too (code %d): nobody is left", round, code)
		}
		newer.do(`"action":"ping"`) // still served
	}
}

// waitClosed waits until p is closed with code.
func waitClosed(t *testing.T, p *fakePeer, code int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		got := p.closed
		p.mu.Unlock()
		if got == code {
			return
		}
		if got != 0 || time.Now().After(deadline) {
			t.Fatalf("closed with %d, want %d", got, code)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestClusterLastSeenElsewhere: a user whose last device leaves on one
// node has that last-seen time in a presence query on another node at
// once, before the node it left writes it.
func TestClusterLastSeenElsewhere(t *testing.T) {
	ce := newCluster(t)
	ce.presence = time.Second // on, with a debounce the frozen clock never passes
	a, b := ce.node("a"), ce.node("b")
	carol := ce.login(a, "carol")
	bob := ce.login(b, "bob")
	ce.clock.add(5 * time.Second)
	left := ce.clock.now().UnixMilli()
	carol.h.HandleClose()
	ce.hub.flush()
	f := bob.ok(`"action":"presence","uids":["carol"]`)
	var v struct {
		Presence []chat.PresenceView `json:"presence"`
	}
	if err := json.Unmarshal(f.Data, &v); err != nil || len(v.Presence) != 1 {
		t.Fatalf("presence: %s %v", f.Data, err)
	}
	if p := v.Presence[0]; p.Online || p.LastSeen != left {
		t.Fatalf("carol on b = %+v; want offline, last seen %d (when she left a)", p, left)
	}
}
