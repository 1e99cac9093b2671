package bench

import (
	"io"
	"strconv"
	"sync"
	"time"
)

// progress prints a live status line while a run ramps and runs: on a
// terminal one line rewritten in place every interval, otherwise a plain
// line per interval (every fourth interval, so logs stay readable).
type progress struct {
	w     io.Writer // nil: silent
	tty   bool
	every time.Duration
	start time.Time

	mu    sync.Mutex // guards phase, line, shown
	phase string
	line  func(b []byte) []byte
	shown bool // a TTY line is on screen and needs a newline before other output

	stop chan struct{}
	done chan struct{}
}

func newProgress(w io.Writer, tty bool, every time.Duration) *progress {
	if every <= 0 {
		every = 500 * time.Millisecond
	}
	return &progress{w: w, tty: tty, every: every, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
}

// set switches the status line to phase, rendered by line. line is called
// from the progress goroutine and must be safe for that (atomics).
func (p *progress) set(phase string, line func(b []byte) []byte) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.phase, p.line = phase, line
	p.mu.Unlock()
}

// setPhase renames the current phase, keeping its line.
func (p *progress) setPhase(phase string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.phase = phase
	p.mu.Unlock()
}

// run prints until close. Started by Run.
func (p *progress) run() {
	defer close(p.done)
	if p.w == nil {
		<-p.stop
		return
	}
	t := time.NewTicker(p.every)
	defer t.Stop()
	var buf []byte
	for n := 1; ; n++ {
		select {
		case <-p.stop:
			p.mu.Lock()
			if p.shown {
				p.w.Write([]byte("\n"))
				p.shown = false
			}
			p.mu.Unlock()
			return
		case <-t.C:
		}
		if !p.tty && n%4 != 0 {
			continue
		}
		p.mu.Lock()
		line := p.line
		phase := p.phase
		p.mu.Unlock()
		if line == nil {
			continue
		}
		buf = buf[:0]
		if p.tty {
			buf = append(buf, '\r')
		}
		buf = append(buf, '[')
		buf = appendSeconds(buf, time.Since(p.start))
		buf = append(buf, "] "...)
		buf = append(buf, phase...)
		buf = append(buf, ": "...)
		buf = line(buf)
		if p.tty {
			buf = append(buf, "\x1b[K"...) // clear to end of line
		} else {
			buf = append(buf, '\n')
		}
		p.mu.Lock()
		p.w.Write(buf)
		p.shown = p.tty
		p.mu.Unlock()
	}
}

// note prints a line of its own (not overwritten by the live line).
func (p *progress) note(s string) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		p.w.Write([]byte("\n"))
		p.shown = false
	}
	io.WriteString(p.w, s+"\n")
}

// close stops the printer and ends its line.
func (p *progress) close() {
	close(p.stop)
	<-p.done
}

func appendSeconds(b []byte, d time.Duration) []byte {
	s := int64(d / (100 * time.Millisecond))
	b = strconv.AppendInt(b, s/10, 10)
	b = append(b, '.', byte('0'+s%10), 's')
	return b
}
