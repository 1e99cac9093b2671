package e2e_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"chatd/httpapi/apiclient"
	"chatd/internal/testfs"
)

// allMessages pages a session's whole history through the HTTP API,
// oldest first.
func allMessages(t *testing.T, app *apiclient.Client, sid uint64) []apiclient.Message {
	t.Helper()
	var out []apiclient.Message
	before := uint64(0)
	for {
		page, err := app.History(context.Background(), sid, before, 100)
		if err != nil {
			t.Fatalf("history of %d before %d: %v", sid, before, err)
		}
		if len(page) == 0 {
			break
		}
		out = append(page, out...)
		before = page[0].Seq
		if before == 1 {
			break
		}
	}
	return out
}

// TestDiskFullRefusesWritesAndResumes runs chatd on a 16 MiB tmpfs, fills
// it, and checks the whole story of a full disk: sends are refused with
// `unavailable` and a "disk full" message (never `internal`), logins,
// history and session lists keep working, deleting the filler lets sends
// through again with no restart, and after a restart every acknowledged
// message is there with its seq.
func TestDiskFullRefusesWritesAndResumes(t *testing.T) {
	dir := testfs.Tmpfs(t, 16<<20)
	s := start(t, dir, options{})
	a0, err := s.Admin.CreateApp(context.Background(), "shop", "Shop")
	if err != nil {
		t.Fatal(err)
	}
	app := s.AppClient(a0.ID, a0.Secret)
	ta, tb := pushUser(t, app, "alice"), pushUser(t, app, "bob")
	a := login(t, s.WSAddr, "shop", ta)

	acked := map[uint64]string{} // seq → text
	var sid uint64
	n := 0
	// send sends one 8 KiB message; it returns the refusal, if any.
	send := func() *frame {
		t.Helper()
		n++
		text := fmt.Sprintf("m%d-%s", n, strings.Repeat("x", 8<<10))
		r := a.do(fmt.Sprintf(`"action":"send","to":"bob","type":"text","content":{"text":%q}`, text))
		if !r.OK {
			return &r
		}
		k := decode[ack](t, r)
		sid = k.Session
		acked[k.Seq] = text
		return nil
	}
	for range 5 {
		if r := send(); r != nil {
			t.Fatalf("send before the disk filled: %+v", r.Error)
		}
	}
	filler := testfs.Fill(t, dir, "filler", 64<<20)

	// The WAL's blocks grown ahead of its records take some more; then
	// sends are refused.
	refusals := 0
	for i := 0; i < 3000 && refusals < 5; i++ {
		r := send()
		if r == nil {
			continue
		}
		refusals++
		if r.Error == nil || r.Error.Code != "unavailable" || !strings.HasPrefix(r.Error.Message, "disk full") {
			t.Fatalf("send on a full disk: %s; want unavailable, \"disk full: ...\"", r.raw)
		}
	}
	if refusals == 0 {
		t.Fatalf("%d sends on a full 16 MiB disk were all acknowledged", n)
	}
	t.Logf("%d messages acknowledged, %d sends refused while full", len(acked), refusals)

	// Reads and logins go on.
	b := login(t, s.WSAddr, "shop", tb)
	if r := b.do(`"action":"sessions"`); !r.OK {
		t.Fatalf("sessions on a full disk: %s", r.raw)
	}
	if r := b.do(fmt.Sprintf(`"action":"history","session_id":%d,"limit":5`, sid)); !r.OK {
		t.Fatalf("history on a full disk: %s", r.raw)
	}
	if got := allMessages(t, app, sid); len(got) != len(acked) {
		t.Fatalf("history on a full disk has %d messages, %d were acknowledged", len(got), len(acked))
	}

	// Freeing space is enough: the next send goes through.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if r := send(); r != nil {
			t.Fatalf("send after space was freed: %s", r.raw)
		}
	}

	s.Stop()
	s2 := start(t, dir, options{})
	got := allMessages(t, s2.AppClient(a0.ID, a0.Secret), sid)
	if len(got) != len(acked) {
		t.Fatalf("after a restart: %d messages, %d were acknowledged", len(got), len(acked))
	}
	for _, m := range got {
		want, ok := acked[m.Seq]
		if !ok || !strings.Contains(string(m.Content), want) {
			t.Fatalf("after a restart: seq %d is %.40s…, acknowledged %.40s…", m.Seq, m.Content, want)
		}
	}
}
