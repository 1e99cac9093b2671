package chat_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"chatd/chat"
	"chatd/chat/memstore"
)

// A record written through the journal is durable and readable, and a
// delete removes it.
func TestRecordsThroughJournal(t *testing.T) {
	st := memstore.New()
	core, stop := startCore(t, st)
	defer stop()
	ctx := context.Background()
	if err := core.WriteForTest(ctx, &chat.Batch{Records: []chat.Record{{Kind: "t.kind", Key: []byte("k"), Value: []byte("v")}}}); err != nil {
		t.Fatal(err)
	}
	if v, err := st.Record(ctx, "t.kind", []byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("record = %q, %v", v, err)
	}
	if err := core.WriteForTest(ctx, &chat.Batch{DelRecords: []chat.RecordKey{{Kind: "t.kind", Key: []byte("k")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Record(ctx, "t.kind", []byte("k")); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("deleted record: %v", err)
	}
	// An invalid kind fails the write, and the journal keeps serving.
	if err := core.WriteForTest(ctx, &chat.Batch{Records: []chat.Record{{Kind: "Bad", Key: []byte("k")}}}); err == nil {
		t.Fatal("a record of an invalid kind was written")
	}
	if err := core.WriteForTest(ctx, &chat.Batch{Records: []chat.Record{{Kind: "t.kind", Key: []byte("k2"), Value: []byte("v2")}}}); err != nil {
		t.Fatalf("write after a failed one: %v", err)
	}
}

// A send's attach commits its records with the message and sees the seq
// the message got; a retried cid stores nothing new and attaches nothing.
func TestSendAttachCommitsWithMessage(t *testing.T) {
	st := memstore.New()
	core, stop := startCore(t, st)
	defer stop()
	ctx := context.Background()
	if _, err := core.CreateApp(ctx, "a", "A"); err != nil {
		t.Fatal(err)
	}
	for _, uid := range []string{"u1", "u2"} {
		if _, err := core.PushUser(ctx, "a", chat.UserInput{UID: uid}); err != nil {
			t.Fatal(err)
		}
	}
	calls := 0
	attach := func(m *chat.Message, b *chat.Batch) {
		calls++
		b.Records = append(b.Records, chat.Record{Kind: "t.seen", Key: []byte(m.CID), Value: binary.BigEndian.AppendUint64(nil, m.Seq)})
	}
	var last chat.SendResult
	for i, cid := range []string{"c1", "c2", "c2"} {
		r, err := core.SendWithForTest(ctx, "a", chat.SendInput{From: "u1", To: "u2", Type: "text", Content: []byte(`{"text":"hi"}`), CID: cid}, attach)
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		last = r
	}
	if calls != 2 {
		t.Fatalf("attach ran %d times, want 2 (not for the retried cid)", calls)
	}
	if !last.Duplicate || last.Seq != 2 {
		t.Fatalf("retry = %+v, want the duplicate of seq 2", last)
	}
	for cid, seq := range map[string]uint64{"c1": 1, "c2": 2} {
		v, err := st.Record(ctx, "t.seen", []byte(cid))
		if err != nil || binary.BigEndian.Uint64(v) != seq {
			t.Fatalf("record %s = %x, %v; want seq %d", cid, v, err, seq)
		}
	}
	ms, err := st.Messages(ctx, last.Session, 1, 10, 0, false)
	if err != nil || len(ms) != 2 {
		t.Fatalf("messages = %d, %v", len(ms), err)
	}
}
