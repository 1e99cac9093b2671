package bench

import (
	"testing"
	"time"
)

// TestConnectWithFriends: a tiny connect run with --friends against a real
// chatd (presence_debounce 100ms): the ring is imported, and every login
// reaches the online friends as presence events, which the report counts.
func TestConnectWithFriends(t *testing.T) {
	srv := startChatd(t, "--presence-debounce", "100ms")
	o := srv.options()
	o.Duration = 1500 * time.Millisecond
	rep := runScenario(t, o, &Connect{Conns: 40, Friends: 4, Settle: time.Millisecond})
	p := rep.Presence
	if p == nil {
		t.Fatal("no presence report")
	}
	t.Logf("presence %+v, connect rate %.0f/s", *p, rep.Conns.RatePerS)
	if p.FriendsPerUser != 4 || p.Pairs != 80 {
		t.Errorf("friendships %+v: want 4 per user, 80 pairs", p)
	}
	// Each of the 40 users comes online once; each announcement goes to
	// the friends already online: at least the later half of a ring's
	// logins find friends online. At most one per friend pair and
	// direction: 40 users × 4 friends.
	if p.Events == 0 || p.Events > 160 || p.EventsPerS <= 0 || p.WindowS <= 0 {
		t.Errorf("presence events %+v: want between 1 and 160", p)
	}
	if rep.Conns.Connected != 40 {
		t.Errorf("connected %d of 40", rep.Conns.Connected)
	}
	if err := (&Connect{Conns: 10, Friends: 3}).check(&o); err == nil {
		t.Error("an odd --friends was accepted")
	}
}
