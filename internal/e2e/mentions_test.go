package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

type mentionView struct {
	Unread         uint64 `json:"unread"`
	UnreadMentions uint64 `json:"unread_mentions"`
}

// TestMentionsAndUnreadMentionCounts: @uid and @all reach the mentioned
// in the message and count in their session view's unread_mentions until
// they read; only owners and admins mention everyone; mentions name
// members of a group only.
func TestMentionsAndUnreadMentionCounts(t *testing.T) {
	st := newMsgopsStack(t, t.TempDir())
	olga, alice, bob, carol := st.login("olga"), st.login("alice"), st.login("bob"), st.login("carol")
	g := st.group
	view := func(c *client) mentionView {
		t.Helper()
		return decode[mentionView](t, c.do(fmt.Sprintf(`"action":"session","session_id":%d`, g)))
	}

	f := alice.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"@bob look"},"mentions":["bob","bob"]`, g))
	if !f.OK {
		t.Fatalf("mention: %+v", f.Error)
	}
	ev := bob.next("message")
	if !strings.Contains(string(ev.Data), `"mentions":["bob"]`) {
		t.Fatalf("bob's event lacks the mention: %s", ev.Data)
	}
	if v := view(bob); v.UnreadMentions != 1 {
		t.Fatalf("bob's view %+v", v)
	}
	if v := view(carol); v.UnreadMentions != 0 || v.Unread != 1 {
		t.Fatalf("carol's view %+v", v)
	}
	wantReplyError(t, "a member mentions everyone", alice.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"all!"},"mention_all":true`, g)), "forbidden", "only the owner and admins")
	wantReplyError(t, "a mention of a stranger", alice.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"x"},"mentions":["zed"]`, g)), "bad_request", "not a member")
	p := decode[ack](t, alice.do(`"action":"send","to":"bob","type":"text","content":{"text":"hi"}`))
	wantReplyError(t, "a mention in a private session", alice.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"x"},"mentions":["bob"]`, p.Session)), "bad_request", "for groups")

	// The owner mentions everyone, over POST /v1/client.
	raw, err := st.app.ClientDo(context.Background(), st.tokens["olga"], map[string]any{"id": 1, "action": "send", "session_id": g, "type": "text", "content": map[string]string{"text": "all hands"}, "mention_all": true})
	if err != nil || !strings.Contains(string(raw), `"ok":true`) {
		t.Fatalf("@all over HTTP: %s %v", raw, err)
	}
	if v := view(bob); v.UnreadMentions != 2 {
		t.Fatalf("bob's view after @all %+v", v)
	}
	if v := view(carol); v.UnreadMentions != 1 {
		t.Fatalf("carol's view after @all %+v", v)
	}
	if v := view(olga); v.UnreadMentions != 0 {
		t.Fatalf("olga's own @all counts for her: %+v", v)
	}
	// A reply that mentions.
	r := decode[ack](t, carol.do(fmt.Sprintf(`"action":"send","session_id":%d,"quote_seq":1,"type":"text","content":{"text":"@alice yes"},"mentions":["alice"]`, g)))
	if v := view(alice); v.UnreadMentions != 2 { // olga's @all and carol's reply
		t.Fatalf("alice's view after the reply %+v", v)
	}
	h := decode[opPage](t, alice.do(fmt.Sprintf(`"action":"history","session_id":%d`, g)))
	if m := h.bySeq(t, r.Seq); !strings.Contains(string(m.Content), `"quote"`) {
		t.Fatalf("the mentioning reply %+v", m)
	}

	// Reading clears the count.
	if f := bob.do(fmt.Sprintf(`"action":"read","session_id":%d,"seq":%d`, g, r.Seq)); !f.OK {
		t.Fatal(f.Error)
	}
	if v := view(bob); v.UnreadMentions != 0 {
		t.Fatalf("bob's view after reading %+v", v)
	}
	// The sessions list carries the count too (alice's: olga's @all and
	// carol's reply; carol's own send marked what came before it read).
	ls := decode[struct {
		Sessions []struct {
			ID             uint64 `json:"session_id"`
			UnreadMentions uint64 `json:"unread_mentions"`
		} `json:"sessions"`
	}](t, alice.do(`"action":"sessions"`))
	found := false
	for _, s := range ls.Sessions {
		if s.ID == g {
			found = s.UnreadMentions == 2
		}
	}
	if !found {
		t.Fatalf("alice's session list %+v", ls)
	}
}
