package chat_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/chat"
	"chatd/chat/memstore"
)

// failingStore is a memstore whose Apply or Messages fail while told to.
type failingStore struct {
	chat.Store
	failApply, failMessages atomic.Bool
}

func (s *failingStore) Apply(ctx context.Context, b *chat.Batch) error {
	if s.failApply.Load() {
		return errors.New("disk on fire at sector 7")
	}
	return s.Store.Apply(ctx, b)
}

func (s *failingStore) Messages(ctx context.Context, id chat.SessionID, lo, hi uint64, limit int, newest bool) ([]chat.Message, error) {
	if s.failMessages.Load() {
		return nil, errors.New("page checksum mismatch")
	}
	return s.Store.Messages(ctx, id, lo, hi, limit, newest)
}

// logLines records Config.LogError's calls.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) log(what string, err error) {
	l.mu.Lock()
	l.lines = append(l.lines, what+": "+err.Error())
	l.mu.Unlock()
}

func (l *logLines) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ls := l.lines
	l.lines = nil
	return ls
}

// Every internal error is logged once, naming what failed, and the client
// is told what failed in general terms; a run of commits failing the same
// way is one line a second, and the count of the rest is logged when
// commits succeed again.
func TestInternalErrorsAreLoggedOnce(t *testing.T) {
	st := &failingStore{Store: memstore.New()}
	var logs logLines
	var clock atomic.Int64
	clock.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	e := newEnvOn(t, chat.Config{LogError: logs.log, Now: func() time.Time { return time.Unix(0, clock.Load()) }}, st)
	e.user("bob")
	a := e.login(e.user("alice"))
	if f := a.do(`"action":"send","to":"bob","type":"text","content":{"text":"ok"}`); !f.OK {
		t.Fatalf("first send: %+v", f.Error)
	}
	if ls := logs.take(); len(ls) != 0 {
		t.Fatalf("log before any failure: %q", ls)
	}

	st.failApply.Store(true)
	f := a.do(`"action":"send","to":"bob","type":"text","content":{"text":"lost"}`)
	if f.OK || f.Error.Code != chat.CodeInternal || !strings.Contains(f.Error.Message, "storing the write failed") {
		t.Fatalf("send with a failing store: %+v", f)
	}
	ls := logs.take()
	if len(ls) != 1 || !strings.Contains(ls[0], "journal: committing 1 writes (1 messages)") || !strings.Contains(ls[0], "disk on fire at sector 7") {
		t.Fatalf("log after a failed commit: %q, want one line naming the commit and the store's error", ls)
	}
	for range 3 { // within the second: counted, not logged
		if f := a.do(`"action":"send","to":"bob","type":"text","content":{"text":"lost"}`); f.OK {
			t.Fatal("send succeeded with a failing store")
		}
	}
	if ls := logs.take(); len(ls) != 0 {
		t.Fatalf("log for the same failure within a second: %q", ls)
	}
	clock.Add(int64(2 * time.Second))
	a.do(`"action":"send","to":"bob","type":"text","content":{"text":"lost"}`)
	if ls := logs.take(); len(ls) != 1 || !strings.Contains(ls[0], "and 3 writes refused earlier") {
		t.Fatalf("log for the same failure a second later: %q, want one line counting the 3 not logged", ls)
	}
	a.do(`"action":"send","to":"bob","type":"text","content":{"text":"lost"}`)
	st.failApply.Store(false)
	if f := a.do(`"action":"send","to":"bob","type":"text","content":{"text":"back"}`); !f.OK {
		t.Fatalf("send after the store recovered: %+v", f.Error)
	}
	if ls := logs.take(); len(ls) != 1 || !strings.Contains(ls[0], "1 more writes") || !strings.Contains(ls[0], "disk on fire") {
		t.Fatalf("log once commits succeed again: %q, want the count of the one not logged", ls)
	}

	// A failed read in an action: one line naming the action.
	s := data[ack](t, a.do(`"action":"send","to":"bob","type":"text","content":{"text":"x"}`))
	st.failMessages.Store(true)
	f = a.do(`"action":"history","session_id":` + strconv.FormatUint(s.Session, 10))
	if f.OK || f.Error.Code != chat.CodeInternal || f.Error.Message != "internal error: history failed; the server log has details" {
		t.Fatalf("history with a failing store: %+v", f)
	}
	if ls := logs.take(); len(ls) != 1 || !strings.HasPrefix(ls[0], "history: ") || !strings.Contains(ls[0], "page checksum mismatch") {
		t.Fatalf("log after a failed read: %q, want one line naming the action and the error", ls)
	}
	// …and in the cid check, which reads the session's messages.
	f = a.do(`"action":"send","to":"bob","type":"text","cid":"c1","content":{"text":"x"}`)
	if f.OK || f.Error.Code != chat.CodeInternal || !strings.Contains(f.Error.Message, "for the cid check failed") {
		t.Fatalf("send with a cid and a failing store: %+v", f)
	}
	if ls := logs.take(); len(ls) != 1 || !strings.Contains(ls[0], "for the cid check: page checksum mismatch") {
		t.Fatalf("log after a failed cid check: %q", ls)
	}
}
