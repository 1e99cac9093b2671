package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"chatd/httpapi/apiclient"
)

// POST /api/v1/users updates only the fields it is given: a host that
// pushes a user again to get a token keeps their nickname, avatar and
// extra; a field given as "" or null clears it (the nickname falls back to
// the uid).
func TestPushUserKeepsFieldsLeftOut(t *testing.T) {
	h := newHarness(t, nil)
	c := h.app("shop")
	type user struct {
		Nickname  string          `json:"nickname"`
		Avatar    string          `json:"avatar"`
		Extra     json.RawMessage `json:"extra"`
		CreatedAt int64           `json:"created_at"`
	}
	steps := []struct {
		name  string
		body  string
		want  user
		token bool
		code  string // an error code instead
		msg   string
	}{
		{name: "create with every field", body: `{"uid":"ann","nickname":"Ann","avatar":"https://x/a.png","extra":{"level":3}}`,
			want: user{Nickname: "Ann", Avatar: "https://x/a.png", Extra: json.RawMessage(`{"level":3}`)}},
		{name: "push again for a token only", body: `{"uid":"ann","issue_token":true}`, token: true,
			want: user{Nickname: "Ann", Avatar: "https://x/a.png", Extra: json.RawMessage(`{"level":3}`)}},
		{name: "change the nickname only", body: `{"uid":"ann","nickname":"Annie"}`,
			want: user{Nickname: "Annie", Avatar: "https://x/a.png", Extra: json.RawMessage(`{"level":3}`)}},
		{name: "clear avatar and extra", body: `{"uid":"ann","avatar":"","extra":null}`,
			want: user{Nickname: "Annie"}},
		{name: "null nickname falls back to the uid", body: `{"uid":"ann","nickname":null,"avatar":"https://x/b.png"}`,
			want: user{Nickname: "ann", Avatar: "https://x/b.png"}},
		{name: "a nickname of the wrong type", body: `{"uid":"ann","nickname":5}`, code: "bad_request", msg: `invalid JSON: field "nickname" must be a string, got number`},
	}
	var created int64
	for _, st := range steps {
		var got struct {
			User  user   `json:"user"`
			Token string `json:"token"`
		}
		err := c.Do(context.Background(), "POST", "/api/v1/users", json.RawMessage(st.body), &got)
		if st.code != "" {
			var ae *apiclient.APIError
			if !errors.As(err, &ae) || ae.Code != st.code || !strings.Contains(ae.Message, st.msg) {
				t.Fatalf("%s: got %v, want %s mentioning %s", st.name, err, st.code, st.msg)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if created == 0 {
			created = got.User.CreatedAt
		}
		stored, err := c.User(context.Background(), "ann")
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []user{got.User, {Nickname: stored.Nickname, Avatar: stored.Avatar, Extra: stored.Extra, CreatedAt: stored.CreatedAt}} {
			if u.Nickname != st.want.Nickname || u.Avatar != st.want.Avatar || string(u.Extra) != string(st.want.Extra) || u.CreatedAt != created {
				t.Fatalf("%s: user %+v (extra %s), want %+v (extra %s), created_at %d", st.name, u, u.Extra, st.want, st.want.Extra, created)
			}
		}
		if (got.Token != "") != st.token {
			t.Fatalf("%s: token %q", st.name, got.Token)
		}
	}
	// A new user pushed with the uid alone gets the defaults.
	r, err := c.PushUser(context.Background(), apiclient.PushUserInput{UID: "bo"})
	if err != nil || r.User.Nickname != "bo" || r.User.Avatar != "" || r.User.Extra != nil {
		t.Fatalf("new user: %+v %v", r.User, err)
	}
}
