package chat_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/chat"
	"chatd/internal/webhook"
)

// whClock is a replaceable clock for the core and its dispatcher.
type whClock struct{ ns atomic.Int64 }

func newWHClock() *whClock {
	c := &whClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *whClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *whClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// hook is one request the receiver got.
type hook struct {
	ID, Event, Timestamp, Signature string
	Body                            []byte
	Envelope                        struct {
		ID      string          `json:"id"`
		EventID string          `json:"event_id"`
		Type    string          `json:"type"`
		App     string          `json:"app"`
		Data    json.RawMessage `json:"data"`
	}
}

// receiver is a real HTTP server on 127.0.0.1 that records deliveries.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []hook
	notify chan struct{}
	// answer decides the status for a request (nil: 200).
	answer func(h *hook, nth int) int
	hang   chan struct{} // when not nil, requests wait for it to close
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{notify: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		h := hook{ID: req.Header.Get("X-Chatd-Delivery"), Event: req.Header.Get("X-Chatd-Event"),
			Timestamp: req.Header.Get("X-Chatd-Timestamp"), Signature: req.Header.Get("X-Chatd-Signature"), Body: body}
		if err := json.Unmarshal(body, &h.Envelope); err != nil {
			t.Errorf("webhook body is not JSON: %q", body)
		}
		r.mu.Lock()
		hang := r.hang
		r.mu.Unlock()
		if hang != nil {
			select {
			case <-hang:
			case <-req.Context().Done():
				return
			}
		}
		r.mu.Lock()
		r.got = append(r.got, h)
		n := 0
		for _, g := range r.got {
			if g.ID == h.ID {
				n++
			}
		}
		answer := r.answer
		r.mu.Unlock()
		code := 200
		if answer != nil {
			code = answer(&h, n)
		}
		w.WriteHeader(code)
		select {
		case r.notify <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(func() {
		r.mu.Lock()
		if r.hang != nil {
			select {
			case <-r.hang:
			default:
				close(r.hang)
			}
		}
		r.mu.Unlock()
		r.srv.Close()
	})
	return r
}

func (r *receiver) all() []hook {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hook(nil), r.got...)
}

// waitFor waits until match holds for the recorded hooks, running tick
// (e.g. advancing the clock) between looks.
func (r *receiver) waitFor(t *testing.T, what string, tick func(), match func([]hook) bool) []hook {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if hs := r.all(); match(hs) {
			return hs
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; got %d hooks: %s", what, len(r.all()), hookList(r.all()))
		}
		if tick != nil {
			tick()
		}
		select {
		case <-r.notify:
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func hookList(hs []hook) string {
	var sb strings.Builder
	for _, h := range hs {
		sb.WriteString(h.Event + " " + h.ID + " " + string(h.Body) + "\n")
	}
	return sb.String()
}

func ofType(hs []hook, typ string) []hook {
	var out []hook
	for _, h := range hs {
		if h.Event == typ {
			out = append(out, h)
		}
	}
	return out
}

// verify checks a hook's signature as docs/webhooks.md tells hosts to.
func verify(t *testing.T, secret string, h hook) {
	t.Helper()
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(h.Timestamp + "."))
	m.Write(h.Body)
	want := "v1=" + hex.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(h.Signature)) {
		t.Errorf("%s %s: signature %q, want %q", h.Event, h.ID, h.Signature, want)
	}
	ts, err := strconv.ParseInt(h.Timestamp, 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		t.Errorf("%s: timestamp %q is not now", h.Event, h.Timestamp)
	}
	if h.Envelope.ID != h.ID || h.Envelope.Type != h.Event {
		t.Errorf("body id/type %q/%q disagree with headers %q/%q", h.Envelope.ID, h.Envelope.Type, h.ID, h.Event)
	}
}

type whEnv struct {
	*env
	clock *whClock
	rcv   *receiver
	ep    chat.WebhookEndpoint
}

// newWHEnv starts a core with a dispatcher on a fake clock, and an
// endpoint for events at a receiver on 127.0.0.1.
func newWHEnv(t *testing.T, events []string, wcfg chat.WebhookConfig) *whEnv {
	t.Helper()
	clock := newWHClock()
	e := newEnv(t, chat.Config{Now: clock.Now})
	w := &whEnv{env: e, clock: clock, rcv: newReceiver(t)}
	if wcfg.Sender == nil {
		wcfg.Sender = webhook.New(webhook.Config{AllowLoopback: true})
	}
	if wcfg.Tick == 0 {
		wcfg.Tick = 2 * time.Millisecond
	}
	runWH(t, e, wcfg)
	ctx := context.Background()
	url := w.rcv.srv.URL + "/hook"
	ep, err := e.core.CreateWebhookEndpoint(ctx, e.app.ID, chat.WebhookEndpointInput{URL: &url, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	w.ep = ep
	return w
}

// runWH starts e's dispatcher; e.stop then stops it before the core (it
// writes through the journal).
func runWH(t *testing.T, e *env, wcfg chat.WebhookConfig) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.core.RunWebhooks(ctx, wcfg) }()
	stopCore := e.stop
	e.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunWebhooks: %v", err)
		}
		stopCore()
	}
}

func TestWebhookEveryEventArrivesOnceSigned(t *testing.T) {
	w := newWHEnv(t, []string{"*"}, chat.WebhookConfig{PushDebounce: time.Second})
	ctx := context.Background()
	ta, _, _ := w.user("alice"), w.user("bob"), w.user("carol")
	a := w.login(ta) // user.online
	if f := a.do(`"action":"send","to":"bob","type":"text","content":{"text":"hi bob"}`); !f.OK {
		t.Fatalf("send: %+v", f.Error) // session.created + message.created (bob offline) + push.offline
	}
	g, err := w.core.CreateGroup(ctx, w.app.ID, chat.GroupInput{Owner: "alice", Name: "g", Members: []string{"bob"}})
	if err != nil { // session.created + group.changed create
		t.Fatal(err)
	}
	if f := a.do(`"action":"group_add","session_id":` + strconv.FormatUint(uint64(g.ID), 10) + `,"uids":["carol"]`); !f.OK {
		t.Fatalf("group_add: %+v", f.Error)
	}
	a.h.HandleClose() // user.offline

	// The chat events; customer service's and consultations' have tests
	// of their own (TestWebhookServiceEvents, TestWebhookConsultEvents).
	chatTypes := []string{chat.WebhookMessageCreated, chat.WebhookPushOffline, chat.WebhookSessionCreated,
		chat.WebhookGroupChanged, chat.WebhookUserOnline, chat.WebhookUserOffline}
	hs := w.rcv.waitFor(t, "every chat event type", func() { w.clock.Advance(300 * time.Millisecond) }, func(hs []hook) bool {
		for _, typ := range chatTypes {
			if len(ofType(hs, typ)) == 0 {
				return false
			}
		}
		return len(ofType(hs, chat.WebhookGroupChanged)) >= 2
	})
	// Let any duplicate show up before counting.
	time.Sleep(50 * time.Millisecond)
	hs = w.rcv.all()
	seen := map[string]int{}
	for _, h := range hs {
		seen[h.ID]++
		verify(t, w.ep.Secret, h)
		if h.Envelope.App != "shop" {
			t.Errorf("%s: app %q", h.Event, h.Envelope.App)
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("delivery %s arrived %d times", id, n)
		}
	}
	want := map[string]int{chat.WebhookMessageCreated: 1, chat.WebhookPushOffline: 1, chat.WebhookSessionCreated: 2,
		chat.WebhookGroupChanged: 2, chat.WebhookUserOnline: 1, chat.WebhookUserOffline: 1}
	for typ, n := range want {
		if got := len(ofType(hs, typ)); got != n {
			t.Errorf("%s: %d deliveries, want %d\n%s", typ, got, n, hookList(hs))
		}
	}
	var mc struct {
		Message struct {
			From    string          `json:"from"`
			Content json.RawMessage `json:"content"`
			MsgID   string          `json:"msg_id"`
		} `json:"message"`
		Recipients []struct {
			UID     string `json:"uid"`
			Offline bool   `json:"offline"`
		} `json:"recipients"`
	}
	if err := json.Unmarshal(ofType(hs, chat.WebhookMessageCreated)[0].Envelope.Data, &mc); err != nil {
		t.Fatal(err)
	}
	if mc.Message.From != "alice" || string(mc.Message.Content) != `{"text":"hi bob"}` || len(mc.Recipients) != 1 ||
		mc.Recipients[0].UID != "bob" || !mc.Recipients[0].Offline {
		t.Errorf("message.created data = %s", ofType(hs, chat.WebhookMessageCreated)[0].Envelope.Data)
	}
	var gc struct {
		Op   string   `json:"op"`
		UIDs []string `json:"uids"`
	}
	ops := []string{}
	for _, h := range ofType(hs, chat.WebhookGroupChanged) {
		_ = json.Unmarshal(h.Envelope.Data, &gc)
		ops = append(ops, gc.Op)
	}
	sort.Strings(ops)
	if strings.Join(ops, ",") != "add,create" {
		t.Errorf("group.changed ops = %v", ops)
	}
	st := w.core.WebhookStats()
	if st.Delivered != uint64(len(hs)) || st.Depth != 0 {
		t.Errorf("stats = %+v, want %d delivered and depth 0", st, len(hs))
	}
}

func TestWebhookRetriesKeepTheDeliveryID(t *testing.T) {
	w := newWHEnv(t, []string{chat.WebhookSessionCreated}, chat.WebhookConfig{RetryBase: time.Second})
	w.rcv.answer = func(h *hook, nth int) int {
		if nth <= 3 {
			return 503
		}
		return 200
	}
	sub := w.core.Subscribe([]chat.Filter{{Topic: chat.TopicWebhook}}, 64)
	defer sub.Close()
	w.user("alice")
	w.user("bob")
	if _, err := w.core.Send(context.Background(), w.app.ID, chat.SendInput{From: "alice", To: "bob", Type: "text",
		Content: json.RawMessage(`{"text":"x"}`)}); err != nil {
		t.Fatal(err)
	}
	hs := w.rcv.waitFor(t, "a success after 3 failures", func() { w.clock.Advance(2 * time.Second) },
		func(hs []hook) bool { return len(hs) == 4 })
	for _, h := range hs {
		if h.ID != hs[0].ID || string(h.Body) != string(hs[0].Body) {
			t.Errorf("attempt %s %s differs from the first %s %s", h.ID, h.Body, hs[0].ID, hs[0].Body)
		}
		verify(t, w.ep.Secret, h)
	}
	// The result is recorded: the list shows it delivered after 4 attempts.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ds, err := w.core.WebhookDeliveries(context.Background(), w.app.ID, 10, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 && ds[0].Status == chat.DeliveryDelivered {
			if ds[0].Attempts != 4 || ds[0].ResponseCode != 200 || ds[0].ID != hs[0].ID {
				t.Errorf("delivery = %+v", ds[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries = %+v", ds)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := w.core.WebhookStats(); st.Retries != 3 || st.Delivered != 1 || st.Attempts != 4 {
		t.Errorf("stats = %+v", st)
	}
	// The live stream's webhook topic showed every attempt.
	var details []string
	for len(details) < 4 {
		select {
		case ev := <-sub.C:
			if ev.Topic != chat.TopicWebhook || ev.App != "shop" || ev.Type != chat.WebhookSessionCreated {
				t.Errorf("stream event %+v", ev)
			}
			details = append(details, ev.Detail)
		case <-time.After(5 * time.Second):
			t.Fatalf("stream showed %d attempts: %q", len(details), details)
		}
	}
	if !strings.Contains(details[0], "attempt 1 failed (answered HTTP 503), retried in") || !strings.Contains(details[3], "delivered, HTTP 200") {
		t.Errorf("stream details %q", details)
	}
}

func TestWebhookGivesUpThenRedelivers(t *testing.T) {
	w := newWHEnv(t, []string{chat.WebhookSessionCreated}, chat.WebhookConfig{RetryBase: time.Second, RetryFor: time.Minute})
	var healthy atomic.Bool
	w.rcv.answer = func(*hook, int) int {
		if healthy.Load() {
			return 204
		}
		return 500
	}
	ctx := context.Background()
	w.user("alice")
	w.user("bob")
	if _, err := w.core.CreateGroup(ctx, w.app.ID, chat.GroupInput{Owner: "alice", Members: []string{"bob"}}); err != nil {
		t.Fatal(err)
	}
	var failed chat.WebhookDelivery
	deadline := time.Now().Add(10 * time.Second)
	for failed.ID == "" {
		w.clock.Advance(10 * time.Second)
		time.Sleep(5 * time.Millisecond)
		ds, _ := w.core.WebhookDeliveries(ctx, w.app.ID, 10, "", chat.DeliveryFailed)
		if len(ds) == 1 {
			failed = ds[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("never marked failed; hooks: %s", hookList(w.rcv.all()))
		}
	}
	if failed.ResponseCode != 500 || failed.Attempts < 2 {
		t.Errorf("failed delivery = %+v", failed)
	}
	if st := w.core.WebhookStats(); st.Failed != 1 || st.Depth != 0 {
		t.Errorf("stats = %+v", st)
	}
	before := len(w.rcv.all())
	healthy.Store(true)
	if n, err := w.core.RedeliverWebhooks(ctx, w.app.ID, []string{failed.ID}, 0, 0, "", false); err != nil || n != 1 {
		t.Fatalf("redeliver = %d, %v", n, err)
	}
	hs := w.rcv.waitFor(t, "the redelivery", nil, func(hs []hook) bool { return len(hs) == before+1 })
	if got := hs[len(hs)-1]; got.ID != failed.ID {
		t.Errorf("redelivered id %s, want %s", got.ID, failed.ID)
	}
	// A range redelivery of a delivered event sends it once more.
	ev, _ := strconv.ParseUint(failed.EventID, 10, 64)
	if n, err := w.core.RedeliverWebhooks(ctx, w.app.ID, nil, ev, ev, "", false); err != nil || n != 1 {
		t.Fatalf("range redeliver = %d, %v", n, err)
	}
	w.rcv.waitFor(t, "the range redelivery", nil, func(hs []hook) bool { return len(hs) == before+2 })
	if _, err := w.core.RedeliverWebhooks(ctx, w.app.ID, []string{"nope"}, 0, 0, "", false); codeOf(err) != chat.CodeBadRequest {
		t.Errorf("redeliver of a bad id: %v", err)
	}
}

func TestWebhookOfflinePushIsDebouncedPerMember(t *testing.T) {
	w := newWHEnv(t, []string{chat.WebhookPushOffline}, chat.WebhookConfig{PushDebounce: 2 * time.Second})
	ctx := context.Background()
	ta, tb := w.user("alice"), w.user("bob")
	w.user("carol")
	w.user("dave")
	w.login(tb) // bob is online: no push for him
	a := w.login(ta)
	g, err := w.core.CreateGroup(ctx, w.app.ID, chat.GroupInput{Owner: "alice", Members: []string{"bob", "carol", "dave"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if f := a.do(`"action":"send","session_id":` + strconv.FormatUint(uint64(g.ID), 10) + `,"type":"text","content":{"text":"m` + strconv.Itoa(i) + `"}`); !f.OK {
			t.Fatalf("send: %+v", f.Error)
		}
	}
	time.Sleep(50 * time.Millisecond) // the dispatcher has seen the burst
	if hs := w.rcv.all(); len(hs) != 0 {
		t.Fatalf("pushes before the debounce window ended: %s", hookList(hs))
	}
	w.clock.Advance(2 * time.Second)
	hs := w.rcv.waitFor(t, "two pushes", nil, func(hs []hook) bool { return len(hs) >= 2 })
	time.Sleep(50 * time.Millisecond)
	hs = w.rcv.all()
	if len(hs) != 2 {
		t.Fatalf("%d pushes, want 2 (carol, dave): %s", len(hs), hookList(hs))
	}
	got := map[string]bool{}
	for _, h := range hs {
		var p struct {
			UID      string `json:"uid"`
			Count    int    `json:"count"`
			Messages []struct {
				Preview string `json:"preview"`
				From    string `json:"from"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(h.Envelope.Data, &p); err != nil {
			t.Fatal(err)
		}
		got[p.UID] = true
		if p.Count != 5 || len(p.Messages) != 5 || p.Messages[4].Preview != "m4" || p.Messages[0].From != "alice" {
			t.Errorf("push for %s = %s", p.UID, h.Envelope.Data)
		}
		verify(t, w.ep.Secret, h)
	}
	if !got["carol"] || !got["dave"] {
		t.Errorf("pushes went to %v, want carol and dave", got)
	}
	// The message events are gone from the outbox once pushed.
	deadline := time.Now().Add(5 * time.Second)
	for w.core.WebhookStats().Depth != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("outbox depth %d after every push was delivered", w.core.WebhookStats().Depth)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWebhookHangingReceiverDoesNotDelayAcks(t *testing.T) {
	measure := func(t *testing.T, hang bool) time.Duration {
		w := newWHEnv(t, []string{chat.WebhookMessageCreated}, chat.WebhookConfig{Timeout: time.Hour})
		if hang {
			w.rcv.hang = make(chan struct{})
		}
		ta, _ := w.user("alice"), w.user("bob")
		a := w.login(ta)
		a.do(`"action":"send","to":"bob","type":"text","content":{"text":"warm"}`)
		const n = 200
		var total time.Duration
		for i := 0; i < n; i++ {
			start := time.Now()
			if f := a.do(`"action":"send","to":"bob","type":"text","content":{"text":"x"}`); !f.OK {
				t.Fatalf("send: %+v", f.Error)
			}
			total += time.Since(start)
		}
		if hang {
			// Every ack came while the receiver was still holding the
			// first delivery: the sends never waited for it.
			if got := len(w.rcv.all()); got != 0 {
				t.Fatalf("receiver answered %d while hanging", got)
			}
		}
		return total / n
	}
	base := measure(t, false)
	hung := measure(t, true)
	t.Logf("mean send→ack with a healthy receiver %v, with a hanging one %v", base, hung)
}

func TestWebhookLoopbackRefusedByDefault(t *testing.T) {
	s := webhook.New(webhook.Config{})
	for _, u := range []string{"http://127.0.0.1:8080/x", "http://[::1]/x", "http://localhost/x", "http://169.254.169.254/latest", "http://10.0.0.1/"} {
		if err := s.CheckURL(u); err == nil {
			t.Errorf("CheckURL(%s) = nil, want refused", u)
		}
	}
	if err := s.CheckURL("https://hooks.example.com/x"); err != nil {
		t.Errorf("public host refused: %v", err)
	}
	// Registering a loopback URL is refused with the rules wired in.
	clock := newWHClock()
	e := newEnv(t, chat.Config{Now: clock.Now, CheckWebhookURL: s.CheckURL})
	rcv := newReceiver(t)
	url := rcv.srv.URL
	_, err := e.core.CreateWebhookEndpoint(context.Background(), e.app.ID, chat.WebhookEndpointInput{URL: &url, Events: []string{"*"}})
	if codeOf(err) != chat.CodeBadRequest || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("create loopback endpoint: %v", err)
	}
	// An endpoint registered without the rules (e.g. before the setting
	// was turned off) is refused when sent to: nothing reaches the
	// receiver, and the delivery says why.
	e2 := newWHEnv(t, []string{chat.WebhookSessionCreated}, chat.WebhookConfig{Sender: s})
	e2.user("alice")
	e2.user("bob")
	if _, err := e2.core.CreateGroup(context.Background(), e2.app.ID, chat.GroupInput{Owner: "alice", Members: []string{"bob"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ds, _ := e2.core.WebhookDeliveries(context.Background(), e2.app.ID, 10, "", "")
		if len(ds) == 1 && ds[0].Attempts > 0 {
			if !strings.Contains(ds[0].Error, "loopback") || ds[0].ResponseCode != 0 {
				t.Errorf("delivery = %+v, want refused as loopback", ds[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no attempt recorded: %+v", ds)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := len(e2.rcv.all()); got != 0 {
		t.Errorf("the receiver on loopback got %d requests", got)
	}
}

func TestWebhookNoEndpointWritesNothing(t *testing.T) {
	e := newEnv(t, chat.Config{})
	ta, _ := e.user("alice"), e.user("bob")
	a := e.login(ta)
	for i := 0; i < 10; i++ {
		a.do(`"action":"send","to":"bob","type":"text","content":{"text":"x"}`)
	}
	recs, err := e.store.ScanRecords(context.Background(), "wh.ev", nil, nil, 0, false)
	if err != nil || len(recs) != 0 {
		t.Errorf("outbox records without any endpoint: %d, %v", len(recs), err)
	}
}

func TestWebhookOutboxBoundDropsAndCounts(t *testing.T) {
	// No dispatcher runs, so nothing leaves the outbox while the test
	// fills it: the bound alone decides (a running dispatcher would race
	// the sends for the same slots).
	e := newEnv(t, chat.Config{})
	ctx := context.Background()
	url := "https://hooks.example.com/hook"
	if _, err := e.core.CreateWebhookEndpoint(ctx, e.app.ID, chat.WebhookEndpointInput{URL: &url, Events: []string{chat.WebhookPushOffline}}); err != nil {
		t.Fatal(err)
	}
	e.core.SetWebhookOutboxMaxForTest(3)
	ta, _ := e.user("alice"), e.user("bob")
	a := e.login(ta)
	for i := 0; i < 6; i++ {
		if f := a.do(`"action":"send","to":"bob","type":"text","content":{"text":"x"}`); !f.OK {
			t.Fatalf("send %d: %+v", i, f.Error) // a full outbox never refuses a message
		}
	}
	st := e.core.WebhookStats()
	if st.Dropped != 3 || st.Depth != 3 {
		t.Errorf("stats = %+v, want 3 dropped at depth 3", st)
	}
}

func TestWebhookEndpointValidation(t *testing.T) {
	e := newEnv(t, chat.Config{})
	ctx := context.Background()
	bad := []struct {
		name string
		in   chat.WebhookEndpointInput
		code chat.Code
	}{
		{name: "no url", in: chat.WebhookEndpointInput{Events: []string{"*"}}, code: chat.CodeBadRequest},
		{name: "ftp", in: chat.WebhookEndpointInput{URL: ptr("ftp://x/"), Events: []string{"*"}}, code: chat.CodeBadRequest},
		{name: "no events", in: chat.WebhookEndpointInput{URL: ptr("https://x/")}, code: chat.CodeBadRequest},
		{name: "unknown event", in: chat.WebhookEndpointInput{URL: ptr("https://x/"), Events: []string{"nope"}}, code: chat.CodeBadRequest},
		{name: "short secret", in: chat.WebhookEndpointInput{URL: ptr("https://x/"), Events: []string{"*"}, Secret: ptr("short")}, code: chat.CodeBadRequest},
	}
	for _, tc := range bad {
		if _, err := e.core.CreateWebhookEndpoint(ctx, e.app.ID, tc.in); codeOf(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	ep, err := e.core.CreateWebhookEndpoint(ctx, e.app.ID, chat.WebhookEndpointInput{URL: ptr("https://x/"), Events: []string{"user.online"}})
	if err != nil || !ep.Enabled || !strings.HasPrefix(ep.Secret, "whsec_") {
		t.Fatalf("create = %+v, %v", ep, err)
	}
	off := false
	if ep, err = e.core.UpdateWebhookEndpoint(ctx, e.app.ID, ep.ID, chat.WebhookEndpointInput{Enabled: &off}); err != nil || ep.Enabled || ep.URL != "https://x/" {
		t.Fatalf("update = %+v, %v", ep, err)
	}
	if err := e.core.DeleteWebhookEndpoint(ctx, e.app.ID, ep.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.core.DeleteWebhookEndpoint(ctx, e.app.ID, ep.ID); codeOf(err) != chat.CodeNotFound {
		t.Errorf("second delete: %v", err)
	}
	if eps, _ := e.core.WebhookEndpoints(ctx, e.app.ID); len(eps) != 0 {
		t.Errorf("endpoints after delete: %+v", eps)
	}
}

func ptr[T any](v T) *T { return &v }

func codeOf(err error) chat.Code {
	var e *chat.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Writers that run at once (each group's creation is its own commit) get
// every event delivered: the outbox is read in commit order.
func TestWebhookConcurrentWritersAllDelivered(t *testing.T) {
	w := newWHEnv(t, []string{chat.WebhookSessionCreated}, chat.WebhookConfig{})
	w.user("alice")
	w.user("bob")
	const n = 30
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := w.core.CreateGroup(context.Background(), w.app.ID, chat.GroupInput{Owner: "alice", Members: []string{"bob"}}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	w.rcv.waitFor(t, "every group's session.created", nil, func(hs []hook) bool { return len(hs) == n })
}

func TestBeforeSendHook(t *testing.T) {
	w := newWHEnv(t, []string{chat.WebhookUserOnline}, chat.WebhookConfig{})
	ctx := context.Background()
	var mode atomic.Value
	mode.Store("allow")
	var hang chan struct{}
	var calls atomic.Int32
	filter := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Type string `json:"type"`
			Data struct {
				From    string          `json:"from"`
				Content json.RawMessage `json:"content"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &req); err != nil || req.Type != chat.WebhookBeforeSend || req.Data.From != "alice" {
			t.Errorf("hook request %s", body)
		}
		switch mode.Load().(string) {
		case "allow":
			rw.Write([]byte(`{"action":"allow"}`))
		case "reject":
			rw.Write([]byte(`{"action":"reject","reason":"no swearing"}`))
		case "rewrite":
			rw.Write([]byte(`{"action":"rewrite","content":{"text":"***"}}`))
		case "hang":
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		}
	}))
	defer filter.Close()
	ta, tb := w.user("alice"), w.user("bob")
	a, b := w.login(ta), w.login(tb)
	url := filter.URL
	// A generous timeout while the filter answers (a loaded box under
	// -race can take over 100 ms for a loopback call, which would fall
	// back to allow); a short one once it hangs.
	h, err := w.core.SetBeforeSendHook(ctx, w.app.ID, chat.BeforeSendHookInput{URL: &url, TimeoutMS: ptr(5000)})
	if err != nil || !h.Enabled || h.OnTimeout != "allow" {
		t.Fatalf("set hook = %+v, %v", h, err)
	}
	send := func(text string) frame {
		return a.do(`"action":"send","to":"bob","type":"text","content":{"text":"` + text + `"}`)
	}
	// allow: stored as sent.
	if f := send("hello"); !f.OK {
		t.Fatalf("allowed send: %+v", f.Error)
	}
	if ev := data[msgEvent](t, b.wait(t, event("message"))); string(ev.Content) != `{"text":"hello"}` {
		t.Errorf("bob got %s", ev.Content)
	}
	// reject: forbidden with the reason, nothing stored.
	mode.Store("reject")
	if f := send("darn"); f.OK || f.Error.Code != chat.CodeForbidden || !strings.Contains(f.Error.Message, "no swearing") {
		t.Fatalf("rejected send: %+v", f)
	}
	// rewrite: stored rewritten.
	mode.Store("rewrite")
	if f := send("darn"); !f.OK {
		t.Fatalf("rewritten send: %+v", f.Error)
	}
	if ev := data[msgEvent](t, b.wait(t, event("message"))); string(ev.Content) != `{"text":"***"}` {
		t.Errorf("bob got %s, want the rewrite", ev.Content)
	}
	// timeout, fallback allow: stored.
	if _, err := w.core.SetBeforeSendHook(ctx, w.app.ID, chat.BeforeSendHookInput{TimeoutMS: ptr(100)}); err != nil {
		t.Fatal(err)
	}
	mode.Store("hang")
	hang = make(chan struct{})
	defer close(hang)
	if f := send("late"); !f.OK {
		t.Fatalf("timed-out send with fallback allow: %+v", f.Error)
	}
	// timeout, fallback reject: unavailable.
	if _, err := w.core.SetBeforeSendHook(ctx, w.app.ID, chat.BeforeSendHookInput{OnTimeout: ptr("reject")}); err != nil {
		t.Fatal(err)
	}
	if f := send("late"); f.OK || f.Error.Code != chat.CodeUnavailable {
		t.Fatalf("timed-out send with fallback reject: %+v", f)
	}
	// The server API's sends go through it too.
	if _, err := w.core.Send(ctx, w.app.ID, chat.SendInput{From: "alice", To: "bob", Type: "text", Content: json.RawMessage(`{"text":"x"}`)}); codeOf(err) != chat.CodeUnavailable {
		t.Fatalf("server API send with a hanging hook and fallback reject: %v", err)
	}
	// Disabled: no call at all.
	if _, err := w.core.SetBeforeSendHook(ctx, w.app.ID, chat.BeforeSendHookInput{Enabled: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	before := calls.Load()
	if f := send("free"); !f.OK {
		t.Fatalf("send with the hook off: %+v", f.Error)
	}
	if calls.Load() != before {
		t.Error("a disabled hook was called")
	}
	st := w.core.WebhookStats()
	if st.HookCalls != 6 || st.HookRejected != 1 || st.HookRewritten != 1 || st.HookFallbacks != 3 {
		t.Errorf("hook stats = calls %d rejected %d rewritten %d fallbacks %d", st.HookCalls, st.HookRejected, st.HookRewritten, st.HookFallbacks)
	}
	// Bad settings.
	for _, in := range []chat.BeforeSendHookInput{{TimeoutMS: ptr(0)}, {OnTimeout: ptr("maybe")}, {URL: ptr("gopher://x")}} {
		if _, err := w.core.SetBeforeSendHook(ctx, w.app.ID, in); codeOf(err) != chat.CodeBadRequest {
			t.Errorf("SetBeforeSendHook(%+v) = %v", in, err)
		}
	}
}

// The hook's cost per message: mean send→ack over a connection without a
// hook, and with one answering allow from 127.0.0.1.
func TestBeforeSendHookCost(t *testing.T) {
	w := newWHEnv(t, []string{chat.WebhookUserOnline}, chat.WebhookConfig{})
	filter := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		rw.Write([]byte(`{"action":"allow"}`))
	}))
	defer filter.Close()
	ta, _ := w.user("alice"), w.user("bob")
	a := w.login(ta)
	mean := func() time.Duration {
		a.do(`"action":"send","to":"bob","type":"text","content":{"text":"warm"}`)
		const n = 300
		start := time.Now()
		for i := 0; i < n; i++ {
			if f := a.do(`"action":"send","to":"bob","type":"text","content":{"text":"x"}`); !f.OK {
				t.Fatalf("send: %+v", f.Error)
			}
		}
		return time.Since(start) / n
	}
	without := mean()
	url := filter.URL
	if _, err := w.core.SetBeforeSendHook(context.Background(), w.app.ID, chat.BeforeSendHookInput{URL: &url}); err != nil {
		t.Fatal(err)
	}
	with := mean()
	if w.core.WebhookStats().HookCalls < 300 {
		t.Fatalf("hook called %d times", w.core.WebhookStats().HookCalls)
	}
	t.Logf("mean send→ack without a before-send hook %v, with one on 127.0.0.1 %v (+%v per message)", without, with, with-without)
}

// Finished deliveries are deleted once older than Keep; pending ones stay.
func TestWebhookOldDeliveriesArePruned(t *testing.T) {
	w := newWHEnv(t, []string{chat.WebhookSessionCreated}, chat.WebhookConfig{Keep: time.Hour})
	ctx := context.Background()
	w.user("alice")
	w.user("bob")
	if _, err := w.core.CreateGroup(ctx, w.app.ID, chat.GroupInput{Owner: "alice", Members: []string{"bob"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ds, _ := w.core.WebhookDeliveries(ctx, w.app.ID, 10, "", chat.DeliveryDelivered)
		if len(ds) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("never delivered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.clock.Advance(2 * time.Hour)
	for {
		ds, _ := w.core.WebhookDeliveries(ctx, w.app.ID, 10, "", "")
		if len(ds) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still listed two hours later with keep 1h: %+v", ds)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An endpoint never has more than Concurrency attempts in flight; a slow
// one does not hold up another endpoint's deliveries.
func TestWebhookConcurrencyPerEndpoint(t *testing.T) {
	w := newWHEnv(t, []string{chat.WebhookSessionCreated}, chat.WebhookConfig{Concurrency: 2, Timeout: time.Hour})
	var cur, peak atomic.Int32
	release := make(chan struct{})
	w.rcv.answer = func(*hook, int) int { return 200 }
	slow := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		cur.Add(-1)
	}))
	defer slow.Close()
	defer close(release)
	url := slow.URL
	if _, err := w.core.CreateWebhookEndpoint(context.Background(), w.app.ID, chat.WebhookEndpointInput{URL: &url, Events: []string{chat.WebhookSessionCreated}}); err != nil {
		t.Fatal(err)
	}
	w.user("alice")
	w.user("bob")
	const n = 6
	for i := 0; i < n; i++ {
		if _, err := w.core.CreateGroup(context.Background(), w.app.ID, chat.GroupInput{Owner: "alice", Members: []string{"bob"}}); err != nil {
			t.Fatal(err)
		}
	}
	// The healthy endpoint gets all of them while the slow one holds two.
	w.rcv.waitFor(t, "every event at the healthy endpoint", nil, func(hs []hook) bool { return len(hs) == n })
	time.Sleep(50 * time.Millisecond)
	if p := peak.Load(); p != 2 {
		t.Errorf("slow endpoint had %d attempts in flight at most, want 2", p)
	}
}

// An app that wants only push.offline records nothing for a message whose
// recipients are all online: its sends cost what an app's without
// endpoints do.
func TestWebhookPushOnlyRecordsNothingWhenAllOnline(t *testing.T) {
	w := newWHEnv(t, []string{chat.WebhookPushOffline}, chat.WebhookConfig{})
	ta, tb := w.user("alice"), w.user("bob")
	a := w.login(ta)
	w.login(tb)
	for i := 0; i < 5; i++ {
		if f := a.do(`"action":"send","to":"bob","type":"text","content":{"text":"x"}`); !f.OK {
			t.Fatalf("send: %+v", f.Error)
		}
	}
	if st := w.core.WebhookStats(); st.Depth != 0 {
		t.Errorf("outbox depth %d after messages to an online user", st.Depth)
	}
	recs, err := w.store.ScanRecords(context.Background(), "wh.ev", nil, nil, 0, false)
	if err != nil || len(recs) != 0 {
		t.Errorf("outbox records: %d, %v", len(recs), err)
	}
	ds, _ := w.core.WebhookDeliveries(context.Background(), w.app.ID, 10, "", "")
	if len(ds) != 0 {
		t.Errorf("deliveries: %+v", ds)
	}
}

// A send checked by a before-send hook while the webhooks are still
// starting (chatd starts RunWebhooks beside the listeners) waits for
// them, within the hook's timeout, and is filtered: not let through
// unchecked by the fallback.
func TestBeforeSendHookAtStart(t *testing.T) {
	e := newEnv(t, chat.Config{})
	ctx := context.Background()
	var calls atomic.Int32
	filter := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		rw.Write([]byte(`{"action":"reject","reason":"checked"}`))
	}))
	defer filter.Close()
	url := filter.URL
	if _, err := e.core.SetBeforeSendHook(ctx, e.app.ID, chat.BeforeSendHookInput{URL: &url, TimeoutMS: ptr(5000)}); err != nil {
		t.Fatal(err)
	}
	ta, _ := e.user("alice"), e.user("bob")
	a := e.login(ta)
	done := make(chan frame, 1)
	go func() {
		done <- a.do(`"action":"send","to":"bob","type":"text","content":{"text":"early"}`)
	}()
	select {
	case f := <-done:
		t.Fatalf("the send was answered before the webhooks started: %+v", f)
	case <-time.After(50 * time.Millisecond): // waiting, as it should
	}
	runWH(t, e, chat.WebhookConfig{Sender: webhook.New(webhook.Config{AllowLoopback: true}), Tick: 2 * time.Millisecond})
	if f := <-done; f.OK || f.Error.Code != chat.CodeForbidden || !strings.Contains(f.Error.Message, "checked") || calls.Load() != 1 {
		t.Fatalf("send made while starting = %+v (filter called %d times); want rejected by the filter", f, calls.Load())
	}
}
