package chat

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The token bucket: a burst at one instant, then one token per interval;
// waits are exact and an idle bucket refills to the burst, no further.
func TestRateTake(t *testing.T) {
	ms := int64(time.Millisecond)
	type step struct {
		at   int64 // ns since the start
		wait int64 // the wait take must return (0: allowed)
	}
	cases := []struct {
		name   string
		perSec int
		burst  int
		steps  []step
	}{
		{name: "burst-then-refused", perSec: 2, burst: 3, steps: []step{
			{at: 0}, {at: 0}, {at: 0}, {at: 0, wait: 500 * ms}, {at: 499 * ms, wait: ms}, {at: 500 * ms}, {at: 500 * ms, wait: 500 * ms},
		}},
		{name: "steady-at-the-rate", perSec: 10, burst: 1, steps: []step{
			{at: 0}, {at: 100 * ms}, {at: 200 * ms}, {at: 250 * ms, wait: 50 * ms}, {at: 300 * ms},
		}},
		{name: "idle-refills-to-burst-only", perSec: 1, burst: 2, steps: []step{
			{at: 0}, {at: 0}, {at: 3600 * 1000 * ms}, {at: 3600 * 1000 * ms}, {at: 3600 * 1000 * ms, wait: 1000 * ms},
		}},
		{name: "refused-takes-nothing", perSec: 1, burst: 1, steps: []step{
			{at: 0}, {at: 0, wait: 1000 * ms}, {at: 0, wait: 1000 * ms}, {at: 1000 * ms},
		}},
		{name: "off", perSec: 0, burst: 0, steps: []step{{at: 0}, {at: 0}, {at: 0}}},
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRate(tc.perSec, tc.burst)
			var b atomic.Int64
			for i, s := range tc.steps {
				if got := r.take(&b, base+s.at); got != s.wait {
					t.Fatalf("step %d at %v: wait %v, want %v", i, time.Duration(s.at), time.Duration(got), time.Duration(s.wait))
				}
			}
		})
	}
}

// Concurrent takers of one bucket (a user's devices on several loops) get
// exactly the burst between them.
func TestRateTakeConcurrent(t *testing.T) {
	r := newRate(100, 50)
	var b atomic.Int64
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if r.take(&b, 1e18) == 0 {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := allowed.Load(); n != 50 {
		t.Fatalf("%d allowed at one instant, want the burst of 50", n)
	}
}

func TestLimitsFill(t *testing.T) {
	cases := []struct {
		name string
		in   Limits
		want Limits
	}{
		{name: "zero-is-off", in: Limits{}, want: Limits{}},
		{name: "burst-defaults-to-twice", in: Limits{SendRate: 20, RequestRate: 50, MaxUserConns: 3},
			want: Limits{SendRate: 20, SendBurst: 40, RequestRate: 50, RequestBurst: 100, MaxUserConns: 3}},
		{name: "negative-is-off", in: Limits{SendRate: -1, RequestRate: -5, MaxUserConns: -2}, want: Limits{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.in
			l.fill()
			if l != tc.want {
				t.Fatalf("fill(%+v) = %+v, want %+v", tc.in, l, tc.want)
			}
		})
	}
}

// BenchmarkLimiter: what the limits add per request and per sent message
// (request check, mute check, send check, one clock reading), allowed path.
func BenchmarkLimiter(b *testing.B) {
	c := &Core{cfg: Config{Now: time.Now}}
	c.lim = newLimiter(Limits{SendRate: 1 << 30, RequestRate: 1 << 30}) // never refuses
	c.mod.tab.Store(newModTable(nil))
	u := &user{uid: "alice"}
	cl := &Client{core: c, u: u, id: Identity{App: "shop", UID: "alice"}}
	message := func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var now int64
			if c.allowRequest(u, &now) != nil || c.allowUserSend(cl, &now) != nil {
				b.Fatal("refused")
			}
		}
	}
	b.Run("request", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var now int64
			if c.allowRequest(u, &now) != nil {
				b.Fatal("refused")
			}
		}
	})
	b.Run("message", message)
	b.Run("message/others-muted", func(b *testing.B) {
		c.mod.tab.Store(newModTable([]Restriction{{App: "shop", UID: "bob", Kind: RestrictMute}}))
		defer c.mod.tab.Store(newModTable(nil))
		message(b)
	})
	b.Run("message/limits-off", func(b *testing.B) {
		lim := c.lim
		c.lim = newLimiter(Limits{})
		defer func() { c.lim = lim }()
		message(b)
	})
	b.Run("request/parallel-one-user", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				var now int64
				c.allowRequest(u, &now)
			}
		})
	})
}

// BenchmarkHandleSendLimited is BenchmarkHandleSend with every per-user
// limit on (rates high enough never to refuse): the limiter's cost on the
// fast send path, against BenchmarkHandleSend where they are off.
func BenchmarkHandleSendLimited(b *testing.B) {
	benchHandleSend(b, Config{MaxQueue: 1 << 20, Limits: Limits{SendRate: 1 << 30, RequestRate: 1 << 30, MaxUserConns: 16}}, false)
}
