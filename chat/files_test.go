package chat_test

import (
	"context"
	"strings"
	"testing"

	"chatd/chat"
)

// With media_url_hosts set, external URLs in media messages and avatars
// must name a listed host (or a subdomain of a "*." entry).
func TestMediaHostsAllowList(t *testing.T) {
	e := newEnv(t, chat.Config{MediaHosts: []string{"cdn.example.com", "*.img.example"}})
	e.user("alice")
	e.user("bob")
	ctx := context.Background()
	send := func(typ, content string) error {
		_, err := e.core.Send(ctx, "shop", chat.SendInput{From: "alice", To: "bob", Type: typ, Content: []byte(content)})
		return err
	}
	for _, ok := range []string{`{"url":"https://cdn.example.com/a.png"}`, `{"url":"https://eu.img.example/b.jpg"}`} {
		if err := send("image", ok); err != nil {
			t.Fatalf("%s: %v", ok, err)
		}
	}
	for _, bad := range []struct{ typ, content string }{
		{"image", `{"url":"https://evil.example/a.png"}`},
		{"video", `{"url":"https://cdn.example.com/v.mp4","cover":"https://img.example.evil.net/c.jpg"}`},
		{"file", `{"url":"http://cdn.example.com.evil.net/x","name":"x"}`},
	} {
		err := send(bad.typ, bad.content)
		if ce, ok := err.(*chat.Error); !ok || ce.Code != chat.CodeBadRequest || !strings.Contains(ce.Message, "media_url_hosts") {
			t.Errorf("%s %s: %v", bad.typ, bad.content, err)
		}
	}
	// Text links are not media: not restricted.
	if err := send("card", `{"title":"t","url":"https://elsewhere.example/"}`); err != nil {
		t.Fatalf("card: %v", err)
	}
	_, err := e.core.PushUser(ctx, "shop", chat.UserInput{UID: "carol", Avatar: "https://evil.example/me.png"})
	if ce, ok := err.(*chat.Error); !ok || ce.Code != chat.CodeBadRequest {
		t.Fatalf("avatar on another host: %v", err)
	}
}
