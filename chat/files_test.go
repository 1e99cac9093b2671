package chat_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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

func fakeFile(t *testing.T, e *env, typ, seed string) chat.FileMeta {
	t.Helper()
	sum := sha256.Sum256([]byte(seed))
	m, created, err := e.core.AddFile(context.Background(), chat.FileMeta{ID: hex.EncodeToString(sum[:]), App: "shop", Type: typ,
		MIME: "image/png", Size: 100, Width: 2, Height: 3}, "alice", 0)
	if err != nil || !created {
		t.Fatalf("AddFile: %v %v", created, err)
	}
	return m
}

// Garbage collection follows the references: a file stays while a message
// carries it, and goes (after the grace period) once retention deleted
// that message; an avatar keeps its file while it is someone's avatar.
func TestFileGCFollowsMessagesAndAvatars(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	e := newEnv(t, chat.Config{Now: func() time.Time { return time.Unix(0, now.Load()) }})
	e.user("alice")
	e.user("bob")
	e.user("carol")
	ctx := context.Background()
	sent := fakeFile(t, e, "image", "sent")
	avatar := fakeFile(t, e, "image", "avatar")
	if _, err := e.core.Send(ctx, "shop", chat.SendInput{From: "alice", To: "bob", Type: "image",
		Content: []byte(`{"file_id":"` + sent.ID + `"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.core.PushUser(ctx, "shop", chat.UserInput{UID: "alice", Avatar: chat.FileURLScheme + avatar.ID}); err != nil {
		t.Fatalf("avatar upload: %v", err)
	}
	// Anyone of the app sees an avatar; carol is in no session with it.
	if err := e.core.CanReadFile(ctx, "shop", "carol", avatar.ID); err != nil {
		t.Fatalf("carol reading alice's avatar: %v", err)
	}
	if err := e.core.CanReadFile(ctx, "shop", "carol", sent.ID); err == nil {
		t.Fatal("carol may read a file sent between alice and bob")
	}
	voice := fakeFile(t, e, "voice", "voice")
	if _, err := e.core.PushUser(ctx, "shop", chat.UserInput{UID: "bob", Avatar: chat.FileURLScheme + voice.ID}); err == nil {
		t.Fatal("a voice file accepted as an avatar")
	}

	grace := int64(time.Hour / time.Millisecond)
	now.Add(int64(2 * time.Hour))
	gc, err := e.core.CollectFiles(ctx, "shop", grace)
	if err != nil || len(gc.Removed) != 1 || gc.Removed[0].ID != voice.ID || gc.KeptInUse != 2 {
		t.Fatalf("first pass: %+v %v", gc, err)
	}
	// Retention deletes the message; alice changes her avatar.
	if _, _, err := e.store.PruneMessages(ctx, "shop", time.Unix(0, now.Load()).UnixMilli(), 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.core.PushUser(ctx, "shop", chat.UserInput{UID: "alice", Avatar: "https://cdn.example.com/a.png"}); err != nil {
		t.Fatal(err)
	}
	gc, err = e.core.CollectFiles(ctx, "shop", grace)
	if err != nil || len(gc.Removed) != 2 || gc.StaleRefs != 2 {
		t.Fatalf("second pass: %+v %v", gc, err)
	}
	if used, _ := e.core.AppFileBytes(ctx, "shop"); used != 0 {
		t.Fatalf("usage after collecting everything: %d", used)
	}
}
