package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/chat"
	"chatd/chat/memstore"
)

// svcEvent is the service event's body as a client decodes it.
type svcEvent struct {
	Type     string `json:"type"`
	Shop     string `json:"shop"`
	Session  uint64 `json:"session_id"`
	Customer string `json:"customer"`
	Agent    string `json:"agent"`
	From     string `json:"from"`
	Position int    `json:"position"`
	Status   string `json:"status"`
	Note     string `json:"note"`
	By       string `json:"by"`
}

type svcView struct {
	Session   uint64 `json:"session_id"`
	Shop      string `json:"shop"`
	Customer  string `json:"customer"`
	Status    string `json:"status"`
	Agent     string `json:"agent"`
	LastAgent string `json:"last_agent"`
	Position  int    `json:"position"`
}

// clock is a replaceable clock for the core.
type clock struct{ ms atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ms.Store(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC).UnixMilli())
	return c
}
func (c *clock) now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *clock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// host runs a host action and fails the test on error.
func (e *env) host(req string) json.RawMessage {
	e.t.Helper()
	v, err := e.core.ServiceHost(context.Background(), e.app.ID, []byte(req))
	if err != nil {
		e.t.Fatalf("host %s: %v", req, err)
	}
	b, _ := json.Marshal(v)
	return b
}

// hostErr runs a host action that must fail with code.
func (e *env) hostErr(req string, code chat.Code) {
	e.t.Helper()
	_, err := e.core.ServiceHost(context.Background(), e.app.ID, []byte(req))
	var ce *chat.Error
	if err == nil || !asErr(err, &ce) || ce.Code != code {
		e.t.Fatalf("host %s: err %v, want %s", req, err, code)
	}
}

func asErr(err error, ce **chat.Error) bool {
	e, ok := err.(*chat.Error)
	*ce = e
	return ok
}

// agent pushes uid, makes it an agent of shop with capacity and status,
// and logs it in.
func (e *env) agent(shop, uid string, capacity int, status string) *device {
	e.t.Helper()
	d := e.login(e.user(uid))
	e.host(fmt.Sprintf(`{"action":"agent_put","shop":%q,"uid":%q,"capacity":%d,"status":%q}`, shop, uid, capacity, status))
	return d
}

func (d *device) ok(fields string) frame {
	d.e.t.Helper()
	f := d.do(fields)
	if !f.OK {
		d.e.t.Fatalf("%s: %+v", fields, f.Error)
	}
	return f
}

func (d *device) fails(fields string, code chat.Code) {
	d.e.t.Helper()
	f := d.do(fields)
	if f.OK || f.Error == nil || f.Error.Code != code {
		d.e.t.Fatalf("%s: got ok=%v err=%+v, want %s", fields, f.OK, f.Error, code)
	}
}

// svcWait waits for a service event of typ (and matching more, when set).
func (d *device) svcWait(typ string, more func(svcEvent) bool) svcEvent {
	d.e.t.Helper()
	f := d.wait(d.e.t, func(f frame) bool {
		if f.Event != "service" {
			return false
		}
		var ev svcEvent
		_ = json.Unmarshal(f.Data, &ev)
		return ev.Type == typ && (more == nil || more(ev))
	})
	var ev svcEvent
	_ = json.Unmarshal(f.Data, &ev)
	return ev
}

func (e *env) conversations(filter string) []svcView {
	e.t.Helper()
	var out []svcView
	if err := json.Unmarshal(e.host(`{"action":"conversations"`+filter+`}`), &out); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func TestServiceBalancedQueueAndPositions(t *testing.T) {
	e := newEnv(t, chat.Config{})
	e.host(`{"action":"shop_put","shop":"s1","name":"Shop One","settings":{"strategy":"balanced"}}`)
	agents := map[string]*device{}
	for _, a := range []string{"a1", "a2", "a3"} {
		agents[a] = e.agent("s1", a, 2, "online")
	}
	custs := make([]*device, 10)
	views := make([]svcView, 10)
	for i := range custs {
		custs[i] = e.login(e.user(fmt.Sprintf("c%d", i)))
		views[i] = data[svcView](t, custs[i].ok(`"action":"service_open","shop":"s1"`))
	}
	per := map[string]int{}
	for i, v := range views[:6] {
		if v.Status != "open" || v.Agent == "" {
			t.Fatalf("customer %d: %+v, want open", i, v)
		}
		per[v.Agent]++
	}
	for a, n := range per {
		if n != 2 {
			t.Fatalf("agent %s has %d, want 2 each: %v", a, n, per)
		}
	}
	for i, v := range views[6:] {
		if v.Status != "queued" || v.Position != i+1 {
			t.Fatalf("customer %d: %+v, want queued at %d", 6+i, v, i+1)
		}
		if ev := custs[6+i].svcWait("queued", nil); ev.Position != i+1 {
			t.Fatalf("customer %d told position %d, want %d", 6+i, ev.Position, i+1)
		}
	}
	// The agents see the queue with its order.
	var q []struct {
		Customer string `json:"customer"`
		Position int    `json:"position"`
	}
	q = data[[]struct {
		Customer string `json:"customer"`
		Position int    `json:"position"`
	}](t, agents["a1"].ok(`"action":"service_queue","shop":"s1"`))
	if len(q) != 4 || q[0].Customer != "c6" || q[3].Customer != "c9" {
		t.Fatalf("queue = %+v", q)
	}
	// a1 resolves one: the head (c6) goes to a1 at once, and every
	// remaining customer is told its new position.
	start := time.Now()
	var mine svcView
	for _, v := range views[:6] {
		if v.Agent == "a1" {
			mine = v
			break
		}
	}
	agents["a1"].ok(fmt.Sprintf(`"action":"service_resolve","session_id":%d`, mine.Session))
	if ev := custs[6].svcWait("assigned", nil); ev.Agent != "a1" {
		t.Fatalf("head assigned to %s, want a1", ev.Agent)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("head assigned after %v, want within a second", d)
	}
	for i := 7; i < 10; i++ {
		if ev := custs[i].svcWait("position", nil); ev.Position != i-6 {
			t.Fatalf("customer %d told %d, want %d", i, ev.Position, i-6)
		}
	}
	if got := e.conversations(`,"status":"queued"`); len(got) != 3 {
		t.Fatalf("queued now %d, want 3", len(got))
	}
}

func TestServiceLastAgentPreferredThenSkipped(t *testing.T) {
	e := newEnv(t, chat.Config{})
	e.host(`{"action":"shop_put","shop":"s1","settings":{"strategy":"balanced","prefer_last_agent":true}}`)
	x := e.agent("s1", "x", 5, "online")
	e.agent("s1", "y", 5, "online")
	cu := e.login(e.user("cust"))
	v := data[svcView](t, cu.ok(`"action":"service_open","shop":"s1"`))
	if v.Agent != "x" {
		t.Fatalf("first assignment to %q, want x (first in order, both idle)", v.Agent)
	}
	cu.svcWait("assigned", nil)
	x.ok(fmt.Sprintf(`"action":"service_resolve","session_id":%d`, v.Session))
	cu.svcWait("resolved", nil)
	// Balanced alone would pick y (idle longer); the customer returns to x.
	cu.ok(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"me again"}`, v.Session))
	if ev := cu.svcWait("assigned", nil); ev.Agent != "x" {
		t.Fatalf("reopened to %s, want the last agent x", ev.Agent)
	}
	// x goes away: the next reopening skips x.
	x.ok(`"action":"service_resolve","session_id":` + fmt.Sprint(v.Session))
	x.ok(`"action":"service_status","status":"away"`)
	cu.ok(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"third time"}`, v.Session))
	if ev := cu.svcWait("assigned", nil); ev.Agent != "y" {
		t.Fatalf("reopened to %s while x is away, want y", ev.Agent)
	}
}

func TestServiceClaimRaceOneWinner(t *testing.T) {
	e := newEnv(t, chat.Config{})
	e.host(`{"action":"shop_put","shop":"s1","settings":{"strategy":"manual"}}`)
	ags := make([]*device, 10)
	for i := range ags {
		ags[i] = e.agent("s1", fmt.Sprintf("a%d", i), 3, "online")
	}
	cu := e.login(e.user("cust"))
	v := data[svcView](t, cu.ok(`"action":"service_open","shop":"s1"`))
	if v.Status != "queued" || v.Position != 1 {
		t.Fatalf("manual shop: %+v, want queued at 1", v)
	}
	var wg sync.WaitGroup
	var wins, conflicts atomic.Int32
	for _, a := range ags {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.h.HandleMessage([]byte(fmt.Sprintf(`{"id":"claim","action":"service_claim","session_id":%d}`, v.Session)))
		}()
	}
	wg.Wait()
	for _, a := range ags {
		f := a.wait(t, reply("claim"))
		switch {
		case f.OK:
			wins.Add(1)
		case f.Error != nil && f.Error.Code == chat.CodeConflict:
			conflicts.Add(1)
		default:
			t.Fatalf("claim: %+v", f.Error)
		}
	}
	if wins.Load() != 1 || conflicts.Load() != 9 {
		t.Fatalf("wins %d conflicts %d, want 1 and 9", wins.Load(), conflicts.Load())
	}
	got := e.conversations("")
	if len(got) != 1 || got[0].Status != "open" {
		t.Fatalf("conversations %+v", got)
	}
	var info struct {
		Members []string `json:"members"`
	}
	info = data[struct {
		Members []string `json:"members"`
	}](t, cu.ok(fmt.Sprintf(`"action":"session","session_id":%d`, v.Session)))
	if len(info.Members) != 2 {
		t.Fatalf("members %v: the customer and exactly one agent", info.Members)
	}
}

func TestServiceErrors(t *testing.T) {
	e := newEnv(t, chat.Config{})
	e.host(`{"action":"shop_put","shop":"s1","settings":{"strategy":"manual"}}`)
	e.host(`{"action":"shop_put","shop":"s2"}`)
	a1 := e.agent("s1", "a1", 2, "online")
	b1 := e.agent("s2", "b1", 2, "online")
	cu := e.login(e.user("cust"))
	cu.fails(`"action":"service_open","shop":"nope"`, chat.CodeNotFound)
	v := data[svcView](t, cu.ok(`"action":"service_open","shop":"s1"`))
	claim := fmt.Sprintf(`"action":"service_claim","session_id":%d`, v.Session)
	cu.fails(claim, chat.CodeForbidden) // a customer acting as an agent
	b1.fails(claim, chat.CodeForbidden) // an agent of another shop
	a1.ok(claim)
	a1.fails(claim, chat.CodeConflict) // already assigned
	a1.fails(`"action":"service_open","shop":"s1"`, chat.CodeForbidden)
	cu.fails(`"action":"service_status","status":"online"`, chat.CodeForbidden)
	a1.fails(`"action":"service_status","status":"busy"`, chat.CodeBadRequest)
	a1.fails(`"action":"service_queue","shop":"s2"`, chat.CodeForbidden)
	e.hostErr(`{"action":"shop_put","shop":"s3","settings":{"strategy":"random"}}`, chat.CodeBadRequest)
	e.hostErr(`{"action":"shop_put","shop":"Bad Id"}`, chat.CodeBadRequest)
	e.hostErr(`{"action":"agent_put","shop":"s1","uid":"ghost"}`, chat.CodeNotFound)
	e.hostErr(`{"action":"agent_put","shop":"zz","uid":"a1"}`, chat.CodeNotFound)
	e.hostErr(`{"action":"fly"}`, chat.CodeBadRequest)
}

func TestServiceTransferAndBackToQueueNoteHidden(t *testing.T) {
	e := newEnv(t, chat.Config{})
	e.host(`{"action":"shop_put","shop":"s1"}`)
	a := e.agent("s1", "a", 2, "online")
	b := e.agent("s1", "b", 2, "away")
	cu := e.login(e.user("cust"))
	v := data[svcView](t, cu.ok(`"action":"service_open","shop":"s1"`))
	if v.Agent != "a" {
		t.Fatalf("assigned %q, want a (b is away)", v.Agent)
	}
	// Messages carry the shop and the sender's role.
	cu.ok(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"hello"}`, v.Session))
	f := a.wait(t, event("message"))
	var m struct {
		From string `json:"from"`
		Shop string `json:"shop"`
		Role string `json:"role"`
	}
	_ = json.Unmarshal(f.Data, &m)
	if m.From != "cust" || m.Shop != "s1" || m.Role != "customer" {
		t.Fatalf("message event %s", f.Data)
	}
	const note = "VIP-NOTE-42 wants a refund"
	a.ok(fmt.Sprintf(`"action":"service_transfer","session_id":%d,"to":"b","note":%q`, v.Session, note))
	if ev := cu.svcWait("transferred", nil); ev.Agent != "b" || ev.Note != "" {
		t.Fatalf("customer told %+v", ev)
	}
	if ev := b.svcWait("transferred", nil); ev.Note != note || ev.From != "a" {
		t.Fatalf("new agent told %+v, want the note", ev)
	}
	// b sees the whole history and now gets the customer's messages; a does not.
	h := data[messagesPageView](t, b.ok(fmt.Sprintf(`"action":"history","session_id":%d`, v.Session)))
	if len(h.Messages) != 1 {
		t.Fatalf("b's history %d messages, want 1", len(h.Messages))
	}
	a.fails(fmt.Sprintf(`"action":"history","session_id":%d`, v.Session), chat.CodeForbidden)
	// b hands it back to the queue; a is away now, so it waits.
	a.ok(`"action":"service_status","status":"away"`)
	b.ok(fmt.Sprintf(`"action":"service_transfer","session_id":%d,"queue":true,"note":%q`, v.Session, note))
	if ev := cu.svcWait("queued", nil); ev.Position != 1 {
		t.Fatalf("customer told %+v, want queued at 1", ev)
	}
	if got := e.conversations(""); got[0].Status != "queued" || got[0].LastAgent != "b" {
		t.Fatalf("after back to queue: %+v", got[0])
	}
	cu.mu.Lock()
	for _, m := range cu.msgs {
		if strings.Contains(string(m), "VIP-NOTE") {
			t.Errorf("the customer received the note: %s", m)
		}
	}
	cu.mu.Unlock()
}

type messagesPageView struct {
	Messages []json.RawMessage `json:"messages"`
}

func TestServiceAgentGoneGrace(t *testing.T) {
	t.Run("reconnect within the grace", func(t *testing.T) {
		clk := newClock()
		e := newEnv(t, chat.Config{Now: clk.now})
		e.host(`{"action":"shop_put","shop":"s1","settings":{"agent_gone":"requeue"}}`)
		a := e.agent("s1", "a", 2, "online")
		cu := e.login(e.user("cust"))
		cu.ok(`"action":"service_open","shop":"s1"`)
		a.h.HandleClose()
		waitFor(t, func() bool { return !agentConnected(e, "a") })
		clk.advance(30 * time.Second)
		e.core.ServiceTick()
		e.login(e.user("a")) // back, within the grace
		waitFor(t, func() bool { return agentConnected(e, "a") })
		clk.advance(5 * time.Minute)
		e.core.ServiceTick()
		if got := e.conversations(""); got[0].Status != "open" || got[0].Agent != "a" {
			t.Fatalf("after a reconnect within the grace: %+v", got[0])
		}
	})
	for _, policy := range []string{"keep", "requeue"} {
		t.Run(policy, func(t *testing.T) {
			clk := newClock()
			e := newEnv(t, chat.Config{Now: clk.now})
			e.host(`{"action":"shop_put","shop":"s1","settings":{"agent_gone":"` + policy + `"}}`)
			a := e.agent("s1", "a", 2, "online")
			cu := e.login(e.user("cust"))
			v := data[svcView](t, cu.ok(`"action":"service_open","shop":"s1"`))
			if v.Agent != "a" {
				t.Fatalf("%+v", v)
			}
			a.h.HandleClose() // the agent's only device goes
			waitFor(t, func() bool { return agentConnected(e, "a") == false })
			clk.advance(59 * time.Second)
			e.core.ServiceTick()
			if got := e.conversations(""); got[0].Status != "open" || got[0].Agent != "a" {
				t.Fatalf("within the grace: %+v", got[0])
			}
			clk.advance(2 * time.Second)
			e.core.ServiceTick()
			got := e.conversations("")
			switch policy {
			case "keep":
				if got[0].Status != "open" || got[0].Agent != "a" {
					t.Fatalf("keep: %+v", got[0])
				}
			case "requeue":
				if got[0].Status != "queued" || got[0].LastAgent != "a" {
					t.Fatalf("requeue: %+v", got[0])
				}
				if ev := cu.svcWait("queued", nil); ev.Position != 1 {
					t.Fatalf("customer told %+v", ev)
				}
			}
		})
	}
}

func agentConnected(e *env, uid string) bool {
	var as []struct {
		UID       string `json:"uid"`
		Connected bool   `json:"connected"`
	}
	_ = json.Unmarshal(e.host(`{"action":"agents","shop":"s1"}`), &as)
	for _, a := range as {
		if a.UID == uid {
			return a.Connected
		}
	}
	return false
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not reached in 5 s")
}

func TestServiceRestartKeepsState(t *testing.T) {
	st := memstore.New()
	e := newEnvOn(t, chat.Config{}, st)
	e.host(`{"action":"shop_put","shop":"s1","settings":{"strategy":"balanced"}}`)
	a := e.agent("s1", "a", 1, "online")
	c1 := e.login(e.user("c1"))
	c2 := e.login(e.user("c2"))
	c3 := e.login(e.user("c3"))
	v1 := data[svcView](t, c1.ok(`"action":"service_open","shop":"s1"`)) // open with a
	a.ok(fmt.Sprintf(`"action":"service_resolve","session_id":%d`, v1.Session))
	// c1 resolved, the head is gone to a; open two more: one open, two queued.
	c2.ok(`"action":"service_open","shop":"s1"`)
	c3.ok(`"action":"service_open","shop":"s1"`)
	c4 := e.login(e.user("c4"))
	c4.ok(`"action":"service_open","shop":"s1"`)
	before := e.conversations("")
	e.stop()

	e2 := restartOn(t, e, st)
	after := e2.conversations("")
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("after restart\n%+v\nwant\n%+v", after, before)
	}
	want := map[string]string{"c1": "resolved", "c2": "open", "c3": "queued", "c4": "queued"}
	for _, v := range after {
		if want[v.Customer] != v.Status {
			t.Fatalf("%s is %s, want %s", v.Customer, v.Status, want[v.Customer])
		}
	}
	var q []struct {
		Customer string `json:"customer"`
	}
	_ = json.Unmarshal(e2.host(`{"action":"conversations","status":"queued"}`), &q)
	// The queue order survives: c3 then c4; resolving c2 assigns c3.
	a2 := e2.login(e2.user("a"))
	_ = a2
	var open svcView
	for _, v := range after {
		if v.Status == "open" {
			open = v
		}
	}
	e2.host(fmt.Sprintf(`{"action":"resolve","session_id":%d}`, open.Session))
	for _, v := range e2.conversations("") {
		if v.Customer == "c3" && (v.Status != "open" || v.Agent != "a") {
			t.Fatalf("c3 after resolving c2: %+v, want open with a", v)
		}
		if v.Customer == "c4" && (v.Status != "queued" || v.Position != 1) {
			t.Fatalf("c4: %+v, want queued at 1", v)
		}
	}
}

// restartOn starts a second core on st, as after a restart of e's.
func restartOn(t *testing.T, e *env, st chat.Store) *env {
	t.Helper()
	core, err := chat.New(chat.Config{}, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- core.Run(ctx) }()
	e2 := &env{t: t, core: core, app: e.app, store: st}
	e2.stop = func() { cancel(); <-done }
	t.Cleanup(e2.stop)
	return e2
}

type autoMsg struct {
	From    string `json:"from"`
	Role    string `json:"role"`
	Content struct {
		Text string `json:"text"`
		Auto string `json:"auto"`
	} `json:"content"`
}

// waitAuto waits for an automatic message of kind at d.
func (d *device) waitAuto(kind string) autoMsg {
	d.e.t.Helper()
	f := d.wait(d.e.t, func(f frame) bool {
		if f.Event != "message" {
			return false
		}
		var m autoMsg
		_ = json.Unmarshal(f.Data, &m)
		return m.Content.Auto == kind
	})
	var m autoMsg
	_ = json.Unmarshal(f.Data, &m)
	return m
}

func TestServiceWelcomeAndOfflineReplies(t *testing.T) {
	e := newEnv(t, chat.Config{})
	e.host(`{"action":"shop_put","shop":"s1","settings":{"prefer_last_agent":true,"welcome":"Hi from the shop","offline":"Nobody is free; you are in the queue"}}`)
	plain := e.agent("s1", "plain", 1, "online")
	_ = plain
	pat := e.login(e.user("pat"))
	e.host(`{"action":"agent_put","shop":"s1","uid":"pat","capacity":1,"status":"online","welcome":"Hi, Pat here","offline":"Pat is away until Monday"}`)
	// Welcome: the shop's from plain, pat's own from pat.
	c1 := e.login(e.user("c1"))
	v1 := data[svcView](t, c1.ok(`"action":"service_open","shop":"s1"`))
	c2 := e.login(e.user("c2"))
	v2 := data[svcView](t, c2.ok(`"action":"service_open","shop":"s1"`))
	got := map[string]autoMsg{v1.Agent: c1.waitAuto("welcome"), v2.Agent: c2.waitAuto("welcome")}
	if m := got["plain"]; m.From != "plain" || m.Content.Text != "Hi from the shop" || m.Role != "agent" {
		t.Fatalf("shop welcome %+v", m)
	}
	if m := got["pat"]; m.From != "pat" || m.Content.Text != "Hi, Pat here" {
		t.Fatalf("pat's welcome %+v", m)
	}
	// Both at capacity: a third customer gets the shop's offline reply.
	c3 := e.login(e.user("c3"))
	c3.ok(`"action":"service_open","shop":"s1"`)
	if m := c3.waitAuto("offline"); m.From != "" || m.Role != "shop" || m.Content.Text != "Nobody is free; you are in the queue" {
		t.Fatalf("shop offline %+v", m)
	}
	// The customer pat served last comes back while pat is busy: pat's own
	// offline reply.
	var patConv svcView
	if v1.Agent == "pat" {
		patConv = v1
	} else {
		patConv = v2
	}
	cust := c1
	if patConv.Customer == "c2" {
		cust = c2
	}
	pat.ok(fmt.Sprintf(`"action":"service_resolve","session_id":%d`, patConv.Session))
	cust.svcWait("resolved", nil)
	// c3 (queued) takes pat's free seat at once.
	c3.svcWait("assigned", nil)
	cust.ok(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"back again"}`, patConv.Session))
	if m := cust.waitAuto("offline"); m.Content.Text != "Pat is away until Monday" {
		t.Fatalf("per-agent offline %+v", m)
	}
}

func TestServiceOutsideHours(t *testing.T) {
	clk := newClock() // Monday 2026-03-02 10:00 UTC
	e := newEnv(t, chat.Config{Now: clk.now})
	hours := `"hours":{"zone":"Europe/Berlin","weekly":[{"day":"mon","open":"12:00","close":"18:00"}]},"out_of_office":"We open at noon"`
	e.host(`{"action":"shop_put","shop":"q","settings":{` + hours + `}}`)
	e.host(`{"action":"shop_put","shop":"r","settings":{"outside_hours":"refuse",` + hours + `}}`)
	e.agent("q", "qa", 2, "online")
	cu := e.login(e.user("cust"))
	// 11:00 in Berlin: closed. The queueing shop queues and says why.
	v := data[svcView](t, cu.ok(`"action":"service_open","shop":"q"`))
	if v.Status != "queued" || v.Position != 1 {
		t.Fatalf("outside hours: %+v, want queued", v)
	}
	if m := cu.waitAuto("out_of_office"); m.Content.Text != "We open at noon" {
		t.Fatalf("out of office %+v", m)
	}
	cu.fails(`"action":"service_open","shop":"r"`, chat.CodeUnavailable)
	// Noon in Berlin: the queue drains by itself.
	clk.advance(time.Hour)
	e.core.ServiceTick()
	if ev := cu.svcWait("assigned", nil); ev.Agent != "qa" {
		t.Fatalf("at opening: %+v", ev)
	}
	e.hostErr(`{"action":"shop_put","shop":"bad","settings":{"hours":{"zone":"Nowhere/City"}}}`, chat.CodeBadRequest)
}

func TestServiceCannedReplies(t *testing.T) {
	e := newEnv(t, chat.Config{})
	e.host(`{"action":"shop_put","shop":"s1"}`)
	e.host(`{"action":"shop_put","shop":"s2"}`)
	a := e.agent("s1", "a", 2, "online")
	b := e.agent("s2", "b", 2, "online")
	cu := e.login(e.user("cust"))
	type canned struct {
		ID       int64  `json:"canned_id"`
		Shortcut string `json:"shortcut"`
		Text     string `json:"text"`
		By       string `json:"by"`
	}
	r1 := data[canned](t, a.ok(`"action":"service_canned_put","shop":"s1","shortcut":"/refund","text":"Refunds take 3 days"`))
	e.host(`{"action":"canned_put","shop":"s1","shortcut":"returns","text":"Send it back within 30 days"}`)
	e.host(`{"action":"canned_put","shop":"s1","shortcut":"hello","text":"Hello!"}`)
	list := data[[]canned](t, a.ok(`"action":"service_canned","shop":"s1","q":"re"`))
	if len(list) != 2 || list[0].Shortcut != "refund" || list[1].Shortcut != "returns" || list[0].By != "a" {
		t.Fatalf("search re: %+v", list)
	}
	a.fails(`"action":"service_canned_put","shop":"s1","shortcut":"hello","text":"dup"`, chat.CodeConflict)
	a.ok(fmt.Sprintf(`"action":"service_canned_put","shop":"s1","canned_id":%d,"shortcut":"refund","text":"Refunds take 2 days"`, r1.ID))
	a.ok(`"action":"service_canned_delete","shop":"s1","canned_id":` + fmt.Sprint(r1.ID+1))
	var all []canned
	_ = json.Unmarshal(e.host(`{"action":"canned","shop":"s1"}`), &all)
	if len(all) != 2 || all[1].Text != "Refunds take 2 days" && all[0].Text != "Refunds take 2 days" {
		t.Fatalf("after edit and delete: %+v", all)
	}
	cu.fails(`"action":"service_canned","shop":"s1"`, chat.CodeForbidden)
	b.fails(`"action":"service_canned","shop":"s1"`, chat.CodeForbidden)
	a.fails(`"action":"service_canned_delete","shop":"s1","canned_id":999`, chat.CodeNotFound)
}

func TestServiceNotesOnlyForAgents(t *testing.T) {
	e := newEnv(t, chat.Config{})
	e.host(`{"action":"shop_put","shop":"s1"}`)
	a := e.agent("s1", "a", 2, "online")
	other := e.agent("s1", "o", 2, "away")
	cu := e.login(e.user("cust"))
	v := data[svcView](t, cu.ok(`"action":"service_open","shop":"s1"`))
	cu.ok(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"where is my parcel"}`, v.Session))
	a.ok(fmt.Sprintf(`"action":"service_note","session_id":%d,"text":"SECRET-NOTE angry customer"`, v.Session))
	if ev := other.svcWait("note", nil); ev.Note != "SECRET-NOTE angry customer" || ev.Agent != "a" {
		t.Fatalf("other agent got %+v", ev)
	}
	notes := data[[]struct {
		Text     string `json:"text"`
		AfterSeq uint64 `json:"after_seq"`
	}](t, other.ok(fmt.Sprintf(`"action":"service_notes","session_id":%d`, v.Session)))
	if len(notes) != 1 || notes[0].AfterSeq != 1 {
		t.Fatalf("notes %+v", notes)
	}
	cu.fails(fmt.Sprintf(`"action":"service_notes","session_id":%d`, v.Session), chat.CodeForbidden)
	cu.fails(fmt.Sprintf(`"action":"service_note","session_id":%d,"text":"x"`, v.Session), chat.CodeForbidden)
	h := cu.ok(fmt.Sprintf(`"action":"history","session_id":%d`, v.Session))
	s := cu.ok(fmt.Sprintf(`"action":"sync","session_id":%d,"after":0`, v.Session))
	for _, b := range [][]byte{h.Data, s.Data} {
		if strings.Contains(string(b), "SECRET-NOTE") {
			t.Fatalf("customer's history has the note: %s", b)
		}
	}
	cu.mu.Lock()
	defer cu.mu.Unlock()
	for _, m := range cu.msgs {
		if strings.Contains(string(m), "SECRET-NOTE") {
			t.Fatalf("customer received the note: %s", m)
		}
	}
}

func TestServiceRatingsAndFigures(t *testing.T) {
	clk := newClock()
	e := newEnv(t, chat.Config{Now: clk.now})
	e.host(`{"action":"shop_put","shop":"s1","settings":{"strategy":"round_robin"}}`)
	a := e.agent("s1", "a", 1, "online")
	b := e.agent("s1", "b", 1, "online")
	ag := map[string]*device{"a": a, "b": b}
	scores := []int{5, 3, 4}
	var views []svcView
	for i := range scores {
		cu := e.login(e.user(fmt.Sprintf("c%d", i)))
		views = append(views, data[svcView](t, cu.ok(`"action":"service_open","shop":"s1"`)))
		if i == 2 { // a third customer waits for a free agent
			clk.advance(30 * time.Second)
			var f struct {
				QueuedNow     int   `json:"queued_now"`
				LongestWaitMS int64 `json:"longest_wait_ms"`
			}
			_ = json.Unmarshal(e.host(`{"action":"figures","shop":"s1"}`), &f)
			if f.QueuedNow != 1 || f.LongestWaitMS != 30000 {
				t.Fatalf("figures while queued: %+v", f)
			}
		}
		_ = cu
	}
	// Agents answer: their first responses take 2 s and 4 s.
	clk.advance(2 * time.Second)
	a.ok(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"hi"}`, views[0].Session))
	clk.advance(2 * time.Second)
	b.ok(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"hi"}`, views[1].Session))
	custs := []*device{}
	for i := range scores {
		custs = append(custs, e.login(e.user(fmt.Sprintf("c%d", i))))
	}
	custs[0].fails(fmt.Sprintf(`"action":"service_rate","session_id":%d,"score":5`, views[0].Session), chat.CodeConflict) // not resolved yet
	// Resolve and rate all three (the third goes to a once a frees up).
	a.ok(fmt.Sprintf(`"action":"service_resolve","session_id":%d`, views[0].Session))
	b.ok(fmt.Sprintf(`"action":"service_resolve","session_id":%d`, views[1].Session))
	got := e.conversations(`,"status":"open"`)
	if len(got) != 1 || got[0].Customer != "c2" {
		t.Fatalf("open %+v", got)
	}
	ag[got[0].Agent].ok(fmt.Sprintf(`"action":"service_resolve","session_id":%d`, views[2].Session))
	for i, s := range scores {
		custs[i].fails(fmt.Sprintf(`"action":"service_rate","session_id":%d,"score":9`, views[i].Session), chat.CodeBadRequest)
		custs[i].ok(fmt.Sprintf(`"action":"service_rate","session_id":%d,"score":%d,"comment":"ok"`, views[i].Session, s))
	}
	custs[0].fails(fmt.Sprintf(`"action":"service_rate","session_id":%d,"score":1`, views[0].Session), chat.CodeConflict) // twice
	a.fails(fmt.Sprintf(`"action":"service_rate","session_id":%d,"score":1`, views[0].Session), chat.CodeNotFound)        // not the customer
	var rep struct {
		Shop struct {
			Count   int
			Average float64
		}
		ByAgent map[string]struct {
			Count   int
			Average float64
		} `json:"by_agent"`
	}
	_ = json.Unmarshal(e.host(`{"action":"ratings","shop":"s1"}`), &rep)
	if rep.Shop.Count != 3 || rep.Shop.Average != 4 {
		t.Fatalf("shop ratings %+v", rep.Shop)
	}
	// a served c0 (5) and c2 (4); b served c1 (3).
	if rep.ByAgent["a"].Average != 4.5 || rep.ByAgent["b"].Average != 3 {
		t.Fatalf("by agent %+v", rep.ByAgent)
	}
	var f struct {
		QueuedNow             int     `json:"queued_now"`
		MedianFirstResponseMS int64   `json:"median_first_response_ms"`
		FirstResponses        int     `json:"first_responses"`
		ResolvedToday         int     `json:"resolved_today"`
		AverageRating         float64 `json:"average_rating"`
	}
	waitFor(t, func() bool {
		_ = json.Unmarshal(e.host(`{"action":"figures","shop":"s1"}`), &f)
		return f.FirstResponses == 2
	})
	// c0 was assigned at t0 and answered at t0+32 s; c1 at t0, answered at t0+34 s.
	if f.QueuedNow != 0 || f.ResolvedToday != 3 || f.AverageRating != 4 || f.MedianFirstResponseMS != 33000 {
		t.Fatalf("figures %+v", f)
	}
}

func TestServiceSubscriberTopicByShop(t *testing.T) {
	e := newEnv(t, chat.Config{})
	f, err := chat.ParseFilter("service;shop=s1")
	if err != nil {
		t.Fatal(err)
	}
	sub := e.core.Subscribe([]chat.Filter{f}, 64)
	defer sub.Close()
	e.host(`{"action":"shop_put","shop":"s1"}`)
	e.host(`{"action":"shop_put","shop":"s2"}`)
	e.agent("s1", "a", 2, "online")
	e.agent("s2", "b", 2, "online")
	cu := e.login(e.user("cust"))
	cu.ok(`"action":"service_open","shop":"s2"`)
	cu.ok(`"action":"service_open","shop":"s1"`)
	for {
		select {
		case ev := <-sub.C:
			if ev.Topic != chat.TopicService || ev.Service == nil || ev.Service.Shop != "s1" {
				t.Fatalf("event %+v", ev)
			}
			if ev.Service.Type == "assigned" {
				if ev.Service.Agent != "a" || ev.UID != "cust" {
					t.Fatalf("assigned %+v", ev.Service)
				}
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no service event for s1")
		}
	}
}

func TestServiceAutoResolveAfterInactivity(t *testing.T) {
	clk := newClock()
	e := newEnv(t, chat.Config{Now: clk.now})
	e.host(`{"action":"shop_put","shop":"s1","settings":{"auto_resolve_minutes":10}}`)
	e.agent("s1", "a", 2, "online")
	cu := e.login(e.user("cust"))
	v := data[svcView](t, cu.ok(`"action":"service_open","shop":"s1"`))
	clk.advance(9 * time.Minute)
	cu.ok(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"still there?"}`, v.Session))
	clk.advance(9 * time.Minute) // 18 min after the assignment, 9 after the last message
	e.core.ServiceTick()
	if got := e.conversations(""); got[0].Status != "open" {
		t.Fatalf("resolved while active: %+v", got[0])
	}
	clk.advance(2 * time.Minute)
	e.core.ServiceTick()
	if ev := cu.svcWait("resolved", nil); ev.By != "system" {
		t.Fatalf("resolved by %q, want system", ev.By)
	}
}

// svcFailingStore fails every Apply carrying records once its budget of
// such commits is spent: the process "dies" in the middle of a queue
// drain, before the next assignment is durable.
type svcFailingStore struct {
	chat.Store
	budget atomic.Int32
}

func (s *svcFailingStore) Apply(ctx context.Context, b *chat.Batch) error {
	if len(b.Records)+len(b.DelRecords) > 0 && s.budget.Add(-1) < 0 {
		return fmt.Errorf("disk gone")
	}
	return s.Store.Apply(ctx, b)
}

func TestServiceCrashDuringDrainNeitherLosesNorDoubleAssigns(t *testing.T) {
	inner := memstore.New()
	fs := &svcFailingStore{Store: inner}
	fs.budget.Store(1 << 30)
	e := newEnvOn(t, chat.Config{LogError: func(string, error) {}}, fs)
	e.host(`{"action":"shop_put","shop":"s1"}`)
	a := e.agent("s1", "a", 10, "away")
	for i := range 6 {
		c := e.login(e.user(fmt.Sprintf("c%d", i)))
		if v := data[svcView](t, c.ok(`"action":"service_open","shop":"s1"`)); v.Position != i+1 {
			t.Fatalf("c%d queued at %d", i, v.Position)
		}
	}
	// Going online drains the queue: the status commit and three
	// assignments land, then the store fails.
	fs.budget.Store(4)
	a.ok(`"action":"service_status","status":"online"`)
	e.stop()

	e2 := restartOn(t, e, inner)
	check := func(when string, wantOpen int) {
		t.Helper()
		open := 0
		for _, v := range e2.conversations("") {
			ms, err := inner.Members(context.Background(), chat.SessionID(v.Session))
			if err != nil {
				t.Fatal(err)
			}
			var uids []string
			for _, m := range ms {
				uids = append(uids, m.UID)
			}
			sort.Strings(uids)
			want := v.Customer
			switch v.Status {
			case "open":
				open++
				want = "a " + v.Customer
			case "queued":
			default:
				t.Fatalf("%s: %s is %s", when, v.Customer, v.Status)
			}
			if strings.Join(uids, " ") != want {
				t.Fatalf("%s: %s is %s with members %v", when, v.Customer, v.Status, uids)
			}
		}
		if open != wantOpen {
			t.Fatalf("%s: %d open, want %d", when, open, wantOpen)
		}
	}
	check("after the crash", 3)
	queued := e2.conversations(`,"status":"queued"`)
	for i, v := range queued {
		if v.Customer != fmt.Sprintf("c%d", 3+i) || v.Position != i+1 {
			t.Fatalf("queue after the crash: %+v", queued)
		}
	}
	// The agent is still within the grace after the restart: the queue
	// drains, each conversation assigned once.
	e2.core.ServiceTick()
	check("after draining", 6)
	var as []struct {
		Open int `json:"open"`
	}
	_ = json.Unmarshal(e2.host(`{"action":"agents","shop":"s1"}`), &as)
	if len(as) != 1 || as[0].Open != 6 {
		t.Fatalf("agents %+v", as)
	}
}
