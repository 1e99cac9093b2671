package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"chatd/chat"
	"chatd/chat/memstore"
)

// The message operations' webhook events: a recall (by the sender, a
// group admin, the host) and an edit each arrive once, signed, with the
// body docs/webhooks.md shows, written in the commit that stores the
// change; an app that wants neither writes no record for them.

var msgOpTypes = []string{chat.WebhookMessageRecalled, chat.WebhookMessageEdited}

// msgOpWant is one event driveMsgOps caused: its type and data, and the
// messages its commit must hold (the changed one and the op entry).
type msgOpWant struct {
	typ, data  string
	sid        uint64
	seq, opSeq uint64
}

type opAnswer struct {
	Session   uint64 `json:"session_id"`
	Seq       uint64 `json:"seq"`
	OpSeq     uint64 `json:"op_seq"`
	At        int64  `json:"at"`
	EditCount uint32 `json:"edit_count"`
	Duplicate bool   `json:"duplicate"`
}

// driveMsgOps recalls three messages (the sender's own in a private
// session, a member's in a group by an admin, one by the host over the
// server API), recalls the first again (a duplicate: no event) and edits
// a message, moving the clock between the steps so each time is told apart.
func driveMsgOps(t *testing.T, e *env, clock *whClock) []msgOpWant {
	t.Helper()
	ctx := context.Background()
	a, b, c := e.login(e.user("alice")), e.login(e.user("bob")), e.login(e.user("carol"))
	var want []msgOpWant

	// The sender, within the recall window.
	m := data[ack](t, a.ok(`"action":"send","to":"bob","type":"text","content":{"text":"oops"}`))
	clock.Advance(time.Second)
	r := data[opAnswer](t, a.ok(fmt.Sprintf(`"action":"recall","session_id":%d,"seq":%d`, m.Session, m.Seq)))
	want = append(want, msgOpWant{typ: chat.WebhookMessageRecalled, sid: m.Session, seq: m.Seq, opSeq: r.OpSeq,
		data: fmt.Sprintf(`{"session_id":%d,"seq":%d,"op_seq":%d,"by":"alice","at":%d,"from":"alice"}`, m.Session, m.Seq, r.OpSeq, r.At)})
	clock.Advance(time.Second)
	if d := data[opAnswer](t, a.ok(fmt.Sprintf(`"action":"recall","session_id":%d,"seq":%d`, m.Session, m.Seq))); !d.Duplicate || d.OpSeq != r.OpSeq {
		t.Fatalf("second recall answered %+v, want the first's (op_seq %d), duplicate", d, r.OpSeq)
	}

	// A group admin, of another member's message.
	g, err := e.core.CreateGroup(ctx, e.app.ID, chat.GroupInput{Owner: "alice", Name: "g", Members: []string{"bob", "carol"}})
	if err != nil {
		t.Fatal(err)
	}
	a.ok(fmt.Sprintf(`"action":"group_role","session_id":%d,"uid":"bob","role":"admin"`, g.ID))
	gm := data[ack](t, c.ok(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"spam"}`, g.ID)))
	clock.Advance(time.Second)
	r = data[opAnswer](t, b.ok(fmt.Sprintf(`"action":"recall","session_id":%d,"seq":%d`, g.ID, gm.Seq)))
	want = append(want, msgOpWant{typ: chat.WebhookMessageRecalled, sid: gm.Session, seq: gm.Seq, opSeq: r.OpSeq,
		data: fmt.Sprintf(`{"session_id":%d,"seq":%d,"op_seq":%d,"by":"bob","at":%d,"from":"carol"}`, gm.Session, gm.Seq, r.OpSeq, r.At)})

	// The host, of bob's message, long after the sender's window.
	hm := data[ack](t, b.ok(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"old"}`, m.Session)))
	clock.Advance(time.Hour)
	hr, err := e.core.Recall(ctx, e.app.ID, chat.SessionID(hm.Session), hm.Seq, "")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, msgOpWant{typ: chat.WebhookMessageRecalled, sid: hm.Session, seq: hm.Seq, opSeq: hr.OpSeq,
		data: fmt.Sprintf(`{"session_id":%d,"seq":%d,"op_seq":%d,"by":"","at":%d,"from":"bob"}`, hm.Session, hm.Seq, hr.OpSeq, hr.At)})

	// An edit, the message's second.
	em := data[ack](t, a.ok(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"at 7"}`, m.Session)))
	clock.Advance(time.Second)
	a.ok(fmt.Sprintf(`"action":"edit","session_id":%d,"seq":%d,"content":{"text":"at 8"}`, em.Session, em.Seq))
	clock.Advance(time.Second)
	r = data[opAnswer](t, a.ok(fmt.Sprintf(`"action":"edit","session_id":%d,"seq":%d,"type":"text","content":{"text":"at 9, sorry"}`, em.Session, em.Seq)))
	if r.EditCount != 2 {
		t.Fatalf("second edit answered %+v, want edit_count 2", r)
	}
	// Two edits: two events; the test looks at the second's body.
	want = append(want, msgOpWant{typ: chat.WebhookMessageEdited, sid: em.Session, seq: em.Seq, opSeq: r.OpSeq - 1})
	want = append(want, msgOpWant{typ: chat.WebhookMessageEdited, sid: em.Session, seq: em.Seq, opSeq: r.OpSeq,
		data: fmt.Sprintf(`{"session_id":%d,"seq":%d,"op_seq":%d,"by":"alice","at":%d,"edit_count":2,"type":"text","content":{"text":"at 9, sorry"}}`,
			em.Session, em.Seq, r.OpSeq, r.At)})
	return want
}

func TestWebhookMessageOpEvents(t *testing.T) {
	w := newWHEnv(t, msgOpTypes, chat.WebhookConfig{})
	want := driveMsgOps(t, w.env, w.clock)

	w.rcv.waitFor(t, "the recall and edit events", nil, func(hs []hook) bool { return len(hs) >= len(want) })
	time.Sleep(50 * time.Millisecond) // let a duplicate show up before counting
	hs := w.rcv.all()
	if len(hs) != len(want) {
		t.Fatalf("%d deliveries, want %d (one per recall and edit, none for the repeated recall):\n%s", len(hs), len(want), hookList(hs))
	}
	seen := map[string]bool{}
	byOpSeq := map[string]hook{}
	for _, h := range hs {
		verify(t, w.ep.Secret, h)
		if seen[h.ID] {
			t.Errorf("delivery %s arrived twice", h.ID)
		}
		seen[h.ID] = true
		if h.Envelope.App != "shop" {
			t.Errorf("%s: app %q", h.Event, h.Envelope.App)
		}
		var k struct {
			Session uint64 `json:"session_id"`
			OpSeq   uint64 `json:"op_seq"`
		}
		if err := json.Unmarshal(h.Envelope.Data, &k); err != nil {
			t.Fatalf("%s data %s: %v", h.Event, h.Envelope.Data, err)
		}
		key := fmt.Sprintf("%d/%d", k.Session, k.OpSeq)
		if _, dup := byOpSeq[key]; dup {
			t.Errorf("two deliveries for op %s:\n%s", key, hookList(hs))
		}
		byOpSeq[key] = h
	}
	for _, wt := range want {
		h, ok := byOpSeq[fmt.Sprintf("%d/%d", wt.sid, wt.opSeq)]
		switch {
		case !ok:
			t.Errorf("no delivery for the %s of %d/%d (op %d)", wt.typ, wt.sid, wt.seq, wt.opSeq)
		case h.Event != wt.typ:
			t.Errorf("op %d arrived as %s, want %s", wt.opSeq, h.Event, wt.typ)
		case wt.data != "" && string(h.Envelope.Data) != wt.data:
			t.Errorf("%s data\n got %s\nwant %s", h.Event, h.Envelope.Data, wt.data)
		}
	}
}

// opCommitStore notes, for every message-op event committed, the messages
// of the commit that carried it.
type opCommitStore struct {
	chat.Store
	mu   sync.Mutex
	with []opCommit
}

type opCommit struct {
	typ  string
	data json.RawMessage
	msgs map[string]string // "session/seq" → type
}

func (s *opCommitStore) Apply(ctx context.Context, b *chat.Batch) error {
	var evs []opCommit
	for _, r := range b.Records {
		if r.Kind != "wh.ev" {
			continue
		}
		var ev struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(r.Value, &ev)
		if ev.Type == chat.WebhookMessageRecalled || ev.Type == chat.WebhookMessageEdited {
			evs = append(evs, opCommit{typ: ev.Type, data: ev.Data})
		}
	}
	err := s.Store.Apply(ctx, b)
	if err == nil && len(evs) > 0 {
		msgs := map[string]string{}
		for _, m := range b.Messages {
			msgs[fmt.Sprintf("%d/%d", m.Session, m.Seq)] = m.Type
		}
		s.mu.Lock()
		for _, ev := range evs {
			ev.msgs = msgs
			s.with = append(s.with, ev)
		}
		s.mu.Unlock()
	}
	return err
}

// An app whose endpoints want neither event writes no outbox record for a
// recall or an edit (none without endpoints, none with endpoints for other
// types); with one that wants them, each recall and edit writes one, in
// the commit that stores the changed message and the op entry (no
// dispatcher runs here, so the records stay where they were written).
func TestWebhookMessageOpEventsOnlyWhenWanted(t *testing.T) {
	cases := []struct {
		name   string
		events []string
		wanted bool
	}{
		{name: "no endpoint"},
		{name: "other types", events: []string{chat.WebhookConsultEnded, chat.WebhookServiceQueued}},
		{name: "wanted", events: msgOpTypes, wanted: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newWHClock()
			st := &opCommitStore{Store: memstore.New()}
			e := newEnvOn(t, chat.Config{Now: clock.Now}, st)
			if tc.events != nil {
				url := "https://hooks.example.com/hook"
				if _, err := e.core.CreateWebhookEndpoint(context.Background(), e.app.ID, chat.WebhookEndpointInput{URL: &url, Events: tc.events}); err != nil {
					t.Fatal(err)
				}
			}
			want := driveMsgOps(t, e, clock)
			n := 0
			if tc.wanted {
				n = len(want)
			}
			recs, err := e.store.ScanRecords(context.Background(), "wh.ev", nil, nil, 0, false)
			if err != nil || len(recs) != n {
				t.Errorf("outbox records: %d, %v; want %d", len(recs), err, n)
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			if len(st.with) != n {
				t.Fatalf("%d recall/edit events committed, want %d", len(st.with), n)
			}
			for i, c := range st.with {
				wt := want[i] // the journal commits them in the order they were made
				if c.typ != wt.typ {
					t.Errorf("event %d is %s, want %s", i, c.typ, wt.typ)
				}
				if wt.data != "" && string(c.data) != wt.data {
					t.Errorf("event %d data %s, want %s", i, c.data, wt.data)
				}
				changed := "recalled"
				if wt.typ == chat.WebhookMessageEdited {
					changed = "text"
				}
				if got := c.msgs[fmt.Sprintf("%d/%d", wt.sid, wt.seq)]; got != changed {
					t.Errorf("%s of %d/%d: its commit holds that message as %q, want %q (messages %v)", wt.typ, wt.sid, wt.seq, got, changed, c.msgs)
				}
				if got := c.msgs[fmt.Sprintf("%d/%d", wt.sid, wt.opSeq)]; got != chat.TypeOp {
					t.Errorf("%s of %d/%d: its commit lacks the op entry %d (messages %v)", wt.typ, wt.sid, wt.seq, wt.opSeq, c.msgs)
				}
			}
		})
	}
}
