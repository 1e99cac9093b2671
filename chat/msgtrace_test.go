package chat_test

import (
	"encoding/json"
	"errors"
	"testing"

	"chatd/chat"
)

// TestTraceMessages checks a message trace: each WebSocket send answered
// while it runs is recorded once, under its session and seq, with its
// points in order; sends before it and after it are not; a second trace
// meanwhile is refused with conflict.
func TestTraceMessages(t *testing.T) {
	e := newEnv(t, chat.Config{})
	a := e.login(e.user("alice"))
	b := e.login(e.user("bob"))
	send := func(text string) chat.SendResult {
		t.Helper()
		f := a.do(`"action":"send","to":"bob","type":"text","content":{"text":"` + text + `"}`)
		if !f.OK {
			t.Fatalf("send: %+v", f.Error)
		}
		var r chat.SendResult
		if err := json.Unmarshal(f.Data, &r); err != nil || r.Seq == 0 {
			t.Fatalf("ack %s: %v", f.Data, err)
		}
		b.wait(t, event("message"))
		return r
	}
	send("before")

	tr, err := e.core.StartTrace(0)
	if err != nil {
		t.Fatal(err)
	}
	var ce *chat.Error
	if _, err := e.core.StartTrace(0); !errors.As(err, &ce) || ce.Code != chat.CodeConflict {
		t.Fatalf("second trace: %v, want conflict while the first runs", err)
	}
	var want []chat.SendResult
	for _, text := range []string{"one", "two", "three"} {
		want = append(want, send(text))
	}
	recs, lost := tr.Stop()
	if lost != 0 {
		t.Fatalf("trace dropped %d", lost)
	}
	if again, _ := tr.Stop(); again != nil {
		t.Fatal("a second Stop returned the records again")
	}
	send("after")

	if len(recs) != len(want) {
		t.Fatalf("trace has %d records, want %d: %+v", len(recs), len(want), recs)
	}
	for i, rec := range recs {
		if rec.Session != want[i].Session || rec.Seq != want[i].Seq {
			t.Errorf("record %d is session %d seq %d, want %d/%d", i, rec.Session, rec.Seq, want[i].Session, want[i].Seq)
		}
		if !(rec.Decoded > 0 && rec.Decoded <= rec.CommitStart && rec.CommitStart <= rec.CommitEnd && rec.CommitEnd <= rec.Answered) {
			t.Errorf("record %d out of order: %+v", i, rec)
		}
	}
}

// TestTraceMessagesMax checks that a trace keeps at most max records and
// counts the rest.
func TestTraceMessagesMax(t *testing.T) {
	e := newEnv(t, chat.Config{})
	a := e.login(e.user("alice"))
	e.login(e.user("bob"))
	tr, err := e.core.StartTrace(2)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if f := a.do(`"action":"send","to":"bob","type":"text","content":{"text":"x"}`); !f.OK {
			t.Fatalf("send: %+v", f.Error)
		}
	}
	if recs, lost := tr.Stop(); len(recs) != 2 || lost != 3 {
		t.Fatalf("trace kept %d and dropped %d, want 2 and 3", len(recs), lost)
	}
	if _, err := e.core.StartTrace(0); err != nil {
		t.Fatalf("a trace after the first stopped: %v", err)
	}
}
