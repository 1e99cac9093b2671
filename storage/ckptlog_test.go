package storage

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// A failed background checkpoint is logged: the first of a run at once,
// then one line a minute counting the run, and a line when one succeeds
// again. Close is not a failure.
func TestCheckpointFailuresAreLogged(t *testing.T) {
	type line struct {
		what string
		err  error
	}
	var got []line
	logf := func(what string, err error) { got = append(got, line{what, err}) }
	var f ckptFailures
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	boom := errors.New("write /data/chat.db: no space left on device")

	f.note(nil, t0, logf)
	if len(got) != 0 {
		t.Fatalf("a checkpoint that worked logged %v", got)
	}
	f.note(boom, t0, logf)
	if len(got) != 1 || got[0].err != boom || !strings.HasPrefix(got[0].what, "checkpoint") {
		t.Fatalf("first failure logged %v, want one line with the error", got)
	}
	for i := 1; i < 30; i++ { // every second for half a minute: no more lines
		f.note(boom, t0.Add(time.Duration(i)*time.Second), logf)
	}
	if len(got) != 1 {
		t.Fatalf("failures within the minute logged %d lines, want 1", len(got))
	}
	f.note(boom, t0.Add(time.Minute), logf)
	if len(got) != 2 || got[1].err != boom || !strings.Contains(got[1].what, "31 failures in a row") {
		t.Fatalf("a minute later: %v, want a line counting 31 failures", got[1:])
	}
	f.note(errClosed, t0.Add(61*time.Second), logf)
	f.note(nil, t0.Add(62*time.Second), logf)
	if len(got) != 3 || got[2].err != nil || !strings.Contains(got[2].what, "succeeded after 31 failures") {
		t.Fatalf("recovery: %v, want one line saying checkpoints work again", got[2:])
	}
	f.note(nil, t0.Add(63*time.Second), logf)
	f.note(boom, t0.Add(64*time.Second), logf)
	if len(got) != 4 || got[3].err != boom || strings.Contains(got[3].what, "in a row") {
		t.Fatalf("a new run: %v, want its first failure logged at once", got[3:])
	}
}
