package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"chatd/chat"
	"chatd/httpapi/apiclient"
)

func TestHostServerAPI(t *testing.T) {
	s := start(t, t.TempDir(), options{})
	app := s.app("shop")
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		pushUser(t, app, fmt.Sprintf("u%d", i))
	}
	tb := pushUser(t, app, "bob")

	t.Run("push with the host's own token", func(t *testing.T) {
		var r struct {
			Token     string `json:"token"`
			ExpiresAt int64  `json:"expires_at"`
		}
		err := app.Do(ctx, "POST", "/api/v1/users", map[string]any{"uid": "alice", "nickname": "Alice", "token": "site-session-0123456789", "token_ttl": 3600}, &r)
		if err != nil || r.Token != "site-session-0123456789" || r.ExpiresAt == 0 {
			t.Fatalf("push with token: %+v %v", r, err)
		}
		a := login(t, s.WSAddr, "shop", "site-session-0123456789")
		mustOK(t, a.do(`"action":"ping"`), "ping with the host's token")
		var ae *apiclient.APIError
		err = app.Do(ctx, "POST", "/api/v1/users", map[string]any{"uid": "u1", "token": "site-session-0123456789"}, nil)
		if !errors.As(err, &ae) || ae.Code != "conflict" {
			t.Fatalf("another user's token: %v", err)
		}
		err = app.Do(ctx, "POST", "/api/v1/users", map[string]any{"uid": "u1", "token": "short"}, nil)
		if !errors.As(err, &ae) || ae.Code != "bad_request" {
			t.Fatalf("short token: %v", err)
		}
	})

	t.Run("list users with paging", func(t *testing.T) {
		seen := map[string]bool{}
		cursor, pages := "", 0
		for {
			var p chat.UsersPage
			if err := app.Do(ctx, "GET", "/api/v1/users?limit=3&cursor="+url.QueryEscape(cursor), nil, &p); err != nil {
				t.Fatal(err)
			}
			pages++
			for _, u := range p.Users {
				if seen[u.UID] {
					t.Fatalf("%s listed twice", u.UID)
				}
				seen[u.UID] = true
			}
			if p.NextCursor == "" {
				break
			}
			cursor = p.NextCursor
		}
		if len(seen) != 7 || pages != 3 {
			t.Fatalf("%d users in %d pages: %v", len(seen), pages, seen)
		}
	})

	t.Run("a user's sessions and unread", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			if _, err := app.Send(ctx, apiclient.SendInput{From: fmt.Sprintf("u%d", i), To: "bob", Type: "text", Content: json.RawMessage(`{"text":"hi"}`)}); err != nil {
				t.Fatal(err)
			}
		}
		var p struct {
			Sessions []struct {
				Peer         string `json:"peer"`
				PeerNickname string `json:"peer_nickname"`
				Unread       uint64 `json:"unread"`
			} `json:"sessions"`
			Unread     uint64 `json:"unread"`
			NextCursor string `json:"next_cursor"`
		}
		if err := app.Do(ctx, "GET", "/api/v1/users/bob/sessions?limit=2", nil, &p); err != nil {
			t.Fatal(err)
		}
		if len(p.Sessions) != 2 || p.Unread != 3 || p.NextCursor == "" || p.Sessions[0].Peer != "u2" || p.Sessions[0].PeerNickname != "U2" {
			t.Fatalf("bob's sessions page: %+v", p)
		}
		if err := app.Do(ctx, "GET", "/api/v1/users/bob/sessions?keyword=u1", nil, &p); err != nil || len(p.Sessions) != 1 || p.Sessions[0].Peer != "u1" {
			t.Fatalf("keyword: %+v %v", p, err)
		}
		var u chat.UnreadCounts
		if err := app.Do(ctx, "GET", "/api/v1/users/bob/unread", nil, &u); err != nil || u.Unread != 3 || u.UnreadUnmuted != 3 {
			t.Fatalf("unread: %+v %v", u, err)
		}
		var ae *apiclient.APIError
		if err := app.Do(ctx, "GET", "/api/v1/users/nobody/unread", nil, &u); !errors.As(err, &ae) || ae.Code != "not_found" {
			t.Fatalf("unknown user: %v", err)
		}
	})

	t.Run("delete a user", func(t *testing.T) {
		b := dialLogin(t, s.WSAddr, tb)
		var res chat.ContactImportResult
		if err := app.Do(ctx, "POST", "/api/v1/contacts/import", chat.ContactImport{Friends: []chat.ContactPair{{UID: "bob", Peer: "u3"}}}, &res); err != nil {
			t.Fatal(err)
		}
		g, err := app.CreateGroup(ctx, apiclient.GroupInput{Owner: "bob", Name: "g", Members: []string{"u3", "u4"}})
		if err != nil {
			t.Fatal(err)
		}
		sent, err := app.Send(ctx, apiclient.SendInput{From: "bob", To: "u0", Type: "text", Content: json.RawMessage(`{"text":"private words"}`)})
		if err != nil {
			t.Fatal(err)
		}
		var d chat.DeletedUser
		if err := app.Do(ctx, "POST", "/api/v1/users/bob/delete", map[string]string{"messages": "erase"}, &d); err != nil {
			t.Fatal(err)
		}
		if d.Kicked != 1 || d.Sessions != 4 || d.Friends != 1 || d.Erased != 1 {
			t.Fatalf("deleted: %+v", d)
		}
		if ce, ok := b.waitClose(5 * time.Second); !ok || ce.Code != 4002 || ce.Reason != "user deleted" {
			t.Fatalf("bob's connection: %+v %v", ce, ok)
		}
		var ae *apiclient.APIError
		if _, err := app.User(ctx, "bob"); !errors.As(err, &ae) || ae.Code != "not_found" {
			t.Fatalf("bob still exists: %v", err)
		}
		ms, err := app.History(ctx, sent.Session, 0, 50)
		if err != nil || len(ms) != 2 {
			t.Fatalf("history: %d messages, %v", len(ms), err)
		}
		for _, m := range ms {
			if m.From == "bob" && (m.Type != "deleted" || string(m.Content) != "{}") {
				t.Fatalf("bob's message not erased: %+v", m)
			}
			if m.From == "u0" && m.Type != "text" {
				t.Fatalf("u0's message changed: %+v", m)
			}
		}
		u3 := login(t, s.WSAddr, "shop", pushUser(t, app, "u3"))
		if fs := friendsOf(t, u3); len(fs) != 0 {
			t.Fatalf("u3 still lists %+v", fs)
		}
		gv := decode[struct {
			Members []string `json:"members"`
			Owner   string   `json:"owner"`
		}](t, mustOK(t, u3.do(fmt.Sprintf(`"action":"session","session_id":%d`, g.ID)), "group"))
		if len(gv.Members) != 2 || gv.Owner == "bob" {
			t.Fatalf("group after delete: %+v", gv)
		}
		if err := app.Do(ctx, "POST", "/api/v1/users/bob/delete", nil, nil); !errors.As(err, &ae) || ae.Code != "not_found" {
			t.Fatalf("delete twice: %v", err)
		}
		if err := app.Do(ctx, "POST", "/api/v1/users/u4/delete", map[string]string{"messages": "shred"}, nil); !errors.As(err, &ae) || ae.Code != "bad_request" {
			t.Fatalf("bad messages option: %v", err)
		}
		// Pushed again, bob is a new user who can use the old private session.
		nb := login(t, s.WSAddr, "shop", pushUser(t, app, "bob"))
		mustOK(t, nb.do(`"action":"send","to":"u0","type":"text","content":{"text":"back"}`), "send after re-creation")
	})
}
