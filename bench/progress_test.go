package bench

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the printer goroutine and the
// test.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestProgressLine(t *testing.T) {
	tests := []struct {
		name      string
		tty       bool
		wantParts []string
		wantNot   []string
	}{
		{name: "terminal rewrites one line", tty: true, wantParts: []string{"\r[", "] run: conns 7", "\x1b[K"}},
		{name: "plain lines when not a terminal", tty: false, wantParts: []string{"] run: conns 7\n"}, wantNot: []string{"\r", "\x1b["}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out lockedBuffer
			p := newProgress(&out, tt.tty, 5*time.Millisecond)
			go p.run()
			p.set("ramp", func(b []byte) []byte { return append(b, "conns 3"...) })
			p.set("run", func(b []byte) []byte { return append(b, "conns 7"...) })
			waitFor(t, "a progress line", func() bool { return strings.Contains(out.String(), "conns 7") })
			p.note("a note")
			p.close()
			got := out.String()
			for _, w := range tt.wantParts {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q: %q", w, got)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(got, w) {
					t.Errorf("output has %q: %q", w, got)
				}
			}
			if !strings.HasSuffix(got, "\n") || !strings.Contains(got, "\na note\n") && !strings.HasPrefix(got, "a note\n") {
				t.Errorf("notes and the end must start on a line of their own: %q", got)
			}
		})
	}
}

func TestProgressSilent(t *testing.T) {
	p := newProgress(nil, false, time.Millisecond)
	go p.run()
	p.set("run", func(b []byte) []byte { t.Error("line rendered with no writer"); return b })
	time.Sleep(10 * time.Millisecond)
	p.close()
}
