package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"chatd/chat"
	"chatd/httpapi/apiclient"
)

type contactEv struct {
	Op      string `json:"op"`
	From    string `json:"from"`
	To      string `json:"to"`
	UID     string `json:"uid"`
	Message string `json:"message"`
	Remark  string `json:"remark"`
}

type friendView struct {
	UID      string `json:"uid"`
	Nickname string `json:"nickname"`
	Remark   string `json:"remark"`
	Online   bool   `json:"online"`
}

type friendsPage struct {
	Friends    []friendView `json:"friends"`
	NextCursor string       `json:"next_cursor"`
}

type requestsList struct {
	Incoming []struct {
		From    string `json:"from"`
		Message string `json:"message"`
	} `json:"incoming"`
	Outgoing []struct {
		To string `json:"to"`
	} `json:"outgoing"`
}

// mustFail asserts that a reply is an error with this code.
func mustFail(t *testing.T, f frame, code chat.Code, what string) {
	t.Helper()
	if f.OK || f.Error == nil || f.Error.Code != code {
		t.Fatalf("%s: want %s, got %s", what, code, f.raw)
	}
}

func mustOK(t *testing.T, f frame, what string) frame {
	t.Helper()
	if !f.OK {
		t.Fatalf("%s: %s", what, f.raw)
	}
	return f
}

// nextOp waits for the next contact event with this op, skipping others.
func nextOp(t *testing.T, c *client, op string) contactEv {
	t.Helper()
	for {
		if ev := decode[contactEv](t, c.next("contact")); ev.Op == op {
			return ev
		}
	}
}

func friendsOf(t *testing.T, c *client) []friendView {
	t.Helper()
	return decode[friendsPage](t, mustOK(t, c.do(`"action":"friends"`), "friends")).Friends
}

func TestFriendRequestFlowBothWays(t *testing.T) {
	s := start(t, t.TempDir(), options{})
	app := s.app("shop")
	ta, tb := pushUser(t, app, "alice"), pushUser(t, app, "bob")
	a, a2, b := login(t, s.WSAddr, "shop", ta), login(t, s.WSAddr, "shop", ta), login(t, s.WSAddr, "shop", tb)

	mustFail(t, a.do(`"action":"friend_request","uid":"alice"`), chat.CodeBadRequest, "request yourself")
	mustFail(t, a.do(`"action":"friend_request","uid":"nobody"`), chat.CodeNotFound, "request an unknown user")
	mustFail(t, a.do(`"action":"friend_request"`), chat.CodeBadRequest, "request without uid")
	mustFail(t, b.do(`"action":"friend_accept","uid":"alice"`), chat.CodeNotFound, "accept a request that does not exist")

	mustOK(t, a.do(`"action":"friend_request","uid":"bob","message":"hi, it's alice"`), "request")
	for name, c := range map[string]*client{"bob": b, "alice's other device": a2} {
		ev := decode[contactEv](t, c.next("contact"))
		if ev.Op != "request" || ev.From != "alice" || ev.To != "bob" || ev.Message != "hi, it's alice" {
			t.Fatalf("%s got %+v", name, ev)
		}
	}
	mustFail(t, a.do(`"action":"friend_request","uid":"bob"`), chat.CodeConflict, "request twice")
	mustFail(t, b.do(`"action":"friend_request","uid":"alice"`), chat.CodeConflict, "request back while one is pending")
	in := decode[requestsList](t, mustOK(t, b.do(`"action":"friend_requests"`), "bob's requests"))
	if len(in.Incoming) != 1 || in.Incoming[0].From != "alice" || in.Incoming[0].Message != "hi, it's alice" || len(in.Outgoing) != 0 {
		t.Fatalf("bob's requests: %+v", in)
	}
	out := decode[requestsList](t, mustOK(t, a.do(`"action":"friend_requests"`), "alice's requests"))
	if len(out.Outgoing) != 1 || out.Outgoing[0].To != "bob" || len(out.Incoming) != 0 {
		t.Fatalf("alice's requests: %+v", out)
	}

	// Refused: both sides hear it, nothing is pending.
	mustOK(t, b.do(`"action":"friend_refuse","uid":"alice"`), "refuse")
	if ev := nextOp(t, a, "refuse"); ev.From != "bob" {
		t.Fatalf("alice got %+v", ev)
	}
	if l := decode[requestsList](t, b.do(`"action":"friend_requests"`)); len(l.Incoming) != 0 {
		t.Fatalf("after refusal bob still has %+v", l)
	}
	mustFail(t, b.do(`"action":"friend_refuse","uid":"alice"`), chat.CodeNotFound, "refuse twice")

	// Cancelled by the sender.
	mustOK(t, a.do(`"action":"friend_request","uid":"bob"`), "request again")
	mustOK(t, a.do(`"action":"friend_cancel","uid":"bob"`), "cancel")
	for {
		if ev := decode[contactEv](t, b.next("contact")); ev.Op == "cancel" {
			break
		}
	}
	mustFail(t, a.do(`"action":"friend_cancel","uid":"bob"`), chat.CodeNotFound, "cancel twice")

	// The other way round, over HTTP for the accepting side.
	mustOK(t, b.do(`"action":"friend_request","uid":"alice","message":"bob here"`), "bob requests")
	raw, err := app.ClientDo(context.Background(), ta, map[string]any{"id": 1, "action": "friend_accept", "uid": "bob"})
	if err != nil {
		t.Fatal(err)
	}
	var rep frame
	if json.Unmarshal(raw, &rep) != nil || !rep.OK {
		t.Fatalf("accept over HTTP: %s", raw)
	}
	for {
		if ev := decode[contactEv](t, b.next("contact")); ev.Op == "accept" {
			if ev.From != "alice" || ev.To != "bob" {
				t.Fatalf("bob got %+v", ev)
			}
			break
		}
	}
	fa, fb := friendsOf(t, a), friendsOf(t, b)
	if len(fa) != 1 || fa[0].UID != "bob" || fa[0].Nickname != "BOB" || !fa[0].Online {
		t.Fatalf("alice's friends: %+v", fa)
	}
	if len(fb) != 1 || fb[0].UID != "alice" || !fb[0].Online {
		t.Fatalf("bob's friends: %+v", fb)
	}
	mustFail(t, a.do(`"action":"friend_request","uid":"bob"`), chat.CodeConflict, "request a friend")

	// Remark: the caller's own alias, on its list only.
	mustOK(t, a.do(`"action":"friend_remark","uid":"bob","remark":"Bobby (work)"`), "remark")
	if fa := friendsOf(t, a); fa[0].Remark != "Bobby (work)" {
		t.Fatalf("remark not listed: %+v", fa)
	}
	if fb := friendsOf(t, b); fb[0].Remark != "" {
		t.Fatalf("bob sees alice's remark: %+v", fb)
	}
	mustFail(t, a.do(`"action":"friend_remark","uid":"nobody","remark":"x"`), chat.CodeNotFound, "remark a non-friend")

	// Deleted: both hear it, neither lists the other.
	mustOK(t, b.do(`"action":"friend_delete","uid":"alice"`), "delete")
	for {
		if ev := decode[contactEv](t, a.next("contact")); ev.Op == "delete" {
			break
		}
	}
	if len(friendsOf(t, a)) != 0 || len(friendsOf(t, b)) != 0 {
		t.Fatal("still friends after delete")
	}
	mustFail(t, b.do(`"action":"friend_delete","uid":"alice"`), chat.CodeNotFound, "delete twice")
}

func TestBlockStopsMessagesRequestsAndPresence(t *testing.T) {
	s := start(t, t.TempDir(), options{})
	app := s.app("shop")
	ta, tb := pushUser(t, app, "alice"), pushUser(t, app, "bob")
	a, b := login(t, s.WSAddr, "shop", ta), login(t, s.WSAddr, "shop", tb)
	mustOK(t, a.do(`"action":"friend_request","uid":"bob"`), "request")
	mustOK(t, b.do(`"action":"friend_accept","uid":"alice"`), "accept")
	sid := decode[ack](t, mustOK(t, a.do(`"action":"send","to":"bob","type":"text","content":{"text":"before"}`), "send")).Session
	if !friendsOf(t, a)[0].Online {
		t.Fatal("alice does not see bob online before the block")
	}

	mustOK(t, b.do(`"action":"block","uid":"alice"`), "block")
	mustFail(t, b.do(`"action":"block","uid":"alice"`), chat.CodeConflict, "block twice")
	mustFail(t, b.do(`"action":"block","uid":"bob"`), chat.CodeBadRequest, "block yourself")
	mustFail(t, b.do(`"action":"unblock","uid":"carol"`), chat.CodeNotFound, "unblock someone not blocked")

	if m := decode[message](t, b.next("message")); m.Content.Text != "before" {
		t.Fatalf("bob got %+v", m)
	}
	mustFail(t, a.do(`"action":"send","to":"bob","type":"text","content":{"text":"to"}`), chat.CodeForbidden, "send by uid")
	mustFail(t, a.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"by session"}`, sid)), chat.CodeForbidden, "send by session")
	mustFail(t, a.do(`"action":"private","uid":"bob"`), chat.CodeForbidden, "open the private session")
	mustFail(t, a.do(`"action":"group_create","name":"gb","uids":["bob"]`), chat.CodeForbidden, "put the blocker into a group")
	b.quiet("message", 150*time.Millisecond)
	mustOK(t, b.do(`"action":"friend_delete","uid":"alice"`), "delete")
	mustFail(t, a.do(`"action":"friend_request","uid":"bob"`), chat.CodeForbidden, "request the blocker")
	// The blocker may still write; the host always may.
	mustOK(t, b.do(`"action":"send","to":"alice","type":"text","content":{"text":"from the blocker"}`), "blocker sends")
	if _, err := app.Send(context.Background(), apiclient.SendInput{From: "alice", To: "bob", Type: "text", Content: json.RawMessage(`{"text":"host"}`)}); err != nil {
		t.Fatalf("host send as alice: %v", err)
	}
	bl := decode[struct {
		Blocks []struct {
			UID string `json:"uid"`
		} `json:"blocks"`
	}](t, mustOK(t, b.do(`"action":"blocks"`), "blocks"))
	if len(bl.Blocks) != 1 || bl.Blocks[0].UID != "alice" {
		t.Fatalf("blocks: %+v", bl)
	}

	// Presence: friends again (host import keeps the block), alice sees bob offline.
	var res chat.ContactImportResult
	if err := app.Do(context.Background(), "POST", "/api/v1/contacts/import", chat.ContactImport{Friends: []chat.ContactPair{{UID: "alice", Peer: "bob"}}}, &res); err != nil || res.Friended != 1 {
		t.Fatalf("import: %+v %v", res, err)
	}
	if fa := friendsOf(t, a); len(fa) != 1 || fa[0].Online {
		t.Fatalf("alice sees her blocker: %+v", fa)
	}
	if fb := friendsOf(t, b); len(fb) != 1 || !fb[0].Online {
		t.Fatalf("bob does not see alice: %+v", fb)
	}

	mustOK(t, b.do(`"action":"unblock","uid":"alice"`), "unblock")
	mustOK(t, a.do(`"action":"send","to":"bob","type":"text","content":{"text":"after"}`), "send after unblock")
	for {
		if m := decode[message](t, b.next("message")); m.Content.Text == "after" {
			break
		} else if m.Content.Text == "to" || m.Content.Text == "by session" {
			t.Fatalf("a blocked message was delivered: %+v", m)
		}
	}
}

func setPolicy(t *testing.T, app *apiclient.Client, policy string) error {
	t.Helper()
	var st chat.AppSettings
	err := app.Do(context.Background(), "POST", "/api/v1/app", map[string]string{"messaging": policy}, &st)
	if err == nil && st.Messaging != policy {
		t.Fatalf("settings answer %+v, want %s", st, policy)
	}
	return err
}

func TestMessagingPolicies(t *testing.T) {
	s := start(t, t.TempDir(), options{})
	app := s.app("shop")
	ta, tb, tc := pushUser(t, app, "alice"), pushUser(t, app, "bob"), pushUser(t, app, "carol")
	a, b := login(t, s.WSAddr, "shop", ta), login(t, s.WSAddr, "shop", tb)
	c := login(t, s.WSAddr, "shop", tc)

	var st chat.AppSettings
	if err := app.Do(context.Background(), "GET", "/api/v1/app", nil, &st); err != nil || st.Messaging != "anyone" {
		t.Fatalf("default settings %+v %v", st, err)
	}
	var ae *apiclient.APIError
	if err := setPolicy(t, app, "strangers"); !errors.As(err, &ae) || ae.Code != "bad_request" {
		t.Fatalf("unknown policy: %v", err)
	}

	t.Run("anyone", func(t *testing.T) {
		mustOK(t, a.do(`"action":"send","to":"bob","type":"text","content":{"text":"hi"}`), "stranger message")
	})
	t.Run("friends", func(t *testing.T) {
		if err := setPolicy(t, app, "friends"); err != nil {
			t.Fatal(err)
		}
		mustFail(t, a.do(`"action":"send","to":"bob","type":"text","content":{"text":"hi"}`), chat.CodeForbidden, "non-friend, existing session")
		mustFail(t, a.do(`"action":"send","to":"carol","type":"text","content":{"text":"hi"}`), chat.CodeForbidden, "non-friend, new session")
		mustOK(t, a.do(`"action":"friend_request","uid":"bob"`), "request")
		mustOK(t, b.do(`"action":"friend_accept","uid":"alice"`), "accept")
		mustOK(t, a.do(`"action":"send","to":"bob","type":"text","content":{"text":"friends now"}`), "friend message")
		// Nobody is put into a group by a non-friend either (the invitee's
		// policy); inside a group, members write whatever their contacts.
		mustFail(t, a.do(`"action":"group_create","name":"g","uids":["carol"]`), chat.CodeForbidden, "put a non-friend into a group")
		g := mustOK(t, a.do(`"action":"group_create","name":"g","uids":["bob"]`), "group with a friend")
		gid := decode[struct {
			ID uint64 `json:"session_id"`
		}](t, g).ID
		mustFail(t, a.do(fmt.Sprintf(`"action":"group_add","session_id":%d,"uids":["carol"]`, gid)), chat.CodeForbidden, "add a non-friend")
		add := map[string]any{"add": []string{"carol"}}
		if err := app.Do(context.Background(), "POST", fmt.Sprintf("/api/v1/groups/%d/members", gid), add, nil); err != nil {
			t.Fatalf("the host adds carol: %v", err)
		}
		mustOK(t, c.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"groups follow their own rules"}`, gid)), "group message")
	})
	t.Run("host", func(t *testing.T) {
		if err := setPolicy(t, app, "host"); err != nil {
			t.Fatal(err)
		}
		mustFail(t, a.do(`"action":"private","uid":"carol"`), chat.CodeForbidden, "open a session")
		mustFail(t, a.do(`"action":"send","to":"carol","type":"text","content":{"text":"x"}`), chat.CodeForbidden, "send to a new pair")
		mustFail(t, a.do(`"action":"group_create","name":"g2"`), chat.CodeForbidden, "create a group")
		// The host opens alice–carol; then both may write there.
		r, err := app.Send(context.Background(), apiclient.SendInput{From: "alice", To: "carol", Type: "text", Content: json.RawMessage(`{"text":"host opened"}`)})
		if err != nil {
			t.Fatal(err)
		}
		mustOK(t, c.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"in the host's session"}`, r.Session)), "carol writes")
		mustOK(t, a.do(`"action":"send","to":"carol","type":"text","content":{"text":"by uid"}`), "alice writes by uid")
	})
	t.Run("back to anyone", func(t *testing.T) {
		if err := setPolicy(t, app, "anyone"); err != nil {
			t.Fatal(err)
		}
		mustOK(t, c.do(`"action":"send","to":"bob","type":"text","content":{"text":"hi"}`), "stranger message")
	})
}

func TestHostImportContacts(t *testing.T) {
	s := start(t, t.TempDir(), options{})
	app := s.app("shop")
	ta := pushUser(t, app, "alice")
	for _, u := range []string{"bob", "carol", "dave"} {
		pushUser(t, app, u)
	}
	a := login(t, s.WSAddr, "shop", ta)
	imp := func(in chat.ContactImport) (chat.ContactImportResult, error) {
		var r chat.ContactImportResult
		err := app.Do(context.Background(), "POST", "/api/v1/contacts/import", in, &r)
		return r, err
	}
	in := chat.ContactImport{
		Friends: []chat.ContactPair{{UID: "alice", Peer: "bob", Remark: "Bob B."}, {UID: "carol", Peer: "alice"}},
		Block:   []chat.ContactPair{{UID: "dave", Peer: "alice"}},
	}
	r, err := imp(in)
	if err != nil || r != (chat.ContactImportResult{Friended: 2, Blocked: 1}) {
		t.Fatalf("import: %+v %v", r, err)
	}
	if ev := decode[contactEv](t, a.next("contact")); ev.Op != "add" || ev.From != "" {
		t.Fatalf("alice got %+v", ev)
	}
	fa := friendsOf(t, a)
	if len(fa) != 2 || fa[0].UID != "bob" || fa[0].Remark != "Bob B." || fa[1].UID != "carol" {
		t.Fatalf("alice's friends: %+v", fa)
	}
	mustFail(t, a.do(`"action":"send","to":"dave","type":"text","content":{"text":"x"}`), chat.CodeForbidden, "send to the user who blocked alice")
	if r, err := imp(in); err != nil || r.Friended != 0 || r.Blocked != 0 {
		t.Fatalf("the same import again changed %+v (%v)", r, err)
	}
	if r, err := imp(chat.ContactImport{Unfriend: []chat.ContactPair{{UID: "bob", Peer: "alice"}}, Unblock: []chat.ContactPair{{UID: "dave", Peer: "alice"}}}); err != nil || r.Unfriended != 1 || r.Unblocked != 1 {
		t.Fatalf("unfriend/unblock: %+v %v", r, err)
	}
	if fa := friendsOf(t, a); len(fa) != 1 || fa[0].UID != "carol" {
		t.Fatalf("after unfriend: %+v", fa)
	}
	mustOK(t, a.do(`"action":"send","to":"dave","type":"text","content":{"text":"x"}`), "send after unblock")

	for name, bad := range map[string]chat.ContactImport{
		"same user": {Friends: []chat.ContactPair{{UID: "bob", Peer: "bob"}}},
		"empty":     {},
		"no peer":   {Block: []chat.ContactPair{{UID: "bob"}}},
	} {
		var ae *apiclient.APIError
		if _, err := imp(bad); !errors.As(err, &ae) || ae.Code != "bad_request" {
			t.Errorf("%s: %v", name, err)
		}
	}
	var ae *apiclient.APIError
	if _, err := imp(chat.ContactImport{Friends: []chat.ContactPair{{UID: "bob", Peer: "nobody"}}}); !errors.As(err, &ae) || ae.Code != "not_found" {
		t.Errorf("unknown user: %v", err)
	}

	// A pending request between a pair the host makes friends goes away.
	mustOK(t, a.do(`"action":"friend_request","uid":"dave"`), "request")
	if r, err := imp(chat.ContactImport{Friends: []chat.ContactPair{{UID: "dave", Peer: "alice"}}}); err != nil || r.Friended != 1 {
		t.Fatalf("import over a pending request: %+v %v", r, err)
	}
	if l := decode[requestsList](t, a.do(`"action":"friend_requests"`)); len(l.Outgoing) != 0 {
		t.Fatalf("alice's request outlived the import: %+v", l)
	}
}

func TestContactsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir, options{})
	a0, err := s.Admin.CreateApp(context.Background(), "shop", "Shop")
	if err != nil {
		t.Fatal(err)
	}
	app := s.AppClient(a0.ID, a0.Secret)
	ta, tb, tc := pushUser(t, app, "alice"), pushUser(t, app, "bob"), pushUser(t, app, "carol")
	a, b, c := login(t, s.WSAddr, "shop", ta), login(t, s.WSAddr, "shop", tb), login(t, s.WSAddr, "shop", tc)
	mustOK(t, a.do(`"action":"friend_request","uid":"bob"`), "request")
	mustOK(t, b.do(`"action":"friend_accept","uid":"alice"`), "accept")
	mustOK(t, a.do(`"action":"friend_remark","uid":"bob","remark":"B"`), "remark")
	mustOK(t, c.do(`"action":"friend_request","uid":"alice","message":"carol"`), "pending request")
	mustOK(t, b.do(`"action":"block","uid":"carol"`), "block")
	if err := setPolicy(t, app, "friends"); err != nil {
		t.Fatal(err)
	}
	s.Stop()

	s = start(t, dir, options{})
	app = s.AppClient(a0.ID, a0.Secret)
	a, b, c = login(t, s.WSAddr, "shop", ta), login(t, s.WSAddr, "shop", tb), login(t, s.WSAddr, "shop", tc)
	if fa := friendsOf(t, a); len(fa) != 1 || fa[0].UID != "bob" || fa[0].Remark != "B" {
		t.Fatalf("alice's friends after restart: %+v", fa)
	}
	if l := decode[requestsList](t, a.do(`"action":"friend_requests"`)); len(l.Incoming) != 1 || l.Incoming[0].Message != "carol" {
		t.Fatalf("alice's requests after restart: %+v", l)
	}
	mustFail(t, b.do(`"action":"block","uid":"carol"`), chat.CodeConflict, "the block after restart")
	mustFail(t, c.do(`"action":"send","to":"alice","type":"text","content":{"text":"x"}`), chat.CodeForbidden, "friends policy after restart")
	mustOK(t, a.do(`"action":"send","to":"bob","type":"text","content":{"text":"x"}`), "friends write after restart")
}

func TestContactTopicOnTheLiveStream(t *testing.T) {
	s := start(t, t.TempDir(), options{})
	app := s.app("shop")
	ta := pushUser(t, app, "alice")
	pushUser(t, app, "bob")
	f, err := chat.ParseFilter("contact;uid=bob")
	if err != nil {
		t.Fatal(err)
	}
	sub := s.Core.Subscribe([]chat.Filter{f}, 16)
	defer sub.Close()
	a := login(t, s.WSAddr, "shop", ta)
	mustOK(t, a.do(`"action":"friend_request","uid":"bob","message":"hello"`), "request")
	select {
	case e := <-sub.C:
		if e.Topic != "contact" || e.Type != "request" || e.UID != "alice" || e.Detail != "hello" {
			t.Fatalf("stream event %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no contact event on the stream")
	}
}
