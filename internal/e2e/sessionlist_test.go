package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"chatd/chat"
	"chatd/httpapi/apiclient"
)

type listView struct {
	ID           uint64 `json:"session_id"`
	Kind         string `json:"kind"`
	Name         string `json:"name"`
	Peer         string `json:"peer"`
	PeerNickname string `json:"peer_nickname"`
	PeerAvatar   string `json:"peer_avatar"`
	PeerRemark   string `json:"peer_remark"`
	MemberCount  int    `json:"member_count"`
	Rank         int    `json:"rank"`
	Muted        bool   `json:"muted"`
	Unread       uint64 `json:"unread"`
}

type listPage struct {
	Sessions      []listView `json:"sessions"`
	Unread        uint64     `json:"unread"`
	UnreadUnmuted uint64     `json:"unread_unmuted"`
	NextCursor    string     `json:"next_cursor"`
}

func TestSessionListPagingSearchPinMuteHide(t *testing.T) {
	s := start(t, t.TempDir(), options{})
	app := s.app("shop")
	ctx := context.Background()
	ta := pushUser(t, app, "alice")
	a := login(t, s.WSAddr, "shop", ta)
	// Six private sessions, each peer writing once (so alice has unread),
	// oldest first: p0 … p5; and a group.
	for i := 0; i < 6; i++ {
		uid := fmt.Sprintf("p%d", i)
		if _, err := app.PushUser(ctx, apiclient.PushUserInput{UID: uid, Nickname: fmt.Sprintf("Peer %d", i), Avatar: "https://img.example/" + uid + ".png"}); err != nil {
			t.Fatal(err)
		}
		if _, err := app.Send(ctx, apiclient.SendInput{From: uid, To: "alice", Type: "text", Content: []byte(`{"text":"hi"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	g, err := app.CreateGroup(ctx, apiclient.GroupInput{Owner: "alice", Name: "Cycling club", Members: []string{"p0", "p1"}})
	if err != nil {
		t.Fatal(err)
	}
	list := func(fields string) listPage {
		t.Helper()
		return decode[listPage](t, mustOK(t, a.do(`"action":"sessions"`+fields), "sessions"+fields))
	}

	t.Run("paging", func(t *testing.T) {
		var got []uint64
		cursor := ""
		pages := 0
		for {
			p := list(fmt.Sprintf(`,"limit":3,"cursor":%q`, cursor))
			pages++
			if p.Unread != 6 {
				t.Fatalf("unread %d on page %d, want 6 over all", p.Unread, pages)
			}
			for _, v := range p.Sessions {
				got = append(got, v.ID)
			}
			if p.NextCursor == "" {
				break
			}
			cursor = p.NextCursor
		}
		if pages != 3 || len(got) != 7 || got[0] != g.ID {
			t.Fatalf("%d pages, sessions %v (group %d first: newest)", pages, got, g.ID)
		}
		seen := map[uint64]bool{}
		for _, id := range got {
			if seen[id] {
				t.Fatalf("session %d listed twice: %v", id, got)
			}
			seen[id] = true
		}
		mustFail(t, a.do(`"action":"sessions","cursor":"bogus"`), chat.CodeBadRequest, "bad cursor")
	})
	all := list("").Sessions
	byPeer := map[string]listView{}
	for _, v := range all {
		byPeer[v.Peer] = v
	}
	t.Run("peer names and member count", func(t *testing.T) {
		v := byPeer["p3"]
		if v.Kind != "private" || v.PeerNickname != "Peer 3" || v.PeerAvatar != "https://img.example/p3.png" || v.Unread != 1 {
			t.Fatalf("private view %+v", v)
		}
		if gv := all[0]; gv.Kind != "group" || gv.MemberCount != 3 || gv.Name != "Cycling club" {
			t.Fatalf("group view %+v", gv)
		}
	})
	t.Run("search", func(t *testing.T) {
		if p := list(`,"keyword":"peer 4"`); len(p.Sessions) != 1 || p.Sessions[0].Peer != "p4" {
			t.Fatalf("nickname search: %+v", p.Sessions)
		}
		if p := list(`,"keyword":"CYCLING"`); len(p.Sessions) != 1 || p.Sessions[0].ID != g.ID {
			t.Fatalf("group name search: %+v", p.Sessions)
		}
		var res chat.ContactImportResult
		if err := app.Do(ctx, "POST", "/api/v1/contacts/import", chat.ContactImport{Friends: []chat.ContactPair{{UID: "alice", Peer: "p2", Remark: "Grandma"}}}, &res); err != nil {
			t.Fatal(err)
		}
		if p := list(`,"keyword":"grand"`); len(p.Sessions) != 1 || p.Sessions[0].Peer != "p2" || p.Sessions[0].PeerRemark != "Grandma" {
			t.Fatalf("remark search: %+v", p.Sessions)
		}
		if p := list(`,"keyword":"nobody"`); len(p.Sessions) != 0 {
			t.Fatalf("no match: %+v", p.Sessions)
		}
	})
	t.Run("pin", func(t *testing.T) {
		mustOK(t, a.do(fmt.Sprintf(`"action":"session_pin","session_id":%d`, byPeer["p0"].ID)), "pin p0")
		mustOK(t, a.do(fmt.Sprintf(`"action":"session_pin","session_id":%d,"rank":5`, byPeer["p1"].ID)), "pin p1 higher")
		p := list("")
		if p.Sessions[0].Peer != "p1" || p.Sessions[0].Rank != 5 || p.Sessions[1].Peer != "p0" || p.Sessions[2].ID != g.ID {
			t.Fatalf("pinned order: %+v", p.Sessions[:3])
		}
		mustOK(t, a.do(fmt.Sprintf(`"action":"session_unpin","session_id":%d`, byPeer["p1"].ID)), "unpin")
		if p := list(""); p.Sessions[0].Peer != "p0" {
			t.Fatalf("after unpin: %+v", p.Sessions[0])
		}
		mustFail(t, a.do(`"action":"session_pin","session_id":999999`), chat.CodeNotFound, "pin an unknown session")
		mustFail(t, a.do(fmt.Sprintf(`"action":"session_pin","session_id":%d,"rank":-1`, byPeer["p0"].ID)), chat.CodeBadRequest, "negative rank")
	})
	t.Run("mute", func(t *testing.T) {
		mustOK(t, a.do(fmt.Sprintf(`"action":"session_mute","session_id":%d`, byPeer["p5"].ID)), "mute")
		p := list("")
		if p.Unread != 6 || p.UnreadUnmuted != 5 {
			t.Fatalf("unread %d, unmuted %d: want 6 and 5", p.Unread, p.UnreadUnmuted)
		}
		for _, v := range p.Sessions {
			if v.Muted != (v.Peer == "p5") {
				t.Fatalf("muted flag on %+v", v)
			}
		}
	})
	t.Run("hide comes back on the next message", func(t *testing.T) {
		sid := byPeer["p3"].ID
		mustOK(t, a.do(fmt.Sprintf(`"action":"session_hide","session_id":%d`, sid)), "hide")
		for _, v := range list("").Sessions {
			if v.ID == sid {
				t.Fatal("hidden session listed")
			}
		}
		if _, err := app.Send(ctx, apiclient.SendInput{From: "p3", To: "alice", Type: "text", Content: []byte(`{"text":"again"}`)}); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, v := range list("").Sessions {
			found = found || v.ID == sid
		}
		if !found {
			t.Fatal("hidden session did not come back with a new message")
		}
	})
	t.Run("over HTTP", func(t *testing.T) {
		raw, err := app.ClientDo(ctx, ta, map[string]any{"id": 1, "action": "sessions", "limit": 2})
		if err != nil {
			t.Fatal(err)
		}
		var f frame
		if err := jsonUnmarshal(raw, &f); err != nil || !f.OK {
			t.Fatalf("sessions over HTTP: %s", raw)
		}
		if p := decode[listPage](t, f); len(p.Sessions) != 2 || p.NextCursor == "" {
			t.Fatalf("HTTP page: %+v", p)
		}
	})
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
