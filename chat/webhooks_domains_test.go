package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/chat"
	"chatd/chat/memstore"
)

// The customer-service and consultation webhook events: each arrives once,
// signed, with the body docs/webhooks.md shows, and is written in the
// commit of the change (an app that wants none of them writes none).

var serviceTypes = []string{chat.WebhookServiceQueued, chat.WebhookServiceAssigned, chat.WebhookServiceResolved, chat.WebhookServiceRated}

var consultTypes = []string{chat.WebhookConsultStarted, chat.WebhookConsultEnded}

// serviceRun is what driveService did: the conversation and the time of
// each step (unix ms on the core's clock).
type serviceRun struct {
	sid                               uint64
	opened, assigned, resolved, rated int64
}

// driveService takes one conversation through queued → assigned →
// resolved → rated over the client protocol, moving the clock between the
// steps so that each time in the events is told apart.
func driveService(t *testing.T, e *env, clock *whClock) serviceRun {
	t.Helper()
	e.host(`{"action":"shop_put","shop":"s1","name":"Shop One","settings":{"welcome":"Hi!"}}`)
	ag := e.agent("s1", "ag", 1, "offline")
	cust := e.login(e.user("cust"))
	var r serviceRun
	r.opened = clock.Now().UnixMilli()
	v := data[svcView](t, cust.ok(`"action":"service_open","shop":"s1"`))
	if v.Status != chat.ServiceQueued {
		t.Fatalf("opened with the only agent offline: %+v, want queued", v)
	}
	r.sid = v.Session
	clock.Advance(5 * time.Second)
	r.assigned = clock.Now().UnixMilli()
	ag.ok(`"action":"service_status","status":"online"`) // the queue's head is routed to ag
	if got := data[svcView](t, cust.ok(fmt.Sprintf(`"action":"service_conversation","session_id":%d`, r.sid))); got.Status != chat.ServiceOpen || got.Agent != "ag" {
		t.Fatalf("after the agent came online: %+v, want open with ag", got)
	}
	clock.Advance(7 * time.Second)
	r.resolved = clock.Now().UnixMilli()
	ag.ok(fmt.Sprintf(`"action":"service_resolve","session_id":%d`, r.sid))
	clock.Advance(time.Second)
	r.rated = clock.Now().UnixMilli()
	cust.ok(fmt.Sprintf(`"action":"service_rate","session_id":%d,"score":4,"comment":"quick"`, r.sid))
	return r
}

func TestWebhookServiceEvents(t *testing.T) {
	w := newWHEnv(t, serviceTypes, chat.WebhookConfig{})
	r := driveService(t, w.env, w.clock)

	w.rcv.waitFor(t, "the four service events", nil, func(hs []hook) bool { return len(hs) >= 4 })
	time.Sleep(50 * time.Millisecond) // let a duplicate show up before counting
	hs := w.rcv.all()
	if len(hs) != 4 {
		t.Fatalf("%d deliveries, want 4 (one per step):\n%s", len(hs), hookList(hs))
	}
	want := map[string]string{
		chat.WebhookServiceQueued: fmt.Sprintf(`{"session_id":%d,"shop":"s1","customer":"cust","reason":"opened","by":"cust","queued_at":%d}`,
			r.sid, r.opened),
		chat.WebhookServiceAssigned: fmt.Sprintf(`{"session_id":%d,"shop":"s1","customer":"cust","agent":"ag","reason":"routed","by":"system","queued_at":%d,"assigned_at":%d}`,
			r.sid, r.opened, r.assigned),
		chat.WebhookServiceResolved: fmt.Sprintf(`{"session_id":%d,"shop":"s1","customer":"cust","agent":"ag","by":"ag","assigned_at":%d,"resolved_at":%d}`,
			r.sid, r.assigned, r.resolved),
		chat.WebhookServiceRated: fmt.Sprintf(`{"app":"shop","shop":"s1","session_id":%d,"customer":"cust","agent":"ag","score":4,"comment":"quick","resolved_at":%d,"created_at":%d}`,
			r.sid, r.resolved, r.rated),
	}
	seen := map[string]bool{}
	for _, h := range hs {
		verify(t, w.ep.Secret, h)
		if seen[h.ID] {
			t.Errorf("delivery %s arrived twice", h.ID)
		}
		seen[h.ID] = true
		if h.Envelope.App != "shop" {
			t.Errorf("%s: app %q", h.Event, h.Envelope.App)
		}
		if got := ofType(hs, h.Event); len(got) != 1 {
			t.Errorf("%s: %d deliveries, want 1", h.Event, len(got))
		}
		if string(h.Envelope.Data) != want[h.Event] {
			t.Errorf("%s data\n got %s\nwant %s", h.Event, h.Envelope.Data, want[h.Event])
		}
	}
	// The rating's event is the rating as the host's ratings list has it.
	var rep struct {
		Ratings []json.RawMessage `json:"ratings"`
	}
	if err := json.Unmarshal(w.host(`{"action":"ratings","shop":"s1"}`), &rep); err != nil || len(rep.Ratings) != 1 {
		t.Fatalf("ratings: %v %d", err, len(rep.Ratings))
	}
	if got := ofType(hs, chat.WebhookServiceRated); string(rep.Ratings[0]) != string(got[0].Envelope.Data) {
		t.Errorf("service.rated data %s, stored rating %s", got[0].Envelope.Data, rep.Ratings[0])
	}
}

// The other ways into the queue and to an agent: a handback to the queue
// (transferred), a claim, an agent's transfer to another, a resolve while
// queued, a reopen that queues (reopened), and an agent's removal
// (requeued).
func TestWebhookServiceHandsChanging(t *testing.T) {
	w := newWHEnv(t, serviceTypes[:3], chat.WebhookConfig{})
	w.host(`{"action":"shop_put","shop":"s1","name":"Shop One","settings":{"strategy":"manual"}}`)
	a1 := w.agent("s1", "a1", 5, "online")
	a2 := w.agent("s1", "a2", 5, "online")
	cust := w.login(w.user("cust"))
	sid := data[svcView](t, cust.ok(`"action":"service_open","shop":"s1"`)).Session // manual: queued
	s := fmt.Sprintf(`"session_id":%d`, sid)
	a1.ok(`"action":"service_claim",` + s)
	a1.ok(`"action":"service_transfer",` + s + `,"to":"a2","note":"vip"`)
	a2.ok(`"action":"service_transfer",` + s + `,"queue":true`)
	a1.ok(`"action":"service_resolve",` + s)       // resolved while queued
	cust.ok(`"action":"service_open","shop":"s1"`) // reopened: manual, so queued
	a1.ok(`"action":"service_claim",` + s)
	w.host(`{"action":"agent_remove","shop":"s1","uid":"a1"}`) // its conversation goes back to the queue

	type body struct {
		Reason, By, From, Agent string
	}
	want := []struct {
		typ string
		body
	}{
		{typ: chat.WebhookServiceQueued, body: body{Reason: "opened", By: "cust"}},
		{typ: chat.WebhookServiceAssigned, body: body{Reason: "claimed", By: "a1", Agent: "a1"}},
		{typ: chat.WebhookServiceAssigned, body: body{Reason: "transferred", By: "a1", From: "a1", Agent: "a2"}},
		{typ: chat.WebhookServiceQueued, body: body{Reason: "transferred", By: "a2", From: "a2"}},
		{typ: chat.WebhookServiceResolved, body: body{By: "a1"}},
		{typ: chat.WebhookServiceQueued, body: body{Reason: "reopened", By: "cust"}},
		{typ: chat.WebhookServiceAssigned, body: body{Reason: "claimed", By: "a1", Agent: "a1"}},
		{typ: chat.WebhookServiceQueued, body: body{Reason: "requeued", By: "host", From: "a1"}},
	}
	w.rcv.waitFor(t, "every service event", nil, func(hs []hook) bool { return len(hs) >= len(want) })
	time.Sleep(50 * time.Millisecond)
	hs := w.rcv.all()
	if len(hs) != len(want) {
		t.Fatalf("%d deliveries, want %d:\n%s", len(hs), len(want), hookList(hs))
	}
	// Delivery order is not guaranteed; event ids follow commit order.
	byEvent := map[string]hook{}
	ids := make([]string, 0, len(hs))
	for _, h := range hs {
		verify(t, w.ep.Secret, h)
		byEvent[h.Envelope.EventID] = h
		ids = append(ids, h.Envelope.EventID)
	}
	sort.Slice(ids, func(i, j int) bool { return atoiOr(ids[i]) < atoiOr(ids[j]) })
	for i, id := range ids {
		h := byEvent[id]
		var got body
		_ = json.Unmarshal(h.Envelope.Data, &got)
		if h.Event != want[i].typ || got != want[i].body {
			t.Errorf("event %d: %s %s, want %s %+v", i, h.Event, h.Envelope.Data, want[i].typ, want[i].body)
		}
	}
}

// consultRun is what driveConsult did.
type consultRun struct {
	timeUp, firstReply, startNow, cancelled chat.SessionID
	accepted, replied, started              int64 // start times
}

// driveConsult runs four consultations to a final state: one accepted
// whose time runs out on the clock, one started by the consultant's first
// reply and ended early by the customer, one started at creation and
// ended by the host, and one cancelled before it started. It returns once
// every billing record (and so every end's commit) is stored.
func driveConsult(t *testing.T, e *env, clock *whClock) consultRun {
	t.Helper()
	ctx := context.Background()
	law, cust := e.login(e.user("lawyer")), e.login(e.user("cust"))
	create := func(in chat.ConsultInput) chat.SessionID {
		t.Helper()
		v, err := e.core.CreateConsultation(ctx, e.app.ID, in)
		if err != nil {
			t.Fatal(err)
		}
		return v.ID
	}
	var r consultRun
	r.timeUp = create(chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 60, PricePerMinute: 200, Currency: "CNY", Ref: "order-1"})
	r.accepted = clock.Now().UnixMilli()
	law.ok(fmt.Sprintf(`"action":"consult_accept","session_id":%d`, r.timeUp))
	clock.Advance(61500 * time.Millisecond) // past the deadline: time_up, charged to the deadline
	e.core.ConsultTick(ctx)

	r.firstReply = create(chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 300, Start: chat.StartFirstReply, Ref: "order-2"})
	cust.ok(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"question"}`, r.firstReply))
	r.replied = clock.Now().UnixMilli()
	law.ok(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"answer"}`, r.firstReply))
	clock.Advance(10 * time.Second)
	cust.ok(fmt.Sprintf(`"action":"consult_end","session_id":%d`, r.firstReply)) // early

	r.started = clock.Now().UnixMilli()
	r.startNow = create(chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 120, Start: chat.StartNow})
	clock.Advance(3 * time.Second)
	if _, err := e.core.ConsultAct(ctx, e.app.ID, r.startNow, "", chat.ConsultChange{Op: chat.ConsultEnd}); err != nil {
		t.Fatal(err)
	}
	r.cancelled = create(chat.ConsultInput{Consultant: "lawyer", Customer: "cust", Seconds: 60})
	if _, err := e.core.ConsultAct(ctx, e.app.ID, r.cancelled, "", chat.ConsultChange{Op: chat.ConsultCancel}); err != nil {
		t.Fatal(err)
	}
	// The clock's own goroutine may have taken the time-up instead of
	// ConsultTick: wait for its record, stored in the end's commit.
	deadline := time.Now().Add(5 * time.Second)
	for _, id := range []chat.SessionID{r.timeUp, r.firstReply, r.startNow, r.cancelled} {
		for {
			if _, err := e.core.ConsultRecord(ctx, e.app.ID, id); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("consultation %d has no billing record", id)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	return r
}

func TestWebhookConsultEvents(t *testing.T) {
	w := newWHEnv(t, consultTypes, chat.WebhookConfig{})
	ctx := context.Background()
	r := driveConsult(t, w.env, w.clock)

	w.rcv.waitFor(t, "3 starts and 4 ends", nil, func(hs []hook) bool { return len(hs) >= 7 })
	time.Sleep(50 * time.Millisecond)
	hs := w.rcv.all()
	if len(hs) != 7 {
		t.Fatalf("%d deliveries, want 7:\n%s", len(hs), hookList(hs))
	}
	wantStarted := map[chat.SessionID]string{
		r.timeUp: fmt.Sprintf(`{"session_id":%d,"consultant":"lawyer","customer":"cust","ref":"order-1","op":"accept","by":"lawyer","started_at":%d,"bought_seconds":60,"free_seconds":0,"deadline":%d}`,
			r.timeUp, r.accepted, r.accepted+60_000),
		r.firstReply: fmt.Sprintf(`{"session_id":%d,"consultant":"lawyer","customer":"cust","ref":"order-2","op":"first_reply","by":"lawyer","started_at":%d,"bought_seconds":300,"free_seconds":0,"deadline":%d}`,
			r.firstReply, r.replied, r.replied+300_000),
		r.startNow: fmt.Sprintf(`{"session_id":%d,"consultant":"lawyer","customer":"cust","op":"created","by":"host","started_at":%d,"bought_seconds":120,"free_seconds":0,"deadline":%d}`,
			r.startNow, r.started, r.started+120_000),
	}
	wantEnded := map[chat.SessionID][2]string{ // op, by
		r.timeUp: {"time_up", "server"}, r.firstReply: {"end", "cust"}, r.startNow: {"end", "host"}, r.cancelled: {"cancel", "host"},
	}
	seen := map[string]bool{}
	got := map[string]map[chat.SessionID]int{}
	for _, h := range hs {
		verify(t, w.ep.Secret, h)
		if seen[h.ID] {
			t.Errorf("delivery %s arrived twice", h.ID)
		}
		seen[h.ID] = true
		var d struct {
			SessionID chat.SessionID      `json:"session_id"`
			Op        string              `json:"op"`
			By        string              `json:"by"`
			Record    *chat.ConsultRecord `json:"record"`
		}
		if err := json.Unmarshal(h.Envelope.Data, &d); err != nil {
			t.Fatal(err)
		}
		if got[h.Event] == nil {
			got[h.Event] = map[chat.SessionID]int{}
		}
		got[h.Event][d.SessionID]++
		switch h.Event {
		case chat.WebhookConsultStarted:
			if string(h.Envelope.Data) != wantStarted[d.SessionID] {
				t.Errorf("consult.started data\n got %s\nwant %s", h.Envelope.Data, wantStarted[d.SessionID])
			}
		case chat.WebhookConsultEnded:
			if we := wantEnded[d.SessionID]; d.Op != we[0] || d.By != we[1] {
				t.Errorf("consult.ended of %d: op %q by %q, want %q by %q", d.SessionID, d.Op, d.By, we[0], we[1])
			}
			stored, err := w.core.ConsultRecord(ctx, w.app.ID, d.SessionID)
			if err != nil || d.Record == nil || !reflect.DeepEqual(*d.Record, stored) {
				t.Errorf("consult.ended of %d: record %+v, stored %+v (%v)", d.SessionID, d.Record, stored, err)
			}
		default:
			t.Errorf("unexpected %s", h.Event)
		}
	}
	for typ, ids := range got {
		for id, n := range ids {
			if n != 1 {
				t.Errorf("%s of %d arrived %d times", typ, id, n)
			}
		}
	}
	if len(got[chat.WebhookConsultStarted]) != 3 || len(got[chat.WebhookConsultEnded]) != 4 {
		t.Errorf("started for %v, ended for %v; want 3 and 4 consultations", got[chat.WebhookConsultStarted], got[chat.WebhookConsultEnded])
	}
	// The time-up's record: charged to the deadline, not to when the clock looked.
	if rec, _ := w.core.ConsultRecord(ctx, w.app.ID, r.timeUp); rec.EndReason != chat.EndTimeUp || rec.EndedAt != r.accepted+60_000 ||
		rec.BilledSeconds != 60 || rec.Amount != 200 {
		t.Errorf("time-up record %+v", rec)
	}
	if rec, _ := w.core.ConsultRecord(ctx, w.app.ID, r.firstReply); rec.EndReason != chat.EndByCustomer || rec.ActiveSeconds != 10 {
		t.Errorf("early end record %+v", rec)
	}
}

// commitStore notes, for every outbox event committed, the record kinds
// of the commit that carried it.
type commitStore struct {
	chat.Store
	mu   sync.Mutex
	with map[string][]map[string]bool // event type → per commit carrying one, its record kinds
}

func (s *commitStore) Apply(ctx context.Context, b *chat.Batch) error {
	kinds := map[string]bool{}
	var types []string
	for _, r := range b.Records {
		kinds[r.Kind] = true
		if r.Kind == "wh.ev" {
			var ev struct {
				Type string `json:"type"`
			}
			_ = json.Unmarshal(r.Value, &ev)
			types = append(types, ev.Type)
		}
	}
	err := s.Store.Apply(ctx, b)
	if err == nil && len(types) > 0 {
		s.mu.Lock()
		for _, typ := range types {
			s.with[typ] = append(s.with[typ], kinds)
		}
		s.mu.Unlock()
	}
	return err
}

// The record of the change each event reports, which must be in the
// event's commit.
var changeKind = map[string]string{
	chat.WebhookServiceQueued: "svc.conv", chat.WebhookServiceAssigned: "svc.conv", chat.WebhookServiceResolved: "svc.conv",
	chat.WebhookServiceRated:   "svc.rating",
	chat.WebhookConsultStarted: "consult", chat.WebhookConsultEnded: "consult.bill",
}

// An app whose endpoints want none of these events writes no outbox record
// for them: none without endpoints, none with an endpoint for other types.
// With one that wants them, each step writes one record, in the commit of
// the change it reports (no dispatcher runs here, so the records stay where
// they were written).
func TestWebhookDomainEventsOnlyWhenWanted(t *testing.T) {
	cases := []struct {
		name   string
		events []string
		drive  func(t *testing.T, e *env, clock *whClock)
		want   int
	}{
		{name: "service/no endpoint", drive: func(t *testing.T, e *env, c *whClock) { driveService(t, e, c) }},
		{name: "service/other types", events: []string{chat.WebhookGroupChanged, chat.WebhookConsultEnded},
			drive: func(t *testing.T, e *env, c *whClock) { driveService(t, e, c) }},
		{name: "service/wanted", events: serviceTypes, want: 4,
			drive: func(t *testing.T, e *env, c *whClock) { driveService(t, e, c) }},
		{name: "consult/no endpoint", drive: func(t *testing.T, e *env, c *whClock) { driveConsult(t, e, c) }},
		{name: "consult/other types", events: []string{chat.WebhookGroupChanged, chat.WebhookServiceQueued},
			drive: func(t *testing.T, e *env, c *whClock) { driveConsult(t, e, c) }},
		{name: "consult/wanted", events: consultTypes, want: 7,
			drive: func(t *testing.T, e *env, c *whClock) { driveConsult(t, e, c) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newWHClock()
			st := &commitStore{Store: memstore.New(), with: map[string][]map[string]bool{}}
			e := newEnvOn(t, chat.Config{Now: clock.Now}, st)
			if tc.events != nil {
				url := "https://hooks.example.com/hook"
				if _, err := e.core.CreateWebhookEndpoint(context.Background(), e.app.ID, chat.WebhookEndpointInput{URL: &url, Events: tc.events}); err != nil {
					t.Fatal(err)
				}
			}
			tc.drive(t, e, clock)
			recs, err := e.store.ScanRecords(context.Background(), "wh.ev", nil, nil, 0, false)
			if err != nil || len(recs) != tc.want {
				t.Errorf("outbox records: %d, %v; want %d", len(recs), err, tc.want)
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			n := 0
			for typ, commits := range st.with {
				for _, kinds := range commits {
					n++
					if !kinds[changeKind[typ]] {
						t.Errorf("a %s event was committed without the %q record of its change (with %v)", typ, changeKind[typ], kinds)
					}
				}
			}
			if n != tc.want {
				t.Errorf("%d outbox events committed, want %d", n, tc.want)
			}
		})
	}
}

// Every event type has its body documented in docs/webhooks.md.
func TestWebhookEveryEventTypeDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/webhooks.md")
	if err != nil {
		t.Fatal(err)
	}
	var heads []string
	for _, l := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(l, "### ") {
			heads = append(heads, l)
		}
	}
	for _, typ := range chat.WebhookEventTypes {
		found := false
		for _, h := range heads {
			if strings.Contains(h, "`"+typ+"`") {
				found = true
			}
		}
		if !found {
			t.Errorf("docs/webhooks.md has no \"### `%s`\" section", typ)
		}
	}
}
