package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"chatd/chat"
	"chatd/chat/memstore"
	"chatd/internal/webhook"
)

// cutStore is node A's handle on the cluster's store: once cut, its lease
// calls fail, as for a node cut off from the database or frozen (it
// neither renews nor releases).
type cutStore struct {
	*memstore.Shared
	cut atomic.Bool
	// failTakes makes that many TryLease calls fail (a slow database),
	// ReleaseLease still working.
	failTakes atomic.Int32
}

var errCut = errors.New("cut off from the store")

func (s *cutStore) TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if s.cut.Load() {
		return false, errCut
	}
	if s.failTakes.Load() > 0 && s.failTakes.Add(-1) >= 0 {
		return false, errCut
	}
	return s.Shared.TryLease(ctx, name, holder, ttl)
}

func (s *cutStore) ReleaseLease(ctx context.Context, name, holder string) error {
	if s.cut.Load() {
		return errCut
	}
	return s.Shared.ReleaseLease(ctx, name, holder)
}

// TestWebhookClusterLease: two nodes on one shared store each run
// RunWebhooks; only the lease holder delivers, every event once, whatever
// its node and id; when the holder is cut off the other node takes over
// after the lease's ttl and delivers the rest, each once.
func TestWebhookClusterLease(t *testing.T) {
	// Restored last, after the dispatchers stopped (cleanups run in reverse).
	t.Cleanup(chat.SetWebhookLeaseForTest(300*time.Millisecond, 20*time.Millisecond))
	ctx := context.Background()
	clock := newWHClock()
	shared := memstore.NewShared()
	stA := &cutStore{Shared: shared}
	quiet := func(string, error) {}
	whCfg := chat.WebhookConfig{Sender: webhook.New(webhook.Config{AllowLoopback: true}),
		Tick: 2 * time.Millisecond, RetryBase: 100 * time.Millisecond}
	newNode := func(st chat.Store) *env {
		core, err := chat.New(chat.Config{SharedStore: true, Now: clock.Now, LogError: quiet}, st)
		if err != nil {
			t.Fatal(err)
		}
		return runEnv(t, core, st)
	}
	a := newNode(stA)
	app, err := a.core.CreateApp(ctx, "shop", "Shop")
	if err != nil {
		t.Fatal(err)
	}
	a.app = app
	a.user("alice")
	rcv := newReceiver(t)
	// Fail one group's delivery while node A holds the lease: it is still
	// pending when A is cut off, and node B must send it.
	var heal atomic.Bool
	var heldID atomic.Uint64 // the held group's session id
	sessionOf := func(h *hook) uint64 {
		var d struct {
			SessionID uint64 `json:"session_id"`
		}
		_ = json.Unmarshal(h.Envelope.Data, &d)
		return d.SessionID
	}
	rcv.answer = func(h *hook, _ int) int {
		if sessionOf(h) == heldID.Load() && !heal.Load() {
			return 503
		}
		return 200
	}
	url := rcv.srv.URL + "/hook"
	if _, err := a.core.CreateWebhookEndpoint(ctx, app.ID, chat.WebhookEndpointInput{URL: &url, Events: []string{chat.WebhookSessionCreated}}); err != nil {
		t.Fatal(err)
	}
	b := newNode(shared) // loads the app, the user and the endpoint
	b.app = app
	// A's events get ids an hour ahead of B's: B's are committed after A's
	// with lower ids.
	a.core.SetWebhookLastIDForTest(time.Now().Add(time.Hour).UnixNano())

	runWH(t, a, whCfg)
	names := map[uint64]string{} // session id → the test's name for its group
	group := func(e *env, name string) {
		t.Helper()
		g, err := e.core.CreateGroup(ctx, app.ID, chat.GroupInput{Owner: "alice", Name: name})
		if err != nil {
			t.Fatal(err)
		}
		if name == "held" {
			heldID.Store(uint64(g.ID))
		}
		names[uint64(g.ID)] = name
	}
	// delivered counts the requests per group (2xx or not).
	delivered := func(hs []hook) map[string]int {
		n := map[string]int{}
		for i := range hs {
			n[names[sessionOf(&hs[i])]]++
		}
		return n
	}
	waitNames := func(what string, names ...string) {
		t.Helper()
		rcv.waitFor(t, what, func() { clock.Advance(50 * time.Millisecond) }, func(hs []hook) bool {
			got := delivered(hs)
			for _, n := range names {
				if got[n] == 0 {
					return false
				}
			}
			return true
		})
	}
	group(a, "a1")
	waitNames("node A's first event, A holding the lease", "a1")
	runWH(t, b, whCfg)

	// standby waits until e's RunWebhooks waits for the lease: it says so
	// to a redelivery.
	standby := func(e *env) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := e.core.RedeliverWebhooks(ctx, app.ID, []string{"1.x"}, 0, 0, "", false)
			if codeOf(err) == chat.CodeUnavailable && strings.Contains(err.Error(), "another node") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("redelivery on the node without the lease = %v; want unavailable naming another node", err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	standby(b)

	group(b, "b1") // committed after a1, with a lower id
	waitNames("node B's event, with an id below one fanned out", "b1")
	group(a, "a2")
	group(b, "b2")
	group(a, "held")
	waitNames("events of both nodes", "a2", "b2", "held")
	// Every 2xx recorded by A before it is cut off: then nothing may be
	// sent twice.
	settle := func(e *env, want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			ds, err := e.core.WebhookDeliveries(ctx, app.ID, 100, "", chat.DeliveryDelivered)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d deliveries recorded delivered, want %d", len(ds), want)
			}
			clock.Advance(50 * time.Millisecond) // the held one's retries
			time.Sleep(5 * time.Millisecond)
		}
	}
	settle(a, 4)
	stA.cut.Store(true) // A neither renews nor releases: B waits out the ttl
	// A's next renewal fails and stops its dispatcher at once. (Events
	// committed before that may still go out from A and, if cut short
	// there, again from B: the crash window; the test waits it out.)
	standby(a)
	group(a, "a3")
	group(b, "b3")
	heal.Store(true)
	waitNames("the rest, delivered by B after it took over", "a3", "b3")
	settle(b, 7)                      // held too: pending when A was cut off, retried by B
	time.Sleep(50 * time.Millisecond) // let a duplicate show up
	hs := rcv.all()
	got := delivered(hs)
	for _, n := range []string{"a1", "b1", "a2", "b2", "a3", "b3"} {
		if got[n] != 1 {
			t.Errorf("group %s delivered %d times, want once; hooks:\n%s", n, got[n], hookList(hs))
		}
	}
	ids := map[string]int{}
	for _, h := range hs {
		ids[h.ID]++
	}
	if len(ids) != 7 {
		t.Errorf("%d delivery ids, want 7 (one per event); hooks:\n%s", len(ids), hookList(hs))
	}
	if n, err := b.core.RedeliverWebhooks(ctx, app.ID, []string{hs[0].ID}, 0, 0, "", false); err != nil || n != 1 {
		t.Errorf("redelivery on the lease holder = %d, %v; want 1 queued", n, err)
	}
	id := hs[0].ID
	rcv.waitFor(t, "the redelivery", nil, func(hs []hook) bool {
		n := 0
		for _, h := range hs {
			if h.ID == id {
				n++
			}
		}
		return n == 2
	})
}
