package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"chatd/chat"
	"chatd/httpapi/apiclient"
	"chatd/internal/teststack"
)

// Message operations (issue 18), end to end with real clients over the
// WebSocket and POST /v1/client, on a real store with a replaceable clock.

// opMsg is a message of a history or sync page, op entries and tombstones
// included.
type opMsg struct {
	Seq       uint64          `json:"seq"`
	From      string          `json:"from"`
	Type      string          `json:"type"`
	Content   json.RawMessage `json:"content"`
	CID       string          `json:"cid"`
	EditedAt  int64           `json:"edited_at"`
	EditCount uint32          `json:"edit_count"`
}

type opPage struct {
	Messages []opMsg `json:"messages"`
}

// opEvent is the data of a recall or edit event.
type opEvent struct {
	Session   uint64          `json:"session_id"`
	OpSeq     uint64          `json:"op_seq"`
	Op        string          `json:"op"`
	Seq       uint64          `json:"seq"`
	By        string          `json:"by"`
	At        int64           `json:"at"`
	Type      string          `json:"type"`
	Content   json.RawMessage `json:"content"`
	EditCount uint32          `json:"edit_count"`
}

// nextOp waits for the recall or edit event of seq, skipping others.
func nextMsgOp(t *testing.T, c *client, name string, seq uint64) opEvent {
	t.Helper()
	for {
		if ev := decode[opEvent](t, c.next(name)); ev.Seq == seq {
			return ev
		}
	}
}

func (p opPage) bySeq(t *testing.T, seq uint64) opMsg {
	t.Helper()
	for _, m := range p.Messages {
		if m.Seq == seq {
			return m
		}
	}
	t.Fatalf("no seq %d in page %+v", seq, p.Messages)
	return opMsg{}
}

// msgopsStack is a chatd with an app, a group (owner olga; alice, bob and
// carol members) and its users' tokens.
type msgopsStack struct {
	*server
	clock  *fakeClock
	app    *apiclient.Client
	tokens map[string]string
	group  uint64
}

func newMsgopsStack(t *testing.T, dir string) *msgopsStack {
	clock := newClock()
	st := &msgopsStack{clock: clock, tokens: map[string]string{}}
	st.server = &server{Server: teststack.Start(t, dir, teststack.Options{Core: chat.Config{Now: clock.Now}}), t: t}
	st.app = st.server.app("shop")
	for _, u := range []string{"olga", "alice", "bob", "carol"} {
		st.tokens[u] = pushUser(t, st.app, u)
	}
	g, err := st.app.CreateGroup(context.Background(), apiclient.GroupInput{Owner: "olga", Name: "g", Members: []string{"alice", "bob", "carol"}})
	if err != nil {
		t.Fatal(err)
	}
	st.group = g.ID
	return st
}

func (st *msgopsStack) login(uid string) *client {
	return login(st.t, st.WSAddr, "shop", st.tokens[uid])
}

func sendText(t *testing.T, c *client, sid uint64, text, cid string) ack {
	t.Helper()
	f := c.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":%q},"cid":%q`, sid, text, cid))
	if !f.OK {
		t.Fatalf("send %q: %+v", text, f.Error)
	}
	return decode[ack](t, f)
}

// TestRecallBySenderAdminAndHost: the sender recalls within the window and
// not after it; another member cannot; the group's owner and the host can
// at any time; members see a recall event live, the message becomes a
// tombstone (sender and seq kept, content gone) and the op entry is in
// sync for a client that was away; a second recall answers the first.
func TestRecallBySenderAdminAndHost(t *testing.T) {
	st := newMsgopsStack(t, t.TempDir())
	ctx := context.Background()
	alice, bob, olga := st.login("alice"), st.login("bob"), st.login("olga")
	carol := st.login("carol")
	g := st.group

	m1 := sendText(t, alice, g, "secret-one", "c1")
	bob.next("message")
	// carol has seen everything up to m1, then goes away.
	carol.conn.Close()

	st.clock.Advance(time.Minute)
	f := alice.do(fmt.Sprintf(`"action":"recall","session_id":%d,"seq":%d`, g, m1.Seq))
	if !f.OK {
		t.Fatalf("recall within the window: %+v", f.Error)
	}
	res := decode[chat.MsgOpResult](t, f)
	if res.Seq != m1.Seq || res.OpSeq != m1.Seq+1 || res.Duplicate {
		t.Fatalf("recall result %+v", res)
	}
	for who, c := range map[string]*client{"bob": bob, "alice": alice, "olga": olga} {
		ev := decode[opEvent](t, c.next("recall"))
		if ev.Session != g || ev.Seq != m1.Seq || ev.OpSeq != res.OpSeq || ev.By != "alice" || ev.Op != "recall" {
			t.Fatalf("%s's recall event %+v", who, ev)
		}
	}
	// History: a tombstone at the same seq, then the op entry.
	h := decode[opPage](t, bob.do(fmt.Sprintf(`"action":"history","session_id":%d`, g)))
	tomb := h.bySeq(t, m1.Seq)
	if tomb.Type != chat.TypeRecalled || tomb.From != "alice" || tomb.CID != "c1" || bytes.Contains(tomb.Content, []byte("secret")) {
		t.Fatalf("tombstone %+v content %s", tomb, tomb.Content)
	}
	var rc chat.Recalled
	if err := json.Unmarshal(tomb.Content, &rc); err != nil || rc.By != "alice" || rc.OpSeq != res.OpSeq || rc.At != st.clock.Now().UnixMilli() {
		t.Fatalf("tombstone content %s (%v)", tomb.Content, err)
	}
	if opm := h.bySeq(t, res.OpSeq); opm.Type != chat.TypeOp || opm.From != "alice" {
		t.Fatalf("op entry %+v", opm)
	}
	// A retried send of the recalled message's cid stores nothing new.
	if r := sendText(t, alice, g, "secret-one", "c1"); !r.Duplicate || r.Seq != m1.Seq {
		t.Fatalf("cid retry after recall: %+v", r)
	}
	// Recalling again answers the first recall.
	if r := decode[chat.MsgOpResult](t, alice.do(fmt.Sprintf(`"action":"recall","session_id":%d,"seq":%d`, g, m1.Seq))); !r.Duplicate || r.OpSeq != res.OpSeq {
		t.Fatalf("second recall %+v", r)
	}

	// Past the window the sender cannot; another member never can.
	m2 := sendText(t, alice, g, "secret-two", "")
	st.clock.Advance(2*time.Minute + time.Second)
	wantReplyError(t, "recall after the window", alice.do(fmt.Sprintf(`"action":"recall","session_id":%d,"seq":%d`, g, m2.Seq)), "forbidden", "recall window")
	wantReplyError(t, "a member recalls another's message", bob.do(fmt.Sprintf(`"action":"recall","session_id":%d,"seq":%d`, g, m2.Seq)), "forbidden", "only the sender")
	wantReplyError(t, "recall of an op entry", olga.do(fmt.Sprintf(`"action":"recall","session_id":%d,"seq":%d`, g, res.OpSeq)), "bad_request", "op entry")
	wantReplyError(t, "recall of a missing seq", olga.do(fmt.Sprintf(`"action":"recall","session_id":%d,"seq":999`, g)), "not_found", "no message 999")
	// The owner can, at any time, over POST /v1/client too.
	raw, err := st.app.ClientDo(ctx, st.tokens["olga"], map[string]any{"id": "h1", "action": "recall", "session_id": g, "seq": m2.Seq})
	if err != nil {
		t.Fatal(err)
	}
	var rep frame
	if err := json.Unmarshal(raw, &rep); err != nil || !rep.OK {
		t.Fatalf("owner's recall over HTTP: %s", raw)
	}
	if ev := nextMsgOp(t, bob, "recall", m2.Seq); ev.By != "olga" {
		t.Fatalf("owner's recall event %+v", ev)
	}

	// The host, at any time, over the server API.
	m3 := sendText(t, bob, g, "secret-three", "")
	st.clock.Advance(time.Hour)
	var hr chat.MsgOpResult
	if err := st.app.Do(ctx, http.MethodPost, "/api/v1/messages/recall", map[string]any{"session_id": g, "seq": m3.Seq}, &hr); err != nil {
		t.Fatal(err)
	}
	if ev := nextMsgOp(t, alice, "recall", m3.Seq); ev.By != "" || ev.OpSeq != hr.OpSeq {
		t.Fatalf("host's recall event %+v (result %+v)", ev, hr)
	}
	err = st.app.Do(ctx, http.MethodPost, "/api/v1/messages/recall", map[string]any{"session_id": g}, nil)
	wantAPIError(t, "host recall without seq", err, "bad_request", "seq")

	// carol comes back and syncs from what she had: the op entries tell
	// her which messages changed, and the messages are tombstones.
	carol = st.login("carol")
	sy := decode[opPage](t, carol.do(fmt.Sprintf(`"action":"sync","session_id":%d,"after":%d`, g, m1.Seq)))
	var recalled []uint64
	for _, m := range sy.Messages {
		if m.Type == chat.TypeOp {
			var o chat.MsgOp
			if err := json.Unmarshal(m.Content, &o); err != nil || o.Op != chat.OpRecall {
				t.Fatalf("op entry %s: %v", m.Content, err)
			}
			recalled = append(recalled, o.Seq)
		}
	}
	if fmt.Sprint(recalled) != fmt.Sprint([]uint64{m1.Seq, m2.Seq, m3.Seq}) {
		t.Fatalf("carol's sync names recalls of %v; want %v", recalled, []uint64{m1.Seq, m2.Seq, m3.Seq})
	}
	for _, seq := range []uint64{m2.Seq, m3.Seq} {
		if m := sy.bySeq(t, seq); m.Type != chat.TypeRecalled {
			t.Fatalf("synced message %d: %+v", seq, m)
		}
	}
}

// TestEditWithinWindow: the sender edits text (and rich) within the
// window; members get an edit event; history returns the latest version
// with edited_at and the count; a cid makes an edit idempotent; nobody
// else may edit, nor after the window, nor other types, nor a recalled
// message; a client that was away learns of it from sync.
func TestEditWithinWindow(t *testing.T) {
	st := newMsgopsStack(t, t.TempDir())
	ctx := context.Background()
	alice, bob := st.login("alice"), st.login("bob")
	g := st.group
	m := sendText(t, alice, g, "draft", "")
	bob.next("message")
	sub := st.Core.Subscribe([]chat.Filter{{Topic: chat.TopicMessage, Type: chat.TypeOp}}, 16)
	defer sub.Close()

	st.clock.Advance(time.Minute)
	f := alice.do(fmt.Sprintf(`"action":"edit","session_id":%d,"seq":%d,"content":{"text":"final"},"cid":"e1"`, g, m.Seq))
	if !f.OK {
		t.Fatalf("edit: %+v", f.Error)
	}
	r1 := decode[chat.MsgOpResult](t, f)
	if r1.EditCount != 1 || r1.OpSeq != m.Seq+1 {
		t.Fatalf("edit result %+v", r1)
	}
	ev := decode[opEvent](t, bob.next("edit"))
	if ev.Seq != m.Seq || ev.By != "alice" || ev.EditCount != 1 || ev.Type != "text" || string(ev.Content) != `{"text":"final"}` {
		t.Fatalf("edit event %+v", ev)
	}
	select {
	case e := <-sub.C:
		if e.Detail != "edit" || e.UID != "alice" || e.Message == nil || e.Message.Seq != r1.OpSeq || len(e.Members) != 4 {
			t.Fatalf("live stream event %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no op event on the live stream")
	}
	// The same cid again: the first edit's answer, nothing new stored.
	if r := decode[chat.MsgOpResult](t, alice.do(fmt.Sprintf(`"action":"edit","session_id":%d,"seq":%d,"content":{"text":"final"},"cid":"e1"`, g, m.Seq))); !r.Duplicate || r.OpSeq != r1.OpSeq {
		t.Fatalf("edit retried with its cid: %+v", r)
	}
	// A second edit over POST /v1/client.
	raw, err := st.app.ClientDo(ctx, st.tokens["alice"], map[string]any{"id": 1, "action": "edit", "session_id": g, "seq": m.Seq, "content": map[string]string{"text": "final2"}})
	if err != nil {
		t.Fatal(err)
	}
	var rep frame
	if err := json.Unmarshal(raw, &rep); err != nil || !rep.OK {
		t.Fatalf("edit over HTTP: %s", raw)
	}
	h := decode[opPage](t, bob.do(fmt.Sprintf(`"action":"history","session_id":%d`, g)))
	got := h.bySeq(t, m.Seq)
	if string(got.Content) != `{"text":"final2"}` || got.EditCount != 2 || got.EditedAt != st.clock.Now().UnixMilli() {
		t.Fatalf("edited message in history %+v content %s", got, got.Content)
	}
	if n := len(h.Messages); n != 3 {
		t.Fatalf("history holds %d entries, want the message and 2 op entries", n)
	}

	wantReplyError(t, "another member edits", bob.do(fmt.Sprintf(`"action":"edit","session_id":%d,"seq":%d,"content":{"text":"x"}`, g, m.Seq)), "forbidden", "only the sender")
	wantReplyError(t, "edit changing the type", alice.do(fmt.Sprintf(`"action":"edit","session_id":%d,"seq":%d,"type":"rich","content":{"html":"x"}`, g, m.Seq)), "bad_request", "keeps the message's type")
	wantReplyError(t, "edit with bad content", alice.do(fmt.Sprintf(`"action":"edit","session_id":%d,"seq":%d,"content":{"text":""}`, g, m.Seq)), "bad_request", "text")
	img := decode[ack](t, alice.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"image","content":{"url":"https://x.test/a.png"}`, g)))
	wantReplyError(t, "edit of an image", alice.do(fmt.Sprintf(`"action":"edit","session_id":%d,"seq":%d,"content":{"url":"https://x.test/b.png"}`, g, img.Seq)), "bad_request", "only text and rich")
	rich := decode[ack](t, alice.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"rich","content":{"html":"<b>a</b>"}`, g)))
	if f := alice.do(fmt.Sprintf(`"action":"edit","session_id":%d,"seq":%d,"content":{"html":"<b>b</b>"}`, g, rich.Seq)); !f.OK {
		t.Fatalf("edit of rich: %+v", f.Error)
	}
	st.clock.Advance(15*time.Minute + time.Second)
	wantReplyError(t, "edit after the window", alice.do(fmt.Sprintf(`"action":"edit","session_id":%d,"seq":%d,"content":{"text":"late"}`, g, m.Seq)), "forbidden", "edit window")
	gone := sendText(t, alice, g, "to recall", "")
	if f := alice.do(fmt.Sprintf(`"action":"recall","session_id":%d,"seq":%d`, g, gone.Seq)); !f.OK {
		t.Fatal(f.Error)
	}
	wantReplyError(t, "edit of a recalled message", alice.do(fmt.Sprintf(`"action":"edit","session_id":%d,"seq":%d,"content":{"text":"back"}`, g, gone.Seq)), "conflict", "recalled")

	// bob syncs from the message: both edits are in the op entries.
	sy := decode[opPage](t, bob.do(fmt.Sprintf(`"action":"sync","session_id":%d,"after":%d`, g, m.Seq)))
	edits := 0
	for _, e := range sy.Messages {
		var o chat.MsgOp
		if e.Type == chat.TypeOp && json.Unmarshal(e.Content, &o) == nil && o.Op == chat.OpEdit && o.Seq == m.Seq {
			edits++
		}
	}
	if edits != 2 {
		t.Fatalf("sync holds %d edit entries of %d, want 2: %+v", edits, m.Seq, sy.Messages)
	}
}

// TestRecalledContentLeavesTheStore: after a restart (the WAL checkpointed
// into bbolt and deleted) a recalled message is a tombstone, its edit's
// new version is what is stored, and the recalled text is in no live
// record of chat.db. (Freed bbolt pages may still hold the old bytes until
// bbolt reuses them: docs/protocol.md says so; this test reads the live
// records, through the store.)
func TestRecalledContentLeavesTheStore(t *testing.T) {
	dir := t.TempDir()
	st := newMsgopsStack(t, dir)
	ctx := context.Background()
	g := st.group
	// Over HTTP only: no WebSocket client is left reading when the server stops.
	send := func(text string) uint64 {
		r, err := st.app.Send(ctx, apiclient.SendInput{From: "alice", Session: g, Type: "text", Content: json.RawMessage(fmt.Sprintf(`{"text":%q}`, text))})
		if err != nil {
			t.Fatal(err)
		}
		return r.Seq
	}
	do := func(action map[string]any) {
		raw, err := st.app.ClientDo(ctx, st.tokens["alice"], action)
		var rep frame
		if err != nil || json.Unmarshal(raw, &rep) != nil || !rep.OK {
			t.Fatalf("%v: %s %v", action, raw, err)
		}
	}
	seq1, seq2 := send("burn-after-reading"), send("first-version")
	do(map[string]any{"action": "recall", "session_id": g, "seq": seq1})
	do(map[string]any{"action": "edit", "session_id": g, "seq": seq2, "content": map[string]string{"text": "second-version"}})
	st.Stop()
	if _, err := os.Stat(filepath.Join(dir, "chat.db-wal")); !os.IsNotExist(err) {
		t.Fatalf("WAL still there after a clean stop: %v", err)
	}

	s2 := &server{Server: teststack.Start(t, dir, teststack.Options{}), t: t}
	msgs, _, err := s2.Core.History(context.Background(), "shop", chat.SessionID(g), 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	var seen int
	for _, m := range msgs {
		if bytes.Contains(m.Content, []byte("burn-after-reading")) || bytes.Contains(m.Content, []byte("first-version")) {
			t.Fatalf("old content still stored at seq %d: %s", m.Seq, m.Content)
		}
		switch m.Seq {
		case seq1:
			seen++
			if m.Type != chat.TypeRecalled {
				t.Fatalf("after restart seq %d is %+v", m.Seq, m)
			}
		case seq2:
			seen++
			if string(m.Content) != `{"text":"second-version"}` || m.Edits != 1 || m.EditedAt == 0 {
				t.Fatalf("after restart edited seq %d is %+v", m.Seq, m)
			}
		}
	}
	if seen != 2 {
		t.Fatalf("history after restart lacks the changed messages: %+v", msgs)
	}
}
