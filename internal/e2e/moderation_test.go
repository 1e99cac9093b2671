package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"chatd/chat"
	"chatd/httpapi/apiclient"
)

// wantRefused checks that f is an error reply with code whose message
// contains each of parts.
func wantRefused(t *testing.T, f frame, code chat.Code, parts ...string) {
	t.Helper()
	if f.OK || f.Error == nil || f.Error.Code != code {
		t.Fatalf("want %s, got %s", code, f.raw)
	}
	for _, p := range parts {
		if !strings.Contains(f.Error.Message, p) {
			t.Fatalf("message %q does not say %q", f.Error.Message, p)
		}
	}
}

// closedWith waits for the server to close c and returns its close code.
func (c *client) closedWith() int {
	c.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-c.frames:
			if !ok {
				return int(c.closeCode.Load())
			}
		case <-timeout:
			c.t.Fatal("connection not closed in 10s")
		}
	}
}

// metric reads one sample of GET /metrics, e.g. `chatd_limited_total{limit="send"}`.
func metric(t *testing.T, httpAddr, sample string) string {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			return v
		}
	}
	t.Fatalf("no %s in /metrics", sample)
	return ""
}

// TestRateLimitsEndToEnd: a user's sends and requests beyond their bucket
// are answered rate_limited with the limit named and a retry_after, the
// connection stays open, and the same request works once the core's clock
// has moved on by retry_after. The connection cap refuses one login too
// many and lets it in once a device has gone.
func TestRateLimitsEndToEnd(t *testing.T) {
	clk := newClock()
	s := start(t, t.TempDir(), options{now: clk.Now,
		limits: chat.Limits{SendRate: 2, SendBurst: 3, RequestRate: 5, RequestBurst: 6, MaxUserConns: 2}})
	app := s.app("shop")
	ta := pushUser(t, app, "alice")
	pushUser(t, app, "bob")
	tc := pushUser(t, app, "carol")
	send := `"action":"send","to":"bob","type":"text","content":{"text":"hi"}`

	t.Run("sends beyond the burst", func(t *testing.T) {
		a := login(t, s.WSAddr, "shop", ta)
		for i := 0; i < 3; i++ { // the burst
			if f := a.do(send); !f.OK {
				t.Fatalf("send %d: %s", i, f.raw)
			}
		}
		f := a.do(send)
		// 3 sends at one instant at 2/s: the next token is 500 ms away.
		wantRefused(t, f, chat.CodeRateLimited, "send rate limit", "2 messages/s", "burst 3", "retry after 500 ms")
		if f.Error.RetryAfter != 500 {
			t.Fatalf("retry_after = %d, want 500", f.Error.RetryAfter)
		}
		if f := a.do(`"action":"ping"`); !f.OK { // the connection is open and other actions work
			t.Fatalf("ping after a refused send: %s", f.raw)
		}
		clk.Add(499 * time.Millisecond)
		wantRefused(t, a.do(send), chat.CodeRateLimited, "retry after 1 ms")
		clk.Add(time.Millisecond)
		if f := a.do(send); !f.OK {
			t.Fatalf("send once retry_after has passed: %s", f.raw)
		}
		// The bucket is the user's, not the connection's: a second device
		// of alice finds it empty too.
		a2 := login(t, s.WSAddr, "shop", ta)
		wantRefused(t, a2.do(send), chat.CodeRateLimited, "send rate limit")
		if got := metric(t, s.HTTPAddr, `chatd_limited_total{limit="send"}`); got != "3" {
			t.Fatalf(`chatd_limited_total{limit="send"} = %s, want 3`, got)
		}
	})

	t.Run("requests beyond the burst", func(t *testing.T) {
		c := login(t, s.WSAddr, "shop", tc)
		for i := 0; i < 6; i++ {
			if f := c.do(`"action":"ping"`); !f.OK {
				t.Fatalf("ping %d: %s", i, f.raw)
			}
		}
		f := c.do(`"action":"sessions"`)
		wantRefused(t, f, chat.CodeRateLimited, "request rate limit", "5 requests/s", "burst 6")
		if f.Error.RetryAfter != 200 {
			t.Fatalf("retry_after = %d, want 200", f.Error.RetryAfter)
		}
		// The HTTP user API draws on the same bucket.
		raw, err := app.ClientDo(context.Background(), tc, map[string]any{"id": "h1", "action": "ping"})
		var hf frame
		if err != nil || json.Unmarshal(raw, &hf) != nil {
			t.Fatalf("HTTP user API: %v %s", err, raw)
		}
		hf.raw = raw
		wantRefused(t, hf, chat.CodeRateLimited, "request rate limit")
		if hf.Error.RetryAfter != 200 {
			t.Fatalf("HTTP retry_after = %d, want 200", hf.Error.RetryAfter)
		}
		clk.Add(200 * time.Millisecond)
		if f := c.do(`"action":"sessions"`); !f.OK {
			t.Fatalf("request once retry_after has passed: %s", f.raw)
		}
		if got := metric(t, s.HTTPAddr, `chatd_limited_total{limit="request"}`); got != "2" { // WebSocket and HTTP
			t.Fatalf(`chatd_limited_total{limit="request"} = %s, want 2`, got)
		}
	})

	t.Run("one connection too many", func(t *testing.T) {
		clk.Add(time.Minute) // fresh buckets
		b1 := login(t, s.WSAddr, "shop", pushUser(t, app, "bob"))
		tb := pushUser(t, app, "bob")
		login(t, s.WSAddr, "shop", tb)
		b3 := dial(t, s.WSAddr)
		f := b3.do(`"action":"login","app":"shop","token":"` + tb + `"`)
		wantRefused(t, f, chat.CodeForbidden, "user_conns limit", `"bob" already has 2 connections`)
		if got := metric(t, s.HTTPAddr, `chatd_limited_total{limit="user_conns"}`); got != "1" {
			t.Fatalf(`chatd_limited_total{limit="user_conns"} = %s, want 1`, got)
		}
		// Still open: once a device is gone, the same connection logs in.
		b1.conn.Close()
		deadline := time.Now().Add(10 * time.Second)
		for {
			f = b3.do(`"action":"login","app":"shop","token":"` + tb + `"`)
			if f.OK || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond) // the server notices the closed socket
		}
		if !f.OK {
			t.Fatalf("login after a device left: %s", f.raw)
		}
	})
}

// stream subscribes to the live event stream with filter and returns its
// events, decoded, as they come.
func stream(t *testing.T, s *server, filter string) <-chan chat.Event {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.HTTPAddr+"/admin/v1/subscribe?"+url.Values{"filter": {filter}}.Encode(), nil)
	apiclient.SignRequest(req, adminKey, nil, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("subscribe: HTTP %d", resp.StatusCode)
	}
	t.Cleanup(func() { resp.Body.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for s.Core.Subscribers() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("subscription not registered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	out := make(chan chat.Event, 64)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var e chat.Event
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Topic == chat.TopicModeration {
				out <- e
			}
		}
	}()
	return out
}

func nextEvent(t *testing.T, ch <-chan chat.Event) chat.Event {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("event stream ended")
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no moderation event in 10s")
	}
	return chat.Event{}
}

// TestModerationEndToEnd: mute, ban, kick and their lifting over the
// server API, with real clients, the live stream and a restart.
func TestModerationEndToEnd(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	s := start(t, dir, options{now: clk.Now})
	app := s.app("shop")
	events := stream(t, s, "moderation;app=shop")
	ta, tb, tc := pushUser(t, app, "alice"), pushUser(t, app, "bob"), pushUser(t, app, "carol")
	a1, a2 := login(t, s.WSAddr, "shop", ta), login(t, s.WSAddr, "shop", ta)
	b := login(t, s.WSAddr, "shop", tb)
	moderate := func(t *testing.T, in apiclient.ModerationInput) apiclient.ModerationResult {
		t.Helper()
		r, err := app.Moderate(ctx, in)
		if err != nil {
			t.Fatalf("%s %s: %v", in.Action, in.UID, err)
		}
		return r
	}
	wantEvent := func(t *testing.T, typ, uid string, until int64) {
		t.Helper()
		e := nextEvent(t, events)
		if e.Type != typ || e.UID != uid || e.App != "shop" || e.Until != until {
			t.Fatalf("event %+v, want %s of %s until %d", e, typ, uid, until)
		}
	}
	toBob := `"action":"send","to":"bob","type":"text","content":{"text":"hi"}`
	outer := t // the restarted server and its stream outlive the subtests

	t.Run("mute", func(t *testing.T) {
		until := clk.At(time.Minute)
		r := moderate(t, apiclient.ModerationInput{Action: "mute", UID: "alice", DurationMS: 60000, Reason: "spam"})
		if r.Until != until || r.Reason != "spam" {
			t.Fatalf("mute reply %+v, want until %d", r, until)
		}
		wantEvent(t, "mute", "alice", until)
		untilText := time.UnixMilli(until).UTC().Format(time.RFC3339)
		wantRefused(t, a1.do(toBob), chat.CodeForbidden, "muted until "+untilText, "spam")
		// Other actions work, and others may still write to her.
		if f := a2.do(`"action":"sessions"`); !f.OK {
			t.Fatalf("a muted user's sessions: %s", f.raw)
		}
		if f := b.do(`"action":"send","to":"alice","type":"text","content":{"text":"yo"}`); !f.OK {
			t.Fatalf("send to a muted user: %s", f.raw)
		}
		l, err := app.Moderation(ctx)
		if err != nil || len(l.Muted) != 1 || l.Muted[0].UID != "alice" || l.Muted[0].Until != until || len(l.Banned) != 0 {
			t.Fatalf("list: %+v, %v", l, err)
		}
		clk.Add(time.Minute) // the mute ends
		if f := a1.do(toBob); !f.OK {
			t.Fatalf("send after the mute ended: %s", f.raw)
		}
		if l, _ := app.Moderation(ctx); len(l.Muted) != 0 {
			t.Fatalf("an ended mute is still listed: %+v", l)
		}
		moderate(t, apiclient.ModerationInput{Action: "mute", UID: "alice"}) // for ever
		wantEvent(t, "mute", "alice", 0)
		wantRefused(t, a1.do(toBob), chat.CodeForbidden, "muted permanently")
		moderate(t, apiclient.ModerationInput{Action: "unmute", UID: "alice"})
		wantEvent(t, "unmute", "alice", 0)
		if f := a1.do(toBob); !f.OK {
			t.Fatalf("send after unmute: %s", f.raw)
		}
		_, err = app.Moderate(ctx, apiclient.ModerationInput{Action: "unmute", UID: "alice"})
		var ae *apiclient.APIError
		if !errors.As(err, &ae) || ae.Code != "not_found" {
			t.Fatalf("unmute of an unmuted user: %v, want not_found", err)
		}
	})

	var banUntil int64
	t.Run("ban", func(t *testing.T) {
		banUntil = clk.At(time.Hour)
		r := moderate(t, apiclient.ModerationInput{Action: "ban", UID: "bob", Until: banUntil, Reason: "abuse"})
		if r.Kicked != 1 || r.Until != banUntil {
			t.Fatalf("ban reply %+v", r)
		}
		wantEvent(t, "ban", "bob", banUntil)
		if code := b.closedWith(); code != chat.CloseBanned {
			t.Fatalf("banned user's connection closed with %d, want %d", code, chat.CloseBanned)
		}
		untilText := time.UnixMilli(banUntil).UTC().Format(time.RFC3339)
		wantRefused(t, dial(t, s.WSAddr).do(`"action":"login","app":"shop","token":"`+tb+`"`),
			chat.CodeForbidden, "banned until "+untilText, "abuse")
		_, err := app.ClientDo(ctx, tb, map[string]any{"id": "1", "action": "ping"})
		var ae *apiclient.APIError
		if !errors.As(err, &ae) || ae.Status != 403 || !strings.Contains(ae.Message, "banned until") {
			t.Fatalf("HTTP user API of a banned user: %v, want 403 banned", err)
		}
		l, err := app.Moderation(ctx)
		if err != nil || len(l.Banned) != 1 || l.Banned[0].UID != "bob" || l.Banned[0].Until != banUntil || l.Banned[0].Reason != "abuse" {
			t.Fatalf("list: %+v, %v", l, err)
		}
	})

	t.Run("bans and mutes survive a restart", func(t *testing.T) {
		moderate(t, apiclient.ModerationInput{Action: "mute", UID: "carol", DurationMS: int64(2 * time.Hour / time.Millisecond)})
		wantEvent(t, "mute", "carol", clk.At(2*time.Hour))
		s.Stop()
		s = start(outer, dir, options{now: clk.Now})
		app = s.AppClient(app.App, app.Secret)
		l, err := app.Moderation(ctx)
		if err != nil || len(l.Banned) != 1 || l.Banned[0].Until != banUntil || len(l.Muted) != 1 || l.Muted[0].UID != "carol" {
			t.Fatalf("list after restart: %+v, %v", l, err)
		}
		wantRefused(t, dial(t, s.WSAddr).do(`"action":"login","app":"shop","token":"`+tb+`"`), chat.CodeForbidden, "banned until")
		c := login(t, s.WSAddr, "shop", tc)
		wantRefused(t, c.do(toBob), chat.CodeForbidden, "muted until")
	})

	t.Run("a ban ends, and unban lifts one", func(t *testing.T) {
		events = stream(outer, s, "moderation;app=shop")
		clk.Add(time.Hour)
		bb := login(t, s.WSAddr, "shop", tb) // the ban is over
		bb.do(`"action":"ping"`)
		moderate(t, apiclient.ModerationInput{Action: "ban", UID: "carol"})
		wantEvent(t, "ban", "carol", 0)
		wantRefused(t, dial(t, s.WSAddr).do(`"action":"login","app":"shop","token":"`+tc+`"`), chat.CodeForbidden, "banned permanently")
		moderate(t, apiclient.ModerationInput{Action: "unban", UID: "carol"})
		wantEvent(t, "unban", "carol", 0)
		login(t, s.WSAddr, "shop", tc)
	})

	t.Run("kick", func(t *testing.T) {
		a1, a2 = login(t, s.WSAddr, "shop", ta), login(t, s.WSAddr, "shop", ta)
		if r := moderate(t, apiclient.ModerationInput{Action: "kick", UID: "alice"}); r.Kicked != 2 {
			t.Fatalf("kick reply %+v, want 2 kicked", r)
		}
		wantEvent(t, "kick", "alice", 0)
		for _, c := range []*client{a1, a2} {
			if code := c.closedWith(); code != chat.CloseKicked {
				t.Fatalf("kicked device closed with %d, want %d", code, chat.CloseKicked)
			}
		}
		login(t, s.WSAddr, "shop", ta) // may come back at once
	})

	t.Run("bad requests", func(t *testing.T) {
		cases := []struct {
			name string
			in   apiclient.ModerationInput
			code string
			msg  string
		}{
			{name: "unknown action", in: apiclient.ModerationInput{Action: "smite", UID: "alice"}, code: "bad_request", msg: "actions are ban"},
			{name: "no uid", in: apiclient.ModerationInput{Action: "ban"}, code: "bad_request", msg: "uid"},
			{name: "unknown user", in: apiclient.ModerationInput{Action: "ban", UID: "nobody"}, code: "not_found", msg: "nobody"},
			{name: "until and duration", in: apiclient.ModerationInput{Action: "mute", UID: "alice", Until: clk.At(time.Hour), DurationMS: 5}, code: "bad_request", msg: "not both"},
			{name: "until in the past", in: apiclient.ModerationInput{Action: "ban", UID: "alice", Until: clk.At(-time.Second)}, code: "bad_request", msg: "past"},
			{name: "duration on kick", in: apiclient.ModerationInput{Action: "kick", UID: "alice", DurationMS: 5}, code: "bad_request", msg: "ban and mute only"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, err := app.Moderate(ctx, tc.in)
				var ae *apiclient.APIError
				if !errors.As(err, &ae) || ae.Code != tc.code || !strings.Contains(ae.Message, tc.msg) {
					t.Fatalf("got %v, want %s saying %q", err, tc.code, tc.msg)
				}
			})
		}
	})
}

// TestAppLimitsEndToEnd: the host caps its app's users and groups; a push
// of one user too many, or a group too many (over the server API or a
// client's group_create), is refused with forbidden naming the cap, while
// pushes of existing users still work; the caps and counts survive a
// restart; 0 removes a cap.
func TestAppLimitsEndToEnd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := start(t, dir, options{})
	app := s.app("shop")
	ta := pushUser(t, app, "alice")
	pushUser(t, app, "bob")
	if _, err := app.CreateGroup(ctx, apiclient.GroupInput{Owner: "alice", Name: "g0", Members: []string{"bob"}}); err != nil {
		t.Fatal(err)
	}
	three, two := 3, 2
	l, err := app.SetAppLimits(ctx, apiclient.AppLimitsInput{MaxUsers: &three, MaxGroups: &two})
	if err != nil || l != (apiclient.AppLimits{MaxUsers: 3, MaxGroups: 2, Users: 2, Groups: 1}) {
		t.Fatalf("set limits: %+v, %v", l, err)
	}
	wantForbidden := func(t *testing.T, err error, parts ...string) {
		t.Helper()
		var ae *apiclient.APIError
		if !errors.As(err, &ae) || ae.Status != 403 || ae.Code != "forbidden" {
			t.Fatalf("got %v, want 403 forbidden", err)
		}
		for _, p := range parts {
			if !strings.Contains(ae.Message, p) {
				t.Fatalf("message %q does not say %q", ae.Message, p)
			}
		}
	}

	t.Run("users", func(t *testing.T) {
		pushUser(t, app, "carol") // the third
		_, err := app.PushUser(ctx, apiclient.PushUserInput{UID: "dave"})
		wantForbidden(t, err, "app_users limit", "has 3 users", "max_users is 3")
		pushUser(t, app, "alice") // an update of an existing user is no new user
		if got := metric(t, s.HTTPAddr, `chatd_limited_total{limit="app_users"}`); got != "1" {
			t.Fatalf(`chatd_limited_total{limit="app_users"} = %s, want 1`, got)
		}
	})

	t.Run("groups", func(t *testing.T) {
		a := login(t, s.WSAddr, "shop", ta)
		if f := a.do(`"action":"group_create","name":"g1","uids":["bob"]`); !f.OK { // the second
			t.Fatalf("group_create: %s", f.raw)
		}
		wantRefused(t, a.do(`"action":"group_create","name":"g2","uids":["bob"]`), chat.CodeForbidden,
			"app_groups limit", "has 2 groups", "max_groups is 2")
		_, err := app.CreateGroup(ctx, apiclient.GroupInput{Owner: "bob", Name: "g3", Members: []string{"alice"}})
		wantForbidden(t, err, "app_groups limit")
		// Private sessions are not groups.
		if f := a.do(`"action":"send","to":"carol","type":"text","content":{"text":"hi"}`); !f.OK {
			t.Fatalf("send: %s", f.raw)
		}
	})

	outer := t // the restarted server outlives the subtest
	t.Run("caps and counts survive a restart; 0 removes a cap", func(t *testing.T) {
		s.Stop()
		s = start(outer, dir, options{})
		app = s.AppClient(app.App, app.Secret)
		l, err := app.AppLimits(ctx)
		if err != nil || l != (apiclient.AppLimits{MaxUsers: 3, MaxGroups: 2, Users: 3, Groups: 2}) {
			t.Fatalf("limits after restart: %+v, %v", l, err)
		}
		_, err = app.PushUser(ctx, apiclient.PushUserInput{UID: "dave"})
		wantForbidden(t, err, "app_users limit")
		zero := 0
		if _, err := app.SetAppLimits(ctx, apiclient.AppLimitsInput{MaxUsers: &zero}); err != nil {
			t.Fatal(err)
		}
		pushUser(t, app, "dave")
		_, err = app.CreateGroup(ctx, apiclient.GroupInput{Owner: "bob", Name: "g3", Members: []string{"alice"}})
		wantForbidden(t, err, "app_groups limit") // max_groups was left as it was
		four := 4
		l, err = app.SetAppLimits(ctx, apiclient.AppLimitsInput{MaxUsers: &four})
		if err != nil || l != (apiclient.AppLimits{MaxUsers: 4, MaxGroups: 2, Users: 4, Groups: 2}) {
			t.Fatalf("limits: %+v, %v", l, err)
		}
		// dave was pushed with no cap: the count starts again from the store.
		_, err = app.PushUser(ctx, apiclient.PushUserInput{UID: "erin"})
		wantForbidden(t, err, "has 4 users")
	})

	t.Run("bad input", func(t *testing.T) {
		neg := -1
		_, err := app.SetAppLimits(ctx, apiclient.AppLimitsInput{MaxGroups: &neg})
		var ae *apiclient.APIError
		if !errors.As(err, &ae) || ae.Code != "bad_request" {
			t.Fatalf("negative cap: %v, want bad_request", err)
		}
		_, err = app.SetAppLimits(ctx, apiclient.AppLimitsInput{})
		if !errors.As(err, &ae) || ae.Code != "bad_request" || !strings.Contains(ae.Message, "max_users") {
			t.Fatalf("empty change: %v, want bad_request", err)
		}
	})
}
