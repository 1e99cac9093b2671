package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/chat"
	"chatd/httpapi/apiclient"
	"chatd/internal/teststack"
)

func sendIn(from string, sid uint64, text string) apiclient.SendInput {
	return apiclient.SendInput{From: from, Session: sid, Type: "text", Content: json.RawMessage(fmt.Sprintf(`{"text":%q}`, text))}
}

type groupView struct {
	Owner string `json:"owner"`
	Role  string `json:"role"`
	Group *struct {
		Announcement *chat.Announcement `json:"announcement"`
		Dismissed    bool               `json:"dismissed"`
		MuteAll      bool               `json:"mute_all"`
		MutedUntil   int64              `json:"muted_until"`
		JoinPolicy   string             `json:"join_policy"`
	} `json:"group"`
}

type groupEv struct {
	Op           string             `json:"op"`
	By           string             `json:"by"`
	UIDs         []string           `json:"uids"`
	Role         string             `json:"role"`
	Until        int64              `json:"until"`
	Announcement *chat.Announcement `json:"announcement"`
}

// nextGroupOp waits for the `group` event with this op.
func nextGroupOp(t *testing.T, c *client, op string) groupEv {
	t.Helper()
	for {
		if ev := decode[groupEv](t, c.next("group")); ev.Op == op {
			return ev
		}
	}
}

// TestGroupAdministration: every group operation and permission, by
// clients and by the host: roles and transfer, mutes with expiry and mute
// all, the announcement in the session view, join policies, paging the
// members, removal and dismissal; a member trying each admin action gets
// forbidden.
func TestGroupAdministration(t *testing.T) {
	st := newMsgopsStack(t, t.TempDir())
	ctx := context.Background()
	app := st.app
	for _, u := range []string{"dave", "erin"} {
		st.tokens[u] = pushUser(t, app, u)
	}
	// The host chooses the group's id.
	var g0 chat.Session
	if err := app.Do(ctx, http.MethodPost, "/api/v1/groups", map[string]any{"id": 900000, "owner": "olga", "name": "club", "members": []string{"alice", "bob", "carol"}}, &g0); err != nil {
		t.Fatal(err)
	}
	if g0.ID != 900000 {
		t.Fatalf("host-chosen id: got %d", g0.ID)
	}
	err := app.Do(ctx, http.MethodPost, "/api/v1/groups", map[string]any{"id": 900000, "owner": "olga"}, nil)
	wantAPIError(t, "a taken group id", err, "conflict", "taken")
	g := uint64(g0.ID)
	olga, alice, bob, carol := st.login("olga"), st.login("alice"), st.login("bob"), st.login("carol")

	// A member tries every admin action.
	for _, req := range []string{
		`"action":"group_role","session_id":%d,"uid":"carol","role":"admin"`,
		`"action":"group_transfer","session_id":%d,"uid":"bob"`,
		`"action":"group_mute","session_id":%d,"uid":"carol","seconds":60`,
		`"action":"group_mute_all","session_id":%d,"enabled":true`,
		`"action":"group_announce","session_id":%d,"text":"hi"`,
		`"action":"group_policy","session_id":%d,"join_policy":"members"`,
		`"action":"group_dismiss","session_id":%d`,
		`"action":"group_add","session_id":%d,"uids":["dave"]`,
		`"action":"group_remove","session_id":%d,"uids":["carol"]`,
	} {
		wantReplyError(t, "member: "+req, bob.do(fmt.Sprintf(req, g)), "forbidden", "only")
	}

	// The owner makes alice an admin; she announces.
	if f := olga.do(fmt.Sprintf(`"action":"group_role","session_id":%d,"uid":"alice","role":"admin"`, g)); !f.OK {
		t.Fatal(f.Error)
	}
	if ev := nextGroupOp(t, bob, "role"); ev.By != "olga" || ev.Role != "admin" || ev.UIDs[0] != "alice" {
		t.Fatalf("role event %+v", ev)
	}
	wantReplyError(t, "admin changes a role", alice.do(fmt.Sprintf(`"action":"group_role","session_id":%d,"uid":"bob","role":"admin"`, g)), "forbidden", "only the owner")
	wantReplyError(t, "admin mutes the owner", alice.do(fmt.Sprintf(`"action":"group_mute","session_id":%d,"uid":"olga","seconds":60`, g)), "forbidden", "owner cannot be muted")
	if f := alice.do(fmt.Sprintf(`"action":"group_announce","session_id":%d,"text":"Meeting at 5"`, g)); !f.OK {
		t.Fatal(f.Error)
	}
	if ev := nextGroupOp(t, carol, "announce"); ev.Announcement == nil || ev.Announcement.Text != "Meeting at 5" || ev.By != "alice" {
		t.Fatalf("announce event %+v", ev)
	}
	if v := decode[groupView](t, carol.do(fmt.Sprintf(`"action":"session","session_id":%d`, g))); v.Group == nil || v.Group.Announcement == nil || v.Group.Announcement.Text != "Meeting at 5" {
		t.Fatalf("session view %+v", v)
	}

	// Mute bob for a minute; it expires.
	if f := alice.do(fmt.Sprintf(`"action":"group_mute","session_id":%d,"uid":"bob","seconds":60`, g)); !f.OK {
		t.Fatal(f.Error)
	}
	until := time.UnixMilli(st.clock.Now().UnixMilli() + 60000).UTC().Format(time.RFC3339)
	wantReplyError(t, "muted send", bob.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"x"}`, g)), "forbidden", "muted in group 900000 until "+until)
	raw, err := app.ClientDo(ctx, st.tokens["bob"], map[string]any{"id": 1, "action": "send", "session_id": g, "type": "text", "content": map[string]string{"text": "x"}})
	if err != nil || !strings.Contains(string(raw), "muted in group") {
		t.Fatalf("muted send over HTTP: %s %v", raw, err)
	}
	st.clock.Advance(61 * time.Second)
	sendText(t, bob, g, "free again", "")

	// Mute all: only the owner and admins speak.
	if f := alice.do(fmt.Sprintf(`"action":"group_mute_all","session_id":%d,"enabled":true`, g)); !f.OK {
		t.Fatal(f.Error)
	}
	wantReplyError(t, "send while muted all", carol.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"x"}`, g)), "forbidden", "only the owner and admins may speak")
	sendText(t, alice, g, "admins may", "")
	if f := olga.do(fmt.Sprintf(`"action":"group_mute_all","session_id":%d,"enabled":false`, g)); !f.OK {
		t.Fatal(f.Error)
	}
	sendText(t, carol, g, "members again", "")

	// Transfer: alice owns the group, olga is an admin.
	if f := olga.do(fmt.Sprintf(`"action":"group_transfer","session_id":%d,"uid":"alice"`, g)); !f.OK {
		t.Fatal(f.Error)
	}
	if v := decode[groupView](t, olga.do(fmt.Sprintf(`"action":"session","session_id":%d`, g))); v.Owner != "alice" || v.Role != "admin" {
		t.Fatalf("after transfer, olga sees %+v", v)
	}

	// Join policy: members may invite; then only the host.
	if f := alice.do(fmt.Sprintf(`"action":"group_policy","session_id":%d,"join_policy":"members"`, g)); !f.OK {
		t.Fatal(f.Error)
	}
	if f := bob.do(fmt.Sprintf(`"action":"group_add","session_id":%d,"uids":["dave"]`, g)); !f.OK {
		t.Fatalf("member invites under policy members: %+v", f.Error)
	}
	if f := alice.do(fmt.Sprintf(`"action":"group_policy","session_id":%d,"join_policy":"host"`, g)); !f.OK {
		t.Fatal(f.Error)
	}
	wantReplyError(t, "owner adds under policy host", alice.do(fmt.Sprintf(`"action":"group_add","session_id":%d,"uids":["erin"]`, g)), "forbidden", "host site only")
	var added struct {
		Added []string `json:"added"`
	}
	if err := app.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/groups/%d/members", g), map[string]any{"add": []string{"erin"}}, &added); err != nil || len(added.Added) != 1 {
		t.Fatalf("host adds erin: %v %+v", err, added)
	}

	// The host pages the members.
	var all []string
	after := ""
	for {
		var page chat.GroupMembers
		if err := app.Do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/groups/%d/members?limit=4&after=%s", g, after), nil, &page); err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Members {
			all = append(all, m.UID)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if fmt.Sprint(all) != "[alice bob carol dave erin olga]" {
		t.Fatalf("members paged: %v", all)
	}

	// The host mutes, sets a role, removes.
	var mu struct {
		Until int64 `json:"until"`
	}
	if err := app.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/groups/%d/mute", g), map[string]any{"uid": "dave", "seconds": 30}, &mu); err != nil || mu.Until == 0 {
		t.Fatalf("host mute: %v %+v", err, mu)
	}
	if err := app.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/groups/%d/role", g), map[string]any{"uid": "bob", "role": "admin"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := app.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/groups/%d/members", g), map[string]any{"remove": []string{"carol"}}, nil); err != nil {
		t.Fatal(err)
	}
	if ev := nextGroupOp(t, carol, "remove"); ev.UIDs[0] != "carol" {
		t.Fatalf("removed carol hears %+v", ev)
	}
	err = app.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/groups/%d/frobnicate", g), map[string]any{}, nil)
	wantAPIError(t, "unknown group operation", err, "not_found", "no such group operation")

	// Dismiss: an event, read-only, history still readable.
	if f := alice.do(fmt.Sprintf(`"action":"group_dismiss","session_id":%d`, g)); !f.OK {
		t.Fatal(f.Error)
	}
	if ev := nextGroupOp(t, bob, "dismiss"); ev.By != "alice" {
		t.Fatalf("dismiss event %+v", ev)
	}
	wantReplyError(t, "send to a dismissed group", bob.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"x"}`, g)), "forbidden", "dismissed")
	wantReplyError(t, "recall in a dismissed group", alice.do(fmt.Sprintf(`"action":"recall","session_id":%d,"seq":1`, g)), "forbidden", "dismissed")
	wantReplyError(t, "add to a dismissed group", alice.do(fmt.Sprintf(`"action":"group_add","session_id":%d,"uids":["carol"]`, g)), "forbidden", "dismissed")
	if h := decode[opPage](t, bob.do(fmt.Sprintf(`"action":"history","session_id":%d`, g))); len(h.Messages) != 3 {
		t.Fatalf("history after dismiss holds %d messages", len(h.Messages))
	}
	if v := decode[groupView](t, bob.do(fmt.Sprintf(`"action":"session","session_id":%d`, g))); v.Group == nil || !v.Group.Dismissed {
		t.Fatalf("session view after dismiss %+v", v)
	}
	err = app.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/groups/%d/dismiss", g), nil, nil)
	wantAPIError(t, "dismiss twice", err, "conflict", "already dismissed")
}

// TestGroupSettingsForNewMembersAndDismissedHistory: with
// NewMembersFromJoin a new member's history starts at their join; with
// DismissHidesHistory a dismissed group's history is refused; a restart
// keeps mutes and dismissal.
func TestGroupSettingsForNewMembersAndDismissedHistory(t *testing.T) {
	dir := t.TempDir()
	s := &server{Server: teststack.Start(t, dir, teststack.Options{Core: chat.Config{NewMembersFromJoin: true, DismissHidesHistory: true}}), t: t}
	app := s.app("shop")
	ctx := context.Background()
	tok := map[string]string{}
	for _, u := range []string{"olga", "bob", "dave"} {
		tok[u] = pushUser(t, app, u)
	}
	gs, err := app.CreateGroup(ctx, apiclient.GroupInput{Owner: "olga", Members: []string{"bob"}})
	if err != nil {
		t.Fatal(err)
	}
	g := gs.ID
	for i := 0; i < 3; i++ {
		if _, err := app.Send(ctx, sendIn("olga", g, fmt.Sprintf("before %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/groups/%d/members", g), map[string]any{"add": []string{"dave"}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Send(ctx, sendIn("olga", g, "after")); err != nil {
		t.Fatal(err)
	}
	do := func(uid string, action map[string]any) frame {
		raw, err := app.ClientDo(ctx, tok[uid], action)
		if err != nil {
			t.Fatal(err)
		}
		var f frame
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	if h := decode[opPage](t, do("dave", map[string]any{"action": "history", "session_id": g})); len(h.Messages) != 1 || h.Messages[0].Seq != 4 {
		t.Fatalf("new member's history %+v", h.Messages)
	}
	if h := decode[opPage](t, do("bob", map[string]any{"action": "history", "session_id": g})); len(h.Messages) != 4 {
		t.Fatalf("old member's history holds %d", len(h.Messages))
	}
	if err := app.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/groups/%d/mute", g), map[string]any{"uid": "bob", "seconds": 3600}, nil); err != nil {
		t.Fatal(err)
	}
	if err := app.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/groups/%d/dismiss", g), nil, nil); err != nil {
		t.Fatal(err)
	}
	wantReplyError(t, "history of a dismissed group", do("bob", map[string]any{"action": "history", "session_id": g}), "forbidden", "no longer available")
	s.Stop()

	s2 := &server{Server: teststack.Start(t, dir, teststack.Options{}), t: t}
	_ = s2
	app2 := s2.AppClient(app.App, app.Secret)
	raw, err := app2.ClientDo(ctx, tok["olga"], map[string]any{"id": 1, "action": "send", "session_id": g, "type": "text", "content": map[string]string{"text": "x"}})
	if err != nil || !strings.Contains(string(raw), "dismissed") {
		t.Fatalf("send after restart to a dismissed group: %s %v", raw, err)
	}
}

// TestTenThousandMemberGroup: the host creates a group at the member
// limit (10,000) over the server API; one more member is refused; a
// message reaches every online member (a bounded 200 of them).
func TestTenThousandMemberGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 10,000 users")
	}
	s := start(t, t.TempDir(), options{})
	app := s.app("shop")
	ctx := context.Background()
	const n, online = 10000, 200
	uids := make([]string, n)
	for i := range uids {
		uids[i] = fmt.Sprintf("u%05d", i)
	}
	// Users go in through the core (10,000 signed HTTP pushes would only
	// measure HTTP); the group is created over the server API.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				if _, err := s.Core.PushUser(ctx, "shop", chat.UserInput{UID: uids[i]}); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	pushUser(t, app, "extra")
	g, err := app.CreateGroup(ctx, apiclient.GroupInput{Owner: uids[0], Members: uids[1:]})
	if err != nil {
		t.Fatal(err)
	}
	var page chat.GroupMembers
	if err := app.Do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/groups/%d/members?limit=1000&after=u09499", g.ID), nil, &page); err != nil || len(page.Members) != 500 || page.Next != "" {
		t.Fatalf("last page: %v, %d members, next %q", err, len(page.Members), page.Next)
	}
	err = app.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/groups/%d/members", g.ID), map[string]any{"add": []string{"extra"}}, nil)
	wantAPIError(t, "the 10,001st member", err, "forbidden", "at most 10000 members")

	clients := make([]*client, online)
	for i := range clients {
		tk, err := app.IssueToken(ctx, uids[i*(n/online)], 0)
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = login(t, s.WSAddr, "shop", tk.Token)
	}
	if _, err := app.Send(ctx, sendIn(uids[1], g.ID, "to ten thousand")); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		m := decode[message](t, c.next("message"))
		if m.Session != g.ID || m.Content.Text != "to ten thousand" {
			t.Fatalf("client %d got %+v", i, m)
		}
	}
	for _, c := range clients {
		c.conn.Close()
	}
}
