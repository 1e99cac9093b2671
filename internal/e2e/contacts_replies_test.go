package e2e_test

import (
	"fmt"
	"testing"
	"time"

	"chatd/chat"
)

// Blocks and the app's messaging policy bind every way a user writes into
// a private session, not only a plain send: a reply (send with quote_seq)
// and a forward are refused with the same error as a plain send, and a
// send with mentions is refused too (mentions are for groups). A refused
// forward copies nothing, not even into the targets listed before the
// refusing one. The group, where neither rule applies, keeps working.

// sameRefusal asserts that f failed exactly as the plain send did.
func sameRefusal(t *testing.T, f, plain frame, what string) {
	t.Helper()
	if f.OK || f.Error == nil || f.Error.Code != plain.Error.Code || f.Error.Message != plain.Error.Message {
		t.Fatalf("%s: want the plain send's refusal %s, got %s", what, plain.raw, f.raw)
	}
}

// groupSend sends a text into session sid and returns its ack (its seq
// shows whether a refused forward copied anything in before it).
func groupSend(t *testing.T, c *client, sid uint64, text string) ack {
	t.Helper()
	return decode[ack](t, mustOK(t, c.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":%q}`, sid, text)), "group send "+text))
}

// refusedEverywhere checks, for alice writing into private session sid,
// that a reply, a mention send and a forward are refused as a plain send
// is, and that the forward copied nothing into group g (listed first).
func refusedEverywhere(t *testing.T, alice *client, sid, g uint64) {
	t.Helper()
	plain := alice.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"plain"}`, sid))
	mustFail(t, plain, chat.CodeForbidden, "plain send")
	sameRefusal(t, alice.do(fmt.Sprintf(`"action":"send","session_id":%d,"quote_seq":1,"type":"text","content":{"text":"reply"}`, sid)), plain, "reply")
	mustFail(t, alice.do(fmt.Sprintf(`"action":"send","session_id":%d,"mentions":["bob"],"type":"text","content":{"text":"mention"}`, sid)), chat.CodeBadRequest, "mention send")
	mustFail(t, alice.do(fmt.Sprintf(`"action":"send","session_id":%d,"mention_all":true,"type":"text","content":{"text":"mention all"}`, sid)), chat.CodeBadRequest, "mention_all send")
	gm := groupSend(t, alice, g, "worth forwarding")
	sameRefusal(t, alice.do(fmt.Sprintf(`"action":"forward","session_id":%d,"seqs":[%d],"to_sessions":[%d]`, g, gm.Seq, sid)), plain, "forward")
	sameRefusal(t, alice.do(fmt.Sprintf(`"action":"forward","session_id":%d,"seqs":[%d],"to_sessions":[%d,%d]`, g, gm.Seq, g, sid)), plain, "forward into the group and the private session")
	if next := groupSend(t, alice, g, "after the refused forwards"); next.Seq != gm.Seq+1 {
		t.Fatalf("the group's next seq is %d after %d: a refused forward copied into the group", next.Seq, gm.Seq)
	}
	// In the group, a reply and a mention still go through.
	mustOK(t, alice.do(fmt.Sprintf(`"action":"send","session_id":%d,"quote_seq":%d,"mentions":["bob"],"type":"text","content":{"text":"group reply"}`, g, gm.Seq)), "group reply with a mention")
}

func TestBlockStopsRepliesMentionsAndForwards(t *testing.T) {
	s := start(t, t.TempDir(), options{})
	app := s.app("shop")
	ta, tb := pushUser(t, app, "alice"), pushUser(t, app, "bob")
	pushUser(t, app, "carol")
	a, b := login(t, s.WSAddr, "shop", ta), login(t, s.WSAddr, "shop", tb)
	sid := decode[ack](t, mustOK(t, a.do(`"action":"send","to":"bob","type":"text","content":{"text":"before"}`), "send")).Session
	g := decode[struct {
		ID uint64 `json:"session_id"`
	}](t, mustOK(t, a.do(`"action":"group_create","name":"g","uids":["bob","carol"]`), "group")).ID

	mustOK(t, b.do(`"action":"block","uid":"alice"`), "block")
	refusedEverywhere(t, a, sid, g)
	// bob got nothing from alice in their private session (the group's
	// messages he does get).
	for quiet := time.After(150 * time.Millisecond); ; {
		var f frame
		select {
		case f = <-b.frames:
		case <-quiet:
		}
		if f.raw == nil {
			break
		}
		if f.Event == "message" {
			if m := decode[message](t, f); m.Session == sid && m.Content.Text != "before" {
				t.Fatalf("a blocked message reached bob: %s", f.raw)
			}
		}
	}

	// The blocker may still reply and forward into the session.
	mustOK(t, b.do(fmt.Sprintf(`"action":"send","session_id":%d,"quote_seq":1,"type":"text","content":{"text":"bob's reply"}`, sid)), "the blocker replies")
	bm := groupSend(t, b, g, "from bob")
	mustOK(t, b.do(fmt.Sprintf(`"action":"forward","session_id":%d,"seqs":[%d],"to_sessions":[%d]`, g, bm.Seq, sid)), "the blocker forwards")

	// Unblocked, alice's reply and forward go through again.
	mustOK(t, b.do(`"action":"unblock","uid":"alice"`), "unblock")
	mustOK(t, a.do(fmt.Sprintf(`"action":"send","session_id":%d,"quote_seq":1,"type":"text","content":{"text":"reply after unblock"}`, sid)), "reply after unblock")
	mustOK(t, a.do(fmt.Sprintf(`"action":"forward","session_id":%d,"seqs":[%d],"to_sessions":[%d]`, g, bm.Seq, sid)), "forward after unblock")
}

func TestContactPolicyStopsRepliesMentionsAndForwards(t *testing.T) {
	s := start(t, t.TempDir(), options{})
	app := s.app("shop")
	ta := pushUser(t, app, "alice")
	pushUser(t, app, "bob")
	a := login(t, s.WSAddr, "shop", ta)
	// Under the default policy (anyone) alice and bob, strangers, have a
	// private session and a group.
	sid := decode[ack](t, mustOK(t, a.do(`"action":"send","to":"bob","type":"text","content":{"text":"hi stranger"}`), "send")).Session
	g := decode[struct {
		ID uint64 `json:"session_id"`
	}](t, mustOK(t, a.do(`"action":"group_create","name":"g","uids":["bob"]`), "group")).ID

	if err := setPolicy(t, app, "friends"); err != nil {
		t.Fatal(err)
	}
	refusedEverywhere(t, a, sid, g)

	// Under "host" a session that exists may be written in, by any route.
	if err := setPolicy(t, app, "host"); err != nil {
		t.Fatal(err)
	}
	mustOK(t, a.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"plain"}`, sid)), "plain send under host")
	mustOK(t, a.do(fmt.Sprintf(`"action":"send","session_id":%d,"quote_seq":1,"type":"text","content":{"text":"reply"}`, sid)), "reply under host")
	gm := groupSend(t, a, g, "forward me")
	mustOK(t, a.do(fmt.Sprintf(`"action":"forward","session_id":%d,"seqs":[%d],"to_sessions":[%d]`, g, gm.Seq, sid)), "forward under host")
}

// A forward into a group where the user is muted is refused as a send
// there is, before any copy: the private session listed first gets none.
func TestForwardIntoMutedGroupCopiesNothing(t *testing.T) {
	s := start(t, t.TempDir(), options{})
	app := s.app("shop")
	ta, tb := pushUser(t, app, "alice"), pushUser(t, app, "bob")
	pushUser(t, app, "carol")
	a, b := login(t, s.WSAddr, "shop", ta), login(t, s.WSAddr, "shop", tb)
	g := decode[struct {
		ID uint64 `json:"session_id"`
	}](t, mustOK(t, a.do(`"action":"group_create","name":"g","uids":["bob","carol"]`), "group")).ID
	pm := decode[ack](t, mustOK(t, b.do(`"action":"send","to":"carol","type":"text","content":{"text":"hi carol"}`), "private send"))
	gm := groupSend(t, a, g, "worth forwarding")
	mustOK(t, a.do(fmt.Sprintf(`"action":"group_mute","session_id":%d,"uid":"bob","seconds":60`, g)), "mute bob")

	plain := b.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"muted"}`, g))
	mustFail(t, plain, chat.CodeForbidden, "muted plain send")
	sameRefusal(t, b.do(fmt.Sprintf(`"action":"forward","session_id":%d,"seqs":[%d],"to_sessions":[%d,%d]`, g, gm.Seq, pm.Session, g)), plain, "forward into the private session and the muted group")
	if next := groupSend(t, b, pm.Session, "after the refused forward"); next.Seq != pm.Seq+1 {
		t.Fatalf("the private session's next seq is %d after %d: the refused forward copied into it", next.Seq, pm.Seq)
	}
}
