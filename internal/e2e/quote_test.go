package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"chatd/chat"
)

type quotedContent struct {
	Quote     *chat.Quote     `json:"quote"`
	Forwarded *chat.Forwarded `json:"forwarded"`
	Text      string          `json:"text"`
	URL       string          `json:"url"`
}

type eventMsg struct {
	Session uint64        `json:"session_id"`
	Seq     uint64        `json:"seq"`
	From    string        `json:"from"`
	Type    string        `json:"type"`
	Content quotedContent `json:"content"`
}

// TestReplyToARecalledMessage: a reply carries the quoted message's
// sender and a snippet, live and in history; once the original is
// recalled the quote says so and the original text is in no stored
// message.
func TestReplyToARecalledMessage(t *testing.T) {
	st := newMsgopsStack(t, t.TempDir())
	ctx := context.Background()
	alice, bob := st.login("alice"), st.login("bob")
	g := st.group
	orig := sendText(t, alice, g, "original words", "")
	bob.next("message")

	f := bob.do(fmt.Sprintf(`"action":"send","session_id":%d,"quote_seq":%d,"type":"text","content":{"text":"my reply"}`, g, orig.Seq))
	if !f.OK {
		t.Fatalf("reply: %+v", f.Error)
	}
	reply := decode[ack](t, f)
	ev := decode[eventMsg](t, alice.next("message"))
	if q := ev.Content.Quote; q == nil || q.Seq != orig.Seq || q.From != "alice" || q.Snippet != "original words" || q.Type != "text" || ev.Content.Text != "my reply" {
		t.Fatalf("reply event %+v quote %+v", ev, ev.Content.Quote)
	}
	// Over POST /v1/client too.
	raw, err := st.app.ClientDo(ctx, st.tokens["carol"], map[string]any{"id": 1, "action": "send", "session_id": g, "quote_seq": orig.Seq, "type": "text", "content": map[string]string{"text": "me too"}})
	if err != nil || !strings.Contains(string(raw), `"ok":true`) {
		t.Fatalf("reply over HTTP: %s %v", raw, err)
	}
	wantReplyError(t, "quote of a missing seq", bob.do(fmt.Sprintf(`"action":"send","session_id":%d,"quote_seq":999,"type":"text","content":{"text":"x"}`, g)), "not_found", "no message 999")
	wantReplyError(t, "forged quote", bob.do(fmt.Sprintf(`"action":"send","session_id":%d,"quote_seq":%d,"type":"text","content":{"text":"x","quote":{}}`, g, orig.Seq)), "bad_request", "quote_seq")

	if f := alice.do(fmt.Sprintf(`"action":"recall","session_id":%d,"seq":%d`, g, orig.Seq)); !f.OK {
		t.Fatal(f.Error)
	}
	page := decode[struct {
		Messages []eventMsg `json:"messages"`
	}](t, bob.do(fmt.Sprintf(`"action":"history","session_id":%d`, g)))
	var got *eventMsg
	for i := range page.Messages {
		if page.Messages[i].Seq == reply.Seq {
			got = &page.Messages[i]
		}
	}
	if got == nil || got.Content.Quote == nil || !got.Content.Quote.Recalled || got.Content.Quote.Snippet != "[recalled]" || got.Content.Quote.From != "alice" || got.Content.Text != "my reply" {
		t.Fatalf("reply after the recall: %+v", got)
	}
	// The host's history: no stored message holds the recalled words.
	msgs, _, err := st.Core.History(ctx, "shop", chat.SessionID(g), 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if strings.Contains(string(m.Content), "original words") {
			t.Fatalf("seq %d still holds the recalled text: %s", m.Seq, m.Content)
		}
	}
}

// TestForwardToTwoSessions: a user forwards two messages of a group into
// two private sessions; each copy is the user's, marked with the original
// sender's uid and name; forwarding into a session the user is not in, or
// a recalled message, is refused.
func TestForwardToTwoSessions(t *testing.T) {
	st := newMsgopsStack(t, t.TempDir())
	alice, bob, carol := st.login("alice"), st.login("bob"), st.login("carol")
	g := st.group
	m1 := sendText(t, bob, g, "worth sharing", "")
	m2 := decode[ack](t, bob.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"image","content":{"url":"https://x.test/p.png"}`, g)))
	p1 := decode[ack](t, alice.do(`"action":"send","to":"bob","type":"text","content":{"text":"hi bob"}`)).Session
	p2 := decode[ack](t, alice.do(`"action":"send","to":"carol","type":"text","content":{"text":"hi carol"}`)).Session

	f := alice.do(fmt.Sprintf(`"action":"forward","session_id":%d,"seqs":[%d,%d],"to_sessions":[%d,%d]`, g, m1.Seq, m2.Seq, p1, p2))
	if !f.OK {
		t.Fatalf("forward: %+v", f.Error)
	}
	res := decode[struct {
		Copies []ack `json:"copies"`
	}](t, f)
	if len(res.Copies) != 4 || res.Copies[0].Session != p1 || res.Copies[3].Session != p2 {
		t.Fatalf("forward result %+v", res)
	}
	for who, c := range map[string]*client{"bob": bob, "carol": carol} {
		want := p1
		if who == "carol" {
			want = p2
		}
		var got []eventMsg
		for len(got) < 2 {
			ev := decode[eventMsg](t, c.next("message"))
			if ev.Session == want && ev.Content.Forwarded != nil {
				got = append(got, ev)
			}
		}
		fw := got[0].Content.Forwarded
		if got[0].From != "alice" || fw.From != "bob" || fw.Name != "BOB" || uint64(fw.Session) != g || fw.Seq != m1.Seq || got[0].Content.Text != "worth sharing" {
			t.Fatalf("%s's first copy %+v (%+v)", who, got[0], fw)
		}
		if got[1].Type != "image" || got[1].Content.URL != "https://x.test/p.png" || got[1].Content.Forwarded.Seq != m2.Seq {
			t.Fatalf("%s's second copy %+v", who, got[1])
		}
	}

	// Into a session alice is not in: dave's private session with bob.
	pushUser(t, st.app, "dave")
	dp := decode[json.RawMessage](t, bob.do(`"action":"private","uid":"dave"`))
	var view struct {
		ID uint64 `json:"session_id"`
	}
	if err := json.Unmarshal(dp, &view); err != nil {
		t.Fatal(err)
	}
	wantReplyError(t, "forward into a stranger's session", alice.do(fmt.Sprintf(`"action":"forward","session_id":%d,"seqs":[%d],"to_sessions":[%d]`, g, m1.Seq, view.ID)), "forbidden", "not a member")
	if f := bob.do(fmt.Sprintf(`"action":"recall","session_id":%d,"seq":%d`, g, m1.Seq)); !f.OK {
		t.Fatal(f.Error)
	}
	wantReplyError(t, "forward of a recalled message", alice.do(fmt.Sprintf(`"action":"forward","session_id":%d,"seqs":[%d],"to_sessions":[%d]`, g, m1.Seq, p1)), "bad_request", "recalled")
	wantReplyError(t, "forward without targets", alice.do(fmt.Sprintf(`"action":"forward","session_id":%d,"seqs":[%d]`, g, m2.Seq)), "bad_request", "to_sessions")
}
