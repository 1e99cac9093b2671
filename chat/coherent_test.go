package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/chat"
	"chatd/chat/memstore"
)

// settle waits until every node has forwarded its queued stream events,
// the hub has handled every message, and the invalidated caches are
// dropped.
func (ce *clusterEnv) settle() {
	for _, e := range ce.nodes {
		e.core.ClusterStreamIdleForTest()
	}
	ce.hub.flush()
	for _, e := range ce.nodes {
		e.core.ClusterSettleForTest()
	}
}

func (ce *clusterEnv) sent(kind byte) int {
	ce.hub.mu.Lock()
	defer ce.hub.mu.Unlock()
	return ce.hub.sent[kind]
}

// next returns the subscription's next event, failing after 5 s.
func next(t *testing.T, s *chat.Subscription) chat.Event {
	t.Helper()
	select {
	case e := <-s.C:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event on the subscription")
	}
	return chat.Event{}
}

// A subscriber on one node sees the events of every node, with the node
// they happened on, filtered, in order; nothing crosses for nobody.
func TestClusterSubscriberStream(t *testing.T) {
	ce := newCluster(t)
	a, b := ce.node("a"), ce.node("b")
	alice, bob := ce.login(a, "alice"), ce.login(b, "bob")
	carol := ce.login(a, "carol")
	ce.login(a, "dave")

	// Nobody subscribed anywhere: no announcement, no event crosses.
	p := ce.sendOK(alice, `"action":"send","to":"bob","type":"text","content":{"text":"unseen"}`)
	bob.wait(t, event("message"))
	ce.settle()
	if n, m := ce.sent('s'), ce.sent('e'); n != 0 || m != 0 {
		t.Fatalf("with no subscriber the nodes sent %d announcements and %d event batches", n, m)
	}
	if a.core.Listened() {
		t.Fatal("node a has listeners with nobody subscribed")
	}

	sub := b.core.Subscribe([]chat.Filter{mustFilter(t, "message;uid=alice")}, 64)
	ce.settle()
	if !a.core.Listened() || a.core.Subscribers() != 0 || b.core.Subscribers() != 1 {
		t.Fatalf("after a subscription on b: a listened %v, subscribers a %d b %d", a.core.Listened(), a.core.Subscribers(), b.core.Subscribers())
	}

	// Not matching (neither sender nor recipient is alice): not forwarded.
	ce.sendOK(carol, `"action":"send","to":"dave","type":"text","content":{"text":"private"}`)
	for i := 1; i <= 5; i++ {
		ce.sendOK(alice, fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"m%d"}`, p.Session, i))
	}
	for i := 1; i <= 5; i++ {
		ev := next(t, sub)
		if ev.Node != "a" || ev.Topic != chat.TopicMessage || ev.UID != "alice" || ev.Message == nil ||
			string(ev.Message.Content) != fmt.Sprintf(`{"text":"m%d"}`, i) || ev.Message.Seq != uint64(i+1) {
			t.Fatalf("event %d on b: %+v (message %+v)", i, ev, ev.Message)
		}
	}
	// A local event carries its node too.
	ce.sendOK(bob, fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"reply"}`, p.Session))
	if ev := next(t, sub); ev.Node != "b" || ev.UID != "bob" {
		t.Fatalf("b's own event: %+v", ev)
	}
	ce.settle()
	select {
	case ev := <-sub.C:
		t.Fatalf("an extra event: %+v", ev)
	default:
	}

	// A node that joins later learns the subscriptions (hello).
	c := ce.node("c")
	if !c.core.Listened() {
		t.Fatal("the late node c does not know b's subscriber")
	}
	ce.sendOK(ce.login(c, "alice"), fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"from c"}`, p.Session))
	if ev := next(t, sub); ev.Node != "c" || string(ev.Message.Content) != `{"text":"from c"}` {
		t.Fatalf("c's event on b: %+v", ev)
	}

	// The last subscriber leaves: the others stop forwarding.
	sub.Close()
	ce.settle()
	if a.core.Listened() || c.core.Listened() {
		t.Fatal("nodes still listen after the only subscriber left")
	}
	before := ce.sent('e')
	ce.sendOK(alice, fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"after"}`, p.Session))
	ce.settle()
	if n := ce.sent('e') - before; n != 0 {
		t.Fatalf("%d event batches crossed with nobody subscribed", n)
	}
}

// A node's subscribers are repeated in its heartbeats, and forgotten
// when they are not (a lost "no more subscribers").
func TestClusterStreamAnnouncementExpires(t *testing.T) {
	ce := newCluster(t)
	a, b := ce.node("a"), ce.node("b")
	sub := b.core.Subscribe([]chat.Filter{mustFilter(t, "all")}, 64)
	defer sub.Close()
	ce.settle()
	s := ce.sent('s')
	b.core.ClusterTickForTest()
	ce.settle()
	if ce.sent('s') != s+1 {
		t.Fatal("b's heartbeat did not repeat its subscribers")
	}
	// b goes silent (but for its heartbeat, so that a keeps it alive):
	// its announcement is not repeated for 3 s.
	ce.hub.mu.Lock()
	ce.hub.nodes["b"].cut = true
	ce.hub.mu.Unlock()
	ce.clock.add(4 * time.Second)
	a.core.ClusterTickForTest()
	if a.core.Listened() {
		t.Fatal("a still forwards to b's subscribers not repeated for 4 s")
	}
}

// ---- caches

// aliceSendsOnB starts nodes a and b, logs alice in on b, and has her
// send bob a message (send): b caches what a send reads.
func aliceSendsOnB(t *testing.T) (ce *clusterEnv, a, b *env, alice *device, send string) {
	t.Helper()
	ce = newCluster(t)
	a, b = ce.node("a"), ce.node("b")
	alice = ce.login(b, "alice")
	b.user("bob")
	send = `"action":"send","to":"bob","type":"text","content":{"text":"hi"}`
	ce.sendOK(alice, send)
	return ce, a, b, alice, send
}

// The device policy set on one node applies to a login on another.
func TestClusterCoherentDevicePolicy(t *testing.T) {
	ce := newCluster(t)
	a, b := ce.node("a"), ce.node("b")
	old := ce.login(b, "dave") // b caches the app's settings: multi
	if _, err := a.core.SetSettings(context.Background(), "shop", chat.SettingsInput{Devices: chat.DevicesSingle}); err != nil {
		t.Fatal(err)
	}
	ce.settle()
	ce.login(b, "dave")
	if r := data[chat.KickedEvent](t, old.wait(t, event("kicked"))); r.Policy != chat.DevicesSingle {
		t.Fatalf("kicked = %+v", r)
	}
	// And the messaging policy: friends only, set on a, refused on b.
	if _, err := a.core.SetSettings(context.Background(), "shop", chat.SettingsInput{Messaging: chat.PolicyFriends}); err != nil {
		t.Fatal(err)
	}
	ce.settle()
	erin := ce.login(b, "erin")
	b.user("fred")
	erin.fails(`"action":"send","to":"fred","type":"text","content":{"text":"hi"}`, chat.CodeForbidden)
	// Both changes survive each other: b's read-modify-write read a's.
	s, err := b.core.Settings(context.Background(), "shop")
	if err != nil || s.Devices != chat.DevicesSingle || s.Messaging != chat.PolicyFriends {
		t.Fatalf("settings on b = %+v, %v", s, err)
	}
}

// A mute or a ban on one node is enforced on another, and so is its end.
func TestClusterCoherentModeration(t *testing.T) {
	ce, a, b, alice, send := aliceSendsOnB(t)
	ctx := context.Background()
	if _, _, err := a.core.Restrict(ctx, "shop", chat.RestrictMute, chat.ModerationInput{UID: "alice"}); err != nil {
		t.Fatal(err)
	}
	ce.settle()
	alice.fails(send, chat.CodeForbidden)
	if err := a.core.Unrestrict(ctx, "shop", "alice", chat.RestrictMute); err != nil {
		t.Fatal(err)
	}
	ce.settle()
	ce.sendOK(alice, send)

	tok := b.user("carol")
	if _, _, err := a.core.Restrict(ctx, "shop", chat.RestrictBan, chat.ModerationInput{UID: "carol"}); err != nil {
		t.Fatal(err)
	}
	ce.settle()
	if f := b.connect().do(`"action":"login","app":"shop","token":"` + tok + `"`); f.OK || f.Error.Code != chat.CodeForbidden {
		t.Fatalf("a banned user's login on b: %+v", f)
	}
	if l := b.core.Moderation(ctx, "shop"); len(l.Banned) != 1 || l.Banned[0].UID != "carol" {
		t.Fatalf("b lists bans %+v", l.Banned)
	}
}

// A block made on one node refuses the blocked user's send on another;
// an unblock lets it through again.
func TestClusterCoherentContacts(t *testing.T) {
	ce := newCluster(t)
	a, b := ce.node("a"), ce.node("b")
	alice := ce.login(b, "alice")
	bob := ce.login(a, "bob")
	send := `"action":"send","to":"bob","type":"text","content":{"text":"hi"}`
	ce.sendOK(alice, send) // b caches the settings and bob's side
	bob.ok(`"action":"block","uid":"alice"`)
	ce.settle()
	alice.fails(send, chat.CodeForbidden)
	bob.ok(`"action":"unblock","uid":"alice"`)
	ce.settle()
	ce.sendOK(alice, send)
}

// A webhook endpoint added on one node gets the events another node
// commits; a before-send hook set on one node is called by another.
func TestClusterCoherentWebhooks(t *testing.T) {
	ce, a, b, alice, send := aliceSendsOnB(t)
	ctx := context.Background()
	outbox := func() int {
		recs, err := ce.st.ScanRecords(ctx, "wh.ev", nil, nil, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range recs {
			var ev struct{ Type string }
			if json.Unmarshal(r.Value, &ev) == nil && ev.Type == chat.WebhookMessageCreated {
				n++
			}
		}
		return n
	}
	if n := outbox(); n != 0 {
		t.Fatalf("%d message events in the outbox before any endpoint", n)
	}
	url := "https://hooks.example.com/chat"
	ep, err := a.core.CreateWebhookEndpoint(ctx, "shop", chat.WebhookEndpointInput{URL: &url, Events: []string{chat.WebhookMessageCreated}})
	if err != nil {
		t.Fatal(err)
	}
	ce.settle()
	ce.sendOK(alice, send)
	if n := outbox(); n != 1 {
		t.Fatalf("b wrote %d message.created events after a added the endpoint, want 1", n)
	}
	if eps, _ := b.core.WebhookEndpoints(ctx, "shop"); len(eps) != 1 || eps[0].ID != ep.ID {
		t.Fatalf("b lists endpoints %+v", eps)
	}
	if err := a.core.DeleteWebhookEndpoint(ctx, "shop", ep.ID); err != nil {
		t.Fatal(err)
	}
	ce.settle()
	ce.sendOK(alice, send)
	if n := outbox(); n != 1 {
		t.Fatalf("b wrote message.created events after a deleted the endpoint (%d)", n)
	}

	hook := "http://127.0.0.1:1/hook"
	if _, err := a.core.SetBeforeSendHook(ctx, "shop", chat.BeforeSendHookInput{URL: &hook}); err != nil {
		t.Fatal(err)
	}
	ce.settle()
	ce.sendOK(alice, send) // no dispatcher runs here: the hook is skipped with on_timeout allow
	if n := b.core.WebhookStats().HookCalls; n != 1 {
		t.Fatalf("b called the hook a set %d times, want 1", n)
	}
	off := false
	if _, err := a.core.SetBeforeSendHook(ctx, "shop", chat.BeforeSendHookInput{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	ce.settle()
	ce.sendOK(alice, send)
	if n := b.core.WebhookStats().HookCalls; n != 1 {
		t.Fatalf("b called the hook a disabled (%d calls)", n)
	}
}

// A user hiding presence on one node is hidden from queries on another.
func TestClusterCoherentPresenceHiding(t *testing.T) {
	ce := newCluster(t)
	a, b := ce.node("a"), ce.node("b")
	carol := ce.login(a, "carol")
	bob := ce.login(b, "bob")
	online := func() bool {
		f := bob.ok(`"action":"presence","uids":["carol"]`)
		var v struct {
			Presence []chat.PresenceView `json:"presence"`
		}
		if err := json.Unmarshal(f.Data, &v); err != nil || len(v.Presence) != 1 {
			t.Fatalf("presence: %s %v", f.Data, err)
		}
		return v.Presence[0].Online
	}
	if !online() { // b loads the app's hidden set
		t.Fatal("carol is not online on b")
	}
	carol.ok(`"action":"hide_presence"`)
	ce.settle()
	if online() {
		t.Fatal("carol hid presence on a, b still shows her online")
	}
	carol.ok(`"action":"show_presence"`)
	ce.settle()
	if !online() {
		t.Fatal("carol shows presence again on a, b still hides her")
	}
}

// The invalidations are one message per commit that changes cached
// records, and none for a plain message.
func TestClusterCacheInvalidationCost(t *testing.T) {
	ce := newCluster(t)
	a, _ := ce.node("a"), ce.node("b")
	alice := ce.login(a, "alice")
	a.user("bob")
	ce.settle()
	before := ce.sent('c')
	for i := 0; i < 10; i++ {
		ce.sendOK(alice, `"action":"send","to":"bob","type":"text","content":{"text":"hi"}`)
	}
	ce.settle()
	if n := ce.sent('c') - before; n != 0 {
		t.Fatalf("10 messages published %d cache invalidations", n)
	}
	alice.ok(`"action":"block","uid":"bob"`) // the block, then has_blocks in the settings
	ce.settle()
	if n := ce.sent('c') - before; n != 2 {
		t.Fatalf("a block published %d cache invalidations, want 2 (the block's commit, the settings')", n)
	}
}

// banWhileStarting is node b's store handle: its first read of the bans
// (in New, before b subscribes to the broker) lets node a ban a user.
type banWhileStarting struct {
	*memstore.Shared
	once sync.Once
	ban  func()
}

func (s *banWhileStarting) Restrictions(ctx context.Context) ([]chat.Restriction, error) {
	rs, err := s.Shared.Restrictions(ctx)
	s.once.Do(s.ban) // after the read: b's table has not got it
	return rs, err
}

// A ban made on another node while this one starts (after it loaded the
// bans, before it subscribed to the broker: the invalidation never reached
// it) still applies here: a node reads its eager caches again once it
// has joined.
func TestClusterBanWhileNodeStarts(t *testing.T) {
	ce := newCluster(t)
	a := ce.node("a")
	ctx := context.Background()
	tok := a.user("carol")
	st := &banWhileStarting{Shared: ce.st, ban: func() {
		if _, _, err := a.core.Restrict(ctx, "shop", chat.RestrictBan, chat.ModerationInput{UID: "carol"}); err != nil {
			t.Error(err)
		}
	}}
	core, err := chat.New(chat.Config{SharedStore: true, Broker: ce.hub.join("b"), Now: ce.clock.now, PresenceDebounce: -1}, st)
	if err != nil {
		t.Fatal(err)
	}
	b := runEnv(t, core, st)
	b.app = ce.app
	ce.hub.flush()
	if f := b.connect().do(`"action":"login","app":"shop","token":"` + tok + `"`); f.OK || f.Error.Code != chat.CodeForbidden {
		t.Fatalf("carol, banned on a while b started, logs in on b: %+v", f)
	}
}

// slowBans is node b's store handle: its reads of the bans are slow and
// counted.
type slowBans struct {
	*memstore.Shared
	reads atomic.Int64
}

func (s *slowBans) Restrictions(ctx context.Context) ([]chat.Restriction, error) {
	s.reads.Add(1)
	time.Sleep(5 * time.Millisecond)
	return s.Shared.Restrictions(ctx)
}

// A burst of bans made on another node is read by this one in a few
// reloads of the table, not one full reread per ban, and every ban of the
// burst applies.
func TestClusterBanBurstCoalesced(t *testing.T) {
	ce := newCluster(t)
	a := ce.node("a")
	st := &slowBans{Shared: ce.st}
	core, err := chat.New(chat.Config{SharedStore: true, Broker: ce.hub.join("b"), Now: ce.clock.now, PresenceDebounce: -1}, st)
	if err != nil {
		t.Fatal(err)
	}
	b := runEnv(t, core, st)
	b.app = ce.app
	ce.nodes["b"] = b // settle waits for its reloads
	ce.hub.flush()
	ctx := context.Background()
	const n = 100
	for i := range n {
		if _, err := a.core.PushUser(ctx, "shop", chat.UserInput{UID: fmt.Sprintf("u%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	ce.hub.setPaused(true) // the bans reach b in one burst
	for i := range n {
		if _, _, err := a.core.Restrict(ctx, "shop", chat.RestrictBan, chat.ModerationInput{UID: fmt.Sprintf("u%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	before := st.reads.Load()
	ce.hub.setPaused(false)
	ce.settle()
	if got := st.reads.Load() - before; got < 1 || got > n/5 {
		t.Fatalf("b read the bans %d times for a burst of %d; want a few", got, n)
	}
	if l := b.core.Moderation(ctx, "shop"); len(l.Banned) != n {
		t.Fatalf("b lists %d bans, want %d", len(l.Banned), n)
	}
}
