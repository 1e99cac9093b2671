package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"chatd/chat"
)

// TestRetention runs the retention pass on the core's replaceable clock:
// messages older than the app's retention_days go, the other app's stay,
// seqs are not renumbered (history starts later, the next send continues
// the numbering), the server default applies to apps without their own
// and -1 opts out of it.
func TestRetention(t *testing.T) {
	var now atomic.Int64
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	now.Store(t0.UnixNano())
	e := newEnv(t, chat.Config{Now: func() time.Time { return time.Unix(0, now.Load()) }})
	ctx := context.Background()
	other, err := e.core.CreateApp(ctx, "blog", "Blog")
	if err != nil {
		t.Fatal(err)
	}
	third, err := e.core.CreateApp(ctx, "forum", "Forum")
	if err != nil {
		t.Fatal(err)
	}
	apps := []string{e.app.ID, other.ID, third.ID}
	for _, app := range apps {
		for _, uid := range []string{"a", "b"} {
			if _, err := e.core.PushUser(ctx, app, chat.UserInput{UID: uid}); err != nil {
				t.Fatal(err)
			}
		}
	}
	sids := map[string]chat.SessionID{}
	send := func(app string) uint64 {
		t.Helper()
		r, err := e.core.Send(ctx, app, chat.SendInput{From: "a", To: "b", Type: "text", Content: json.RawMessage(`{"text":"x"}`)})
		if err != nil {
			t.Fatal(err)
		}
		sids[app] = r.Session
		return r.Seq
	}
	// Seqs 1-3 on day 0, 4-5 on day 10.
	for range 3 {
		for _, app := range apps {
			send(app)
		}
	}
	now.Store(t0.Add(10 * 24 * time.Hour).UnixNano())
	for range 2 {
		for _, app := range apps {
			send(app)
		}
	}
	history := func(app string) []uint64 {
		t.Helper()
		ms, _, err := e.core.History(ctx, app, sids[app], 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, m := range ms {
			seqs = append(seqs, m.Seq)
		}
		return seqs
	}

	if _, err := e.core.SetRetention(ctx, e.app.ID, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := e.core.SetRetention(ctx, third.ID, -1); err != nil {
		t.Fatal(err)
	}
	var ce *chat.Error
	if _, err := e.core.SetRetention(ctx, e.app.ID, -2); !errors.As(err, &ce) || ce.Code != chat.CodeBadRequest {
		t.Fatalf("retention -2: %v, want bad_request", err)
	}
	if a, err := e.core.App(ctx, e.app.ID); err != nil || a.RetentionDays != 7 {
		t.Fatalf("app after SetRetention: %+v, %v", a, err)
	}

	// No default: only the app with its own retention loses messages.
	n, err := e.core.PruneOnce(ctx, chat.RetentionConfig{Chunk: 2})
	if err != nil || n != 3 {
		t.Fatalf("first pass: %d deleted, %v; want 3", n, err)
	}
	if got := history(e.app.ID); len(got) != 2 || got[0] != 4 || got[1] != 5 {
		t.Fatalf("history after the pass: %v, want [4 5]", got)
	}
	if got := history(other.ID); len(got) != 5 {
		t.Fatalf("the other app's history: %v, want all 5", got)
	}
	if seq := send(e.app.ID); seq != 6 {
		t.Fatalf("next seq after the pass = %d, want 6 (no renumbering)", seq)
	}

	// A default of 5 days: applies to blog (0), not to forum (-1).
	n, err = e.core.PruneOnce(ctx, chat.RetentionConfig{DefaultDays: 5})
	if err != nil || n != 3 {
		t.Fatalf("pass with a default: %d deleted, %v; want blog's 3", n, err)
	}
	if got := history(other.ID); len(got) != 2 || got[0] != 4 {
		t.Fatalf("blog's history with the default: %v, want [4 5]", got)
	}
	if got := history(third.ID); len(got) != 5 {
		t.Fatalf("forum (retention -1) history: %v, want all 5", got)
	}

	// Nothing is old enough yet at day 10 for 30 days.
	if _, err := e.core.SetRetention(ctx, e.app.ID, 30); err != nil {
		t.Fatal(err)
	}
	if n, err := e.core.PruneOnce(ctx, chat.RetentionConfig{}); err != nil || n != 0 {
		t.Fatalf("pass with nothing old enough: %d, %v", n, err)
	}
}
