//go:build !race

package chat

import (
	"testing"
	"time"
)

// The limiter's checks on the hot path allocate nothing: a request, a send
// with its mute check (nobody muted, or someone else muted).
func TestLimiterAllocs(t *testing.T) {
	c := &Core{cfg: Config{Now: time.Now}}
	c.lim = newLimiter(Limits{SendRate: 1 << 30, RequestRate: 1 << 30})
	u := &user{uid: "alice"}
	cl := &Client{core: c, u: u, id: Identity{App: "shop", UID: "alice"}}
	for _, tab := range []*modTable{newModTable(nil), newModTable([]Restriction{{App: "shop", UID: "bob", Kind: RestrictMute}})} {
		c.mod.tab.Store(tab)
		if n := testing.AllocsPerRun(1000, func() {
			if c.allowRequest(u, new(int64)) != nil || c.allowUserSend(cl, new(int64)) != nil {
				t.Fatal("refused")
			}
		}); n != 0 {
			t.Fatalf("limiter with %d restrictions: %v allocs/op", len(tab.m), n)
		}
	}
}
