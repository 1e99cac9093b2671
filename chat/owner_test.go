package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/chat"
)

// The domains' owner (owner.go): one node of a cluster runs customer
// service and consultations; the others forward their clients' actions.

// ownerCluster starts nodes on one shared store, each through its own
// cutStore (so a test can cut one off the store's leases), with a short
// domains lease.
func ownerCluster(t *testing.T, ttl time.Duration, names ...string) (*clusterEnv, map[string]*cutStore) {
	t.Helper()
	t.Cleanup(chat.SetDomainsLeaseForTest(ttl, 20*time.Millisecond))
	ce := newCluster(t)
	cuts := map[string]*cutStore{}
	quiet := func(string, error) {}
	for _, name := range names {
		st := &cutStore{Shared: ce.st}
		cuts[name] = st
		core, err := chat.New(chat.Config{SharedStore: true, Broker: ce.hub.join(name), Now: ce.clock.now,
			PresenceDebounce: -1, LogError: quiet}, st)
		if err != nil {
			t.Fatal(err)
		}
		e := runEnv(t, core, st)
		if len(ce.nodes) == 0 {
			if ce.app, err = core.CreateApp(context.Background(), "shop", "Shop"); err != nil {
				t.Fatal(err)
			}
		}
		e.app = ce.app
		ce.nodes[name] = e
		ce.hub.flush()
	}
	return ce, cuts
}

// owner waits until one of the live nodes serves the domains and every
// other live node forwards to it; it returns the owner's name.
func (ce *clusterEnv) owner(live ...string) string {
	ce.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		own := ""
		for _, name := range live {
			if serving, _ := ce.nodes[name].core.DomainsOwnerForTest(); serving {
				own = name
			}
		}
		agree := own != ""
		for _, name := range live {
			if _, to := ce.nodes[name].core.DomainsOwnerForTest(); name != own && to != own {
				agree = false
			}
		}
		if agree {
			return own
		}
		time.Sleep(5 * time.Millisecond)
	}
	ce.t.Fatalf("no node of %v took the domains lease, or the others do not know it", live)
	return ""
}

// result is a reply taken by a goroutine.
type result struct {
	who string
	f   frame
}

// claimAll sends service_claim of sid from every device at once and
// returns the replies.
func claimAll(t *testing.T, sid uint64, ds map[string]*device, tag string) []result {
	var wg sync.WaitGroup
	out := make(chan result, len(ds))
	for name, d := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("claim-%s-%d", tag, sid)
			d.h.HandleMessage([]byte(fmt.Sprintf(`{"id":%q,"action":"service_claim","session_id":%d}`, id, sid)))
			out <- result{name, d.wait(t, reply(id))}
		}()
	}
	wg.Wait()
	close(out)
	var rs []result
	for r := range out {
		rs = append(rs, r)
	}
	return rs
}

// A manual shop with agents on both nodes: conversations opened through
// either node are each claimed once under concurrent claims from both,
// the loser told it is already assigned; the customer's message from the
// node that is not the owner is stored once and reaches the agent on the
// other node, as a service message.
func TestOwnerClaimsAcrossNodes(t *testing.T) {
	ce, _ := ownerCluster(t, 400*time.Millisecond, "a", "b")
	own := ce.owner("a", "b")
	o := ce.nodes[own]
	o.host(`{"action":"shop_put","shop":"desk","settings":{"strategy":"manual"}}`)
	agents := map[string]*device{}
	for _, n := range []string{"a", "b"} {
		uid := "agent-" + n
		agents[uid] = ce.login(ce.nodes[n], uid)
		o.host(fmt.Sprintf(`{"action":"agent_put","shop":"desk","uid":%q,"capacity":10}`, uid))
		// Set through the agent's own node: forwarded when not the owner.
		if f := agents[uid].do(`"action":"service_status","shop":"desk","status":"online"`); !f.OK {
			t.Fatalf("%s service_status: %+v", uid, f.Error)
		}
	}
	type conv struct {
		sid  uint64
		cust *device
	}
	var convs []conv
	for i := range 4 {
		node := []string{"a", "b"}[i%2]
		cust := ce.login(ce.nodes[node], fmt.Sprintf("cust%d", i))
		f := cust.do(`"action":"service_open","shop":"desk"`)
		if !f.OK {
			t.Fatalf("service_open on %s: %+v", node, f.Error)
		}
		v := data[svcView](t, f)
		if v.Status != chat.ServiceQueued {
			t.Fatalf("opened %+v, want queued (manual shop)", v)
		}
		convs = append(convs, conv{v.Session, cust})
	}
	for _, cv := range convs {
		rs := claimAll(t, cv.sid, agents, "1")
		var won []string
		for _, r := range rs {
			switch {
			case r.f.OK:
				won = append(won, r.who)
			case r.f.Error == nil || r.f.Error.Code != chat.CodeConflict || !strings.Contains(r.f.Error.Message, "already assigned"):
				t.Fatalf("session %d: %s's claim got %+v, want ok or conflict already assigned", cv.sid, r.who, r.f.Error)
			}
		}
		if len(won) != 1 {
			t.Fatalf("session %d claimed by %v, want exactly one", cv.sid, won)
		}
	}
	ce.hub.flush()
	// The store says so too: each open, with one agent, and the agents'
	// service events say each was claimed once.
	for _, v := range o.conversations(`,"shop":"desk"`) {
		if v.Status != chat.ServiceOpen || v.Agent == "" {
			t.Fatalf("stored %+v, want open with an agent", v)
		}
	}
	claimed := countSvcEvents(t, "claimed", agents["agent-a"], agents["agent-b"])
	for _, cv := range convs {
		// Both agents of the shop hear each claim: two events, one claim.
		if claimed[cv.sid] != 2 {
			t.Errorf("session %d: %d claimed events over both agents, want 2 (one claim, told to both)", cv.sid, claimed[cv.sid])
		}
	}

	// A message from a customer on the node that is not the owner, into a
	// conversation whose agent is on the owner (or the other way round).
	var pick conv
	var agentUID string
	for _, cv := range convs {
		for _, v := range o.conversations(`,"shop":"desk"`) {
			if v.Session == cv.sid && v.Agent == "agent-"+own {
				pick, agentUID = cv, v.Agent
			}
		}
	}
	if pick.cust == nil {
		t.Skip("no conversation went to the owner's agent") // the claims' race decided so
	}
	a := ce.sendOK(pick.cust, fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","cid":"c1","content":{"text":"help"}`, pick.sid))
	f := agents[agentUID].wait(t, event("message"))
	var m struct {
		Seq  uint64 `json:"seq"`
		From string `json:"from"`
		Shop string `json:"shop"`
		Role string `json:"role"`
	}
	if err := json.Unmarshal(f.Data, &m); err != nil {
		t.Fatal(err)
	}
	if m.Seq != a.Seq || m.Shop != "desk" || m.Role != "customer" {
		t.Fatalf("agent got %+v, want seq %d from the customer of desk", m, a.Seq)
	}
	// Retried by cid: the same message.
	if again := ce.sendOK(pick.cust, fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","cid":"c1","content":{"text":"help"}`, pick.sid)); again.Seq != a.Seq || !again.Duplicate {
		t.Fatalf("retried send = %+v, want a duplicate of seq %d", again, a.Seq)
	}
	ce.hub.flush()
	if n := agents[agentUID].count("message"); n != 0 {
		t.Fatalf("the agent got %d more message events, want none (stored once)", n)
	}
	ms, err := ce.st.Messages(context.Background(), chat.SessionID(pick.sid), 1, ^uint64(0), 10, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 {
		t.Fatalf("session has %d messages, want 1", len(ms))
	}
}

// countSvcEvents consumes the service events the devices have received
// and counts those of typ per session.
func countSvcEvents(t *testing.T, typ string, ds ...*device) map[uint64]int {
	t.Helper()
	n := map[uint64]int{}
	for _, d := range ds {
		for d.count("service") > 0 {
			f := d.wait(t, event("service"))
			var ev svcEvent
			if err := json.Unmarshal(f.Data, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Type == typ {
				n[ev.Session]++
			}
		}
	}
	return n
}

// An automatic shop with agents on three nodes: customers arriving through
// every node are each assigned once. Then the owner is cut off (its lease
// renewals fail, its broker is silent): another node takes the lease,
// loads the state, and the queue goes on — a conversation waiting for a
// free agent is assigned when one resolves, claims are decided once.
func TestOwnerFailover(t *testing.T) {
	names := []string{"a", "b", "c"}
	ce, cuts := ownerCluster(t, 400*time.Millisecond, names...)
	own := ce.owner(names...)
	o := ce.nodes[own]
	o.host(`{"action":"shop_put","shop":"auto"}`)
	agents := map[string]*device{}
	for _, n := range names {
		uid := "agent-" + n
		agents[uid] = ce.login(ce.nodes[n], uid)
		o.host(fmt.Sprintf(`{"action":"agent_put","shop":"auto","uid":%q,"capacity":2,"status":"online"}`, uid))
	}
	var custs []*device
	open := func(i int, node string) svcView {
		t.Helper()
		cust := ce.login(ce.nodes[node], fmt.Sprintf("cust%d", i))
		custs = append(custs, cust)
		f := cust.do(`"action":"service_open","shop":"auto"`)
		if !f.OK {
			t.Fatalf("service_open on %s: %+v", node, f.Error)
		}
		return data[svcView](t, f)
	}
	// Six customers, two a node, opening at once: capacity 2 × 3 agents.
	var wg sync.WaitGroup
	views := make([]svcView, 6)
	devs := make([]*device, 6)
	for i := range 6 {
		devs[i] = ce.login(ce.nodes[names[i%3]], fmt.Sprintf("cust%d", i))
	}
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("open%d", i)
			devs[i].h.HandleMessage([]byte(`{"id":"` + id + `","action":"service_open","shop":"auto"}`))
			f := devs[i].wait(t, reply(id))
			if f.OK {
				_ = json.Unmarshal(f.Data, &views[i])
			}
		}()
	}
	wg.Wait()
	ce.hub.flush()
	perAgent := map[string]int{}
	for i, v := range views {
		if v.Status != chat.ServiceOpen || v.Agent == "" {
			t.Fatalf("customer %d's conversation %+v, want open with an agent", i, v)
		}
		perAgent[v.Agent]++
	}
	for uid, n := range perAgent {
		if n != 2 {
			t.Fatalf("agent %s was given %d conversations, want 2 (balanced, capacity 2): %v", uid, n, perAgent)
		}
	}
	assigned := countSvcEvents(t, "assigned", devs...)
	for i, v := range views {
		if assigned[v.Session] != 1 {
			t.Fatalf("customer %d was told %d times that conversation %d was assigned, want once", i, assigned[v.Session], v.Session)
		}
	}
	// A seventh waits: every agent is at capacity.
	firstLive := names[0]
	if firstLive == own {
		firstLive = names[1]
	}
	queued := open(7, firstLive)
	if queued.Status != chat.ServiceQueued {
		t.Fatalf("7th conversation %+v, want queued", queued)
	}

	// The owner dies: its renewals fail and nobody hears it any more.
	cuts[own].cut.Store(true)
	ce.hub.cut(own)
	var live []string
	for _, n := range names {
		if n != own {
			live = append(live, n)
		}
	}
	for range 4 { // three heartbeats unheard: presumed dead
		ce.clock.add(time.Second)
		for _, n := range live {
			ce.nodes[n].core.ClusterTickForTest()
		}
	}
	next := ce.owner(live...)
	if next == own {
		t.Fatalf("the cut owner %s still serves", own)
	}
	n := ce.nodes[next]
	// The new owner loaded the state: the queue, the open conversations.
	if got := n.conversations(`,"shop":"auto","status":"queued"`); len(got) != 1 || got[0].Session != queued.Session {
		t.Fatalf("new owner's queue = %+v, want conversation %d", got, queued.Session)
	}
	// An agent on a live node resolves one of theirs: the queued one is
	// assigned to them.
	var liveAgent string
	var mine svcView
	for _, v := range views {
		if v.Agent != "agent-"+own {
			liveAgent, mine = v.Agent, v
			break
		}
	}
	agents[liveAgent].ok(fmt.Sprintf(`"action":"service_resolve","session_id":%d`, mine.Session))
	ev := custs[len(custs)-1].svcWait("assigned", nil)
	if ev.Session != queued.Session || ev.Agent != liveAgent {
		t.Fatalf("queued customer got %+v, want conversation %d assigned to %s", ev, queued.Session, liveAgent)
	}
}

// A consultation in a cluster: the consultant on the node that is not the
// owner accepts it (forwarded), the clock runs on the owner only, and the
// time-up reaches both members once; the customer's send is refused by
// the owner's rules once it ended. Over the HTTP user API (Core.Do) a
// consult action is forwarded too.
func TestOwnerConsultation(t *testing.T) {
	ce, _ := ownerCluster(t, 400*time.Millisecond, "a", "b")
	own := ce.owner("a", "b")
	other := map[string]string{"a": "b", "b": "a"}[own]
	o, n := ce.nodes[own], ce.nodes[other]
	consultant := ce.login(n, "doc")
	customer := ce.login(o, "pat")
	ctx := context.Background()
	v, err := o.core.CreateConsultation(ctx, "shop", chat.ConsultInput{Consultant: "doc", Customer: "pat", Seconds: 60})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{consultant, customer} {
		d.wait(t, consultEvent("state", "created"))
	}
	got := n.core.Do(ctx, chat.Identity{App: "shop", UID: "pat"}, []byte(fmt.Sprintf(`{"id":"h1","action":"consult_get","session_id":%d}`, v.ID)))
	if !strings.Contains(string(got), `"ok":true`) || !strings.Contains(string(got), `"state":"pending"`) {
		t.Fatalf("consult_get over HTTP on %s = %s", other, got)
	}
	consultant.ok(fmt.Sprintf(`"action":"consult_accept","session_id":%d`, v.ID))
	for _, d := range []*device{consultant, customer} {
		d.wait(t, consultEvent("state", "accept"))
	}
	ce.sendOK(consultant, fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"hello"}`, v.ID))
	customer.wait(t, event("message"))

	ce.clock.add(61 * time.Second)
	n.core.ConsultTick(ctx) // not the owner: no clock here
	o.core.ConsultTick(ctx)
	for _, d := range []*device{consultant, customer} {
		d.wait(t, consultEvent("state", "time_up"))
	}
	f := consultant.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"late"}`, v.ID))
	if f.OK || f.Error == nil || f.Error.Code != chat.CodeConflict && f.Error.Code != chat.CodeForbidden {
		t.Fatalf("send after the end = %+v, want refused", f.Error)
	}
	ce.hub.flush()
	for name, d := range map[string]*device{"consultant": consultant, "customer": customer} {
		if k := d.count("consult"); k != 0 {
			t.Fatalf("%s: %s; got %d more consult events (the clock ran twice?)", name, dump(d.msgs), k)
		}
	}
}

// While the owner is unheard of, a request that must run there is
// answered unavailable at once, and one already forwarded to it is
// answered unavailable when the owner is presumed dead: never left
// waiting.
func TestOwnerUnavailable(t *testing.T) {
	ce, _ := ownerCluster(t, time.Hour, "a", "b") // the owner keeps its lease
	own := ce.owner("a", "b")
	other := map[string]string{"a": "b", "b": "a"}[own]
	ce.nodes[own].host(`{"action":"shop_put","shop":"desk"}`)
	cust := ce.login(ce.nodes[other], "cust")
	cust.ok(`"action":"service_open","shop":"desk"`)

	ce.hub.cut(own) // the owner is silent: what is forwarded to it is lost
	cust.h.HandleMessage([]byte(`{"id":"lost","action":"service_conversation","session_id":1}`))
	for range 4 {
		ce.clock.add(time.Second)
		ce.nodes[other].core.ClusterTickForTest()
	}
	f := cust.wait(t, reply("lost"))
	frameErr(t, f, chat.CodeUnavailable, "owner is changing")
	frameErr(t, cust.do(`"action":"service_open","shop":"desk"`), chat.CodeUnavailable, "owner is changing")
	// Other actions go on.
	if f := cust.do(`"action":"ping"`); !f.OK {
		t.Fatalf("ping: %+v", f.Error)
	}
}

// The owner's writes name the domains lease: a node that does not hold it
// cannot commit them (a node that lost the lease without noticing, or
// one that never had it), and the writes committed beside them in the
// same group commit are not failed with them.
func TestOwnerFencedWrites(t *testing.T) {
	ce, _ := ownerCluster(t, time.Hour, "a", "b")
	own := ce.owner("a", "b")
	other := map[string]string{"a": "b", "b": "a"}[own]
	ctx := context.Background()
	rec := func(key string) *chat.Batch {
		return &chat.Batch{Records: []chat.Record{{Kind: "svc.test", Key: []byte(key), Value: []byte("v")}}}
	}
	if err := ce.nodes[own].core.FencedWriteForTest(ctx, rec("by-owner")); err != nil {
		t.Fatalf("the owner's fenced write: %v", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("k%d", i)
			if i%2 == 0 {
				errs[i] = ce.nodes[other].core.FencedWriteForTest(ctx, rec(key))
			} else {
				errs[i] = ce.nodes[other].core.WriteForTest(ctx, rec(key))
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		_, rerr := ce.st.Record(ctx, "svc.test", []byte(fmt.Sprintf("k%d", i)))
		if i%2 == 1 {
			if err != nil || rerr != nil {
				t.Fatalf("unfenced write %d: %v (read back: %v)", i, err, rerr)
			}
			continue
		}
		var e *chat.Error
		if !asErr(err, &e) || e.Code != chat.CodeUnavailable || rerr == nil {
			t.Fatalf("fenced write %d on a node without the lease: err %v (read back: %v), want unavailable and nothing stored", i, err, rerr)
		}
	}
}

// The owner follows agents' devices on every node: an agent connected
// only to another node counts as connected, and when that device leaves,
// the agent goes offline once the grace period ends and, by the shop's
// agent_gone policy, their conversation goes back to the queue.
func TestOwnerSeesAgentsOnEveryNode(t *testing.T) {
	ce, _ := ownerCluster(t, time.Hour, "a", "b")
	own := ce.owner("a", "b")
	other := map[string]string{"a": "b", "b": "a"}[own]
	o := ce.nodes[own]
	o.host(`{"action":"shop_put","shop":"desk","settings":{"agent_gone":"requeue","grace_seconds":5}}`)
	agent := ce.login(ce.nodes[other], "ann")
	o.host(`{"action":"agent_put","shop":"desk","uid":"ann","capacity":3,"status":"online"}`)
	var views []struct {
		UID       string `json:"uid"`
		Effective string `json:"effective"`
		Connected bool   `json:"connected"`
	}
	if err := json.Unmarshal(o.host(`{"action":"agents","shop":"desk"}`), &views); err != nil {
		t.Fatal(err)
	}
	if len(views) != 1 || !views[0].Connected || views[0].Effective != chat.AgentOnline {
		t.Fatalf("agents on the owner = %+v, want ann connected (through node %s)", views, other)
	}
	cust := ce.login(o, "cust")
	v := data[svcView](t, cust.ok(`"action":"service_open","shop":"desk"`))
	if v.Agent != "ann" {
		t.Fatalf("opened %+v, want assigned to ann", v)
	}
	agent.h.HandleClose()
	ce.hub.flush()
	deadline := time.Now().Add(10 * time.Second)
	for connected := true; connected; {
		if time.Now().After(deadline) {
			t.Fatal("the owner still counts ann connected after her only device left")
		}
		if err := json.Unmarshal(o.host(`{"action":"agents","shop":"desk"}`), &views); err != nil {
			t.Fatal(err)
		}
		connected = views[0].Connected
		time.Sleep(time.Millisecond)
	}
	ce.clock.add(6 * time.Second) // past the grace: the owner's service tick requeues
	if ev := cust.svcWait("queued", nil); ev.Session != v.Session {
		t.Fatalf("customer told %+v, want conversation %d queued again", ev, v.Session)
	}
}

// TestOwnerPendingAnsweredWhileClientsClose: requests forwarded to an
// owner that went silent are answered unavailable when it is presumed
// dead, while the clients that sent them close at the same time: the
// answering and the closing take the owner's and the cluster's locks in
// the same order (they deadlocked: the node froze; found in review).
func TestOwnerPendingAnsweredWhileClientsClose(t *testing.T) {
	ce, _ := ownerCluster(t, time.Hour, "a", "b")
	own := ce.owner("a", "b")
	other := map[string]string{"a": "b", "b": "a"}[own]
	ce.nodes[own].host(`{"action":"shop_put","shop":"desk"}`)
	var custs []*device
	for i := range 40 {
		d := ce.login(ce.nodes[other], fmt.Sprintf("cust%d", i))
		custs = append(custs, d)
	}
	ce.hub.cut(own) // what is forwarded to it is lost: it stays pending
	for _, d := range custs {
		for k := range 10 {
			d.h.HandleMessage([]byte(fmt.Sprintf(`{"id":"p%d","action":"service_conversation","session_id":1}`, k)))
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 {
				ce.clock.add(time.Second)
				ce.nodes[other].core.ClusterTickForTest()
			}
		}()
		for _, d := range custs {
			d.h.HandleClose()
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("answering the dead owner's pending requests while their clients close did not finish: a lock-order deadlock")
	}
	// The node still serves: a new login and a ping.
	d := ce.login(ce.nodes[other], "after")
	if f := d.do(`"action":"ping"`); !f.OK {
		t.Fatalf("ping after: %+v", f.Error)
	}
}

// TestOwnerRenewalFailureKeepsClock: one failed renewal of the domains
// lease (a slow database) stops the owner and it takes the lease again,
// but the consultations' used time is not given back: the lease is let
// run out, not released, so the reload charges by the wall clock (a
// release made it use the restart rule: 500 s used of 600 read as 600
// left; found in review).
func TestOwnerRenewalFailureKeepsClock(t *testing.T) {
	ce, cuts := ownerCluster(t, time.Hour, "a")
	a := ce.nodes[ce.owner("a")]
	consultant := ce.login(a, "doc")
	ce.login(a, "pat")
	ctx := context.Background()
	v, err := a.core.CreateConsultation(ctx, "shop", chat.ConsultInput{Consultant: "doc", Customer: "pat", Seconds: 600})
	if err != nil {
		t.Fatal(err)
	}
	consultant.ok(fmt.Sprintf(`"action":"consult_accept","session_id":%d`, v.ID))
	ce.sendOK(consultant, fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"hello"}`, v.ID))
	ce.clock.add(500 * time.Second)
	remaining := func() string {
		got := a.core.Do(ctx, chat.Identity{App: "shop", UID: "pat"}, []byte(fmt.Sprintf(`{"id":"g","action":"consult_get","session_id":%d}`, v.ID)))
		return string(got)
	}
	if r := remaining(); !strings.Contains(r, `"remaining_seconds":100`) {
		t.Fatalf("before: %s", r)
	}
	cuts["a"].failTakes.Store(1)
	deadline := time.Now().Add(10 * time.Second)
	for cuts["a"].failTakes.Load() > 0 || !strings.Contains(remaining(), `"ok":true`) {
		if time.Now().After(deadline) {
			t.Fatal("the renewal never failed, or the owner never came back")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ce.owner("a")
	if r := remaining(); !strings.Contains(r, `"remaining_seconds":100`) {
		t.Fatalf("after one failed renewal and the reload: %s; want 100 s left, as before", r)
	}
}
